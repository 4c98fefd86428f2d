/**
 * lineinfile({ path, line, regexp?, state?, insertAfter? | insertBefore?, backrefs?, create?, owner?,
 * group?, mode?, validate? }): one line of a (small, text) config file is present or absent. Ansible's
 * `lineinfile` module.
 *
 * - present, no regexp: `line` is in the file, or it is inserted after the last line matching
 *   `insertAfter` (an extended regexp; at the end of the file when nothing matches or `insertAfter` is
 *   'EOF', the default).
 * - present, with regexp: the last line matching `regexp` is replaced by `line`; when none matches,
 *   `line` is inserted as above unless it is already in the file. `line` should match `regexp`, or each
 *   run replaces another line.
 * - `insertBefore` instead of `insertAfter`: before the last line matching it, or at the top ('BOF').
 * - backrefs: `line` may hold `\1`…`\9` and `\g<N>`, filled from the regexp's groups on the last line
 *   matching `regexp`, which it replaces; when no line matches, the file is left as it is (Ansible). The
 *   expansion is `sed -E` on the host (the regexp's groups as grep numbers them), its script on stdin.
 * - absent: every line matching `regexp` (or equal to `line` when no regexp is given) is removed.
 *
 * How: regexps are POSIX extended regexps evaluated by `grep -E` on the host only (never re-interpreted
 * in JavaScript, so `[[:space:]]` means what grep says). The probe greps the file, which is cheap, and
 * only when a change is needed prints the file (base64) with the line numbers grep found. plan() then
 * computes the new content purely in TypeScript and returns a `write` step keeping the file's owner,
 * group and mode: the engine's atomic write applies it. A file given as a symbolic link is edited at its
 * resolved path, the link stays. `create: true` creates a missing file (0644) holding just `line`, and its missing directories.
 *
 * `owner`, `group` and `mode` are applied like copy's (chown/chmod when only they differ, with the
 * write otherwise); `validate` runs on the new content before it replaces the file (`%s` is its path).
 */
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { quote, sh } from '../util/shell.js';
import { DEFAULT_FILE_MODE, parentDirectoriesStep, validateCommand, writeStep } from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import {
  type AttributeChanges,
  accountsProbe,
  attributeChanges,
  currentGroup,
  currentOwner,
  type DesiredAttributes,
  fileStateProbeOf,
  formatMode,
  missingAccountError,
  parseFileState,
  unreadableProbe,
} from './file-state.js';
import { absolutePath, attributes, flag, oneOf } from './options.js';
import { decodeBase64, decodeBase64Text, joinReasons, MARKER_PREFIX, markedLines } from './probe-output.js';

/** An extended regexp given to grep -E on the host: one line. */
const regexp = (option: string) => {
  const message = { error: `${option} must be a non-empty single-line regexp` };
  return z.string(message).regex(/^[^\n\0]+$/, message);
};

const options = z.strictObject({
  /** Absolute path of the file. */
  path: absolutePath(),
  state: oneOf('state', ['present', 'absent']).default('present'),
  /** The whole line, without newline. Required unless state is 'absent' with a regexp. */
  line: z
    .string({ error: 'line must be a single line of text (no newline)' })
    .regex(/^[^\n\0]*$/, { error: 'line must be a single line of text (no newline)' })
    .optional(),
  /** Extended regexp (grep -E) selecting the line to replace (present) or the lines to remove (absent). */
  regexp: regexp('regexp').optional(),
  /** Extended regexp: insert after the last line matching it; 'EOF' (default) appends. */
  insertAfter: regexp('insertAfter').optional(),
  /** Extended regexp: insert before the last line matching it; 'BOF' inserts at the top. */
  insertBefore: regexp('insertBefore').optional(),
  /** `line` holds \1…\9 / \g<N> filled from `regexp`'s groups; no match leaves the file unchanged. */
  backrefs: flag('backrefs').default(false),
  /** Create the file when it is missing (state present only). Default false: a missing file is an error. */
  create: flag('create').default(false),
  /** Owner, group, and mode as an octal string ('0644' or '644'). */
  ...attributes,
  /** Command run on the new content before it replaces the file; `%s` is its path. */
  validate: validateCommand.optional(),
});

export type LineInFileOptions = z.input<typeof options>;
type LineInFile = z.output<typeof options>;

