/**
 * authorizedKey({ user, key, keyOptions?, exclusive?, state?, path?, manageDir? }): SSH public keys in
 * a user's authorized_keys (Ansible's ansible.posix.authorized_key).
 *
 * `key` is one key line or several (a list, or lines of one string: what a `.pub` file or GitHub's
 * `/<user>.keys` holds). A key is known by its type and its base64 blob: with `state: 'present'` a key
 * already there with other options or another comment is rewritten in place, a missing one is appended;
 * `absent` removes the lines of these keys; `exclusive: true` leaves only the given keys (comments and
 * other keys are dropped). `keyOptions` (`no-port-forwarding,from="10.0.0.0/8"`) go before every key.
 *
 * The file is `<home>/.ssh/authorized_keys` (the home from the host's passwd) unless `path` is given;
 * with `manageDir` (default true) its directory is created 0700 and owned by the user (an existing one is
 * brought to that), and the file is 0600 owned by the user and their primary group, as sshd's
 * StrictModes wants. The plan is computed on the controller from the file's content; the write is the
 * engine's atomic one.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import type { Plan, ProbeResult, Step } from '../engine/types.js';
import { quote, sh, words } from '../util/shell.js';
import { writeStep } from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import {
  attributeChanges,
  chmodArgument,
  describeType,
  fileStateProbeOf,
  parseFileState,
  unreadableProbe,
} from './file-state.js';
import { joinLines, splitLines } from './lineinfile.js';
import { absolutePath, accountName, flag, presence, says } from './options.js';
import { decodeBase64, decodeBase64Text, joinReasons, MARKER_PREFIX, markedLines } from './probe-output.js';

const MARKER = `${MARKER_PREFIX}authorized-key`;
const FILE_MODE = '0600';
const DIR_MODE = '0700';

const keyText = says((got) => `key must be an SSH public key line or a list of them, got ${got}`);

const options = z.strictObject({
  /** The account whose keys these are (it must exist). */
  user: accountName('user', 'user'),
  /** One key line, several lines, or a list of them. */
  key: z.union([z.string(keyText), z.array(z.string(keyText), keyText)], keyText),
  /** sshd options put before every key (`no-agent-forwarding,from="10.0.0.0/8"`). */
  keyOptions: z
    .string(says((got) => `keyOptions must be one line of sshd key options, got ${got}`))
    .regex(/^[^\n\r\0]+$/, { error: 'keyOptions must be one line of sshd key options' })
    .optional(),
  /** Only the given keys remain in the file. */
  exclusive: flag('exclusive').default(false),
  state: presence.default('present'),
  /** The authorized_keys file; default `<home>/.ssh/authorized_keys`. */
  path: absolutePath('path').optional(),
  /** Create the file's directory 0700, owned by the user (default true). */
  manageDir: flag('manageDir').default(true),
});

export type AuthorizedKeyOptions = z.input<typeof options>;

/** A key line: its options, type, base64 blob and comment. */
export interface KeyLine {
  options?: string;
  type: string;
  blob: string;
  comment?: string;
}

/**
 * The key of an authorized_keys line, or undefined for a comment, a blank or an unreadable line. The
 * type is the word right before the blob (every key blob starts with `AAAA`); what is before is options.
 */
export function parseKeyLine(line: string): KeyLine | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const found = /(?:^|\s)((?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+)\s+(AAAA[A-Za-z0-9+/]+={0,3})(?:\s+(.*))?$/.exec(
    trimmed,
  );
  if (!found) return undefined;
  const options = trimmed.slice(0, found.index).trim();
  return {
    ...(options !== '' ? { options } : {}),
    type: found[1],
    blob: found[2],
    ...(found[3] !== undefined && found[3].trim() !== '' ? { comment: found[3].trim() } : {}),
  };
}

export function formatKeyLine(key: KeyLine): string {
  return [key.options, key.type, key.blob, key.comment].filter((part) => part !== undefined).join(' ');
}

const identity = (key: KeyLine) => `${key.type} ${key.blob}`;

/**
 * The new lines of the file from its current lines: the wanted keys present (in place when already
 * there) or absent; with `exclusive`, only the wanted keys.
 */
