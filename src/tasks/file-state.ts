/**
 * The state of paths and accounts on the host, for the file-like tasks (file, directory, link, absent,
 * copy, template, lineinfile) and any other task that needs to know the state of a path or whether an
 * account exists.
 *
 *   fileStateProbe(path, { checksum?, key? })  →  shell fragment printing one `verdandi-stat` line
 *   fileStateProbeOf('"$var"', ...)             →  same, for a path held in a shell variable
 *   parseFileState(stdout, key?)                →  FileState | undefined
 *   accountsProbe({ owner?, group? })           →  shell fragment printing `verdandi-account` lines
 *   missingAccountError(stdout, { owner?, group? }) → message when the host lacks that user/group
 *   attributeChanges(path, state, desired)      →  chown/chmod run steps and their reasons
 *
 * Modes are 4-digit octal strings ('0644'); they are compared as numbers, and chmod gets an extra
 * leading zero so a directory's setgid bit is cleared when the mode says so. Options are validated in
 * ./options.ts.
 */
import type { RunStep } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { decodeBase64, MARKER_PREFIX, markedLines } from './probe-output.js';

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