const MARKER = `${MARKER_PREFIX}lineinfile`;
const REAL_PATH_MARKER = `${MARKER_PREFIX}lineinfile-real`;
const MATCHES_MARKER = `${MARKER_PREFIX}lineinfile-matches`;
const AFTER_MARKER = `${MARKER_PREFIX}lineinfile-after`;
const BEFORE_MARKER = `${MARKER_PREFIX}lineinfile-before`;
const EXPANDED_MARKER = `${MARKER_PREFIX}lineinfile-expanded`;

interface LineInFileSpec {
  path: string;
  line?: string;
  regexp?: string;
  state: 'present' | 'absent';
  insertAfter?: string;
  insertBefore?: string;
  backrefs?: boolean;
  owner?: string;
  group?: string;
  mode?: string;
}

/** The sed script's delimiter: a control character no config line holds (prepare refuses it). */
const SED_DELIMITER = '\x01';

/**
 * `line` of a backrefs task as a sed replacement: `\1`…`\9` and `\\` are sed's too, `\g<N>` (Python's
 * spelling, which Ansible users write) becomes `\N` (`\g<0>`: `&`), a literal `&` is escaped. Any other
 * escape is a problem (POSIX regexps have no named groups; Python's `\n` would make two lines).
 */
export function sedReplacement(line: string): { replacement: string } | { problem: string } {
  let replacement = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '&') {
      replacement += '\\&';
      continue;
    }
    if (c !== '\\') {
      replacement += c;
      continue;
    }
    const rest = line.slice(i + 1);
    const group = /^(?:([1-9])|g<(\d+)>)/.exec(rest);
    if (rest.startsWith('\\')) {
      replacement += '\\\\';
      i += 1;
    } else if (group) {
      const n = Number(group[1] ?? group[2]);
      if (n > 9) return { problem: `backrefs: \\g<${n}>: sed numbers at most 9 groups` };
      replacement += n === 0 ? '&' : `\\${n}`;
      i += group[0].length;
    } else {
      return {
        problem: `backrefs: line may only use the escapes \\1…\\9, \\g<N> (N up to 9) and \\\\, got \\${rest.slice(0, 1) || '(end of line)'}`,
      };
    }
  }
  return { replacement };
}

/**
 * The sed -E script printing, for each line matching `regexp`, the whole line replaced by `line` with
 * its groups filled in (Ansible's `match.expand(line)`): the match is swapped for the expansion between
 * two newlines, then only what lies between them is kept (a line holds no newline of its own).
 */
export function backrefsScript(regexp: string, replacement: string): string {
  const d = SED_DELIMITER;
  return [`s${d}${regexp}${d}\\n${replacement}\\n${d}`, 'T', 's/.*\\n(.*)\\n.*/\\1/p'].join('\n');
}

const hasAttributes = (spec: LineInFileSpec) =>
  spec.owner !== undefined || spec.group !== undefined || spec.mode !== undefined;

/** Shell that sets li_change=1 when the file "$li_p" needs editing. */
function changeTest(spec: LineInFileSpec): string[] {
  const exactCount = `li_n=$(${patternFrom('li_l')} grep -c -a -x -F -f - -- "$li_p")`;
  if (spec.state === 'present' && spec.regexp === undefined) {
    return [exactCount, `[ "\${li_n:-0}" -gt 0 ] || li_change=1`];
  }
  if (spec.backrefs) {
    // No match: nothing to do (Ansible). A match: the line wanted is its expansion.
    return [
      `li_m=$(${patternFrom('li_r')} grep -n -a -E -f - -- "$li_p" | tail -n 1)`,
      `if [ -n "$li_m" ]; then li_l=$(${patternFrom('li_s')} sed -n -E -f - -- "$li_p" | tail -n 1)`,
      `  [ "\${li_m#*:}" = "$li_l" ] || li_change=1; fi`,
    ];
  }
  if (spec.state === 'present') {
    return [
      `li_m=$(${patternFrom('li_r')} grep -n -a -E -f - -- "$li_p" | tail -n 1)`,
      `if [ -n "$li_m" ]; then [ "\${li_m#*:}" = "$li_l" ] || li_change=1`,
      `else ${exactCount}; [ "\${li_n:-0}" -gt 0 ] || li_change=1; fi`,
    ];
  }
  if (spec.regexp !== undefined) {
    return [
      `li_n=$(${patternFrom('li_r')} grep -c -a -E -f - -- "$li_p")`,
      `[ "\${li_n:-0}" -gt 0 ] && li_change=1`,
    ];
  }
  return [exactCount, `[ "\${li_n:-0}" -gt 0 ] && li_change=1`];
}

/**
 * The start of a pipeline giving grep the pattern in `variable` on stdin (`grep -f -`): a line (which may
 * hold a secret) or a regexp never becomes a process argument, where `ps` on the host would show it.
 * `printf` is a shell builtin: no process, no argv.
 */
