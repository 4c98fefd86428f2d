/**
 * Roles declare their vars as a zod object (with `.default()`s); inventories are untyped YAML/INI. A
 * value of the wrong type is reported with the var's path, the host, and where the value was written:
 *
 *   role nginx, host web1: var nginx_sites[0].listen must be a number, got "eighty"
 *   (set in inventories/group_vars/web.yml:4:13)
 *
 * and so is an unknown key (see strict-keys.ts), with where the key was written and what was meant:
 *
 *   role sites, host web1: unknown key "healthcheck" in sites[0] (did you mean "health"?)
 *   (set in inventories/production.yml:21:9)
 */
import type { z } from 'zod';
import { UserError } from '../util/errors.js';
import { originOf } from './interpolate.js';
import {
  CONNECTION_ALIASES,
  copyLayer,
  emptyLayer,
  formatVarPath,
  keyOriginPath,
  mergeLayer,
  type VarLayer,
} from './layers.js';
import { unknownKeyParams, unknownRoleVars, withStrictNestedKeys } from './strict-keys.js';
import { didYouMean, listNames } from './suggest.js';
import { formatOrigin, type InventoryHost, type Origin } from './types.js';

export interface RoleVarsContext {
  role: string;
  host: string;
  /** Where each var (and nested value) was set: an InventoryHost's `varOrigins`. */
  origins: Record<string, Origin>;
  /** Vars whose values come from the secrets: shown as [secret] in messages. */
  sensitive?: Iterable<string>;
}

/** At most this many problems are listed: the first ones are what to fix first. */
const MAX_ISSUES = 5;

export function validateRoleVars<S extends z.ZodObject<any>>(
  schema: S,
  input: Record<string, unknown>,
  ctx: RoleVarsContext,
): z.infer<S> {
  const result = withStrictNestedKeys(schema).safeParse(input);
  const issues: Issue[] = [
    ...unknownRoleVars(schema, input, ctx.role).map(unknownVarIssue),
    ...(result.success ? [] : result.error.issues),
  ];
  if (issues.length === 0 && result.success) return result.data;
  const sensitive = new Set(ctx.sensitive ?? []);
  const problems = issues.slice(0, MAX_ISSUES).map((issue) => describeIssue(issue, input, ctx, sensitive));
  const more = issues.length - problems.length;
  const prefix = `role ${ctx.role}, host ${ctx.host}:`;
  const message =
    problems.length === 1
      ? `${prefix} ${problems[0]}`
      : `${prefix} ${issues.length} vars are invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}${more > 0 ? `\n  - and ${more} more` : ''}`;
  return fail(message);
}

/** A var with the role's prefix the role does not declare, as the issue of an unknown key. */
function unknownVarIssue({ name, knownKeys }: { name: string; knownKeys: string[] }): Issue {
  return { code: 'custom', path: [name], message: 'unknown var', params: { unknownKey: true, knownKeys } };
}

function fail(message: string): never {
  throw new UserError(
    message,
    1,
    'fix the value in the inventory (or --var), or see the role README for its vars',
  );
}

type Issue = z.core.$ZodIssue;

function describeIssue(
  issue: Issue,
  input: Record<string, unknown>,
  ctx: RoleVarsContext,
  sensitive: Set<string>,
): string {
  const path = issue.path as PropertyKey[];
  const unknownKey = unknownKeyParams(issue);
  if (unknownKey) return describeUnknownKey(path, unknownKey.knownKeys, ctx);
  const name = path.length > 0 ? `var ${formatVarPath(path)}` : 'the vars';
  const value = valueAt(input, path);
  const secret = path.length > 0 && sensitive.has(String(path[0]));
  const got = value === undefined ? '' : `, got ${secret ? '[secret]' : showValue(value)}`;
  const origin = originOf(ctx.origins, path);
  const where = origin ? ` (set in ${formatOrigin(origin)})` : '';

  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined)
        return `${name} is required (${article(typeName(issue.expected))}): set it in the inventory or with --var`;
      return `${name} must be ${article(typeName(issue.expected))}${got}${where}`;
    case 'invalid_value':
      return `${name} must be ${issue.values.length === 1 ? showValue(issue.values[0]) : `one of ${issue.values.map(showValue).join(', ')}`}${got}${where}`;
    case 'too_small':
      return `${name} must ${bound('at least', issue.origin, issue.minimum, issue.inclusive, 'more than')}${got}${where}`;
    case 'too_big':
      return `${name} must ${bound('at most', issue.origin, issue.maximum, issue.inclusive, 'less than')}${got}${where}`;
    case 'invalid_format':
      // A role's own words for the pattern ("a site name is lowercase letters...") beat the regex.
      if (issue.format === 'regex' && !issue.message.startsWith('Invalid'))
        return `${name}: ${issue.message}${got}${where}`;
      return `${name} must be ${issue.format === 'regex' ? `text matching ${issue.pattern}` : `a valid ${issue.format}`}${got}${where}`;
    case 'unrecognized_keys':
      return `${name} has unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}${where}`;
    case 'invalid_union':
      return `${name} does not match any accepted form${got}${where}`;
    case 'not_multiple_of':
      return `${name} must be a multiple of ${String(issue.divisor)}${got}${where}`;
    default:
      return `${name}: ${issue.message}${got}${where}`;
  }
}

