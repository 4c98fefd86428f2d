import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { FileState, ProbeResult, RunStep, Task } from '../../../src/engine/types.js';
import { curlConfig, download, shownUrl } from '../../../src/tasks/download.js';
import { sha256Hex } from '../../../src/tasks/probe-output.js';
import { UserError } from '../../../src/util/errors.js';
import { scratchDir } from './local-host.js';

const CONTENT = 'the file the URL serves\n';
const SHA = sha256Hex(CONTENT);
const URL_ = 'https://user:s3cret@files.example.org/tool.tar.gz';

function probed(task: Task, state: FileState, stdout = 'verdandi-download curl 1'): ProbeResult {
  return { stdout, exitCode: 0, files: new Map((task.files ?? []).map(({ path }) => [path, state])) };
}
const file = (content: string, mode = 0o644): FileState => ({
  type: 'file',
  uid: 0,
  user: 'root',
  gid: 0,
  group: 'root',
  mode,
  sha256: sha256Hex(content),
});

test('a missing file is fetched by the host; the URL travels on stdin, its password is never shown', (t) => {
  const task = download({ url: URL_, path: '/opt/tool.tar.gz', checksum: `sha256:${SHA.toUpperCase()}` });
  t.is(task.name, 'download /opt/tool.tar.gz');
  t.deepEqual(task.files, [{ path: '/opt/tool.tar.gz', checksum: true }]);
  const plan = task.plan(probed(task, { type: 'absent' }));
  t.is(plan.reason, 'file is missing');
  const step = plan.steps[0] as RunStep;
  t.is(step.description, 'fetch https://files.example.org/tool.tar.gz into /opt/tool.tar.gz');
  t.is(step.stdin, `url = "${URL_}"\n`);
  t.false(step.command.includes('s3cret'));
  t.true(step.command.includes(SHA));
});

test('with a checksum: the same sha256 needs nothing, another one fetches again', (t) => {
  const task = download({ url: URL_, path: '/opt/tool.tar.gz', checksum: SHA });
  t.deepEqual(task.plan(probed(task, file(CONTENT))), { steps: [] });
  const plan = task.plan(probed(task, file('changed by hand')));
  t.is(plan.reason, 'sha256 differs from the checksum');
  t.is(plan.steps.length, 1);
});

test('without a checksum: an existing file is not fetched, its attributes are kept right', (t) => {
  const task = download({ url: URL_, path: '/opt/tool', mode: '0755' });
  t.deepEqual(task.files, [{ path: '/opt/tool', checksum: false }]);
  t.deepEqual(task.plan(probed(task, file('anything', 0o755))), { steps: [] });
  t.deepEqual(task.plan(probed(task, file('anything', 0o644))), {
    steps: [{ kind: 'run', command: 'chmod 00755 /opt/tool' }],
    reason: 'mode 0644 → 0755',
  });
});

test('from the controller: the engine fetches the URL and sends it on stdin', (t) => {
  const task = download({ url: URL_, path: '/opt/tool', from: 'controller', maxBytes: 1000 });
  t.is(task.probe, '', 'no curl needed on the host');
  const step = task.plan(probed(task, { type: 'absent' }, '')).steps[0] as RunStep;
  t.deepEqual(step.stdinDownload, { url: URL_, maxBytes: 1000 });
  t.is(step.stdin, undefined);
  t.is(step.description, 'fetch https://files.example.org/tool.tar.gz on the controller into /opt/tool');
});

test('errors: no curl on the host, a directory at the path, a missing owner', (t) => {
  const task = download({ url: URL_, path: '/opt/tool', owner: 'app' });
  t.regex(
    task.plan(probed(task, { type: 'absent' }, 'verdandi-download curl 0\nverdandi-account user 1')).error ??
      '',
    /curl is not installed on the host: install it first .* or fetch on the controller \(from: 'controller'\)/,
  );
  t.regex(
    task.plan(probed(task, { ...file(''), type: 'dir' } as FileState, 'verdandi-account user 1')).error ?? '',
    /\/opt\/tool is a directory; refusing/,
  );
  t.regex(
    task.plan(probed(task, { type: 'absent' }, 'verdandi-account user 0')).error ?? '',
    /user "app" does not exist on the host/,
  );
});