function patternFrom(variable: string): string {
  return `printf '%s\\n' "$${variable}" |`;
}

/** Shell checking a regexp against /dev/null: grep exits 2 on a bad regexp, and says why. */
function regexpCheck(variable: string, option: string): string {
  return [
    `li_e=$(${patternFrom(variable)} grep -E -f - /dev/null 2>&1 >/dev/null)`,
    `if [ $? -ge 2 ]; then li_status=bad; printf '%s %s %s\\n' ${quote(`${MARKER} bad-regexp`)} ${option} "$(printf '%s' "$li_e" | base64 -w0)"; fi`,
  ].join('\n');
}

/** Shell checking a backrefs sed script against /dev/null: sed exits non-zero (a group too many, say). */
function sedScriptCheck(): string {
  return [
    `li_e=$(${patternFrom('li_s')} sed -n -E -f - /dev/null 2>&1 >/dev/null)`,
    `if [ $? -ne 0 ]; then li_status=bad; printf '%s %s\\n' ${quote(`${MARKER} bad-backrefs`)} "$(printf '%s' "$li_e" | base64 -w0)"; fi`,
  ].join('\n');
}

/** True when `insert` is a regexp to grep for ('EOF' / 'BOF' are positions). */
const insertRegexp = (insert: string | undefined, position: 'EOF' | 'BOF'): insert is string =>
  insert !== undefined && insert !== position;

function buildProbe(spec: LineInFileSpec): string {
  const insertAfterRegexp = insertRegexp(spec.insertAfter, 'EOF');
  const insertBeforeRegexp = insertRegexp(spec.insertBefore, 'BOF');
  const withAttributes = hasAttributes(spec);
  const lines = [sh`li_p=${spec.path}`, 'li_status=', 'li_change=0'];
  if (spec.line !== undefined && !spec.backrefs) lines.push(sh`li_l=${spec.line}`);
  if (spec.regexp !== undefined) lines.push(sh`li_r=${spec.regexp}`, regexpCheck('li_r', 'regexp'));
  if (spec.backrefs) {
    const expansion = sedReplacement(spec.line as string);
    if ('problem' in expansion) throw new Error(expansion.problem); // prepare refused it already
    const script = backrefsScript(spec.regexp as string, expansion.replacement);
    lines.push(sh`li_s=${script}`, 'if [ -z "$li_status" ]; then', sedScriptCheck(), 'fi');
  }
  if (insertAfterRegexp)
    lines.push(sh`li_a=${spec.insertAfter as string}`, regexpCheck('li_a', 'insertAfter'));
  if (insertBeforeRegexp)
    lines.push(sh`li_b=${spec.insertBefore as string}`, regexpCheck('li_b', 'insertBefore'));
  const accounts = accountsProbe(spec);
  if (accounts) lines.push(accounts);
  const indent = (fragment: string, by: string) => fragment.split('\n').map((l) => `${by}${l}`);
  lines.push(
    // Edit the file a link points to, not the link.
    'if [ -z "$li_status" ] && [ -L "$li_p" ]; then',
    '  li_p=$(readlink -f -- "$li_p")',
    `  if [ -z "$li_p" ]; then li_status=dangling; echo ${quote(`${MARKER} dangling`)};`,
    `  else printf '%s %s\\n' ${quote(REAL_PATH_MARKER)} "$(printf '%s' "$li_p" | base64 -w0)"; fi`,
    'fi',
    'if [ -n "$li_status" ]; then :',
    `elif [ ! -e "$li_p" ]; then echo ${quote(`${MARKER} absent`)}`,
    `elif [ ! -f "$li_p" ]; then echo ${quote(`${MARKER} not-a-file`)}`,
    'else',
    ...changeTest(spec).map((l) => `  ${l}`),
    // With attributes to compare, the file's state is needed whether or not the content changes.
    ...(withAttributes ? indent(fileStateProbeOf('"$li_p"'), '  ') : []),
    '  if [ "$li_change" = 1 ]; then',
    ...(withAttributes ? [] : indent(fileStateProbeOf('"$li_p"'), '    ')),
  );
  if (spec.regexp !== undefined) {
    lines.push(
      `    printf '%s %s\\n' ${quote(MATCHES_MARKER)} "$(${patternFrom('li_r')} grep -n -a -E -f - -- "$li_p" | cut -d: -f1 | tr '\\n' ' ')"`,
    );
  }
  if (insertAfterRegexp) {
    lines.push(
      `    printf '%s %s\\n' ${quote(AFTER_MARKER)} "$(${patternFrom('li_a')} grep -n -a -E -f - -- "$li_p" | tail -n 1 | cut -d: -f1)"`,
    );
  }
  if (insertBeforeRegexp) {
    lines.push(
      `    printf '%s %s\\n' ${quote(BEFORE_MARKER)} "$(${patternFrom('li_b')} grep -n -a -E -f - -- "$li_p" | tail -n 1 | cut -d: -f1)"`,
    );
  }
  if (spec.backrefs) {
    lines.push(`    printf '%s %s\\n' ${quote(EXPANDED_MARKER)} "$(printf '%s' "$li_l" | base64 -w0)"`);
  }
  lines.push(
    // The content goes last, on its own line: base64 keeps it on one line whatever it holds.
    `    printf '%s ' ${quote(`${MARKER} change`)}; base64 -w0 < "$li_p"; echo`,
    `  else echo ${quote(`${MARKER} ok`)}; fi`,
    'fi',
  );
  return lines.join('\n');
}

