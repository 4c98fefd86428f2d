/**
 * Turns steps into shell scripts. Pure functions: the engine sends their output to the host.
 */
import { createHash } from 'node:crypto';
import { quote, words } from '../util/shell.js';
import type { RunStep, Step, WriteStep } from './types.js';

/** Exit status of a write whose content did not arrive whole (nothing was installed). */
export const TRANSFER_INCOMPLETE_EXIT = 66;
/** Exit status of a write whose content failed the task's `validate` command (nothing was installed). */
export const VALIDATION_FAILED_EXIT = 65;
/** Exit status of a step that could not record its notified handlers (nothing was changed). */
export const RECORD_FAILED_EXIT = 71;

/**
 * Script that writes a file atomically from stdin. See WriteStep in types.ts for the contract.
 *
 * Whole or nothing: the script knows the content's size and sha256, reads exactly that many bytes into
 * the temporary file and installs nothing unless both match: the end of input (a lost connection, a
 * killed controller) never looks like success. `validate` runs only on complete content.
 * `beforeInstall` (the pending-handler record) runs after validation and before the rename, so a host
 * that has the new file also has the record.
 */
export function writeScript(step: WriteStep, beforeInstall = ''): string {
  const path = quote(step.path);
  const size = Buffer.byteLength(step.content, 'utf8');
  const sha256 = createHash('sha256').update(step.content, 'utf8').digest('hex');
  const lines = [
    'set -e',
    `dir=$(dirname ${path})`,
    // mktemp creates the file 0600: content is never world-readable, even for a moment.
    `tmp=$(mktemp "$dir/.verdandi-XXXXXX")`,
    // dash runs an EXIT trap on `exit`, not when a signal ends it: both remove the temporary file.
    `trap 'rm -f "$tmp"' EXIT`,
    `trap 'rm -f "$tmp"; exit 129' HUP INT TERM PIPE`,
    `head -c ${size} > "$tmp"`,
    `got=$(wc -c < "$tmp")`,
    // The temporary file goes first: printing to a closed connection may end the shell.
    `if [ "$got" -ne ${size} ]; then rm -f "$tmp"; echo "transfer incomplete: received $got of ${size} bytes; nothing installed" >&2; exit ${TRANSFER_INCOMPLETE_EXIT}; fi`,
    `if [ "$(sha256sum < "$tmp" | cut -d' ' -f1)" != ${sha256} ]; then rm -f "$tmp"; echo "transfer incomplete: content differs from what was sent (sha256); nothing installed" >&2; exit ${TRANSFER_INCOMPLETE_EXIT}; fi`,
  ];
  // Keep the current owner/mode of an existing file unless the task sets them.
  if (step.owner || step.group) {
    lines.push(`chown ${quote(`${step.owner ?? ''}${step.group ? `:${step.group}` : ''}`)} "$tmp"`);
  } else {
    lines.push(`if [ -e ${path} ]; then chown --reference=${path} "$tmp"; fi`);
  }
  if (step.mode) lines.push(`chmod ${quote(step.mode)} "$tmp"`);
  else lines.push(`if [ -e ${path} ]; then chmod --reference=${path} "$tmp"; else chmod 0644 "$tmp"; fi`);
  if (step.validate) {
    const validate = step.validate.split('%s').join('"$tmp"');
    lines.push(
      `if ! out=$( ${validate} 2>&1 ); then printf '%s\\n' "validation failed: $out" >&2; exit ${VALIDATION_FAILED_EXIT}; fi`,
    );
  }
  if (beforeInstall) lines.push(mustSucceed(beforeInstall, 'rm -f "$tmp"; '));
  lines.push(`mv -f "$tmp" ${path}`, 'trap - EXIT HUP INT TERM PIPE');
  return lines.join('\n');
}

/**
 * Runs `record` (the pending-handler record) or ends the script with RECORD_FAILED_EXIT: the change
 * after it must not happen without its record. (`set -e` would not stop at a failure inside an `&&` list.)
 */
function mustSucceed(record: string, cleanup = ''): string {
  return `{ ${record}\n} || { ${cleanup}echo "verdandi: could not record the notified handlers in ${STATE_DIR}" >&2; exit ${RECORD_FAILED_EXIT}; }`;
}

export interface StepScript {
  script: string;
  stdin?: string;
  okCodes: number[];
  /** What to show the user (never the content). */
  display: string;
}

/**
 * The shell of one step. `beforeChange` (the pending-handler record of a notifying task) runs in the
 * same script just before the change: before the rename of a write (after validation), before the
 * command of a run step. When it fails, the step changes nothing.
 */
export function stepScript(step: Step, beforeChange = ''): StepScript {
  if (step.kind === 'write') {
    return {
      script: writeScript(step, beforeChange),
      stdin: step.content,
      okCodes: [0],
      display: `write ${step.path}`,
    };
  }
  const run = step as RunStep;
  return {
    script: beforeChange ? `${mustSucceed(beforeChange)}\n${run.command}` : run.command,
    stdin: run.stdin,
    okCodes: run.okCodes ?? [0],
    display: run.description ?? run.command,
  };
}

/** `mkdir -p` of the engine's own state directory on the host. */
export const STATE_DIR = '/var/lib/verdandi';
export const PENDING_HANDLERS_FILE = `${STATE_DIR}/pending-handlers`;

/** Appends `role\thandler` lines to the pending-handlers file (a handler not yet run survives a lost host). */
export function recordPendingScript(role: string, handlers: string[]): string {
  if (handlers.length === 0) return ':';
  const lines = handlers.map((h) => `${role}\t${h}`).join('\n');
  return `mkdir -p ${STATE_DIR} && printf '%s\\n' ${quote(lines)} >> ${PENDING_HANDLERS_FILE}`;
}

/** Removes one handler's lines once it ran. */
export function clearPendingScript(role: string, handler: string): string {
  const line = `${role}\t${handler}`;
  return (
    `if [ -f ${PENDING_HANDLERS_FILE} ]; then ` +
    `grep -vxF ${quote(line)} ${PENDING_HANDLERS_FILE} > ${PENDING_HANDLERS_FILE}.new || true; ` +
    `mv -f ${PENDING_HANDLERS_FILE}.new ${PENDING_HANDLERS_FILE}; fi`
  );
}

export function parsePending(text: string, role: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const [r, h] = line.split('\t');
    if (r === role && h && !out.includes(h)) out.push(h);
  }
  return out;
}

export const readPendingProbe = `cat ${PENDING_HANDLERS_FILE} 2>/dev/null || true`;

export { words };
