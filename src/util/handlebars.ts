/**
 * The one Handlebars of templates and inventory values: strict (a missing var is an error, never an
 * empty string in a config file), without HTML escaping (config files, not HTML), and without Handlebars'
 * `log` helper. With the helper, `{{log}}` called it (it prints an empty line on stdout and renders
 * nothing) instead of reading a var named `log`: the sites role named its programs' log files that way,
 * and every program wrote to the same `.log`. Now `{{log}}` is a var like any other. The other built-in
 * helpers (`if`, `each`, `with`, `unless`, `lookup`) stay.
 *
 * Templates run on Handlebars' runtime alone. Its compiler (its parser and code generator, three
 * quarters of Handlebars' code) was read and compiled by every run for templates that had not changed
 * (issue 25): a template's source is now precompiled once into JavaScript (Handlebars' `precompile`,
 * what `compile` itself does before it builds the function) and kept in the compile cache
 * (cache-dir.ts), named by the sha256 of the source, the Handlebars version and the options. A run
 * loads the compiler only for a source it has not seen. A cache that cannot be written (or
 * `VERDANDI_TS_CACHE=off`) only means compiling again next time.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import HandlebarsRuntime from 'handlebars/runtime';
import { cacheDir, cacheOff } from './cache-dir.js';

type Handlebars = typeof import('handlebars');

const runtime = (HandlebarsRuntime as unknown as Handlebars).create();
runtime.unregisterHelper('log');

/**
 * The compiler's options, a new object each time: Handlebars adds its defaults to the one it is given.
 * knownHelpers: the compiler would otherwise call the (removed) helper by name.
 */
const options = () => ({ noEscape: true, strict: true, knownHelpers: { log: false } });

/** Handlebars with its compiler, loaded (synchronously: rendering is) for a source not yet compiled. */
let compiler: Handlebars | undefined;
function precompile(source: string): string {
  compiler ??= createRequire(import.meta.url)('handlebars') as Handlebars;
  return String(compiler.precompile(source, options()));
}

/** Where the precompiled `source` is kept; undefined when the cache is off. */
function cachedFile(source: string): string | undefined {
  if (cacheOff()) return undefined;
  const key = createHash('sha256')
    .update(`${runtime.VERSION}\0${JSON.stringify(options())}\0${source}`)
    .digest('hex');
  return join(cacheDir(), 'templates', `${key.slice(0, 32)}.js`);
}

/** The precompiled template: from the cache, or compiled now (and kept when the cache is writable). */
function templateSpec(source: string): string {
  const file = cachedFile(source);
  if (file) {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      // Not compiled yet.
    }
  }
  const spec = precompile(source);
  if (file) {
    try {
      mkdirSync(join(file, '..'), { recursive: true });
      // Written beside and renamed: another run reading it at the same time never sees half of it.
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, spec);
      renameSync(tmp, file);
    } catch {
      // A read-only cache: compiled again next time.
    }
  }
  return spec;
}

export function compileTemplate(source: string): HandlebarsTemplateDelegate {
  // The spec is an object literal of functions, Handlebars' own output (Handlebars.compile builds the
  // same functions with `new Function` too).
  const spec = new Function(`return ${templateSpec(source)};`)() as TemplateSpecification;
  return runtime.template(spec);
}
