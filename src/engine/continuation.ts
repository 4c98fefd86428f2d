/**
 * The rest of a walk in the round trip of its last change, when nothing the rest looks at has moved.
 *
 * A plan is a pure function of what its probe printed. So after a change, the script that made it can
 * probe again, on the host, everything the rest of the walk would look at (the tasks left in the list,
 * the notified handlers' tasks) and compare what that prints with what the controller predicted from
 * the probes it planned with (probe-batch.ts `predictBatchOutput`): the host compares the sha256 of
 * both, the controller having put its own into the script.
 *
 * - Equal: those probes print what they printed when the controller planned, so its plans are the plans
 *   of now. The rest of the list was converged, so the script goes on: the records of the handlers that
 *   have nothing to do are cleared, the one handler step (if any) runs, its record is cleared with it,
 *   and the probes of what comes next (the roles after this one) are taken and printed.
 * - Different: the script prints the new probes and stops; the walk goes on from them as before.
 *
 * Nothing per-run is compared: the predicted frames carry the nonce the script uses, and what is hashed
 * is exactly what the plans read (each probe's output and exit code, the file states' bytes). A wrong
 * prediction can only cost the shortcut, never a plan made from a stale probe.
 *
 * A stop request reaches the host as a file (`stopContinuationScript`): a handler step not yet started
 * when it lands does not start (its record stays for the next run); one already running is stopped
 * with its process group like any run step (remote-process.ts). What the handler step prints is bounded
 * on the host (the last DEFAULT_TAIL_BYTES of its stdout and of its stderr, with their sizes).
 */
import { createHash } from 'node:crypto';
import { DEFAULT_TAIL_BYTES, keptTail } from '../connection/bounded-output.js';
import { type BatchResult, type ProbeBatch, parseProbeBatch } from './probe-batch.js';
import { TASK_RUN_DIR } from './remote-process.js';

export interface Continuation {
  nonce: string;
  /** The probes of what the rest of the walk looks at, taken again after the change. */
  verify: ProbeBatch;
  /** What `verify` prints when nothing moved (predictBatchOutput), byte for byte. */
  predicted: string;
  /** Shell run once the probes matched, before the handler step: records of handlers with nothing to do. */
  before: string;
  /** The one handler step, when a notified handler has one (the last task of the last of them). */
  step?: { script: string; okCodes: number[] };
  /** Shell run after the handler step succeeded: its record cleared. */
  after: string;
  /** Probes taken last (the units after this one), returned fresh. */
  next?: ProbeBatch;
}

export type ContinuationOutcome =
  /** Something moved: the probes as they are now (the walk goes on from them). */
  | { kind: 'moved'; results: Map<string, BatchResult> }
  /** No verdict came back (the shell died, no temporary file could be made): nothing is known. */
  | { kind: 'lost' }
  | {
      kind: 'same';
      /** What the clearing of records printed (clearPendingScript's lines). */
      cleared: string;
      /** The stop request reached the host before the handler step: it did not start. */
      stopped: boolean;
      /** The handler step, when it ran: its exit code and bounded output. */
      ran?: { code: number; stdout: string; stderr: string };
      /** The `next` probes, when the script got that far. */
      next?: Map<string, BatchResult>;
    };

const marker = (nonce: string, what: string) => `@@vd-${nonce}-${what}`;

/** Where the marker and stop files live: with the pid files of the run steps. */
const STOP_DIR = `vd_sd=${TASK_RUN_DIR.text}`;

/**
 * Shell run before the change's step: marks this script as running, so a stop request can leave its
 * file (stopContinuationScript); both files go when the script ends.
 */
export function continuationPrefix(nonce: string): string {
  return [
    STOP_DIR,
    `mkdir -p "$vd_sd" && : > "$vd_sd/${nonce}.run"`,
    `trap 'rm -f "$vd_sd/${nonce}.run" "$vd_sd/${nonce}.stop"' EXIT`,
  ].join('\n');
}

/** Asks the script `nonce`, while it runs, not to start its handler step. */
export function stopContinuationScript(nonce: string): string {
  return [STOP_DIR, `if [ -e "$vd_sd/${nonce}.run" ]; then : > "$vd_sd/${nonce}.stop"; fi`].join('\n');
}

