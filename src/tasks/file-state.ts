/**
 * The state of paths and accounts on the host, for the file-like tasks (file, directory, link, absent,
 * copy, template, lineinfile) and any other task that needs to know the state of a path or whether an
 * account exists.
 *
 *   fileStatesScript(queries)                  →  shell printing the state of many paths: one `stat`,
 *                                                 one `sha256sum` (the engine runs it once per probe
 *                                                 batch for the `files` of all its tasks)
 *   parseFileStates(output, queries)           →  Map<path, FileState> | undefined
 *   probedPath(label, path, accounts, result)  →  a task's FileState from its ProbeResult, or the stop
 *   fileStateProbeOf('"$var"', ...)             →  shell fragment printing one `verdandi-stat` line, for
 *                                                 a path only known on the host (lineinfile's link target)
 *   parseFileState(stdout, key?)                →  FileState | undefined
 *   accountsProbe({ owner?, group? })           →  shell fragment printing `verdandi-account` lines
 *   missingAccountError(stdout, { owner?, group? }) → message when the host lacks that user/group
 *   attributeChanges(path, state, desired)      →  chown/chmod run steps and their reasons
 *
 * Modes are 4-digit octal strings ('0644'); they are compared as numbers, and chmod gets an extra
 * leading zero so a directory's setgid bit is cleared when the mode says so. Options are validated in
 * ./options.ts.
 */
import type { FileQuery, FileState, FileType, Plan, ProbeResult, RunStep } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { decodeBase64, MARKER_PREFIX, markedLines } from './probe-output.js';

// ---------------------------------------------------------------------------------------------------
// File state, batched: one command for the paths of every task of a probe batch

export type { FileQuery, FileState, FileType } from '../engine/types.js';

export type PresentFileState = Exclude<FileState, { type: 'absent' }>;

/**
 * Most path bytes one `stat` invocation gets: far below the host's ARG_MAX (2 MiB on
 * Linux by default), so any number of paths fits, in as many invocations as needed.
 */
const ARGUMENT_BYTES = 64 * 1024;

/** `paths` in consecutive groups of at most ARGUMENT_BYTES (a longer path has a group of its own). */
function argumentGroups(paths: string[]): string[][] {
  const groups: string[][] = [];
  let group: string[] = [];
  let bytes = 0;
  for (const path of paths) {
    const size = Buffer.byteLength(path) + 3;
    if (group.length > 0 && bytes + size > ARGUMENT_BYTES) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(path);
    bytes += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/**
 * `stat --printf` of each path: name, raw mode (hex), uid, user, gid, group, then `%N`, which for a
 * link is `<name> -> <target>` (QUOTING_STYLE=literal: as stored, no quotes). Every field ends with a
 * NUL, the one byte no path holds, so names with spaces, quotes or newlines cannot shift a field.
 */
const STAT_FORMAT = '%n\\0%f\\0%u\\0%U\\0%g\\0%G\\0%N\\0';
const STAT_FIELDS = 7;

/**
 * Shell printing the state of every path of `queries` with one `stat` and one `sha256sum` (per
 * ARGUMENT_BYTES of paths for stat; xargs splits sha256sum's), whatever their number: no process per
 * path. Parsed by `parseFileStates`.
 *
 * A path stat cannot read is left out of its output (absent, as `[ -e ]` would say). The checksum is
 * taken of regular files only, chosen by a loop of the shell's builtins (`[ -f ]`, `[ ! -L ]`,
 * `printf`: no process per path) that hands their names to xargs: a FIFO or a device must never be
 * read. Its stderr is the caller's to drop.
 */
export function fileStatesScript(queries: readonly FileQuery[]): string {
  const paths = [...new Set(queries.map((q) => q.path))];
  const summed = [...new Set(queries.filter((q) => q.checksum).map((q) => q.path))];
  const lines = argumentGroups(paths).map(
    (group) => `QUOTING_STYLE=literal stat --printf '${STAT_FORMAT}' -- ${group.map(quote).join(' ')}`,
  );
  // An empty name ends the records (no path is empty): what follows is sha256sum's.
  lines.push(`printf '\\0'`);
  if (summed.length > 0) {
    lines.push(
      `for vd_f in ${summed.map(quote).join(' ')}; do`,
      `  if [ -f "$vd_f" ] && [ ! -L "$vd_f" ]; then printf '%s\\0' "$vd_f"; fi`,
      'done | xargs -0 -r sha256sum --',
    );
  }
  return lines.join('\n');
}

/** The type bits of a raw mode (S_IFMT), and those of a regular file, a directory and a link. */
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function typeOf(mode: number): FileType {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'link';
    default:
      return 'other';
  }
}

/** One `stat` record, or undefined when it is not what the format prints (a cut-off output). */
function statRecord(fields: string[]): { path: string; state: PresentFileState } | undefined {
  const [path, rawMode, uid, user, gid, group, quoted] = fields;
  if (!/^[0-9a-f]+$/.test(rawMode) || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return undefined;
  const mode = Number.parseInt(rawMode, 16);
  const type = typeOf(mode);
  const state: PresentFileState = {
    type,
    uid: Number(uid),
    user,
    gid: Number(gid),
    group,
    mode: mode & 0o7777,
  };
  const arrow = `${path} -> `;
  if (type === 'link' && quoted.startsWith(arrow)) state.linkTarget = quoted.slice(arrow.length);
  return { path, state };
}

/**
 * sha256sum's line: `<hash>  <name>`; a name holding a backslash, a newline or a carriage return is
 * escaped, and the line then starts with a backslash.
 */
function checksumLine(line: string): { path: string; sha256: string } | undefined {
  const match = /^(\\?)([0-9a-f]{64}) [ *](.*)$/s.exec(line);
  if (!match) return undefined;
  const [, escaped, sha256, name] = match;
  const path = escaped
    ? name.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c))
    : name;
  return { path, sha256 };
}

