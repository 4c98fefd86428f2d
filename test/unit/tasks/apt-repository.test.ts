import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import test from 'ava';
import * as openpgp from 'openpgp';
import type { FileState, ProbeResult, Task } from '../../../src/engine/types.js';
import {
  type AptRepositorySpec,
  aptRepository,
  dearmor,
  keyFetchStep,
  keyFromControllerStep,
  STRICT_APT_UPDATE,
} from '../../../src/tasks/apt-repository.js';
import { sha256Hex } from '../../../src/tasks/probe-output.js';
import { UserError } from '../../../src/util/errors.js';
import { scratchDir } from './local-host.js';

const SOURCES = '/etc/apt/sources.list.d/example.sources';
const KEY = '/etc/apt/keyrings/example.gpg';
const CHECKSUM = 'a'.repeat(64);

/** A real public key, armored and binary. */
const keys = (async () => {
  const { publicKey } = await openpgp.generateKey({ userIDs: [{ name: 'repo', email: 'repo@example.org' }] });
  const binary = Buffer.from((await openpgp.readKey({ armoredKey: publicKey })).write());
  return { armored: publicKey, binary };
})();

const file = (content: string | Buffer, mode = 0o644): FileState => ({
  type: 'file',
  uid: 0,
  user: 'root',
  gid: 0,
  group: 'root',
  mode,
  sha256: sha256Hex(content),
});
const absentFile: FileState = { type: 'absent' };

function probed(sources: FileState, key: FileState, stdout = ''): ProbeResult {
  return {
    stdout,
    exitCode: 0,
    files: new Map([
      [SOURCES, sources],
      [KEY, key],
    ]),
  };
}

/** The .sources content the task writes (from its first plan on a fresh host). */
function written(task: Task): string {
  const step = task.plan(probed(absentFile, absentFile)).steps.find((s) => s.kind === 'write');
  if (step?.kind !== 'write') throw new Error('no write step');
  return step.content;
}

const urlRepo = () =>
  aptRepository({
    repository: 'example',
    uris: 'https://deb.example.org/debian',
    suites: 'bookworm',
    components: ['main', 'contrib'],
    key: { url: 'https://deb.example.org/key.asc', checksum: `sha256:${CHECKSUM.toUpperCase()}` },
  });

test('a repository whose key the host fetches: fetch, .sources written, lists refreshed', (t) => {
  const task = urlRepo();
  t.is(task.name, 'aptRepository example');
  t.deepEqual(task.files, [
    { path: SOURCES, checksum: true },
    { path: KEY, checksum: true },
  ]);
  const plan = task.plan(probed(absentFile, absentFile, 'verdandi-apt-repository curl 1'));
  t.is(plan.error, undefined);
  t.deepEqual(
    plan.steps.map((s) => (s.kind === 'write' ? `write ${s.path}` : s.description)),
    [`fetch https://deb.example.org/key.asc into ${KEY}`, `write ${SOURCES}`, 'apt-get update'],
  );
  t.is(plan.steps[2], STRICT_APT_UPDATE);
  t.is(
    plan.diff?.after,
    [
      '# Managed by verdandi (aptRepository): changes made here are overwritten.',
      `# Signed-By key fetched from https://deb.example.org/key.asc (sha256 ${CHECKSUM})`,
      'Types: deb',
      'URIs: https://deb.example.org/debian',
      'Suites: bookworm',
      'Components: main contrib',
      `Signed-By: ${KEY}`,
      '',
    ].join('\n'),
  );
  t.is(plan.reason, `${SOURCES} is missing, key is missing`);
});

test('converged: the same .sources and a key present need nothing', (t) => {
  const task = urlRepo();
  t.deepEqual(task.plan(probed(file(written(task)), file('key'), 'verdandi-apt-repository curl 1')), {
    steps: [],
  });
});

test('a new checksum changes the .sources file, so the key is fetched again', (t) => {
  const task = urlRepo();
  const old = written(task).replace(CHECKSUM, 'b'.repeat(64));
  const plan = task.plan(probed(file(old), file('key'), 'verdandi-apt-repository curl 1'));
  t.is(plan.steps.length, 3);
  t.regex(plan.reason ?? '', /differs, key is fetched again/);
});