export function editKeys(
  lines: string[],
  wanted: KeyLine[],
  opts: { state: 'present' | 'absent'; exclusive: boolean },
): { lines: string[]; reasons: string[] } {
  const wantedIds = new Map(wanted.map((key) => [identity(key), formatKeyLine(key)]));
  if (opts.state === 'absent') {
    const kept = lines.filter((line) => {
      const key = parseKeyLine(line);
      return key === undefined || !wantedIds.has(identity(key));
    });
    const removed = lines.length - kept.length;
    return { lines: kept, reasons: removed > 0 ? [`removes ${plural(removed, 'key')}`] : [] };
  }
  const reasons: string[] = [];
  const seen = new Set<string>();
  let rewritten = 0;
  let dropped = 0;
  const edited: string[] = [];
  for (const line of lines) {
    const key = parseKeyLine(line);
    const wantedLine = key !== undefined ? wantedIds.get(identity(key)) : undefined;
    if (key !== undefined && wantedLine !== undefined && !seen.has(identity(key))) {
      seen.add(identity(key));
      if (line !== wantedLine) rewritten++;
      edited.push(wantedLine);
    } else if (opts.exclusive) {
      if (line.trim() !== '') dropped++;
    } else {
      edited.push(line);
    }
  }
  const missing = [...wantedIds].filter(([id]) => !seen.has(id)).map(([, line]) => line);
  edited.push(...missing);
  if (missing.length > 0) reasons.push(`adds ${plural(missing.length, 'key')}`);
  if (rewritten > 0) reasons.push(`${plural(rewritten, 'key')} with other options or comment`);
  if (dropped > 0) reasons.push(`removes ${plural(dropped, 'other line')}`);
  return { lines: edited, reasons };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count > 1 ? 's' : ''}`;
}

interface AuthorizedKeySpec {
  label: string;
  user: string;
  keys: KeyLine[];
  state: 'present' | 'absent';
  exclusive: boolean;
  path?: string;
  manageDir: boolean;
}

function prepare(opts: z.output<typeof options>, { fail, label }: PrepareContext): AuthorizedKeySpec {
  const lines = (Array.isArray(opts.key) ? opts.key : [opts.key]).flatMap((text) => splitLines(text));
  const keys: KeyLine[] = [];
  for (const line of lines) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const key = parseKeyLine(line);
    if (key === undefined) {
      const shown = line.length > 40 ? `${line.slice(0, 40)}…` : line;
      return fail(
        'key',
        `key is not an SSH public key line (type, base64 key, comment): ${JSON.stringify(shown)}`,
      );
    }
    keys.push(opts.keyOptions !== undefined ? { ...key, options: opts.keyOptions } : key);
  }
  if (keys.length === 0) fail('key', 'key holds no SSH public key');
  return {
    label,
    user: opts.user,
    keys,
    state: opts.state,
    exclusive: opts.exclusive,
    path: opts.path,
    manageDir: opts.manageDir,
  };
}

function probe({ user, path }: AuthorizedKeySpec): string {
  return [
    sh`ak_u=${user}`,
    `ak_e=$(getent passwd "$ak_u") || { echo ${quote(`${MARKER} no-user`)}; exit 0; }`,
    `ak_h=$(printf '%s' "$ak_e" | cut -d: -f6)`,
    `printf '%s %s %s %s\\n' ${quote(`${MARKER} user`)} "$(printf '%s' "$ak_e" | cut -d: -f3)" "$(printf '%s' "$ak_e" | cut -d: -f4)" "$(printf '%s' "$ak_h" | base64 -w0)"`,
    path !== undefined ? sh`ak_f=${path}` : 'ak_f="$ak_h/.ssh/authorized_keys"',
    'ak_d=$(dirname -- "$ak_f")',
    fileStateProbeOf('"$ak_d"', { key: 'dir' }),
    fileStateProbeOf('"$ak_f"', { key: 'file' }),
    `if [ -f "$ak_f" ] && [ ! -L "$ak_f" ]; then ak_c=$(base64 -w0 < "$ak_f") && printf '%s %s\\n' ${quote(`${MARKER} content`)} "$ak_c"; fi`,
  ].join('\n');
}

function plan(spec: AuthorizedKeySpec, result: ProbeResult): Plan {
  const { label, user } = spec;
  const fields = markedLines(result.stdout, MARKER);
  if (fields.some(([status]) => status === 'no-user')) {
    return {
      steps: [],
      error: `${label}: user "${user}" does not exist on the host: create it with a user() task before this one`,
    };
  }
  const account = fields.find(([status]) => status === 'user');
  const home = decodeBase64(account?.[3]);
  const dirState = parseFileState(result.stdout, 'dir');
  const fileState = parseFileState(result.stdout, 'file');
  if (!account || home === undefined || !dirState || !fileState) {
    return {
      steps: [],
      error: unreadableProbe(spec.path ?? `~${user}/.ssh/authorized_keys`, result.exitCode),
    };
  }
  const gid = account[2];
  const path = spec.path ?? posix.join(home, '.ssh', 'authorized_keys');
  const dir = posix.dirname(path);
  const owner = { owner: user, group: gid };

  let before = '';
  if (fileState.type === 'file') {
    const content = fields.find(([status]) => status === 'content')?.[1] ?? '';
    const text = decodeBase64Text(content);
    if (text === undefined) return { steps: [], error: `${label}: ${path} is not UTF-8 text` };
    before = text;
  } else if (fileState.type !== 'absent') {
    return { steps: [], error: `${label}: ${path} is ${describeType(fileState.type)}, not a file` };
  }
  if (spec.state === 'absent' && fileState.type === 'absent') return { steps: [] };

  const steps: Step[] = [];
  const reasons: string[] = [];
  if (spec.manageDir && spec.state === 'present') {
    if (dirState.type === 'absent') {
      steps.push({
        kind: 'run',
        command: `${words('mkdir', '-p', '-m', chmodArgument(DIR_MODE), dir)} && ${words('chown', `${user}:${gid}`, dir)}`,
      });
      reasons.push(`${dir} is missing`);
    } else if (dirState.type !== 'dir') {
      return { steps: [], error: `${label}: ${dir} is ${describeType(dirState.type)}, not a directory` };
    } else {
      const changes = attributeChanges(dir, dirState, { ...owner, mode: DIR_MODE });
      steps.push(...changes.steps);
      reasons.push(...changes.reasons.map((reason) => `${dir} ${reason}`));
    }
  }

  const edit = editKeys(splitLines(before), spec.keys, spec);
  const after = joinLines(edit.lines);
  if (fileState.type === 'absent' || after !== before) {
    steps.push(writeStep({ path, content: after, mode: FILE_MODE, ...owner }));
    reasons.push(...(fileState.type === 'absent' ? [`${path} is missing`] : []), ...edit.reasons);
    return { steps, reason: joinReasons(reasons), diff: { path, after } };
  }
  if (fileState.type === 'file') {
    const changes = attributeChanges(path, fileState, { ...owner, mode: FILE_MODE });
    steps.push(...changes.steps);
    reasons.push(...changes.reasons);
  }
  return { steps, reason: joinReasons(reasons) };
}

export const authorizedKey = defineTask({
  type: 'authorizedKey',
  options,
  subject: 'user',
  label: (user) => `authorizedKey ${user}`,
  prepare,
  probe,
  plan,
});
