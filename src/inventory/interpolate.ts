/**
 * `{{ ... }}` in inventory values: a string var holding `{{` is rendered with handlebars (`noEscape`,
 * `strict`) against `{ secrets, ...vars }`, so an inventory can say
 * `database_url: "postgres://app:{{ secrets.db_password }}@db1/app"`. Vars may refer to other vars
 * (`{{ app_dir }}/current`), in any order; a loop is an error. A value that is exactly one
 * `{{ path }}` keeps the type of what it names (`workers: "{{ secrets.workers }}"` stays a number, a
 * list stays a list). Nested strings (in lists and mappings) are rendered too; keys are not.
 *
 * Every var whose value used a secret (directly or through another var) is reported as sensitive, so
 * the engine never prints it. Error messages never include a rendered value.
 */
import { UserError } from '../util/errors.js';
import { compileTemplate } from '../util/handlebars.js';
import { redact } from '../util/redact.js';
import { formatVarPath } from './layers.js';
import { listNames } from './suggest.js';
import { formatOrigin, type InventoryHost, type Origin } from './types.js';

export interface InterpolationContext {
  /** Decrypted secrets of the environment (`{}` when it has none). */
  secrets: Record<string, unknown>;
  /** More names templates may use; the vars being interpolated win over these. */
  vars?: Record<string, unknown>;
  /** For messages: the host these vars belong to (taken from the host when one is given). */
  host?: string;
  /** For messages: where each var was set (taken from the host when one is given). */
  origins?: Record<string, Origin>;
}

export interface InterpolationResult {
  vars: Record<string, unknown>;
  /** Names of the vars whose value came (at least in part) from the secrets. */
  sensitive: string[];
}

/**
 * Renders the templates in `target`'s vars: either an inventory host (its vars, name and var origins
 * are used) or a plain record of vars.
 */
export function interpolateVars(
  target: InventoryHost | Record<string, unknown>,
  context: InterpolationContext,
): InterpolationResult {
  const host = isInventoryHost(target) ? target : undefined;
  const source = host ? host.vars : target;
  const renderer = new Renderer(
    { ...(context.vars ?? {}), ...source },
    context.secrets ?? {},
    context.host ?? host?.name,
    context.origins ?? host?.varOrigins ?? {},
  );
  const vars: Record<string, unknown> = {};
  for (const name of Object.keys(source)) vars[name] = renderer.resolve(name);
  return { vars, sensitive: Object.keys(source).filter((name) => renderer.sensitive.has(name)) };
}

function isInventoryHost(value: unknown): value is InventoryHost {
  const v = value as Partial<InventoryHost>;
  return (
    typeof v.name === 'string' &&
    typeof v.vars === 'object' &&
    v.vars !== null &&
    typeof v.varOrigins === 'object' &&
    Array.isArray(v.groups)
  );
}

const SINGLE_EXPRESSION = /^\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}$/;

class Renderer {
  readonly sensitive = new Set<string>();
  private readonly done = new Map<string, unknown>();
  /** Vars being rendered, outermost first: a loop shows here, and a secret marks them all. */
  private readonly stack: string[] = [];
  private readonly scope: Record<string, unknown>;
  /** The last secret (or nested key of one) a template asked for and did not find. */
  private missingSecret: string | undefined;

  constructor(
    private readonly vars: Record<string, unknown>,
    private readonly secrets: Record<string, unknown>,
    private readonly host: string | undefined,
    private readonly origins: Record<string, Origin>,
  ) {
    // Templates see `secrets` and every var; a var is rendered the first time a template reads it.
    this.scope = { secrets: this.watch(secrets, '') };
    for (const name of Object.keys(vars)) {
      if (name === 'secrets') continue;
      Object.defineProperty(this.scope, name, {
        enumerable: true,
        get: () => {
          const value = this.resolve(name);
          if (this.sensitive.has(name)) this.markStack();
          return value;
        },
      });
    }
  }

  resolve(name: string): unknown {
    if (this.done.has(name)) return this.done.get(name);
    if (this.stack.includes(name)) {
      const loop = [...this.stack.slice(this.stack.indexOf(name)), name].join(' → ');
      throw this.error([this.stack[0]], `refers to itself through ${loop}`);
    }
    this.stack.push(name);
    try {
      const value = this.render(this.vars[name], [name]);
      this.done.set(name, value);
      return value;
    } finally {
      this.stack.pop();
    }
  }

