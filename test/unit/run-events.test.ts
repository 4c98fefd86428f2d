/**
 * One recorded event stream (test/fixtures/run-events.json: a deploy with an unreachable host, a failed
 * step and a refused lock) replayed into every consumer: the terminal's plain lines, the --json
 * document (valid against `verdandi schema --events`), the run history's record and the webhook
 * notices. Each produces its own view of the same typed facts; none reads printed text.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { Ajv2020 } from 'ajv/dist/2020.js';
import test from 'ava';
import { noticeText, WebhookNotices } from '../../src/deploy/webhook.js';
import { type RunEvent, RunEvents } from '../../src/engine/events.js';
import { eventsSchema } from '../../src/engine/events-schema.js';
import { JsonOutput } from '../../src/engine/json-output.js';
import { TerminalOutput } from '../../src/engine/report.js';
import { Recorder } from '../../src/history/recorder.js';

const fixture: RunEvent[] = JSON.parse(
  readFileSync(new URL('../fixtures/run-events.json', import.meta.url), 'utf8'),
);

/** A writable that keeps what it is given. */
function sink(): { stream: PassThrough & { isTTY: boolean }; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY: false });
  const chunks: string[] = [];
  stream.on('data', (c) => chunks.push(String(c)));
  return { stream, text: () => chunks.join('') };
}

test('the terminal: a line per step, the failure block under it, refused lock and unreachable host', (t) => {
  const out = sink();
  const err = sink();
  const terminal = new TerminalOutput({
    json: false,
    verbose: false,
    check: false,
    out: out.stream,
    err: err.stream,
  });
  for (const e of fixture) terminal.handle(e);
  t.is(
    out.text(),
    [
      'unreachable db1  timeout: root@10.231.254.9:22: connection timed out',
      'web1  lock taken',
      'web1  shop  fetch                  ok (0.4 s)',
      'web1  shop  health check           FAILED',
      '    command: curl -fsS http://127.0.0.1:8001/health',
      '    exit code: 22',
      'web2  lock FAILED',
      '    another deploy holds the lock of web2: alice@laptop since 10:00',
      'done in 1.0 s',
      '',
    ].join('\n'),
  );
  t.is(err.text(), '');
});

test('--json: one document with the counts per host, the exit code, the events and the command’s fields', (t) => {
  const out = sink();
  const json = new JsonOutput(out.stream);
  for (const e of fixture) json.handle(e);
  const doc = JSON.parse(out.text());
  t.like(doc, { command: 'deploy', env: 'staging', exitCode: 3, durationMs: 960, check: false });
  t.like(doc.hosts, {
    db1: { unreachable: true, ok: 0, failed: 0 },
    web1: { unreachable: false, roundTrips: 6 },
    web2: { failed: 1, roundTrips: 2 },
  });
  t.deepEqual(doc.outcomes, [{ host: 'web1', site: 'shop', status: 'failed' }]);
  t.is(doc.events.length, fixture.length);
  const validate = new Ajv2020({ strict: false }).compile(eventsSchema());
  t.true(validate(doc), JSON.stringify(validate.errors));
  // The schema refuses what is not an event.
  t.false(validate({ ...doc, events: [{ type: 'task', at: 1, host: 'h' }] }));
});

test('the history: steps as tasks with their round trips and failure, the unreachable host, the refused lock', async (t) => {
  const rec = new Recorder({
    command: 'deploy',
    env: 'staging',
    args: ['deploy', 'staging'],
    projectDir: '/nonexistent',
    verdandiVersion: 't',
  });
  for (const e of fixture) rec.handle(e);
  const run = await rec.toRecord({ exitCode: 3 });
  t.is(run.status, 'unreachable');
  t.deepEqual(
    run.hosts.map((h) => [
      h.name,
      h.status,
      h.detail,
      h.roundTrips,
      h.tasks.map((x) => [x.label, x.status, x.roundTrips, x.failure]),
    ]),
    [
      ['db1', 'unreachable', 'timeout: root@10.231.254.9:22: connection timed out', 0, []],
      [
        'web1',
        'failed',
        null,
        6,
        [
          ['shop › fetch', 'ok', 3, null],
          [
            'shop › health check',
            'failed',
            2,
            'command: curl -fsS http://127.0.0.1:8001/health\nexit code: 22',
          ],
        ],
      ],
      ['web2', 'failed', null, 2, [['deploy lock', 'failed', 0, null]]],
    ],
  );
  t.regex(run.hosts[2].tasks[0].detail ?? '', /another deploy holds the lock of web2: alice@laptop/);
  t.deepEqual(
    run.deploys.map((d) => [d.host, d.site, d.outcome, d.step]),
    [['web1', 'shop', 'failed', 'health check']],
  );
});

test('the webhooks: the site’s failed deploy and the refused lock of a host are posted', async (t) => {
  const posted: { text: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      posted.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const events = new RunEvents();
  const after: RunEvent[] = [];
  events.on((e) => after.push(e));
  const notices = new WebhookNotices(events, {
    action: 'deploy',
    env: 'staging',
    by: 'me@here',
    targets: (host) => (host === 'db1' ? [] : [{ site: 'shop', url, ref: 'main' }]),
  });
  for (const e of fixture) notices.handle(e);
  await notices.settled();
  events.close();
  const texts = posted.map((p) => p.text).sort();
  t.is(texts.length, 2);
  t.regex(
    texts[0],
    /^:x: deploy of shop main \(abc1234\) on web1 \(staging\) by me@here FAILED at "health check"/,
  );
  t.regex(texts[1], /^:x: deploy of shop main on web2 \(staging\) by me@here FAILED at "lock"/);
  t.regex(texts[1], /another deploy holds the lock of web2/);
  // Each answer is a step of its own: `webhook notified`.
  t.deepEqual(
    after
      .flatMap((e) => (e.type === 'step' ? [[e.host, e.step, e.detail]] : []))
      .sort((a, b) => a[0].localeCompare(b[0])),
    [
      ['web1', 'webhook', 'notified'],
      ['web2', 'webhook', 'notified'],
    ],
  );
});

test('a restore refused by the lock is posted as such: the database, unchanged', (t) => {
  const text = noticeText({
    action: 'restore',
    env: 'staging',
    host: 'db1',
    site: 'shop',
    ok: false,
    ref: 'shop',
    by: 'me@here',
    durationMs: 0,
    failedStep: 'lock',
    detail: 'another deploy holds the lock of db1: alice@laptop',
  });
  t.regex(text, /^:x: restore of shop database shop on db1 \(staging\) by me@here FAILED at "lock"/);
  t.regex(text, /The database is unchanged\./);
});
