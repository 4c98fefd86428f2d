/**
 * The one Handlebars of templates and inventory values: strict (a missing var is an error, never an
 * empty string in a config file), without HTML escaping (config files, not HTML), and without Handlebars'
 * `log` helper. With the helper, `{{log}}` called it (it prints an empty line on stdout and renders
 * nothing) instead of reading a var named `log`: the sites role named its programs' log files that way,
 * and every program wrote to the same `.log`. Now `{{log}}` is a var like any other. The other built-in
 * helpers (`if`, `each`, `with`, `unless`, `lookup`) stay.
 */
import Handlebars from 'handlebars';

const handlebars = Handlebars.create();
handlebars.unregisterHelper('log');

export function compileTemplate(source: string): HandlebarsTemplateDelegate {
  // knownHelpers: the compiler would otherwise call the (removed) helper by name.
  return handlebars.compile(source, { noEscape: true, strict: true, knownHelpers: { log: false } });
}