test('a deleted key alone is fetched again, and the lists refreshed', (t) => {
  const task = urlRepo();
  const plan = task.plan(probed(file(written(task)), absentFile, 'verdandi-apt-repository curl 1'));
  t.deepEqual(
    plan.steps.map((s) => s.kind === 'run' && s.description),
    [`fetch https://deb.example.org/key.asc into ${KEY}`, 'apt-get update'],
  );
  t.is(plan.diff, undefined);
});

test('without curl on the host, a key to fetch is an error naming it', (t) => {
  const plan = urlRepo().plan(probed(absentFile, absentFile, 'verdandi-apt-repository curl 0'));
  t.deepEqual(plan.steps, []);
  t.is(
    plan.error,
    'aptRepository example: curl is not installed on the host, and it fetches the key from https://deb.example.org/key.asc',
  );
});

test('an armored key file on the controller is dearmored: the host gets the binary key on stdin', async (t) => {
  const { armored, binary } = await keys;
  const dir = scratchDir(t);
  writeFileSync(join(dir, 'key.asc'), armored);
  t.deepEqual(dearmor(armored), binary);
  const task = aptRepository({
    repository: 'example',
    uris: ['http://127.0.0.1:8080/'],
    suites: './',
    key: { src: join(dir, 'key.asc') },
  });
  const fresh = task.plan(probed(absentFile, absentFile));
  t.is(fresh.steps[0].kind, 'run');
  t.is(fresh.steps[0].kind === 'run' && fresh.steps[0].stdin, binary.toString('base64'));
  t.false(fresh.steps[0].kind === 'run' && fresh.steps[0].command.includes(binary.toString('base64')));
  t.is(task.probe, '', 'nothing to probe besides the two files');
  t.notRegex(written(task), /Components:/);

  // Converged with the binary key; a key changed by hand is rewritten.
  t.deepEqual(task.plan(probed(file(written(task)), file(binary))), { steps: [] });
  const drift = task.plan(probed(file(written(task)), file('other key')));
  t.is(drift.reason, 'key differs');
  t.deepEqual(
    drift.steps.map((s) => s.kind === 'run' && s.description),
    [`write ${KEY}`, 'apt-get update'],
  );
  // Only the mode differs: chmod, and the lists need no refresh.
  const mode = task.plan(probed(file(written(task), 0o600), file(binary)));
  t.deepEqual(mode.steps, [{ kind: 'run', command: `chmod 00644 ${SOURCES}` }]);
});

test('a binary key file on the controller is used as it is', async (t) => {
  const { binary } = await keys;
  const dir = scratchDir(t);
  writeFileSync(join(dir, 'key.gpg'), binary);
  const task = aptRepository({
    repository: 'example',
    uris: 'http://x/',
    suites: './',
    key: { src: join(dir, 'key.gpg') },
  });
  t.deepEqual(task.plan(probed(file(written(task)), file(binary))), { steps: [] });
});

test('state absent removes the .sources file and the key, then refreshes the lists', (t) => {
  const task = aptRepository({ repository: 'example', state: 'absent' });
  t.deepEqual(task.plan(probed(file('x'), file('k'))).steps, [
    { kind: 'run', command: `rm -f -- ${SOURCES} ${KEY}` },
    STRICT_APT_UPDATE,
  ]);
  t.deepEqual(task.plan(probed(absentFile, absentFile)), { steps: [] });
});

test('a directory where the .sources file goes is an error', (t) => {
  const plan = urlRepo().plan(probed({ ...file(''), type: 'dir' } as FileState, absentFile));
  t.regex(plan.error ?? '', /example\.sources is a directory/);
});

const optionError = (
  t: { throws: (f: () => unknown, e: object) => unknown },
  make: () => unknown,
  message: RegExp,
) => t.throws(make, { instanceOf: UserError, message });