/** The sha256 the host compares the re-probe's output with. */
export function predictedHash(predicted: string): string {
  return createHash('sha256').update(predicted, 'utf8').digest('hex');
}

/** The shell that follows the change's step (in the same script): see the top of this file. */
export function continuationScript(c: Continuation): string {
  const m = (what: string) => marker(c.nonce, what);
  const lines = [
    'vd_o=$(mktemp) || exit 0',
    `( ${c.verify.script}\n) > "$vd_o"`,
    `if [ "$(sha256sum < "$vd_o")" = '${predictedHash(c.predicted)}  -' ]; then`,
    'rm -f "$vd_o"',
    `printf '%s\\n' '${m('same')}'`,
    c.before,
  ];
  if (c.step) {
    lines.push(
      `if [ -e "$vd_sd/${c.nonce}.stop" ]; then printf '%s\\n' '${m('stopped')}'; exit 0; fi`,
      'vd_ho=$(mktemp) && vd_he=$(mktemp) || exit 0',
      `( ${c.step.script}\n) </dev/null >"$vd_ho" 2>"$vd_he"`,
      'vd_rc=$?',
      `printf '%s %s %s %s\\n' '${m('ran')}' "$vd_rc" "$(wc -c < "$vd_ho")" "$(wc -c < "$vd_he")"`,
      `tail -c ${DEFAULT_TAIL_BYTES} "$vd_ho"; printf '\\n%s\\n' '${m('stderr')}'`,
      `tail -c ${DEFAULT_TAIL_BYTES} "$vd_he"; printf '\\n%s\\n' '${m('done')}'`,
      'rm -f "$vd_ho" "$vd_he"',
      `case "$vd_rc" in ${c.step.okCodes.join('|')}) ;; *) exit 0 ;; esac`,
      c.after,
    );
  }
  if (c.next) lines.push(`printf '%s\\n' '${m('next')}'`, c.next.script);
  lines.push('else', `printf '%s\\n' '${m('moved')}'`, 'cat "$vd_o"; rm -f "$vd_o"', 'fi');
  return lines.filter(Boolean).join('\n');
}

/** What the bounded output the host printed stands for: its tail, after the omission line. */
function bounded(tail: string, size: number): string {
  const kept = Buffer.from(tail, 'utf8');
  return keptTail(kept, Math.max(0, size - kept.length));
}

/** Reads what continuationScript printed (the output after the change's step). */
export function parseContinuation(output: string, c: Continuation): ContinuationOutcome {
  const m = (what: string) => marker(c.nonce, what);
  const moved = output.indexOf(`${m('moved')}\n`);
  if (moved >= 0) {
    return { kind: 'moved', results: parseProbeBatch(output.slice(moved), c.verify) };
  }
  const same = output.indexOf(`${m('same')}\n`);
  if (same < 0) return { kind: 'lost' };
  let rest = output.slice(same + m('same').length + 1);
  let cleared = '';
  let ran: { code: number; stdout: string; stderr: string } | undefined;
  const stopLine = `${m('stopped')}\n`;
  const stopped = rest.includes(stopLine);
  rest = rest.replace(stopLine, '');
  const at = rest.indexOf(`${m('ran')} `);
  if (at >= 0) {
    cleared += rest.slice(0, at);
    const eol = rest.indexOf('\n', at);
    const [code, outSize, errSize] = rest
      .slice(at + m('ran').length + 1, eol)
      .split(' ')
      .map((n) => Number.parseInt(n, 10));
    const stderrAt = rest.indexOf(`\n${m('stderr')}\n`, eol);
    const doneAt = rest.indexOf(`\n${m('done')}\n`, stderrAt);
    if (stderrAt < 0 || doneAt < 0) return { kind: 'lost' };
    ran = {
      code,
      stdout: bounded(rest.slice(eol + 1, stderrAt), outSize),
      stderr: bounded(rest.slice(stderrAt + m('stderr').length + 2, doneAt), errSize),
    };
    rest = rest.slice(doneAt + m('done').length + 2);
  }
  const nextAt = rest.indexOf(`${m('next')}\n`);
  cleared += nextAt >= 0 ? rest.slice(0, nextAt) : rest;
  const next = c.next && nextAt >= 0 ? parseProbeBatch(rest.slice(nextAt), c.next) : undefined;
  return { kind: 'same', cleared, stopped, ran, next };
}
