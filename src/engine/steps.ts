/**
 * Turns steps into shell scripts. Pure functions: the engine sends their output to the host.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { quote, scriptAsUser, words } from '../util/shell.js';
import { STATE_DIR } from './pending.js';
import type { RunStep, Step, WriteStep } from './types.js';

/** Exit status of a write whose content did not arrive whole (nothing was installed). */
export const TRANSFER_INCOMPLETE_EXIT = 66;
/** Exit status of a write whose content failed the task's `validate` command (nothing was installed). */
export const VALIDATION_FAILED_EXIT = 65;
/** Exit status of a write whose temporary directory another user replaced (nothing was installed). */
export const TEMP_REPLACED_EXIT = 67;
/** Start of the line a write step with `backup` prints: the path of the copy of the old file. */
export const BACKUP_MARKER = 'verdandi-backup';

/** The paths of the backups a write step printed (see WriteStep.backup). */
export function backupsIn(stepOut: string): string[] {
  const prefix = `${BACKUP_MARKER} `;
  return stepOut
    .split('\n')
    .filter((line) => line.startsWith(prefix))
    .map((line) => line.slice(prefix.length));
}

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
 *
 * The temporary file lives in a fresh 0700 directory that mktemp creates inside the target's directory
 * (the same filesystem: the rename stays atomic). No other user can open, replace or swap the file in
 * it, even when the target's directory is world-writable. The script works from inside that directory
 * (`cd`): the checks, owner, mode and rename act on the directory it created, whatever its name now.
 * In a world-writable directory without the sticky bit, another user can still rename the directory
 * and put one of her own in its place: `validate` (given a path) would then check her file, so the
 * script compares the path with its own directory (`-ef`: same inode) before and after `validate`,
 * and installs nothing when they differ.
 *
 * Owner and mode come from the step, or else from an existing regular file at `path`: never from what
 * a symbolic link points to (the rename replaces the link itself with the file).
 */
export function writeScript(step: WriteStep, beforeInstall = '', asUser = false): string {
  const path = quote(step.path);
  const base = basename(step.path) || 'file';
  const name = '"$vd_f"';
  const size = Buffer.byteLength(step.content, 'utf8');
  const sha256 = createHash('sha256').update(step.content, 'utf8').digest('hex');
  const lines = [
    'set -e',
    'umask 077',
    'vd_cwd=$PWD',
    `dir=$(dirname ${path})`,
    `tmpd=$(mktemp -d "$dir/.verdandi-XXXXXX")`,
    'cd "$tmpd"',
    // dash runs an EXIT trap on `exit`, not when a signal ends it: both remove the temporary file from
    // the script's own directory (the working one), then that directory if it is still at its path.
    `trap 'vd_rc=$?; rm -f "$vd_f"; cd /; rmdir "$tmpd" 2>/dev/null || :; exit "$vd_rc"' EXIT`,
    `trap 'rm -f "$vd_f"; cd /; rmdir "$tmpd" 2>/dev/null || :; exit 129' HUP INT TERM PIPE`,
    // Named like the target (a validate command may look at the extension); `./`: never an option.
    `vd_f=./${quote(base)}`,
    `tmp="$tmpd"/${quote(base)}`,
    `head -c ${size} > ${name}`,
    `got=$(wc -c < ${name})`,
    // The temporary file goes first: printing to a closed connection may end the shell.
    `if [ "$got" -ne ${size} ]; then rm -f ${name}; echo "transfer incomplete: received $got of ${size} bytes; nothing installed" >&2; exit ${TRANSFER_INCOMPLETE_EXIT}; fi`,
    `if [ "$(sha256sum < ${name} | cut -d' ' -f1)" != ${sha256} ]; then rm -f ${name}; echo "transfer incomplete: content differs from what was sent (sha256); nothing installed" >&2; exit ${TRANSFER_INCOMPLETE_EXIT}; fi`,
  ];
  // Keep the current owner/mode of an existing regular file unless the task sets them; a link's
  // target lends nothing (`--reference` would follow the link).
  const existing = `[ -f ${path} ] && [ ! -L ${path} ]`;
  if (step.owner || step.group) {
    lines.push(`chown ${quote(`${step.owner ?? ''}${step.group ? `:${step.group}` : ''}`)} ${name}`);
  } else if (asUser) {
    // Run as a user other than root (becomeUser), who may give a file only to herself: the old owner is
    // kept when it is her (and the group when she is in it), otherwise the file is hers, as with
    // Ansible's become_user (which ignores the EPERM of this chown).
    lines.push(`if ${existing}; then chown --reference=${path} ${name} 2>/dev/null || :; fi`);
  } else {
    lines.push(`if ${existing}; then chown --reference=${path} ${name}; fi`);
  }
  if (step.mode) lines.push(`chmod ${quote(step.mode)} ${name}`);
  else lines.push(`if ${existing}; then chmod --reference=${path} ${name}; else chmod 0644 ${name}; fi`);
  if (step.validate) {
    // Run where the script started (a validate command may use relative paths); `%s` is the file.
    const validate = step.validate.split('%s').join('"$tmp"');
    const same = `if ! [ "$tmpd" -ef . ]; then echo "the temporary directory $tmpd was replaced by another user of the host while validating; nothing installed" >&2; exit ${TEMP_REPLACED_EXIT}; fi`;
    lines.push(
      same,
      `if ! out=$( cd "$vd_cwd" 2>/dev/null || cd /; ${validate} 2>&1 ); then printf '%s\\n' "validation failed: $out" >&2; exit ${VALIDATION_FAILED_EXIT}; fi`,
      same,
    );
  }
  if (step.backup) {
    // Like Ansible's backup name (`<dest>.<pid>.<date@time>~`); the old file only, never a link's target.
    lines.push(
      `if ${existing}; then vd_b=${path}."$$".$(date +%Y-%m-%d@%H:%M:%S)~; cp -p -- ${path} "$vd_b"; printf '%s %s\\n' ${BACKUP_MARKER} "$vd_b"; fi`,
    );
  }
  if (beforeInstall) lines.push(mustSucceed(beforeInstall, `rm -f ${name}; `));
  // -T: a directory at `path` is an error, never a place to move the file into.
  lines.push(
    `mv -fT ${name} ${path}`,
    'trap - EXIT HUP INT TERM PIPE',
    'cd / && rmdir "$tmpd" 2>/dev/null || true',
  );
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
export function stepScript(step: Step, beforeChange = '', user?: string): StepScript {
  if (user !== undefined) return stepScriptAs(user, step, beforeChange);
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

/**
 * The shell of one step of a task with `becomeUser`: the step's own script runs as `user` (see
 * scriptAsUser: on a here-document, never on a command line; the write's content stays on stdin).
 *
 * `beforeChange` writes root's records: it runs as root, before the user's script starts, rather than
 * inside it just before the change. A step that then fails leaves a record whose handlers run for
 * nothing, the harmless side: a change without its record could not happen. A user missing on the
 * host fails the step before anything, record included, with a message naming the user.
 */
function stepScriptAs(user: string, step: Step, beforeChange: string): StepScript {
  const inner = step.kind === 'write' ? writeScript(step, '', true) : step.command;
  const script = [
    `if ! id -u ${quote(user)} >/dev/null 2>&1; then echo ${quote(`becomeUser: there is no user ${user} on the host`)} >&2; exit 1; fi`,
    beforeChange ? mustSucceed(beforeChange) : '',
    scriptAsUser(user, inner),
  ].filter(Boolean);
  const own = stepScript(step);
  return { ...own, script: script.join('\n') };
}

export { words };
