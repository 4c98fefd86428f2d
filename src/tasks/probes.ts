/**
 * Shared building blocks for the file-like tasks (file, directory, link, absent, copy, template,
 * lineinfile) and for any other task that needs to know the state of a path or whether an account exists.
 *
 * A probe prints lines that start with a marker (`verdandi-stat ...`, `verdandi-account ...`); the parsers
 * here read only those lines, so unrelated noise on stdout (a login banner, a tool's chatter) is ignored.
 *
 * Stable API for other task files:
 *   fileStateProbe(path, { checksum?, key? })  →  shell fragment printing one `verdandi-stat` line
 *   fileStateProbeOf('"$var"', ...)             →  same, for a path held in a shell variable
 *   parseFileState(stdout, key?)                →  FileState | undefined
 *   accountsProbe({ owner?, group? })           →  shell fragment printing `verdandi-account` lines
 *   missingAccountError(stdout, { owner?, group? }) → message when the host lacks that user/group
 *   attributeChanges(path, state, desired)      →  chown/chmod run steps and their reasons
 *   checkPath / checkMode / checkAccount        →  option validation (UserError naming the calling line)
 *
 * Modes are 4-digit octal strings ('0644'); they are compared as numbers, and chmod gets an extra
 * leading zero so a directory's setgid bit is cleared when the mode says so.
 */
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunStep } from '../engine/types.js';
import { UserError } from '../util/errors.js';
import { quote, words } from '../util/shell.js';

/** Every line a probe prints for a parser starts with this. */
export const MARKER_PREFIX = 'verdandi-';

// ---------------------------------------------------------------------------------------------------
// Reading probe output

/**
 * The fields of every stdout line that starts with `marker` followed by a space (or is exactly `marker`),
 * split on single spaces, marker removed. Lines without the marker are noise and ignored.
 */
export function markedLines(stdout: string, marker: string): string[][] {
  const found: string[][] = [];
  for (const line of stdout.split('\n')) {
    const trimmed = line.replace(/\r$/, '');
    if (trimmed === marker) found.push([]);
    else if (trimmed.startsWith(`${marker} `)) found.push(trimmed.slice(marker.length + 1).split(' '));
  }
  return found;
}

export function decodeBase64(field: string | undefined): string | undefined {
  if (field === undefined || field === '-') return undefined;
  return Buffer.from(field, 'base64').toString('utf8');
}

/** Decodes base64 into UTF-8 text, or undefined when the bytes are not valid UTF-8 (a binary file). */
export function decodeBase64Text(field: string): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(field, 'base64'));
  } catch {
    return undefined;
  }
}