test('wrong options are errors naming the option', async (t) => {
  optionError(
    t,
    () => aptRepository({ repository: 'Bad Name', state: 'absent' }),
    /repository must be a file name/,
  );
  optionError(
    t,
    () => aptRepository({ repository: 'x', uris: 'https://a/', suites: 'bookworm' }),
    /components is required unless the suite is a path ending in \//,
  );
  optionError(
    t,
    () => aptRepository({ repository: 'x', uris: 'https://a/', suites: './', components: 'main' }),
    /a flat repository \(suite \.\/\) has no components/,
  );
  optionError(t, () => aptRepository({ repository: 'x', suites: './' }), /uris is required/);
  optionError(
    t,
    () =>
      aptRepository({
        repository: 'x',
        uris: 'https://a/',
        suites: './',
        key: { url: 'https://a/k', checksum: 'abc' },
      }),
    /key\.checksum must be a sha256 \(64 hex digits\), got "abc"/,
  );
  optionError(
    t,
    () =>
      aptRepository({
        repository: 'x',
        uris: 'https://a/',
        suites: './',
        key: { url: 'https://a/k' } as never,
      }),
    /key\.checksum is required with key\.url/,
  );
  const dir = scratchDir(t);
  writeFileSync(join(dir, 'notakey'), 'hello');
  optionError(
    t,
    () =>
      aptRepository({
        repository: 'x',
        uris: 'https://a/',
        suites: './',
        key: { src: join(dir, 'notakey') },
      }),
    /notakey is not an OpenPGP public key/,
  );
  const { privateKey } = await openpgp.generateKey({ userIDs: [{ name: 'secret' }] });
  writeFileSync(join(dir, 'secret.asc'), privateKey);
  optionError(
    t,
    () =>
      aptRepository({
        repository: 'x',
        uris: 'https://a/',
        suites: './',
        key: { src: join(dir, 'secret.asc') },
      }),
    /secret\.asc holds a secret key/,
  );
});

/** Runs the fetch step's shell against a local server, with the keyring in a scratch directory. */
async function fetchLocally(t: Parameters<typeof scratchDir>[0], body: string | Buffer, checksum: string) {
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/key`;
  const keyPath = join(scratchDir(t), 'keyrings', 'example.gpg');
  const spec = { keyPath } as AptRepositorySpec;
  const step = keyFetchStep(spec, { url, checksum });
  const result = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
    // Asynchronous: the server answers from this process.
    const child = spawn('sh', ['-c', step.command]);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (status: number | null) => resolve({ status, stderr }));
  });
  return { ...result, keyPath, spec };
}

test('the host dearmors a fetched armored key to the same bytes, after checking its checksum', async (t) => {
  const { armored, binary } = await keys;
  const fetched = await fetchLocally(t, armored, sha256Hex(armored));
  t.is(fetched.status, 0, fetched.stderr);
  t.deepEqual(readFileSync(fetched.keyPath), binary);
  t.deepEqual(readdirSync(dirname(fetched.keyPath)), ['example.gpg'], 'no temporary file left');
  t.is(spawnSync('stat', ['-c', '%a', fetched.keyPath], { encoding: 'utf8' }).stdout.trim(), '644');

  const wrong = await fetchLocally(t, armored, CHECKSUM);
  t.is(wrong.status, 1);
  t.regex(
    wrong.stderr,
    new RegExp(
      `has sha256 ${sha256Hex(armored)}, not the checksum given \\(${CHECKSUM}\\); nothing installed`,
    ),
  );
  t.throws(() => readFileSync(wrong.keyPath));

  const html = '<html>not found</html>';
  const notKey = await fetchLocally(t, html, sha256Hex(html));
  t.is(notKey.status, 1);
  t.regex(notKey.stderr, /is not an OpenPGP public key/);
});

test('a binary key from the controller is written whole from stdin', async (t) => {
  const { binary } = await keys;
  const keyPath = join(scratchDir(t), 'keyrings', 'example.gpg');
  const step = keyFromControllerStep({ keyPath } as AptRepositorySpec, binary);
  const result = spawnSync('sh', ['-c', step.command], { input: step.stdin, encoding: 'utf8' });
  t.is(result.status, 0, result.stderr);
  t.deepEqual(readFileSync(keyPath), binary);
});
