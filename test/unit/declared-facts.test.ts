/**
 * Declared facts: each fact's probe run on this machine (LocalConnection) and parsed, all of a host's
 * facts in one round trip, parser errors naming the unit and the fact, secrets refused in a command
 * fact, the types tasks() receives; and onlyIfChanged in one list: decided at run time, "would run" in
 * check mode (across lists: only-if-changed.test.ts).
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import {
  commandFact,
  factsSpecProblem,
  getent,
  installedPackages,
  type PathStat,
  parsePackages,
  parseStat,
  stat,
} from '../../src/engine/declared-facts.js';
import { gatherAll } from '../../src/engine/facts.js';
import { onlyIfChangedSkip } from '../../src/engine/only-if-changed.js';
import { planUnit, roleUnit, type Unit } from '../../src/engine/plan.js';
import { flattenTasks, runTasks } from '../../src/engine/run.js';
import { parseDeclared } from '../../src/engine/run-plan.js';
import {
  definePlay,
  defineRole,
  type Fact,
  type FactsSpec,
  type FactValues,
  type Role,
  type Task,
  taskBase,
} from '../../src/engine/types.js';
import type { InventoryHost } from '../../src/inventory/types.js';
import { sha256Hex } from '../../src/tasks/probe-output.js';
import { UserError } from '../../src/util/errors.js';
import { clearSecrets, registerSecret } from '../../src/util/redact.js';
import { quote } from '../../src/util/shell.js';
import { localHost, quietReporter } from '../helpers/engine.js';

/** Gathers `facts` on this machine in one round trip and parses them as the plan does. */
async function gather<F extends FactsSpec>(facts: F): Promise<{ values: FactValues<F>; roundTrips: number }> {
  const conn = new LocalConnection('local');
  const unit = { label: 'role test', declaredFacts: facts } as unknown as Unit;
  const answer = await gatherAll(conn, { system: false, declared: [{ unit, facts }] });
  const values = parseDeclared(unit, 'local', answer.declared.get(unit)) as FactValues<F>;
  return { values, roundTrips: conn.roundTrips };
}

test('stat: a file with its checksum, a directory, a link, a missing path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-facts-'));
  writeFileSync(join(dir, 'f'), 'hello\n', { mode: 0o640 });
  mkdirSync(join(dir, 'd'));
  chmodSync(join(dir, 'd'), 0o2750);
  symlinkSync('f with space', join(dir, 'l'));
  const { values, roundTrips } = await gather({
    f: stat(join(dir, 'f'), { checksum: true }),
    d: stat(join(dir, 'd')),
    l: stat(join(dir, 'l')),
    none: stat(join(dir, 'none')),
  });
  t.is(roundTrips, 1, 'every fact of the host in one round trip');
  t.like(values.f, { exists: true, type: 'file', mode: '0640', size: 6, sha256: sha256Hex('hello\n') });
  t.like(values.d, { exists: true, type: 'dir', mode: '2750' });
  t.like(values.l, { exists: true, type: 'link', linkTarget: 'f with space' });
  t.is((values.f as { owner: string }).owner, (await new LocalConnection('l').exec('id -un')).stdout.trim());
  t.deepEqual(values.none, { exists: false });
  t.is((values.d as { sha256?: string }).sha256, undefined);
});

test('parseStat refuses what it cannot read', (t) => {
  t.throws(() => parseStat('garbage'), { message: /unexpected stat output/ });
  t.throws(() => parseStat('', 3), { message: /could not be read/ });
  t.throws(() => stat('relative/path'), { instanceOf: UserError, message: /absolute/ });
});

test('getent: an account, a group, and undefined for a missing one', async (t) => {
  const { values } = await gather({
    root: getent('passwd', 'root'),
    byId: getent('passwd', 0),
    group: getent('group', 'root'),
    missing: getent('passwd', 'vd-no-such-user'),
  });
  t.like(values.root, { name: 'root', uid: 0, gid: 0, home: '/root' });
  t.is(values.byId?.name, 'root');
  t.like(values.group, { name: 'root', gid: 0 });
  t.true(Array.isArray(values.group?.members));
  t.is(values.missing, undefined);
  t.throws(() => getent('passwd', 'a b'), { instanceOf: UserError });
});

test('installedPackages: installed versions, undefined for a missing or unknown package', async (t) => {
  const { values } = await gather({ pkgs: installedPackages(['dpkg', 'vd-no-such-package']) });
  t.regex(values.pkgs.dpkg ?? '', /^\d/);
  t.is(values.pkgs['vd-no-such-package'], undefined);
  t.deepEqual(parsePackages(['a', 'b', 'c', 'd:amd64'], 'a ii  1.2-3\nb rc  4.0\nd ii  2\n'), {
    a: '1.2-3',
    b: undefined,
    c: undefined,
    'd:amd64': '2',
  });
  t.throws(() => installedPackages(['Bad Name']), { instanceOf: UserError });
  t.throws(() => installedPackages([]), { instanceOf: UserError });
});