export function sha256Hex(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

// ---------------------------------------------------------------------------------------------------
// File state probe

export type FileType = 'file' | 'dir' | 'link' | 'other';

export type FileState =
  | { type: 'absent' }
  | {
      type: FileType;
      uid: number;
      /** User name, or `UNKNOWN` when the uid has no passwd entry (what `stat %U` prints). */
      user: string;
      gid: number;
      /** Group name, or `UNKNOWN` when the gid has no group entry. */
      group: string;
      /** Permission bits including setuid/setgid/sticky, e.g. 0o644 or 0o2775. */
      mode: number;
      /** sha256 of a regular file's content, when the probe was asked for it. */
      sha256?: string;
      /** Where a symbolic link points (as stored in the link, not resolved). */
      linkTarget?: string;
    };

export type PresentFileState = Exclude<FileState, { type: 'absent' }>;

function statMarker(key?: string): string {
  return key === undefined ? `${MARKER_PREFIX}stat` : `${MARKER_PREFIX}stat:${key}`;
}

/**
 * Shell fragment printing the state of `path` on one line:
 *
 *   verdandi-stat <file|dir|link|other> <uid> <user> <gid> <group> <octal mode> <sha256|-> <base64 link target|->
 *   verdandi-stat absent
 *
 * The path itself is not examined through links: a symbolic link is reported as `link` with its own owner.
 * `checksum` adds the sha256 of a regular file (reads the whole file: ask only when content matters).
 * `key` distinguishes several fragments in one probe (`verdandi-stat:<key>`).
 */
export function fileStateProbe(path: string, opts: { checksum?: boolean; key?: string } = {}): string {
  return fileStateProbeOf(quote(path), opts);
}

/**
 * Same as `fileStateProbe`, for a path held in a shell variable of the calling probe (`'"$p"'`): the
 * argument is a trusted shell expression, not quoted again.
 */
export function fileStateProbeOf(
  pathExpression: string,
  opts: { checksum?: boolean; key?: string } = {},
): string {
  if (opts.key !== undefined && !/^[A-Za-z0-9_-]+$/.test(opts.key)) {
    throw new Error(`fileStateProbe: key must be letters, digits, _ or -: ${opts.key}`);
  }
  const marker = statMarker(opts.key);
  const checksum = opts.checksum
    ? 'vs_s=-; [ "$vs_t" = file ] && vs_s=$(sha256sum < "$vs_p" | cut -d " " -f 1)'
    : 'vs_s=-';
  return [
    `vs_p=${pathExpression}`,
    'if [ -L "$vs_p" ]; then vs_t=link; elif [ -d "$vs_p" ]; then vs_t=dir; elif [ -f "$vs_p" ]; then vs_t=file;',
    'elif [ -e "$vs_p" ]; then vs_t=other; else vs_t=absent; fi',
    `if [ "$vs_t" = absent ]; then echo ${quote(`${marker} absent`)}; else`,
    `  ${checksum}`,
    '  vs_l=-; [ "$vs_t" = link ] && vs_l=$(readlink -n -- "$vs_p" | base64 -w0)',
    `  printf '%s %s %s %s %s\\n' ${quote(marker)} "$vs_t" "$(stat -c '%u %U %g %G %a' -- "$vs_p")" "\${vs_s:--}" "\${vs_l:--}"`,
    'fi',
  ].join('\n');
}

/** The state printed by `fileStateProbe`, or undefined when the probe printed no (well-formed) line. */
export function parseFileState(stdout: string, key?: string): FileState | undefined {
  const lines = markedLines(stdout, statMarker(key));
  const fields = lines[lines.length - 1];
  if (!fields) return undefined;
  if (fields.length === 1 && fields[0] === 'absent') return { type: 'absent' };
  if (fields.length !== 8) return undefined;
  const [type, uid, user, gid, group, mode, sha, target] = fields;
  if (!['file', 'dir', 'link', 'other'].includes(type)) return undefined;
  if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid) || !/^[0-7]{1,5}$/.test(mode)) return undefined;
  return {
    type: type as FileType,
    uid: Number(uid),
    user,
    gid: Number(gid),
    group,
    mode: Number.parseInt(mode, 8),
    ...(sha !== '-' ? { sha256: sha } : {}),
    ...(target !== '-' ? { linkTarget: decodeBase64(target) } : {}),
  };
}

/** What a file-like task says when the probe printed nothing usable (killed, not POSIX sh, ...). */
export function unreadableProbe(path: string, exitCode: number): string {
  return `could not read the state of ${path} (the probe printed no state line, exit code ${exitCode})`;
}

export function describeType(type: FileType): string {
  switch (type) {
    case 'file':
      return 'a file';
    case 'dir':
      return 'a directory';
    case 'link':
      return 'a symbolic link';
    default:
      return 'a special file (device, socket or fifo)';
  }
}

// ---------------------------------------------------------------------------------------------------
// Accounts (owner / group existence)

const ACCOUNT_MARKER = `${MARKER_PREFIX}account`;

const isNumericId = (name: string) => /^\d+$/.test(name);

/**
 * Shell fragment checking with `getent` that the named owner and group exist, printing
 * `verdandi-account user 1|0` and `verdandi-account group 1|0`. Numeric ids are not checked (chown
 * accepts any number).
 */
export function accountsProbe(accounts: { owner?: string; group?: string }): string {
  const checks: string[] = [];
  if (accounts.owner !== undefined && !isNumericId(accounts.owner)) {
    checks.push(
      `if getent passwd ${quote(accounts.owner)} >/dev/null; then echo '${ACCOUNT_MARKER} user 1'; else echo '${ACCOUNT_MARKER} user 0'; fi`,
    );
  }
  if (accounts.group !== undefined && !isNumericId(accounts.group)) {
    checks.push(
      `if getent group ${quote(accounts.group)} >/dev/null; then echo '${ACCOUNT_MARKER} group 1'; else echo '${ACCOUNT_MARKER} group 0'; fi`,
    );
  }
  return checks.join('\n');
}

