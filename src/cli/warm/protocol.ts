/**
 * The warm engine of `--persist`: what the command line and a spare engine say to each other, and which
 * command lines a spare may serve.
 *
 * A spare (spare.ts) is a Node process that has loaded the command line and the engine, and waits on
 * a unix socket of the user's (the connection keeper's private directory) for one command line. The
 * `verdandi` process the user started (client.ts) hands it its arguments, environment, working
 * directory and umask, and relays its terminal: the spare's standard output and error come back in
 * frames and are written by the user's process, its standard input goes the other way when the spare
 * reads it, and signals are passed on. The spare runs that one command and exits: every run has a
 * process of its own, as without a spare, only started before it was needed.
 *
 * The exchange, on one unix connection opened by the client:
 *   client → spare  one JSON line, a Hello: {"op":"run", ...} or {"op":"stop"} (`verdandi disconnect`)
 *   spare → client  `control` {"accepted":pid} or {"refused":why}; then `stdout`/`stderr` frames, `control`
 *                   frames ({"rawMode":bool}, {"stdin":"on"|"off"}), and last `control` {"exit":code}
 *   client → spare  `stdin` frames and one `stdinEnd`, `control` {"resize":[columns,rows]}
 * Frames are the connection keeper's (a type byte, a 4-byte big-endian length, the payload).
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WARM_FRAME = { stdout: 1, stderr: 2, stdin: 4, stdinEnd: 5, control: 6 } as const;

/** The socket a ready spare serves, in the keeper's directory (connection/keeper-socket.ts). */
export const SPARE_SOCKET = 'spare.sock';

/** A spare still loading leaves this file (its pid inside) in that directory until it serves. */
export const SPARE_LOADING_PREFIX = 'spare-loading-';

/** The commands a spare serves: those that run on hosts and never hand the terminal to a program. */
export const WARM_COMMANDS: ReadonlySet<string> = new Set(['run', 'provision', 'deploy', 'check', 'ping']);

/** What a terminal-or-not standard stream looks like on the user's side. */
export interface StreamShape {
  tty: boolean;
  columns?: number;
  rows?: number;
}

export interface RunHello {
  op: 'run';
  /** The build the client is (buildIdentity): a spare of another build refuses, and exits. */
  build: string;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  umask: number;
  stdin: StreamShape;
  stdout: StreamShape;
  stderr: StreamShape;
}

export type Hello = RunHello | { op: 'stop' };

export type Control =
  | { accepted: number }
  | { refused: 'build' | 'busy' | 'stopped' }
  | { exit: number }
  | { rawMode: boolean }
  | { stdin: 'on' | 'off' }
  | { resize: [number, number] };

/** Options of the program itself that take a value (the command is the first word not one of them). */
const GLOBAL_WITH_VALUE = new Set(['--persist', '--ssh-config']);

/** `--persist N` or `--persist=N` on the command line (the last one counts, as commander does). */
function persistArgument(args: readonly string[]): string | undefined {
  let value: string | undefined;
  args.forEach((arg, i) => {
    if (arg === '--persist') value = args[i + 1];
    else if (arg.startsWith('--persist=')) value = arg.slice('--persist='.length);
  });
  return value;
}

/**
 * May this command line be served by a spare? Only with `--persist` (or $VERDANDI_PERSIST) above 0,
 * for the commands of WARM_COMMANDS, and when nothing about it needs a process of its own:
 * - a vault password file (`--vault-password-file`, `--ansible-vault-password-file`,
 *   $ANSIBLE_VAULT_PASSWORD_FILE) may be a script, started with the user's terminal as its own;
 * - Node options (`node --inspect ...`, $NODE_OPTIONS) are the spare's from its start, not the user's;
 * - `$VERDANDI_WARM=off` turns the warm engine off (a benchmark's A/B, a doubt).
 * Anything the command line gets wrong (a bad `--persist`) is left to the cold run, which says so.
 */
export function warmCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  execArgv: readonly string[] = [],
): string | undefined {
  if (env.VERDANDI_WARM === 'off' || execArgv.length > 0 || (env.NODE_OPTIONS ?? '') !== '') return undefined;
  if ((env.ANSIBLE_VAULT_PASSWORD_FILE ?? '') !== '') return undefined;
  const persist = persistArgument(args) ?? env.VERDANDI_PERSIST;
  if (persist === undefined || !/^\d+$/.test(persist) || Number(persist) === 0) return undefined;
  let command: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') return undefined;
    if (GLOBAL_WITH_VALUE.has(arg)) i++;
    else if (!arg.startsWith('-')) {
      command = arg;
      break;
    }
  }
  if (command === undefined || !WARM_COMMANDS.has(command)) return undefined;
  const asksSelf = (arg: string) =>
    arg === '-h' || arg === '--help' || arg === '-V' || arg === '--version' || arg.includes('password-file');
  if (args.some(asksSelf)) return undefined;
  return command;
}

/**
 * The build this process runs: Node's version and binary, and the bundle's entry file (its size and
 * time). A spare started before an upgrade or a rebuild is of another build: it refuses and exits.
 */
export function buildIdentity(): string {
  const entry = fileURLToPath(new URL('./main.js', import.meta.url));
  let stamp = 'none';
  try {
    const st = statSync(entry);
    stamp = `${st.size}:${st.mtimeMs}`;
  } catch {
    // Not a build (the sources through tsx): no spare is started for it.
  }
  return `${process.version} ${process.execPath} ${entry} ${stamp}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids of the spares loading in `dir` (a marker whose process is alive). */
export function loadingSpares(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.startsWith(SPARE_LOADING_PREFIX))
    .map((name) => Number(name.slice(SPARE_LOADING_PREFIX.length)))
    .filter((pid) => Number.isInteger(pid) && pid > 0 && alive(pid));
}

/** Is a spare loading in `dir`? */
export function spareLoading(dir: string): boolean {
  return loadingSpares(dir).length > 0;
}

/** Removes the markers of spares that died loading (stopped by `verdandi disconnect`, killed). */
export function clearDeadMarkers(dir: string): void {
  const live = new Set(loadingSpares(dir));
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(SPARE_LOADING_PREFIX)) continue;
    if (!live.has(Number(name.slice(SPARE_LOADING_PREFIX.length)))) rmSync(join(dir, name), { force: true });
  }
}