test('commandFact: parsed output, stderr on demand, exit codes, bounded output', async (t) => {
  const { values } = await gather({
    words: commandFact(['printf', '%s\\n', 'a b', 'c'], ({ stdout }) => stdout.trim().split('\n')),
    err: commandFact(['sh', '-c', 'echo version 1.2 >&2'], ({ stdout }) => stdout.trim(), { stderr: true }),
    code: commandFact(['sh', '-c', 'exit 3'], ({ exitCode }) => exitCode, { okCodes: [0, 3] }),
  });
  t.deepEqual(values.words, ['a b', 'c']);
  t.is(values.err, 'version 1.2');
  t.is(values.code, 3);

  const failing = gather({ nope: commandFact(['sh', '-c', 'exit 5'], () => 1) });
  await t.throwsAsync(failing, {
    instanceOf: UserError,
    message:
      /^role test( \(.*\))?, host local: fact nope \(command sh -c exit 5\): the command exited with 5/,
  });
  const big = gather({ big: commandFact(['head', '-c', '5000', '/dev/zero'], () => 1, { maxBytes: 100 }) });
  await t.throwsAsync(big, { message: /printed more than 100 bytes/ });
  const parser = gather({
    ver: commandFact(['echo', 'x'], () => {
      throw new Error('no version in the output');
    }),
  });
  await t.throwsAsync(parser, { message: /fact ver \(command echo x\): no version in the output/ });
  t.throws(() => commandFact([], () => 1), { instanceOf: UserError });
});

test('a command fact never carries a secret; a declaration holds only facts', (t) => {
  registerSecret('s3cr3t-value');
  try {
    const problem = factsSpecProblem({ v: commandFact(['cat', 's3cr3t-value'], () => 1) });
    t.regex(problem ?? '', /facts\.v \(command\): the command holds a secret/);
    t.false((problem ?? '').includes('s3cr3t-value'));
  } finally {
    clearSecrets();
  }
  t.regex(factsSpecProblem({ x: 'not a fact' }) ?? '', /facts\.x is not a fact/);
  t.is(factsSpecProblem({ ok: stat('/etc') }), undefined);
});

test('tasks() receives the declared facts fully typed', (t) => {
  const role = defineRole({
    name: 'typed',
    facts: {
      conf: stat('/etc/hosts'),
      deploy: getent('passwd', 'deploy'),
      pg: installedPackages(['postgresql-15']),
      n: commandFact(['nproc'], ({ stdout }) => Number(stdout)),
    },
    tasks: (_vars, _host, facts) => {
      const exists: boolean = facts.conf.exists;
      const home: string | undefined = facts.deploy?.home;
      const version: string | undefined = facts.pg['postgresql-15'];
      const cpus: number = facts.n;
      // @ts-expect-error: a package that was not declared
      facts.pg.nginx;
      // @ts-expect-error: a fact that was not declared
      facts.other;
      // @ts-expect-error: the account may be missing
      facts.deploy.home;
      // @ts-expect-error: a command fact's type is its parser's
      const wrong: string = facts.n;
      return [exists, home, version, cpus, wrong].some((v) => v === null) ? [] : [];
    },
  });
  const play = definePlay({
    hosts: 'all',
    facts: { f: stat('/etc/hosts') },
    tasks: (_host, facts) => {
      const s: PathStat = facts.f;
      // @ts-expect-error: a stat has no version
      facts.f.version;
      return s.exists ? [] : [];
    },
  });
  const fact: Fact<PathStat> = stat('/x');
  // Handlers get the same facts, typed the same way.
  defineRole({
    name: 'typed-handlers',
    facts: { deploy: getent('passwd', 'deploy') },
    tasks: () => [],
    handlers: {
      h: (_vars, _host, facts) => {
        const home: string | undefined = facts.deploy?.home;
        // @ts-expect-error: a fact that was not declared
        facts.other;
        return fileHas(`${home}/x`, 'x');
      },
    },
  });
  definePlay({
    hosts: 'all',
    facts: { f: stat('/etc/hosts') },
    handlers: {
      h: (_host, facts) => {
        const s: PathStat = facts.f;
        // @ts-expect-error: a stat has no version
        facts.f.version;
        return fileHas('/x', String(s.exists));
      },
    },
  });
  t.is(role.facts && 'conf' in role.facts ? role.facts.conf.label : '', 'stat /etc/hosts');
  t.is(play.facts?.f.kind, 'fact');
  t.is(fact.label, 'stat /x');
});

