/**
 * Long commands on a host (a build, the pre-deploy checks, a migration, a restore) that Verdandi must be
 * able to stop with everything they started. Without a terminal, closing the SSH channel does not stop a
 * remote command: it would go on running after a Ctrl-C, beside the next deploy.
 *
 * `supervised` runs the command in a session of its own (`setsid`: its pid is its process group) and
 * records that pid in RUN_DIR (a tmpfs: a reboot clears it, so a recorded pid never names another
 * process after one). `stopScript` stops the group (TERM, then KILL after a grace period). After a
 * SIGKILL of Verdandi nothing can stop them at once: the next run that holds the host's lock stops every
 * recorded group (`stopLeftoversScript`), since none of them can belong to a live run.
 */
import { randomBytes } from 'node:crypto';
import type { Connection, ExecOptions, ExecResult } from '../connection/types.js';
import { quote, RawShell, raw } from '../util/shell.js';

export const RUN_DIR = '/run/verdandi/steps';
/**
 * The commands of provision and run (command, shell and every other run step). Apart from RUN_DIR: a
 * deploy taking over a dead holder's lock stops what RUN_DIR records, and must not stop a provision
 * running on the same host meanwhile.
 */
export const TASK_RUN_DIR = raw(
  `"$(if [ "$(id -u)" = 0 ]; then echo /run/verdandi/tasks; else echo "\${XDG_RUNTIME_DIR:-$HOME/.cache}/verdandi-tasks"; fi)"`,
);
/** Exit status of a supervised command stopped by its timeout (coreutils `timeout`). */
export const TIMED_OUT_EXIT = 124;
/** After a timeout's TERM, how long the group has before KILL (seconds). */
export const TIMEOUT_GRACE = 10;

/** A new id for one supervised command. */
export function newProcessId(): string {
  return randomBytes(6).toString('hex');
}

/**
 * Where the pid files live: a path, or a shell expression (the directory of the tasks depends on the
 * user the commands run as). Scripts set `vd_dir` from it first and name files from there.
 */
export type RunDir = string | RawShell;

function dirLine(dir: RunDir): string {
  return `vd_dir=${dir instanceof RawShell ? dir.text : quote(dir)}`;
}

function pidFile(id: string): string {
  return `"$vd_dir/${id}.pid"`;
}

/**
 * `command` in a process group of its own, its pid in the pid file while it runs; stdin reaches it
 * (a background command would otherwise read /dev/null), and the exit code is its own. The command is
 * written to a file by the shell's own `printf` (a builtin: no process, no argument list), so the
 * process list on the host shows `sh <RUN_DIR>/<id>.sh`, never the command.
 *
 * With `timeoutSeconds`, coreutils `timeout` leads the group: when the time is up it sends TERM to the
 * whole group, KILL TIMEOUT_GRACE seconds later to what is left, and exits TIMED_OUT_EXIT (124; 137
 * when KILL was needed).
 */
export function supervised(
  command: string,
  id: string,
  dir: RunDir = RUN_DIR,
  timeoutSeconds?: number,
): string {
  const file = pidFile(id);
  const script = `"$vd_dir/${id}.sh"`;
  return [
    dirLine(dir),
    `mkdir -p "$vd_dir" || exit 1`,
    `(umask 077 && printf '%s\n' ${quote(command)} > ${script}) || exit 1`,
    'exec 3<&0',
    `setsid ${timeoutSeconds ? `timeout -k ${TIMEOUT_GRACE} ${timeoutSeconds} ` : ''}sh ${script} <&3 3<&- &`,
    'pid=$!',
    'exec 3<&-',
    `echo "$pid" > ${file}`,
    'wait "$pid"; rc=$?',
    `rm -f ${file} ${script}`,
    'exit $rc',
  ].join('\n');
}

/** Shell function: TERM to the group, up to `grace` seconds, then KILL. */
const STOP_GROUP = (grace: number) =>
  [
    'vd_stop() {',
    '  kill -TERM "-$1" 2>/dev/null || return 0',
    `  i=0; while [ "$i" -lt ${grace * 10} ] && kill -0 "-$1" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done`,
    '  kill -KILL "-$1" 2>/dev/null; true',
    '}',
  ].join('\n');

/** Stops one supervised command with its whole process group. */
export function stopScript(id: string, grace = 10, dir: RunDir = RUN_DIR): string {
  const file = pidFile(id);
  return [
    dirLine(dir),
    STOP_GROUP(grace),
    // The wrapper writes the pid file right after starting the command: wait for it briefly.
    `i=0; while [ ! -s ${file} ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done`,
    `if [ -s ${file} ]; then vd_stop "$(cat ${file})"; rm -f ${file}; fi`,
  ].join('\n');
}

/** Stops every recorded group (run only by the holder of the host's lock); prints what it stopped. */
export function stopLeftoversScript(grace = 10, dir = RUN_DIR): string {
  return [
    STOP_GROUP(grace),
    `for f in ${quote(dir)}/*.pid; do`,
    '  [ -f "$f" ] || continue',
    '  p=$(cat "$f")',
    '  case "$p" in ""|*[!0-9]*) rm -f "$f"; continue ;; esac',
    '  s="$(dirname "$f")/$(basename "$f" .pid).sh"',
    '  if kill -0 "-$p" 2>/dev/null; then echo "$p $(head -c 120 "$s" 2>/dev/null | tr \'\\n\' \' \')"; vd_stop "$p"; fi',
    '  rm -f "$f" "$s"',
    'done',
    // A script whose wrapper died before recording its pid: nothing runs it any more.
    `rm -f ${quote(dir)}/*.sh`,
    'true',
  ].join('\n');
}

/**
 * Until the returned function is called: when `signal` aborts, the supervised command `id` is stopped
 * with its whole process group (a command of its own on the same connection).
 */
export function stopOnAbort(
  conn: Connection,
  id: string,
  signal: AbortSignal | undefined,
  dir: RunDir = RUN_DIR,
): () => void {
  if (!signal) return () => undefined;
  const stop = () => {
    conn.exec(stopScript(id, 10, dir)).catch(() => undefined);
  };
  if (signal.aborted) stop();
  else signal.addEventListener('abort', stop, { once: true });
  return () => signal.removeEventListener('abort', stop);
}

/**
 * Runs `script` on the host; when `signal` aborts meanwhile, the command is stopped with its whole
 * process group (the exec then ends with the command's exit code, usually 143) and `stopped` is true.
 */
export async function execStoppable(
  conn: Connection,
  script: string,
  opts: Omit<ExecOptions, 'signal'>,
  signal: AbortSignal | undefined,
  dir: RunDir = RUN_DIR,
): Promise<ExecResult & { stopped: boolean }> {
  if (!signal) return { ...(await conn.exec(script, opts)), stopped: false };
  const id = newProcessId();
  const release = stopOnAbort(conn, id, signal, dir);
  try {
    const res = await conn.exec(supervised(script, id, dir), opts);
    return { ...res, stopped: signal.aborted };
  } finally {
    release();
  }
}