/** Splits file text into lines the way grep numbers them (a final newline does not start a line). */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export function joinLines(lines: string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** Line numbers (1-based) printed after `marker`. */
function lineNumbers(stdout: string, marker: string): number[] {
  const fields = markedLines(stdout, marker).at(-1) ?? [];
  return fields.filter((f) => /^\d+$/.test(f)).map(Number);
}

/** Where a missing line goes: the last line matching insertAfter / insertBefore (1-based), as grep said. */
export interface InsertMatches {
  after?: number;
  before?: number;
}

/**
 * The new lines of the file, computed from its lines and the line numbers grep reported (1-based), and
 * what changed. `reason` is undefined when nothing changes. With backrefs, `spec.line` is the expansion.
 */
export function editLines(
  spec: LineInFileSpec,
  lines: string[],
  regexpMatches: number[],
  insert: InsertMatches = {},
): { lines: string[]; reason?: string } {
  if (spec.state === 'absent') {
    const remove = new Set(
      spec.regexp !== undefined
        ? regexpMatches
        : lines.flatMap((l, index) => (l === spec.line ? [index + 1] : [])),
    );
    const kept = lines.filter((_, index) => !remove.has(index + 1));
    const removed = lines.length - kept.length;
    return {
      lines: kept,
      reason: removed > 0 ? `removes ${removed} line${removed > 1 ? 's' : ''}` : undefined,
    };
  }
  const line = spec.line as string;
  const lastMatch = regexpMatches.at(-1);
  if (lastMatch !== undefined && lastMatch <= lines.length) {
    if (lines[lastMatch - 1] === line) return { lines };
    const edited = [...lines];
    edited[lastMatch - 1] = line;
    return { lines: edited, reason: `line ${lastMatch} differs` };
  }
  // Backrefs without a match leave the file as it is (Ansible).
  if (spec.backrefs || lines.includes(line)) return { lines };
  let insertAt = lines.length;
  if (spec.insertBefore === 'BOF') insertAt = 0;
  else if (insert.before !== undefined && insert.before <= lines.length) insertAt = insert.before - 1;
  else if (insert.after !== undefined && insert.after <= lines.length) insertAt = insert.after;
  const edited = [...lines];
  edited.splice(insertAt, 0, line);
  return { lines: edited, reason: 'line is missing' };
}

function prepare(opts: LineInFile, { fail }: PrepareContext): LineInFile {
  if (opts.line === undefined && !(opts.state === 'absent' && opts.regexp !== undefined)) {
    fail('line', 'line is required (only state absent with a regexp can do without)');
  }
  if (opts.insertAfter !== undefined && opts.insertBefore !== undefined) {
    fail('insertBefore', 'give insertAfter or insertBefore, not both');
  }
  if (opts.backrefs) {
    if (opts.state !== 'present') fail('backrefs', 'backrefs works with state present only');
    if (opts.regexp === undefined) fail('backrefs', 'backrefs needs a regexp (its groups fill line)');
    if (opts.insertAfter !== undefined || opts.insertBefore !== undefined) {
      fail(
        'backrefs',
        'backrefs never inserts a line, so insertAfter / insertBefore cannot go with it',
        'without a match of regexp the file is left as it is',
      );
    }
    const text = `${opts.regexp}${opts.line}`;
    if (text.includes(SED_DELIMITER)) fail('backrefs', 'regexp and line must not hold the character \\x01');
    const expansion = sedReplacement(opts.line as string);
    if ('problem' in expansion) fail('line', expansion.problem);
  }
  return opts;
}

/** The plan when the content is right: chown/chmod, or nothing. */
function attributesOnly(attributes: AttributeChanges): Plan {
  if (attributes.steps.length === 0) return { steps: [] };
  return { steps: attributes.steps, reason: joinReasons(attributes.reasons) };
}

function plan(spec: LineInFile, probe: ProbeResult): Plan {
  const { path, state, create, validate } = spec;
  const desired: DesiredAttributes = { owner: spec.owner, group: spec.group, mode: spec.mode };
  const label = `lineinfile ${path}`;
  const accountError = missingAccountError(probe.stdout, desired);
  if (accountError) return { steps: [], error: `${label}: ${accountError}` };
  const [status, detail, message] = markedLines(probe.stdout, MARKER).at(-1) ?? [];
  const realPath = decodeBase64(markedLines(probe.stdout, REAL_PATH_MARKER).at(-1)?.[0]) ?? path;
  switch (status) {
    case 'ok': {
      if (!hasAttributes(spec)) return { steps: [] };
      const fileState = parseFileState(probe.stdout);
      if (fileState?.type !== 'file') return { steps: [], error: unreadableProbe(path, probe.exitCode) };
      return attributesOnly(attributeChanges(realPath, fileState, desired));
    }
    case 'bad-regexp':
      return {
        steps: [],
        error: `${label}: ${detail} is not a valid extended regexp: ${decodeBase64(message) ?? 'grep refused it'}`,
      };
    case 'bad-backrefs':
      return {
        steps: [],
        error: `${label}: line cannot be filled from regexp's groups: ${decodeBase64(detail) ?? 'sed refused it'}`,
      };
    case 'dangling':
      return { steps: [], error: `${label}: ${path} is a symbolic link whose target cannot be resolved` };
    case 'not-a-file':
      return { steps: [], error: `${label}: ${path} is not a regular file` };
    case 'absent': {
      if (state === 'absent') return { steps: [] };
      if (!create) {
        return { steps: [], error: `${label}: ${path} does not exist (set create: true to create it)` };
      }
      // Backrefs in an empty file match nothing: the file is left missing (Ansible).
      if (spec.backrefs) return { steps: [] };
      const content = joinLines([spec.line as string]);
      return {
        steps: [
          parentDirectoriesStep(realPath),
          writeStep({
            path: realPath,
            content,
            mode: desired.mode ?? DEFAULT_FILE_MODE,
            owner: desired.owner,
            group: desired.group,
            validate,
          }),
        ],
        reason: 'file is missing',
        diff: { path: realPath, after: content },
      };
    }
    case 'change':
      break;
    default:
      return { steps: [], error: unreadableProbe(path, probe.exitCode) };
  }

  const before = decodeBase64Text(detail ?? '');
  if (before === undefined) return { steps: [], error: `${label}: ${path} is not UTF-8 text` };
  const fileState = parseFileState(probe.stdout);
  if (fileState?.type !== 'file') return { steps: [], error: unreadableProbe(path, probe.exitCode) };
  let wanted: LineInFileSpec = spec;
  if (spec.backrefs) {
    const expanded = decodeBase64Text(markedLines(probe.stdout, EXPANDED_MARKER).at(-1)?.[0] ?? '');
    if (expanded === undefined) return { steps: [], error: unreadableProbe(path, probe.exitCode) };
    wanted = { ...spec, line: expanded };
  }
  const insert = {
    after: lineNumbers(probe.stdout, AFTER_MARKER).at(-1),
    before: lineNumbers(probe.stdout, BEFORE_MARKER).at(-1),
  };
  const edit = editLines(wanted, splitLines(before), lineNumbers(probe.stdout, MATCHES_MARKER), insert);
  const attributes = attributeChanges(realPath, fileState, desired);
  if (edit.reason === undefined) return attributesOnly(attributes);
  const after = joinLines(edit.lines);
  return {
    steps: [
      writeStep({
        path: realPath,
        content: after,
        mode: desired.mode ?? formatMode(fileState.mode),
        owner: desired.owner ?? currentOwner(fileState),
        group: desired.group ?? currentGroup(fileState),
        validate,
      }),
    ],
    reason: joinReasons([edit.reason, ...attributes.reasons]),
    diff: { path: realPath, after },
  };
}

export const lineinfile = defineTask({
  type: 'lineinfile',
  options,
  subject: 'path',
  label: (path) => `lineinfile ${path}`,
  prepare,
  probe: buildProbe,
  plan,
});
