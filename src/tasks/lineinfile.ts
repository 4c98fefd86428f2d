/**
 * lineinfile({ path, line, regexp?, state?, insertAfter?, create? }): one line of a (small, text)
 * config file is present or absent.
 *
 * - present, no regexp: `line` is in the file, or it is inserted after the last line matching
 *   `insertAfter` (an extended regexp; at the end of the file when nothing matches or `insertAfter` is
 *   'EOF', the default).
 * - present, with regexp: the last line matching `regexp` is replaced by `line`; when none matches,
 *   `line` is inserted as above unless it is already in the file. `line` should match `regexp`, or each
 *   run replaces another line.
 * - absent: every line matching `regexp` (or equal to `line` when no regexp is given) is removed.
 *
 * How: regexps are POSIX extended regexps evaluated by `grep -E` on the host only (never re-interpreted
 * in JavaScript, so `[[:space:]]` means what grep says). The probe greps the file, which is cheap, and
 * only when a change is needed prints the file (base64) with the line numbers grep found. plan() then
 * computes the new content purely in TypeScript and returns a `write` step keeping the file's owner,
 * group and mode: the engine's atomic write applies it. A file given as a symbolic link is edited at its
 * resolved path, the link stays. `create: true` creates a missing file (0644) holding just `line`.
 */
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { quote, sh } from '../util/shell.js';
import { DEFAULT_FILE_MODE, writeStep } from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import {
  currentGroup,
  currentOwner,
  fileStateProbeOf,
  formatMode,
  parseFileState,
  unreadableProbe,
} from './file-state.js';
import { absolutePath, flag, oneOf } from './options.js';
import { decodeBase64, decodeBase64Text, MARKER_PREFIX, markedLines } from './probe-output.js';

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
  /** Create the file when it is missing (state present only). Default false: a missing file is an error. */
  create: flag('create').default(false),
});

export type LineInFileOptions = z.input<typeof options>;
type LineInFile = z.output<typeof options>;

const MARKER = `${MARKER_PREFIX}lineinfile`;
const REAL_PATH_MARKER = `${MARKER_PREFIX}lineinfile-real`;
const MATCHES_MARKER = `${MARKER_PREFIX}lineinfile-matches`;
const AFTER_MARKER = `${MARKER_PREFIX}lineinfile-after`;

interface LineInFileSpec {
  path: string;
  line?: string;
  regexp?: string;
  state: 'present' | 'absent';
  insertAfter?: string;
}

/** Shell that sets li_change=1 when the file "$li_p" needs editing. */
function changeTest(spec: LineInFileSpec): string[] {
  const exactCount = `li_n=$(${patternFrom('li_l')} grep -c -a -x -F -f - -- "$li_p")`;
  if (spec.state === 'present' && spec.regexp === undefined) {
    return [exactCount, `[ "\${li_n:-0}" -gt 0 ] || li_change=1`];
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

function buildProbe(spec: LineInFileSpec): string {
  const insertAfterRegexp = spec.insertAfter !== undefined && spec.insertAfter !== 'EOF';
  const lines = [sh`li_p=${spec.path}`, 'li_status=', 'li_change=0'];
  if (spec.line !== undefined) lines.push(sh`li_l=${spec.line}`);
  if (spec.regexp !== undefined) lines.push(sh`li_r=${spec.regexp}`, regexpCheck('li_r', 'regexp'));
  if (insertAfterRegexp)
    lines.push(sh`li_a=${spec.insertAfter as string}`, regexpCheck('li_a', 'insertAfter'));
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
    '  if [ "$li_change" = 1 ]; then',
    ...fileStateProbeOf('"$li_p"')
      .split('\n')
      .map((l) => `    ${l}`),
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

/**
 * The new lines of the file, computed from its lines and the line numbers grep reported (1-based), and
 * what changed. `reason` is undefined when nothing changes.
 */
export function editLines(
  spec: LineInFileSpec,
  lines: string[],
  regexpMatches: number[],
  insertAfterMatch: number | undefined,
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
  if (lines.includes(line)) return { lines };
  const insertAt =
    insertAfterMatch !== undefined && insertAfterMatch <= lines.length ? insertAfterMatch : lines.length;
  const edited = [...lines];
  edited.splice(insertAt, 0, line);
  return { lines: edited, reason: 'line is missing' };
}

function prepare(opts: LineInFile, { fail }: PrepareContext): LineInFile {
  if (opts.line === undefined && !(opts.state === 'absent' && opts.regexp !== undefined)) {
    fail('line', 'line is required (only state absent with a regexp can do without)');
  }
  return opts;
}

function plan(spec: LineInFile, probe: ProbeResult): Plan {
  const { path, state, create } = spec;
  const label = `lineinfile ${path}`;
  const [status, detail, message] = markedLines(probe.stdout, MARKER).at(-1) ?? [];
  switch (status) {
    case 'ok':
      return { steps: [] };
    case 'bad-regexp':
      return {
        steps: [],
        error: `${label}: ${detail} is not a valid extended regexp: ${decodeBase64(message) ?? 'grep refused it'}`,
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
      const realPath = decodeBase64(markedLines(probe.stdout, REAL_PATH_MARKER).at(-1)?.[0]) ?? path;
      const content = joinLines([spec.line as string]);
      return {
        steps: [writeStep({ path: realPath, content, mode: DEFAULT_FILE_MODE })],
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
  const realPath = decodeBase64(markedLines(probe.stdout, REAL_PATH_MARKER).at(-1)?.[0]) ?? path;
  const insertAfter = lineNumbers(probe.stdout, AFTER_MARKER).at(-1);
  const edit = editLines(spec, splitLines(before), lineNumbers(probe.stdout, MATCHES_MARKER), insertAfter);
  if (edit.reason === undefined) return { steps: [] };
  const after = joinLines(edit.lines);
  return {
    steps: [
      writeStep({
        path: realPath,
        content: after,
        mode: formatMode(fileState.mode),
        owner: currentOwner(fileState),
        group: currentGroup(fileState),
      }),
    ],
    reason: edit.reason,
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