test('handlers are built with the declared facts tasks() gets, gathered once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-handler-facts-'));
  writeFileSync(join(dir, 'version'), '1.2.3\n');
  const facts = { version: commandFact(['cat', join(dir, 'version')], ({ stdout }) => stdout.trim()) };
  const role = defineRole({
    name: 'app',
    facts,
    tasks: (_vars, _host, f) => [fileHas(join(dir, 'tasks'), f.version, { notify: 'note' })],
    handlers: { note: (_vars, _host, f) => fileHas(join(dir, 'handler'), `handler saw ${f.version}`) },
  });
  const unit = roleUnit(
    { vars: new Map(), extraVars: {}, sensitive: new Map() },
    { name: 'local', address: 'localhost', vars: {}, groups: [] } as unknown as InventoryHost,
    role as unknown as Role,
  );
  const { values, roundTrips } = await gather(facts);
  t.is(roundTrips, 1, "the handler's facts are the unit's: no round trip of their own");
  const planned = await planUnit(unit, localHost, values);
  const [handlerTask] = flattenTasks([planned.handlers.note()]);
  t.is(handlerTask.name, `file ${join(dir, 'handler')}`);
  const conn = new LocalConnection('local');
  const q = quietReporter();
  const res = await runTasks(conn, localHost, planned.tasks, {
    check: false,
    diff: false,
    reporter: q.reporter,
    unit: 'app',
    handlers: planned.handlers,
  });
  t.like(res, { changed: 2, failed: 0 });
  t.is(readFileSync(join(dir, 'handler'), 'utf8'), 'handler saw 1.2.3');
});

// ---------------------------------------------------------------------------------------------------
// onlyIfChanged

/** A task that writes `content` to `path` when it differs. */
function fileHas(path: string, content: string, extra: Parameters<typeof taskBase>[2] = {}): Task {
  return {
    ...taskBase('test-file', `file ${path}`, extra),
    probe: `cat ${quote(path)} 2>/dev/null || printf '<missing>'`,
    plan: (p) =>
      p.stdout === content
        ? { steps: [] }
        : { steps: [{ kind: 'write', path, content }], reason: 'content differs' },
  };
}

/** A command that appends a line to `log` on every run it is not skipped. */
function appendTo(log: string, extra: Parameters<typeof taskBase>[2] = {}): Task {
  return {
    ...taskBase('test-command', `append ${log}`, extra),
    probe: '',
    alwaysRuns: true,
    plan: () => ({ steps: [{ kind: 'run', command: `echo ran >> ${quote(log)}` }] }),
  };
}

test('onlyIfChanged runs a task only after its task changed, decided at run time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-only-'));
  const conf = join(dir, 'conf');
  const log = join(dir, 'log');
  const write = fileHas(conf, 'v1');
  const other = fileHas(join(dir, 'other'), 'x');
  const follow = appendTo(log, { onlyIfChanged: [write, other] });
  const tasks = [write, other, follow];
  const conn = new LocalConnection('local');
  const run = (check = false) => {
    const q = quietReporter(check);
    return runTasks(conn, localHost, tasks, { check, diff: false, reporter: q.reporter }).then((r) => ({
      ...r,
      lines: q.lines.join(''),
    }));
  };
  const checked = await run(true);
  t.is(checked.changed, 3, 'check mode: the task would run after a change to come');
  t.regex(checked.lines, /append .*would run/);

  const first = await run();
  t.is(first.changed, 3);
  const second = await run();
  t.like(second, { changed: 0, skipped: 1 });
  t.regex(second.lines, /skipped.*append .*onlyIfChanged: none of "file .*conf", "file .*other" changed/);
  t.is((await new LocalConnection('l').exec(`cat ${quote(log)}`)).stdout, 'ran\n');

  writeFileSync(conf, 'drift');
  const third = await run();
  t.like(third, { changed: 2, skipped: 0 });
  t.is((await new LocalConnection('l').exec(`cat ${quote(log)}`)).stdout, 'ran\nran\n');
  const checkAfter = await run(true);
  t.like(checkAfter, { changed: 0, skipped: 1 });
});

test('onlyIfChangedSkip: skipped unless one of the tasks changed', (t) => {
  const a = fileHas('/a', 'a');
  const b = fileHas('/b', 'b');
  const c = fileHas('/c', 'c', { onlyIfChanged: a });
  const d = fileHas('/d', 'd', { onlyIfChanged: [a, b] });
  t.is(onlyIfChangedSkip(a, new Set()), undefined, 'no onlyIfChanged: never skipped');
  t.is(onlyIfChangedSkip(c, new Set()), 'onlyIfChanged: "file /a" changed');
  t.is(onlyIfChangedSkip(c, new Set([a])), undefined);
  t.is(onlyIfChangedSkip(d, new Set([b])), undefined);
  t.is(onlyIfChangedSkip(d, new Set([c])), 'onlyIfChanged: none of "file /a", "file /b" changed');
});