/** A message naming the user/group that `accountsProbe` found missing, or undefined when all exist. */
export function missingAccountError(
  stdout: string,
  accounts: { owner?: string; group?: string },
): string | undefined {
  const missing: string[] = [];
  for (const [kind, exists] of markedLines(stdout, ACCOUNT_MARKER)) {
    if (exists !== '0') continue;
    if (kind === 'user' && accounts.owner !== undefined) missing.push(`user "${accounts.owner}"`);
    if (kind === 'group' && accounts.group !== undefined) missing.push(`group "${accounts.group}"`);
  }
  if (missing.length === 0) return undefined;
  return `${missing.join(' and ')} ${missing.length > 1 ? 'do' : 'does'} not exist on the host: create ${missing.length > 1 ? 'them' : 'it'} with a user()/group() task before this one`;
}

// ---------------------------------------------------------------------------------------------------
// Attributes: owner, group, mode

/** Owner/group/mode a task wants; mode is normalised to 4 octal digits ('0644'). */
export interface DesiredAttributes {
  owner?: string;
  group?: string;
  mode?: string;
}

/** Mode as 4 octal digits ('0644'), written the way `stat %a`-derived values are compared. */
export function formatMode(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

function ownerMatches(desired: string, id: number, name: string): boolean {
  return isNumericId(desired) ? id === Number(desired) : name === desired;
}

/** The current owner as chown understands it (name, or the numeric id when it has no name). */
export function currentOwner(state: PresentFileState): string {
  return state.user === 'UNKNOWN' ? String(state.uid) : state.user;
}

export function currentGroup(state: PresentFileState): string {
  return state.group === 'UNKNOWN' ? String(state.gid) : state.group;
}

/** `owner:group`, `owner` or `:group`, as chown takes it. */
export function chownSpec(owner?: string, group?: string): string {
  return `${owner ?? ''}${group !== undefined ? `:${group}` : ''}`;
}

/**
 * The chmod argument for a 4-digit mode. GNU chmod keeps a directory's setuid/setgid bits when given
 * '0755'; an extra leading zero ('00755') sets every bit as written, so the result is what the probe
 * compares against.
 */
export function chmodArgument(mode: string): string {
  return `0${mode}`;
}

export interface AttributeChanges {
  steps: RunStep[];
  reasons: string[];
  /** The owner or group differs. */
  ownerDiffers: boolean;
  /** The mode differs. */
  modeDiffers: boolean;
}

/**
 * chown/chmod steps that bring an existing path to the desired attributes (none when they match).
 * For a link (`link: true`), `chown -h` changes the link itself and the mode is ignored (links have none).
 */
export function attributeChanges(
  path: string,
  state: PresentFileState,
  desired: DesiredAttributes,
  opts: { link?: boolean } = {},
): AttributeChanges {
  const steps: RunStep[] = [];
  const reasons: string[] = [];
  const ownerDiffers = desired.owner !== undefined && !ownerMatches(desired.owner, state.uid, state.user);
  const groupDiffers = desired.group !== undefined && !ownerMatches(desired.group, state.gid, state.group);
  if (ownerDiffers) reasons.push(`owner ${currentOwner(state)} → ${desired.owner}`);
  if (groupDiffers) reasons.push(`group ${currentGroup(state)} → ${desired.group}`);
  if (ownerDiffers || groupDiffers) {
    steps.push({
      kind: 'run',
      command: words('chown', opts.link ? '-h' : undefined, chownSpec(desired.owner, desired.group), path),
    });
  }
  let modeDiffers = false;
  if (desired.mode !== undefined && !opts.link) {
    const wanted = Number.parseInt(desired.mode, 8);
    modeDiffers = wanted !== state.mode;
    // chown clears setuid/setgid on files: set the mode again after it when the mode carries them.
    const chownClearsBits = steps.length > 0 && (wanted & 0o6000) !== 0;
    if (modeDiffers) reasons.push(`mode ${formatMode(state.mode)} → ${desired.mode}`);
    if (modeDiffers || chownClearsBits) {
      steps.push({ kind: 'run', command: words('chmod', chmodArgument(desired.mode), path) });
    }
  }
  return { steps, reasons, ownerDiffers: ownerDiffers || groupDiffers, modeDiffers };
}

/** chown/chmod steps for a path the task has just created: every attribute the task names is set. */
export function creationAttributeSteps(
  path: string,
  desired: DesiredAttributes,
  opts: { link?: boolean } = {},
): RunStep[] {
  const steps: RunStep[] = [];
  if (desired.owner !== undefined || desired.group !== undefined) {
    steps.push({
      kind: 'run',
      command: words('chown', opts.link ? '-h' : undefined, chownSpec(desired.owner, desired.group), path),
    });
  }
  if (desired.mode !== undefined && !opts.link) {
    steps.push({ kind: 'run', command: words('chmod', chmodArgument(desired.mode), path) });
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------------
// Validation of task options (at build time, so a role fails before touching any host)

const TASKS_DIR = dirname(fileURLToPath(import.meta.url));

/** `file:line` of the code that built the task (the first stack frame outside this folder), if found. */
function callerLocation(): string | undefined {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  for (const frame of frames) {
    const match = frame.match(/\(?([^\s()]+):(\d+):\d+\)?\s*$/);
    if (!match) continue;
    let file = match[1];
    if (file.startsWith('file://')) {
      try {
        file = fileURLToPath(file);
      } catch {
        continue;
      }
    }
    if (file.startsWith('node:') || file.startsWith(TASKS_DIR) || file.includes('/node_modules/')) continue;
    return `${file}:${match[2]}`;
  }
  return undefined;
}

/** A UserError about a task's options, pointing at the role/playbook line that built the task. */
export function taskOptionError(label: string, problem: string, hint?: string): UserError {
  const where = callerLocation();
  return new UserError(`${label}: ${problem}${where ? ` (at ${where})` : ''}`, 1, hint);
}

/** An absolute path without trailing slashes (`/etc/nginx/` → `/etc/nginx`). */
export function checkPath(label: string, path: unknown): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw taskOptionError(label, `path must be an absolute path, got ${JSON.stringify(path)}`);
  }
  if (path.includes('\0')) throw taskOptionError(label, 'path contains a NUL character');
  return path.length > 1 ? path.replace(/\/+$/, '') || '/' : path;
}

/** '644', '0644', '2775' → 4 digits ('0644'); undefined stays undefined. */
export function checkMode(label: string, mode: unknown): string | undefined {
  if (mode === undefined) return undefined;
  if (typeof mode !== 'string' || !/^[0-7]{3,4}$/.test(mode)) {
    throw taskOptionError(
      label,
      `mode must be an octal string like '0644' or '644', got ${typeof mode === 'string' ? `'${mode}'` : String(mode)}`,
      typeof mode === 'number'
        ? `write it as a string: mode: '${mode.toString(8).padStart(4, '0')}'`
        : undefined,
    );
  }
  return mode.padStart(4, '0');
}

/** A user or group name (or numeric id) that is safe to pass to chown and getent. */
export function checkAccount(label: string, what: 'owner' | 'group', name: unknown): string | undefined {
  if (name === undefined) return undefined;
  if (typeof name !== 'string' || !/^(\d+|[A-Za-z_][A-Za-z0-9_.-]*\$?)$/.test(name)) {
    throw taskOptionError(
      label,
      `${what} must be a user/group name or a numeric id, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** Owner, group and mode of a task's options, validated. */
export function checkAttributes(label: string, opts: DesiredAttributes): DesiredAttributes {
  return {
    owner: checkAccount(label, 'owner', opts.owner),
    group: checkAccount(label, 'group', opts.group),
    mode: checkMode(label, opts.mode),
  };
}

/** Joins reasons for Plan.reason. */
export function joinReasons(reasons: string[]): string | undefined {
  return reasons.length > 0 ? reasons.join(', ') : undefined;
}
