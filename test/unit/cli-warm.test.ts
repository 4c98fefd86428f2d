/**
 * The warm engine of `--persist` (src/cli/warm/): which command lines a spare may serve, its stand-in
 * standard streams, and the built spare process itself (dist/bundle/spare.js) answering on its socket:
 * another build, a second client while it serves, `stop`, and its loading marker.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import {
  type Control,
  clearDeadMarkers,
  loadingSpares,
  SPARE_LOADING_PREFIX,
  WARM_FRAME,
  warmCommand,
} from '../../src/cli/warm/protocol.js';
import { RelayedInput, RelayedOutput } from '../../src/cli/warm/relayed-stdio.js';
import { FrameReader } from '../../src/connection/keeper-protocol.js';

const SPARE_JS = fileURLToPath(new URL('../../dist/bundle/spare.js', import.meta.url));

test('a spare serves run, provision, deploy, check and ping with --persist above 0, and nothing else', (t) => {
  const env = {};
  t.is(warmCommand(['run', 'staging', 'site.ts', '--persist', '60'], env), 'run');
  t.is(warmCommand(['--persist', '60', 'provision', 'staging'], env), 'provision');
  t.is(warmCommand(['--persist=60', 'deploy', 'staging'], env), 'deploy');
  t.is(warmCommand(['--ssh-config', 'cfg', 'check', 'staging'], { VERDANDI_PERSIST: '5' }), 'check');
  t.is(warmCommand(['ping', 'staging'], { VERDANDI_PERSIST: '5' }), 'ping');
  // Off: no --persist, 0, a bad value (the command without a spare says what is wrong).
  t.is(warmCommand(['run', 'staging', 'site.ts'], env), undefined);
  t.is(warmCommand(['run', 'staging', 'site.ts', '--persist', '0'], env), undefined);
  t.is(warmCommand(['run', 'staging', 'site.ts', '--persist', 'soon'], env), undefined);
  t.is(warmCommand(['run', 'staging', 'site.ts', '--persist', '60', '--persist', '0'], env), undefined);
  t.is(warmCommand(['provision', 'staging'], { VERDANDI_PERSIST: '60', VERDANDI_WARM: 'off' }), undefined);
  // Commands that hand the terminal to a program, or read standard input as data.
  for (const command of [
    'console',
    'db',
    'exec',
    'secrets',
    'logs',
    'init',
    'backup',
    'restore',
    'disconnect',
  ])
    t.is(warmCommand([command, 'staging', '--persist', '60'], env), undefined, command);
  // What needs a process of its own: help, version, a password script, Node options.
  t.is(warmCommand(['run', '--help', '--persist', '60'], env), undefined);
  t.is(warmCommand(['--version', '--persist', '60'], env), undefined);
  t.is(
    warmCommand(['provision', 'staging', '--persist', '60', '--vault-password-file', 'p.sh'], env),
    undefined,
  );
  t.is(
    warmCommand(['provision', 'staging', '--persist', '60', '--ansible-vault-password-file=p'], env),
    undefined,
  );
  t.is(
    warmCommand(['provision', 'staging', '--persist', '60'], { ANSIBLE_VAULT_PASSWORD_FILE: 'p' }),
    undefined,
  );
  t.is(warmCommand(['provision', 'staging', '--persist', '60'], { NODE_OPTIONS: '--inspect' }), undefined);
  t.is(warmCommand(['provision', 'staging', '--persist', '60'], env, ['--cpu-prof']), undefined);
  t.is(warmCommand(['--', 'run', '--persist', '60'], env), undefined);
});

test('a relayed terminal output has the size, the cursor methods and the colours of the user terminal', (t) => {
  const sent: string[] = [];
  const out = new RelayedOutput((chunk) => sent.push(chunk.toString()), {
    tty: true,
    columns: 100,
    rows: 30,
  });
  t.true(out.isTTY);
  t.deepEqual((out as unknown as { getWindowSize(): number[] }).getWindowSize(), [100, 30]);
  const terminal = out as unknown as NodeJS.WriteStream;
  terminal.cursorTo(0);
  terminal.clearLine(0);
  t.deepEqual(sent, ['\u001b[1G', '\u001b[2K']);
  t.is(terminal.getColorDepth({ TERM: 'xterm-256color' }), 8);
  t.is(terminal.getColorDepth({ TERM: 'xterm-256color', NO_COLOR: '1' }), 1);
  let resized = 0;
  out.on('resize', () => resized++);
  out.resized(120, 40);
  t.is(resized, 1);
  t.is(out.columns, 120);
  out.write('text');
  out.write('');
  t.deepEqual(sent.slice(2), ['text'], 'an empty write sends nothing');

  const plain = new RelayedOutput(() => undefined, { tty: false });
  t.is(plain.isTTY, undefined);
  t.is((plain as unknown as { cursorTo?: unknown }).cursorTo, undefined);
});

test('a relayed input asks for the user input when read, stops asking when paused, relays raw mode', async (t) => {
  const controls: Control[] = [];
  const input = new RelayedInput((c) => controls.push(c), { tty: true });
  t.deepEqual(controls, [], 'nothing asked before a read');
  const got: string[] = [];
  input.on('data', (d: Buffer) => got.push(d.toString()));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(controls, [{ stdin: 'on' }]);
  input.setRawMode(true);
  t.true(input.isRaw);
  input.received(Buffer.from('secret\r'));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(got, ['secret\r']);
  input.pause();
  t.deepEqual(controls, [{ stdin: 'on' }, { rawMode: true }, { stdin: 'off' }]);

  const piped = new RelayedInput(() => undefined, { tty: false });
  t.throws(() => piped.setRawMode(true), { message: /not a terminal/ });
  const chunks: string[] = [];
  piped.on('data', (d: Buffer) => chunks.push(d.toString()));
  const ended = new Promise((r) => piped.on('end', r));
  piped.received(Buffer.from('a'));
  piped.received(null);
  await ended;
  t.deepEqual(chunks, ['a']);
});

test('loading markers: live ones are found, dead ones removed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-warm-markers-'));
  try {
    writeFileSync(join(dir, `${SPARE_LOADING_PREFIX}${process.pid}`), '');
    writeFileSync(join(dir, `${SPARE_LOADING_PREFIX}999999999`), '');
    writeFileSync(join(dir, `${SPARE_LOADING_PREFIX}nonsense`), '');
    t.deepEqual(loadingSpares(dir), [process.pid]);
    clearDeadMarkers(dir);
    t.deepEqual(readdirSync(dir), [`${SPARE_LOADING_PREFIX}${process.pid}`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Sends `hello` to the spare on `socket` and resolves with the first control it answers. */
