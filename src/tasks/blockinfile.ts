/**
 * blockinfile({ path, block, marker?, markerBegin?, markerEnd?, insertAfter?, insertBefore?, state?,
 * create?, owner?, group?, mode?, validate? }): a block of lines between two marker lines in a text file
 * (Ansible's ansible.builtin.blockinfile).
 *
 * The markers are `marker` with `{mark}` replaced by `markerBegin` / `markerEnd` (default
 * `# {mark} VERDANDI MANAGED BLOCK`, BEGIN and END). When both marker lines are in the file, the lines
 * from one to the other are replaced by the block; otherwise the block goes after the last line matching
 * `insertAfter` or before the last line matching `insertBefore` (Python-style regexps, see
 * ./python-regexp.ts), or at the end (`EOF`, the default) or the start (`BOF`) of the file, also when
 * the regexp matches no line. `state: 'absent'`, or an empty block, removes the block and its markers.
 * A missing file is an error unless `create` (then it holds just the block; its missing directories are made).
 *
 * How: as replace, computed on the controller from the content the probe read and written atomically,
 * keeping the file's attributes unless owner/group/mode are given (./text-edit.ts).
 */
import { z } from 'zod';
import { validateCommand } from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import { joinLines, splitLines } from './lineinfile.js';
import { absolutePath, attributes, flag, presence, rule, says } from './options.js';
import { compilePattern, PatternError } from './python-regexp.js';
import { type TextFileSpec, textFilePlan, textFileProbe } from './text-edit.js';

const DEFAULT_MARKER = '# {mark} VERDANDI MANAGED BLOCK';

const oneLine = (option: string) => {
  const message = says((got) => `${option} must be a non-empty single line of text, got ${got}`);
  return z.string(message).regex(/^[^\n\r\0]+$/, message);
};

const options = z.strictObject({
  /** Absolute path of the file. */
  path: absolutePath(),
  /** The lines between the markers (a final newline is optional). Empty: the block is removed. */
  block: z
    .string(says((got) => `block must be text, got ${got}`))
    .regex(/^[^\0]*$/, { error: 'block must not contain NUL characters' })
    .default(''),
  /** The marker lines' template: `{mark}` becomes markerBegin, then markerEnd. */
  marker: oneLine('marker')
    .superRefine(
      rule((marker: string) =>
        marker.includes('{mark}')
          ? undefined
          : {
              problem: `marker must contain {mark}, got ${JSON.stringify(marker)}`,
              hint: 'without it the two marker lines are the same line',
            },
      ),
    )
    .default(DEFAULT_MARKER),
  markerBegin: oneLine('markerBegin').default('BEGIN'),
  markerEnd: oneLine('markerEnd').default('END'),
  /** Regexp, 'EOF' (default) or 'BOF': a new block goes after the last line matching it. */
  insertAfter: oneLine('insertAfter').optional(),
  /** Regexp or 'BOF': a new block goes before the last line matching it. */
  insertBefore: oneLine('insertBefore').optional(),
  state: presence.default('present'),
  /** Create the file when it is missing (default false: a missing file is an error). */
  create: flag('create').default(false),
  ...attributes,
  validate: validateCommand.optional(),
});

export type BlockInFileOptions = z.input<typeof options>;

/** Where a block goes when its markers are not in the file. */
export type Insertion = { at: 'EOF' | 'BOF' } | { after: RegExp } | { before: RegExp };

export interface Block {
  begin: string;
  end: string;
  /** The block's lines, markers excluded; none: the block must be absent. */
  lines: string[];
  insertion: Insertion;
}

/** The new lines of the file: the block (with its markers) in place, or removed when it has no lines. */
export function placeBlock(lines: string[], block: Block): string[] {
  const wanted = block.lines.length > 0 ? [block.begin, ...block.lines, block.end] : [];
  const begin = lines.lastIndexOf(block.begin);
  const end = lines.lastIndexOf(block.end);
  const edited = [...lines];
  let at: number;
  if (begin !== -1 && end !== -1) {
    // Ansible's rule: the lines from the first of the two markers to the other are the block.
    at = Math.min(begin, end);
    edited.splice(at, Math.abs(end - begin) + 1);
  } else if ('at' in block.insertion) {
    at = block.insertion.at === 'BOF' ? 0 : lines.length;
  } else {
    const regexp = 'after' in block.insertion ? block.insertion.after : block.insertion.before;
    let last = -1;
    lines.forEach((line, index) => {
      if (regexp.test(line)) last = index;
    });
    at = last === -1 ? lines.length : 'after' in block.insertion ? last + 1 : last;
  }
  edited.splice(at, 0, ...wanted);
  return edited;
}

function prepare(opts: z.output<typeof options>, { fail }: PrepareContext): TextFileSpec {
  const { path, insertAfter, insertBefore } = opts;
  if (insertAfter !== undefined && insertBefore !== undefined) {
    fail('insertAfter', 'give at most one of insertAfter and insertBefore');
  }
  const compile = (option: 'insertAfter' | 'insertBefore', pattern: string): RegExp => {
    try {
      return compilePattern(pattern, '');
    } catch (error) {
      if (!(error instanceof PatternError)) throw error;
      return fail(option, `${option} is not a valid regexp: ${error.message}`);
    }
  };
  let insertion: Insertion = { at: 'EOF' };
  if (insertBefore === 'BOF' || insertAfter === 'BOF') insertion = { at: 'BOF' };
  else if (insertBefore !== undefined) insertion = { before: compile('insertBefore', insertBefore) };
  else if (insertAfter !== undefined && insertAfter !== 'EOF')
    insertion = { after: compile('insertAfter', insertAfter) };
  const mark = (word: string) => opts.marker.replaceAll('{mark}', word);
  const begin = mark(opts.markerBegin);
  const end = mark(opts.markerEnd);
  if (begin === end) fail('markerEnd', 'markerBegin and markerEnd must differ');
  const block: Block = {
    begin,
    end,
    lines: opts.state === 'present' ? splitLines(opts.block) : [],
    insertion,
  };
  return {
    label: `blockinfile ${path}`,
    path,
    attributes: { owner: opts.owner, group: opts.group, mode: opts.mode },
    validate: opts.validate,
    edit: (before) => {
      if (before === undefined) {
        if (block.lines.length === 0) return undefined;
        if (!opts.create) return { error: `${path} does not exist (set create: true to create it)` };
        return { after: joinLines(placeBlock([], block)), reason: 'file is missing' };
      }
      const after = joinLines(placeBlock(splitLines(before), block));
      if (after === before) return undefined;
      const had = splitLines(before).includes(begin);
      return {
        after,
        reason: block.lines.length === 0 ? 'block removed' : had ? 'block differs' : 'block is missing',
      };
    },
  };
}

export const blockinfile = defineTask({
  type: 'blockinfile',
  options,
  subject: 'path',
  label: (path) => `blockinfile ${path}`,
  prepare,
  probe: textFileProbe,
  plan: textFilePlan,
});