test('wrong options are errors naming the option', (t) => {
  const error = (make: () => unknown, message: RegExp) => t.throws(make, { instanceOf: UserError, message });
  error(() => download({ url: 'file:///etc/passwd', path: '/x' }), /url must be an http, https or ftp URL/);
  error(() => download({ url: URL_, path: 'x' }), /path must be an absolute path/);
  error(() => download({ url: URL_, path: '/x', checksum: 'md5:abc' }), /checksum must be a sha256/);
  error(
    () => download({ url: URL_, path: '/x', from: 'proxy' as 'host' }),
    /from must be host or controller/,
  );
  error(() => download({ url: URL_, path: '/x', maxBytes: 0 }), /maxBytes must be a positive integer/);
});

test('shownUrl drops the credentials; curlConfig escapes quotes and backslashes', (t) => {
  t.is(shownUrl('https://u:p@h/x?y=1'), 'https://h/x?y=1');
  t.is(shownUrl('https://h/x@y'), 'https://h/x@y');
  t.is(curlConfig('https://h/a"b\\c'), 'url = "https://h/a\\"b\\\\c"\n');
});

/** Runs a step's script in sh, with `stdin` as its standard input. */
function runScript(step: RunStep, stdin: string | Buffer): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', step.command]);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stderr }));
    child.stdin.end(stdin);
  });
}

async function serve(t: ExecutionContext, body: string): Promise<string> {
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/file`;
}

test('the host script fetches with curl, checks the checksum and installs atomically', async (t) => {
  const dir = scratchDir(t);
  const url = await serve(t, CONTENT);
  const path = join(dir, 'tool');
  const task = download({ url, path, checksum: SHA, mode: '0750' });
  const step = task.plan(probed(task, { type: 'absent' })).steps[0] as RunStep;
  const ok = await runScript(step, step.stdin as string);
  t.is(ok.code, 0, ok.stderr);
  t.is(readFileSync(path, 'utf8'), CONTENT);
  t.is(statSync(path).mode & 0o777, 0o750);

  writeFileSync(path, 'old');
  const wrong = download({ url, path, checksum: 'f'.repeat(64) });
  const refused = await runScript(
    wrong.plan(probed(wrong, file('old'))).steps[0] as RunStep,
    curlConfig(url),
  );
  t.is(refused.code, 1);
  t.regex(refused.stderr, new RegExp(`served a file whose sha256 is ${SHA}, not the checksum given`));
  t.is(readFileSync(path, 'utf8'), 'old', 'nothing installed');
  t.deepEqual(readdirSync(dir), ['tool'], 'no temporary file left');
});

test('the controller script installs only what arrived whole', async (t) => {
  const dir = scratchDir(t);
  const path = join(dir, 'tool');
  const task = download({ url: 'https://example.org/tool', path, from: 'controller' });
  const step = task.plan(probed(task, { type: 'absent' }, '')).steps[0] as RunStep;
  const cut = await runScript(step, `${CONTENT.length} ${SHA}\n${CONTENT.slice(0, 5)}`);
  t.is(cut.code, 66);
  t.regex(cut.stderr, /transfer incomplete: received 5 of \d+ bytes; nothing installed/);
  t.deepEqual(readdirSync(dir), []);
  const whole = await runScript(step, `${CONTENT.length} ${SHA}\n${CONTENT}`);
  t.is(whole.code, 0, whole.stderr);
  t.is(readFileSync(path, 'utf8'), CONTENT);
  t.is(statSync(path).mode & 0o777, 0o644);
});