function ask(socket: string, hello: unknown): Promise<Control | undefined> {
  return new Promise((resolve) => {
    const conn = connect(socket);
    const reader = new FrameReader((type, payload) => {
      if (type === WARM_FRAME.control) {
        resolve(JSON.parse(payload.toString()) as Control);
        conn.destroy();
      }
    });
    conn.on('data', (chunk: Buffer) => reader.push(chunk));
    conn.once('error', () => resolve(undefined));
    conn.once('close', () => resolve(undefined));
    conn.write(`${JSON.stringify(hello)}\n`);
  });
}

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts the built spare on a directory of its own; resolves once it serves. */
async function startSpare(idleSeconds = 60) {
  const runtime = mkdtempSync(join(tmpdir(), 'vd-warm-spare-'));
  const dir = join(runtime, 'verdandi');
  mkdirSync(dir, { mode: 0o700 });
  const child = spawn(process.execPath, [SPARE_JS, dir, String(idleSeconds)], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const socket = join(dir, 'spare.sock');
  await until(() => existsSync(socket), 30_000, 'the spare serves');
  return { dir, socket, child, exited, cleanUp: () => rmSync(runtime, { recursive: true, force: true }) };
}

test.serial(
  'the built spare: its socket is 0600; another build is refused and the spare exits',
  async (t) => {
    t.true(existsSync(SPARE_JS), 'dist/bundle/spare.js is missing: run npm run build');
    const spare = await startSpare();
    try {
      t.is(statSync(spare.socket).mode & 0o777, 0o600);
      t.deepEqual(
        readdirSync(spare.dir).filter((name) => name.startsWith(SPARE_LOADING_PREFIX)),
        [],
        'its loading marker is gone once it serves',
      );
      const answer = await ask(spare.socket, { op: 'run', build: 'another build', argv: [], env: {} });
      t.deepEqual(answer, { refused: 'build' });
      t.is(await spare.exited, 0);
      t.false(existsSync(spare.socket), 'its socket is removed');
    } finally {
      spare.child.kill('SIGKILL');
      spare.cleanUp();
    }
  },
);

test.serial('the built spare: stop ends it; its idle timeout ends it', async (t) => {
  const stopped = await startSpare();
  try {
    t.deepEqual(await ask(stopped.socket, { op: 'stop' }), { refused: 'stopped' });
    t.is(await stopped.exited, 0);
    t.false(existsSync(stopped.socket));
  } finally {
    stopped.child.kill('SIGKILL');
    stopped.cleanUp();
  }
  const idle = await startSpare(1);
  try {
    t.is(await idle.exited, 0);
    t.false(existsSync(idle.socket));
  } finally {
    idle.child.kill('SIGKILL');
    idle.cleanUp();
  }
});

test.serial('the built spare: its socket removed (its directory deleted), it exits', async (t) => {
  const spare = await startSpare();
  try {
    rmSync(spare.socket);
    t.is(await spare.exited, 0);
  } finally {
    spare.child.kill('SIGKILL');
    spare.cleanUp();
  }
});