/**
 * The states `fileStatesScript(queries)` printed, by path: every queried path is in the map (absent
 * when stat did not print it). Undefined when the output is cut off before the end of stat's records:
 * then nothing of it can be trusted to say "absent".
 */
export function parseFileStates(
  output: string,
  queries: readonly FileQuery[],
): Map<string, FileState> | undefined {
  const fields = output.split('\0');
  const states = new Map<string, FileState>();
  let i = 0;
  for (;;) {
    if (i >= fields.length - 1) return undefined;
    if (fields[i] === '') break;
    if (i + STAT_FIELDS > fields.length - 1) return undefined;
    const record = statRecord(fields.slice(i, i + STAT_FIELDS));
    if (!record) return undefined;
    states.set(record.path, record.state);
    i += STAT_FIELDS;
  }
  const checksums = fields.slice(i + 1).join('\0');
  for (const line of checksums.split('\n')) {
    const sum = checksumLine(line);
    const state = sum && states.get(sum.path);
    if (state && state.type === 'file') state.sha256 = sum.sha256;
  }
  const wanted = new Set(queries.filter((q) => q.checksum).map((q) => q.path));
  for (const { path } of queries) {
    const state = states.get(path);
    if (!state) states.set(path, { type: 'absent' });
    else if (state.type === 'file' && !wanted.has(path)) delete state.sha256;
  }
  return states;
}

/**
 * What `fileStatesScript` printed for one path, byte for byte: its `stat` record ('' when stat printed
 * none: absent) and its `sha256sum` line, when it printed one. Kept so the engine can say what the same
 * script prints again while nothing moved (fileStatesOutput), and compare on the host (continuation.ts).
 */
export interface RawFileRecord {
  stat: string;
  sum?: string;
}

/** Each queried path's raw record in `output` (of fileStatesScript(queries)); undefined when cut off. */
export function rawFileRecords(
  output: string,
  queries: readonly FileQuery[],
): Map<string, RawFileRecord> | undefined {
  const fields = output.split('\0');
  const records = new Map<string, RawFileRecord>();
  for (const { path } of queries) records.set(path, { stat: '' });
  let i = 0;
  for (;;) {
    if (i >= fields.length - 1) return undefined;
    if (fields[i] === '') break;
    if (i + STAT_FIELDS > fields.length - 1) return undefined;
    const record = fields.slice(i, i + STAT_FIELDS);
    const entry = records.get(record[0]);
    if (entry) entry.stat = `${record.join('\0')}\0`;
    i += STAT_FIELDS;
  }
  for (const line of fields
    .slice(i + 1)
    .join('\0')
    .split('\n')) {
    const sum = checksumLine(line);
    const entry = sum && records.get(sum.path);
    if (entry) entry.sum = `${line}\n`;
  }
  return records;
}

/**
 * What `fileStatesScript(queries)` prints when every path is as `records` saw it: undefined when a
 * path has no record, or a checksum is wanted that was not taken (nothing to predict from).
 */
export function fileStatesOutput(
  queries: readonly FileQuery[],
  records: ReadonlyMap<string, RawFileRecord>,
): string | undefined {
  const paths = [...new Set(queries.map((q) => q.path))];
  const summed = [...new Set(queries.filter((q) => q.checksum).map((q) => q.path))];
  let out = '';
  for (const path of paths) {
    const record = records.get(path);
    if (!record) return undefined;
    out += record.stat;
  }
  out += '\0';
  for (const path of summed) {
    const record = records.get(path);
    // A regular file is summed: one whose record has no sum was not (absent, a link, not wanted then).
    const type = record?.stat.split('\0')[1];
    if (record?.sum === undefined && type !== undefined && typeOf(Number.parseInt(type, 16)) === 'file')
      return undefined;
    out += record?.sum ?? '';
  }
  return out;
}

function statMarker(key?: string): string {
  return key === undefined ? `${MARKER_PREFIX}stat` : `${MARKER_PREFIX}stat:${key}`;
}