/**
 * `unknown key "healthcheck" in sites[0] (did you mean "health"?) (set in f.yml:9:9)`: where the key
 * itself is written, and the closest known key (or all of them when none is close).
 */
function describeUnknownKey(path: PropertyKey[], knownKeys: string[], ctx: RoleVarsContext): string {
  const key = String(path[path.length - 1]);
  const parent = path.slice(0, -1);
  const what =
    parent.length === 0
      ? `unknown var ${JSON.stringify(key)}`
      : `unknown key ${JSON.stringify(key)} in ${formatVarPath(parent)}`;
  const guess = didYouMean(key, knownKeys);
  const known = guess || knownKeys.length === 0 ? '' : `; known keys: ${listNames(knownKeys)}`;
  const origin = ctx.origins[keyOriginPath(path)] ?? originOf(ctx.origins, path);
  const where = origin ? ` (set in ${formatOrigin(origin)})` : '';
  return `${what}${guess}${known}${where}`;
}

function bound(
  word: string,
  origin: string,
  limit: number | bigint,
  inclusive: boolean | undefined,
  strict: string,
) {
  const amount = `${inclusive === false ? strict : word} ${String(limit)}`;
  if (origin === 'string') return `have ${amount} characters`;
  if (origin === 'array' || origin === 'set') return `have ${amount} items`;
  return `be ${amount}`;
}

/** zod's type names as a reader says them. */
function typeName(expected: string): string {
  if (expected === 'int') return 'whole number';
  if (expected === 'array') return 'list';
  if (expected === 'object' || expected === 'record' || expected === 'map') return 'mapping';
  return expected;
}

function article(noun: string): string {
  return `${/^[aeiou]/.test(noun) ? 'an' : 'a'} ${noun}`;
}

function showValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let current = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** A role name that no built-in or project role has. */
export function unknownRoleError(name: string, known: string[], origin?: Origin): UserError {
  const where = origin ? `${formatOrigin(origin)}: ` : '';
  return new UserError(
    `${where}unknown role ${JSON.stringify(name)}${didYouMean(name, known)}; known roles: ${listNames([...known].sort())}`,
    1,
    'fix the name, or add the role under roles/<name>/index.ts',
  );
}

/**
 * The vars a role gets on a host: the host's vars, then the vars given with the role in the
 * inventory's `roles:` (`{ role: nginx, vars: {...} }`), then `--var` again (it beats everything).
 * `hostVars` replaces the host's vars when given (e.g. after `interpolateVars`).
 */
export function varsForRole(
  host: InventoryHost,
  role: string,
  {
    hostVars = host.vars,
    extraVars = {},
  }: { hostVars?: Record<string, unknown>; extraVars?: Record<string, unknown> } = {},
): { vars: Record<string, unknown>; origins: Record<string, Origin> } {
  const layer: VarLayer = copyLayer({ vars: hostVars, origins: host.varOrigins });
  const entry = host.roleEntries?.find((e) => e.role === role);
  if (entry) mergeLayer(layer, { vars: entry.vars, origins: entry.varOrigins });
  const extra = emptyLayer();
  for (const [name, value] of Object.entries(extraVars)) {
    // Connection settings are host fields, not vars.
    if (name in CONNECTION_ALIASES) continue;
    extra.vars[name] = value;
    extra.origins[name] = { file: '--var' };
  }
  mergeLayer(layer, extra);
  return { vars: layer.vars, origins: layer.origins };
}