  private render(value: unknown, path: PropertyKey[]): unknown {
    if (typeof value === 'string') return value.includes('{{') ? this.renderString(value, path) : value;
    if (Array.isArray(value)) return value.map((item, i) => this.render(item, [...path, i]));
    if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, this.render(v, [...path, k])]),
      );
    }
    return value;
  }

  private renderString(template: string, path: PropertyKey[]): unknown {
    this.missingSecret = undefined;
    const single = SINGLE_EXPRESSION.exec(template);
    try {
      if (single) return this.lookup(single[1].split('.'), path);
      return compileTemplate(template)(this.scope);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw this.explain(err, template, path);
    }
  }

  /** `{{ a.b.c }}` alone: the value itself, with the same checks as handlebars' strict mode. */
  private lookup(segments: string[], path: PropertyKey[]): unknown {
    let current: unknown = this.scope;
    for (const [i, segment] of segments.entries()) {
      if (current === null || typeof current !== 'object' || !(segment in current)) {
        if (i === 0) throw this.unknownName(segment, path);
        if (typeof current !== 'object' || current === null)
          throw this.notAMapping(segments.slice(0, i), path);
        throw segments[0] === 'secrets'
          ? this.error(
              path,
              `refers to secrets.${segments.slice(1, i + 1).join('.')}, which the secrets do not have${this.secretKeys()}`,
            )
          : this.error(path, `refers to ${segments.slice(0, i + 1).join('.')}, which is not defined`);
      }
      current = (current as Record<string, unknown>)[segment];
    }
    // Hand back the secret itself, not the watching proxy around it.
    if (segments[0] === 'secrets') {
      return segments
        .slice(1)
        .reduce<unknown>((value, key) => (value as Record<string, unknown>)[key], this.secrets);
    }
    return current;
  }

  /** Turns a handlebars failure into a message that names the var and never shows a value. */
  private explain(err: unknown, template: string, path: PropertyKey[]): UserError {
    const message = err instanceof Error ? err.message : String(err);
    if (this.missingSecret !== undefined) {
      return this.error(
        path,
        `refers to secrets.${this.missingSecret}, which the secrets do not have${this.secretKeys()}`,
      );
    }
    const notDefined = /^"([^"]+)" not defined in/.exec(message);
    if (notDefined) {
      const name = notDefined[1];
      // Handlebars names only the last part of a path: `{{ app.port }}` fails on "port".
      return template.includes(`.${name}`)
        ? this.error(path, `refers to a field ${JSON.stringify(name)} that is not defined`)
        : this.unknownName(name, path);
    }
    const notObject = /Cannot use 'in' operator to search for '([^']*)'/.exec(message);
    if (notObject)
      return this.error(
        path,
        `reads the field ${JSON.stringify(notObject[1])} of a value that is not a mapping`,
      );
    // Handlebars' other messages can quote values: keep their first line, redacted.
    const firstLine = redact(message.split('\n')[0].replace(/:$/, ''));
    const what = message.startsWith('Parse error') ? 'is not a valid template' : 'could not be rendered';
    return this.error(path, `${what} (${firstLine}): ${redact(template)}`);
  }

  private unknownName(name: string, path: PropertyKey[]): UserError {
    return this.error(
      path,
      `refers to ${JSON.stringify(name)}, which is neither a var nor secrets (write secrets.${name} for a secret)`,
    );
  }

  private notAMapping(segments: string[], path: PropertyKey[]): UserError {
    return this.error(path, `reads a field of ${segments.join('.')}, which is not a mapping`);
  }

  private secretKeys(): string {
    return ` (they have: ${listNames(Object.keys(this.secrets))})`;
  }

  private error(path: PropertyKey[], what: string): UserError {
    const origin = originOf(this.origins, path);
    const where = origin ? ` (set in ${formatOrigin(origin)})` : '';
    const prefix = this.host ? `host ${this.host}: ` : '';
    return new UserError(
      `${prefix}var ${formatVarPath(path)}${where} ${what}`,
      1,
      'secrets are edited with `verdandi secrets edit <env>`; vars are set in the inventory or with --var',
    );
  }

  private markStack(): void {
    for (const name of this.stack) this.sensitive.add(name);
  }

  /** The secrets as templates see them: reading any of it marks the vars being rendered sensitive. */
  private watch(target: Record<string, unknown>, prefix: string): Record<string, unknown> {
    return new Proxy(target, {
      has: (obj, key) => {
        const found = Reflect.has(obj, key);
        if (!found && typeof key === 'string') this.missingSecret = prefix + key;
        return found;
      },
      get: (obj, key, receiver) => {
        this.markStack();
        const value = Reflect.get(obj, key, receiver);
        return value !== null && typeof value === 'object' && typeof key === 'string'
          ? this.watch(value as Record<string, unknown>, `${prefix}${key}.`)
          : value;
      },
    });
  }
}

/** The origin of the most precise path known: `a[0].b`, else `a[0]`, else `a`. */
export function originOf(
  origins: Record<string, Origin>,
  path: ReadonlyArray<PropertyKey>,
): Origin | undefined {
  for (let length = path.length; length > 0; length--) {
    const origin = origins[formatVarPath(path.slice(0, length))];
    if (origin) return origin;
  }
  return undefined;
}