/**
 * Shell fragment printing the state of the path held in a shell variable of the calling probe
 * (`'"$p"'`: a trusted shell expression, not quoted again), on one line:
 *
 *   verdandi-stat <file|dir|link|other> <uid> <user> <gid> <group> <octal mode> <sha256|-> <base64 link target|->
 *   verdandi-stat absent
 *
 * For a path known only once the probe runs; a path the task knows goes to `Task.files` instead,
 * batched with every other task's. The path itself is not examined through links. `checksum` adds
 * the sha256 of a regular file; `key` distinguishes several fragments in one probe (`verdandi-stat:<key>`).
 */
export function fileStateProbeOf(
  pathExpression: string,
  opts: { checksum?: boolean; key?: string } = {},
): string {
  if (opts.key !== undefined && !/^[A-Za-z0-9_-]+$/.test(opts.key)) {
    throw new Error(`fileStateProbeOf: key must be letters, digits, _ or -: ${opts.key}`);
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

/** The state printed by `fileStateProbeOf`, or undefined when the probe printed no (well-formed) line. */
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
  return `could not read the state of ${path} (the host printed no state for it, exit code ${exitCode})`;
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

/**
 * What a task on one path found: the path's state (from `ProbeResult.files`: the task lists the path
 * in `Task.files`), or the plan that stops the task there (an owner or group the host does not have,
 * checked by `accountsProbe` in its probe, or a state the host did not print).
 */
export function probedPath(
  label: string,
  path: string,
  accounts: { owner?: string; group?: string },
  probe: ProbeResult,
): { state: FileState; stop?: undefined } | { stop: Plan } {
  const accountError = missingAccountError(probe.stdout, accounts);
  if (accountError) return { stop: { steps: [], error: `${label}: ${accountError}` } };
  const state = probe.files?.get(path);
  if (!state) return { stop: { steps: [], error: unreadableProbe(path, probe.exitCode) } };
  return { state };
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
// Symbolic modes (`u+rwx,g-w`, `a=r`, `g=u`), as chmod reads them

/** One clause: who (required: without it chmod would apply the umask), then operations. */
const SYMBOLIC_CLAUSE = /^[ugoa]+(?:[-+=](?:[rwxXst]*|[ugo]))+$/;

/** True for a symbolic mode (`u+x,go-w`), false for an octal one. */
export function isSymbolicMode(mode: string): boolean {
  return mode.split(',').every((clause) => SYMBOLIC_CLAUSE.test(clause));
}

const CLASS_SHIFT = { u: 6, g: 3, o: 0 } as const;
type Who = keyof typeof CLASS_SHIFT;
/** The setuid, setgid and sticky bit each class's `s` / `t` / `=` touches. */
const SPECIAL_BITS = { u: 0o4000, g: 0o2000, o: 0o1000 } as const;

/**
 * The mode chmod would give a path of mode `mode` for the symbolic `symbolic` (validated with
 * isSymbolicMode): clauses apply left to right, each to the mode the previous one left. `X` is execute
 * when the path is a directory or some execute bit is set; `=` clears the classes' bits (for a
 * directory GNU chmod keeps setuid/setgid, as here).
 */
export function applySymbolicMode(mode: number, symbolic: string, isDirectory = false): number {
  let result = mode;
  for (const clause of symbolic.split(',')) {
    const whoText = /^[ugoa]+/.exec(clause)?.[0] ?? 'a';
    const classes: Who[] = whoText.includes('a') ? ['u', 'g', 'o'] : ([...new Set(whoText)] as Who[]);
    for (const [, op, perms] of clause.slice(whoText.length).matchAll(/([-+=])([ugo]|[rwxXst]*)/g)) {
      let bits = 0;
      if (/^[ugo]$/.test(perms)) {
        const copied = (result >> CLASS_SHIFT[perms as Who]) & 0o7;
        for (const c of classes) bits |= copied << CLASS_SHIFT[c];
      } else {
        for (const perm of perms) {
          for (const c of classes) {
            const shift = CLASS_SHIFT[c];
            if (perm === 'r') bits |= 0o4 << shift;
            if (perm === 'w') bits |= 0o2 << shift;
            if (perm === 'x') bits |= 0o1 << shift;
            if (perm === 'X' && (isDirectory || (result & 0o111) !== 0)) bits |= 0o1 << shift;
            if (perm === 's' && c !== 'o') bits |= SPECIAL_BITS[c];
            if (perm === 't' && c === 'o') bits |= SPECIAL_BITS.o;
          }
        }
      }
      if (op === '+') result |= bits;
      else if (op === '-') result &= ~bits;
      else {
        let cleared = 0;
        for (const c of classes) {
          cleared |= 0o7 << CLASS_SHIFT[c];
          if (!isDirectory || c === 'o') cleared |= SPECIAL_BITS[c];
        }
        result = (result & ~cleared) | bits;
      }
    }
  }
  return result & 0o7777;
}
