/**
 * template({ path, src, vars, owner?, group?, mode?, validate?, force?, backup? }): like copy, with the content rendered
 * from a local Handlebars file when the task is built (so a missing var fails before any host is touched).
 *
 * Handlebars runs with `noEscape: true` (config files, not HTML) and `strict: true`: a var the template
 * uses but `vars` lacks is an error naming the template file, the var and its position, never an empty
 * string in a config file.
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { compileTemplate } from '../util/handlebars.js';
import {
  type FileContent,
  fileContentFiles,
  fileContentPlan,
  fileContentProbe,
  localSource,
  readLocalText,
  validateCommand,
  writeOptions,
} from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import { absolutePath, attributes } from './options.js';

const options = z.strictObject({
  /** Absolute path of the file on the host. */
  path: absolutePath(),
  /** The .hbs file: an absolute path or a file URL (`new URL('./templates/x.hbs', import.meta.url)`). */
  src: localSource,
  /** Values the template uses (kept as given: not copied or stripped). */
  vars: z
    .custom<object>((vars) => typeof vars === 'object' && vars !== null, {
      error: 'vars must be an object of the values the template uses',
    })
    .optional(),
  /** Owner, group, and mode as an octal string ('0644' or '644'). */
  ...attributes,
  validate: validateCommand.optional(),
  /** `force: false` writes only a missing file; `backup: true` keeps the old one (see copy). */
  ...writeOptions,
});

export type TemplateOptions = z.input<typeof options>;

/** Handlebars' strict-mode error: `"x" not defined in [object Object] - 1:5` (line, 0-based column). */
const STRICT_ERROR = /^"(.+)" not defined in .* - (\d+):(\d+)$/;

/**
 * The var expression at `line`/`column` of the template (`server.name` where Handlebars only names
 * `name`), or the bare name when the source does not show it there.
 */
function expressionAt(source: string, line: number, column: number, name: string): string {
  const text = source.split('\n')[line - 1] ?? '';
  const expression = text.slice(column).match(/^[^\s{}()=~|]+/)?.[0];
  if (expression?.split(/[./]/).includes(name)) return expression;
  return name;
}

/**
 * Compiled templates by source text: a role's template is rendered for every host with the same
 * source, and compiling it is most of the cost of rendering (a check or plan of 50 hosts compiled each
 * template 50 times).
 */
const compiled = new Map<string, HandlebarsTemplateDelegate>();

/** Renders `source` (read from `file`) with `vars`; Handlebars errors become UserErrors naming the file. */
export function renderTemplate(file: string, source: string, vars: object): string {
  try {
    let render = compiled.get(source);
    if (!render) {
      render = compileTemplate(source);
      compiled.set(source, render);
    }
    return render(vars);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const strict = message.match(STRICT_ERROR);
    if (strict) {
      const [, name, line, column] = strict;
      const expression = expressionAt(source, Number(line), Number(column), name);
      // Handlebars counts columns from 0; editors count from 1.
      throw new UserError(
        `template ${file}: var ${expression} is not defined (line ${line}, col ${Number(column) + 1})`,
        1,
        `add "${expression.split(/[./]/)[0]}" to the vars of the template, or guard it with {{#if}}`,
      );
    }
    throw new UserError(`template ${file}: ${message.replace(/\n/g, ' | ')}`);
  }
}

function prepare(opts: z.output<typeof options>, { fail }: PrepareContext): FileContent {
  const { path, src, owner, group, mode, validate, force, backup } = opts;
  return {
    label: `template ${path}`,
    path,
    content: renderTemplate(src, readLocalText(src, fail), opts.vars ?? {}),
    attributes: { owner, group, mode },
    validate,
    force,
    backup,
  };
}

export const template = defineTask({
  type: 'template',
  options,
  subject: 'path',
  label: (path) => `template ${path}`,
  prepare,
  probe: fileContentProbe,
  files: fileContentFiles,
  plan: fileContentPlan,
});
