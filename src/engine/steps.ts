/**
 * Turns steps into shell scripts. Pure functions: the engine sends their output to the host.
 */
import { quote, words } from '../util/shell.js';
import type { RunStep, Step, WriteStep } from './types.js';

/** Script that writes a file atomically from stdin. See WriteStep in types.ts for the contract. */
export function writeScript(step: WriteStep): string {
  const path = quote(step.path);
  const lines = [
    'set -e',
    `dir=$(dirname ${path})`,
    // mktemp creates the file 0600: content is never world-readable, even for a moment.
    `tmp=$(mktemp "$dir/.verdandi-XXXXXX")`,
    `trap 'rm -f "$tmp"' EXIT`,
    `cat > "$tmp"`,
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
      `if ! out=$( ${validate} 2>&1 ); then printf '%s\\n' "validation failed: $out" >&2; exit 65; fi`,
    );
  }
  lines.push(`mv -f "$tmp" ${path}`, 'trap - EXIT');
  return lines.join('\n');
}

export interface StepScript {
  script: string;
  stdin?: string;
  okCodes: number[];
  /** What to show the user (never the content). */
  display: string;
}

export function stepScript(step: Step): StepScript {
  if (step.kind === 'write') {
    return { script: writeScript(step), stdin: step.content, okCodes: [0], display: `write ${step.path}` };
  }
  const run = step as RunStep;
  return {
    script: run.command,
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
