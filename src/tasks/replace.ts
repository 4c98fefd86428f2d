/**
 * replace({ path, regexp, replace?, after?, before?, owner?, group?, mode?, validate? }): every match of
 * `regexp` in a text file is replaced (Ansible's ansible.builtin.replace).
 *
 * As in Ansible, `regexp` is a Python-style regexp applied in multiline mode (`^` and `$` match at each
 * line) to the whole content, and `replace` a Python replacement template (`\1`, `\g<name>`). `after`
 * and `before` limit the edit to the text after the first match of `after` and/or before the last match
 * of `before` (with `after`: the first match of `before` following it); they match across lines (`.`
 * matches a newline) and the task fails when they do not match. A missing file is an error.
 *
 * How: the regexps run on the controller (JavaScript RegExp, see ./python-regexp.ts for the spellings
 * translated) on the content the probe read, never on the host; the new content is written atomically
 * like any file task's (./text-edit.ts), keeping the file's attributes unless owner/group/mode are given.
 * Nothing is written when the result equals the content: a `replace` that matches what it inserts
 * converges.
 */
import { z } from 'zod';
import { validateCommand } from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import { absolutePath, attributes, says } from './options.js';
import { compilePattern, PatternError, parseTemplate, substitute } from './python-regexp.js';
import { type TextFileSpec, textFilePlan, textFileProbe } from './text-edit.js';

const pattern = (option: string) => {
  const message = says((got) => `${option} must be a non-empty regexp, got ${got}`);
  return z.string(message).min(1, message);
};

const options = z.strictObject({
  /** Absolute path of the file. */
  path: absolutePath(),
  /** Python-style regexp, multiline: every match is replaced. */
  regexp: pattern('regexp'),
  /** Replacement template (`\1`, `\g<name>`); default: the matches are removed. */
  replace: z.string(says((got) => `replace must be a string, got ${got}`)).default(''),
  /** Only the text after the first match of this regexp is edited. */
  after: pattern('after').optional(),
  /** Only the text before the last match of this regexp is edited. */
  before: pattern('before').optional(),
  ...attributes,
  validate: validateCommand.optional(),
});

export type ReplaceOptions = z.input<typeof options>;

/** The text an after/before pair selects: the regexp, its `section` group's indices and how it reads. */
function sectionRegexp(after?: string, before?: string): RegExp | undefined {
  if (after === undefined && before === undefined) return undefined;
  // Ansible's construction: `after(.*?)before`, `after(.*)` or `(.*)before`, with DOTALL.
  const body = after !== undefined && before !== undefined ? '[\\s\\S]*?' : '[\\s\\S]*';
  const pieces = [
    after !== undefined ? `(?:${after})` : '',
    `(?<verdandiSection>${body})`,
    before !== undefined ? `(?:${before})` : '',
  ];
  return compilePattern(pieces.join(''), 'sd');
}

/** The new content of the file: every match replaced inside the section after/before select. */
export function replaceIn(
  content: string,
  regexp: RegExp,
  template: ReturnType<typeof parseTemplate>,
  section?: RegExp,
): { after: string; count: number } | { error: string } {
  let start = 0;
  let end = content.length;
  if (section !== undefined) {
    const found = section.exec(content);
    const indices = found?.indices?.groups?.verdandiSection;
    if (!indices) return { error: 'the after/before regexps do not match the file' };
    [start, end] = indices;
  }
  const { text, count } = substitute(content.slice(start, end), regexp, template);
  return { after: content.slice(0, start) + text + content.slice(end), count };
}

function prepare(opts: z.output<typeof options>, { fail }: PrepareContext): TextFileSpec {
  const compile = (option: 'regexp' | 'after' | 'before', flags: string): RegExp => {
    try {
      return compilePattern(opts[option] as string, flags);
    } catch (error) {
      if (!(error instanceof PatternError)) throw error;
      return fail(option, `${option} is not a valid regexp: ${error.message}`);
    }
  };
  const regexp = compile('regexp', 'gm');
  if (opts.after !== undefined) compile('after', 's');
  if (opts.before !== undefined) compile('before', 's');
  let template: ReturnType<typeof parseTemplate>;
  try {
    template = parseTemplate(opts.replace, regexp);
  } catch (error) {
    if (!(error instanceof PatternError)) throw error;
    return fail('replace', error.message);
  }
  let section: RegExp | undefined;
  try {
    section = sectionRegexp(opts.after, opts.before);
  } catch (error) {
    if (!(error instanceof PatternError)) throw error;
    return fail('after', `after and before do not combine into a valid regexp: ${error.message}`);
  }
  const { path } = opts;
  return {
    label: `replace ${path}`,
    path,
    attributes: { owner: opts.owner, group: opts.group, mode: opts.mode },
    validate: opts.validate,
    edit: (before) => {
      if (before === undefined) return { error: `${path} does not exist` };
      const result = replaceIn(before, regexp, template, section);
      if ('error' in result) return result;
      if (result.after === before) return undefined;
      return {
        after: result.after,
        reason: `${result.count} replacement${result.count > 1 ? 's' : ''}`,
      };
    },
  };
}

export const replace = defineTask({
  type: 'replace',
  options,
  subject: 'path',
  label: (path) => `replace ${path}`,
  prepare,
  probe: textFileProbe,
  plan: textFilePlan,
});
