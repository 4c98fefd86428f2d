/**
 * Unknown keys are errors. A role declares its vars as zod objects, and a plain `z.object` drops the keys
 * it does not know without a word: a site's `healthcheck:` (for `health:`) or a postgres user's
 * `pasword:` would vanish, and the run would go on without them. So before a role's vars are validated,
 * every object nested in its schema is made strict here: a new role gets that without doing anything.
 *
 * Open maps stay open, and that is how a role opts out where unknown keys are the point (environment
 * variables, labels, settings passed through to a program's own config):
 *
 * - `z.record(keySchema, valueSchema)`: any key (checked by `keySchema`);
 * - `z.looseObject({...})` or `z.object({...}).catchall(schema)`: known keys, and any other.
 *
 * The values inside open maps are still checked: an object inside a record is strict too.
 *
 * The top object of a role's vars sees all of a host's vars (the other roles' too), so it cannot refuse
 * what it does not know. Instead, a var named with the role's prefix (`postgres_usres` for the postgres
 * role) that the role does not declare is refused: see `unknownRoleVars`.
 */
import { z } from 'zod';

/** Marks the issue of an unknown key, with the keys its object knows (for `did you mean`). */
export interface UnknownKeyParams {
  unknownKey: true;
  knownKeys: string[];
}

/** An issue raised for an unknown key: its path ends with the key. */
export function unknownKeyParams(issue: z.core.$ZodIssue): UnknownKeyParams | undefined {
  if (issue.code !== 'custom' || issue.params?.unknownKey !== true) return undefined;
  return issue.params as UnknownKeyParams;
}

/**
 * What an object without a catchall gets as one: every key the object does not declare goes through it
 * and fails, with the declared keys in the issue (zod's own strict mode names the unknown keys, not the
 * known ones, and not where each was written).
 */
function refuseUnknownKey(knownKeys: string[]): z.ZodType {
  const params: UnknownKeyParams = { unknownKey: true, knownKeys };
  return z.custom(() => false, { params, message: 'unknown key' });
}

const strictCopies = new WeakMap<z.ZodType, z.ZodType>();

/**
 * `schema` with every object nested in it strict (see above). The top object keeps its own catchall:
 * it is a role's vars, given all of a host's vars. Copies are kept, so each schema is rewritten once.
 */
export function withStrictNestedKeys<S extends z.ZodObject>(schema: S): S {
  const cached = strictCopies.get(schema);
  if (cached) return cached as S;
  const copy = withDef(schema, { shape: strictShape(schema.def.shape) }) as S;
  strictCopies.set(schema, copy);
  return copy;
}

function strict(schema: z.ZodType): z.ZodType {
  const cached = strictCopies.get(schema);
  if (cached) return cached;
  const copy = rewrite(schema);
  strictCopies.set(schema, copy);
  return copy;
}

/**
 * The shape with each property's schema strict, read when zod first needs it: a recursive schema (a
 * property whose getter returns the object itself) is then rewritten without looping.
 */
function strictShape(shape: Record<string, z.ZodType>): Record<string, z.ZodType> {
  const copy: Record<string, z.ZodType> = {};
  for (const key of Object.keys(shape)) {
    Object.defineProperty(copy, key, { enumerable: true, configurable: true, get: () => strict(shape[key]) });
  }
  return copy;
}

/** The schema's kinds that hold other schemas, each rewritten with its parts strict. */
function rewrite(schema: z.ZodType): z.ZodType {
  // The def of every kind, loosely typed: each case reads only its own kind's fields.
  const def = schema.def as unknown as Record<string, never>;
  switch (schema.def.type) {
    case 'object': {
      const shape = strictShape(def.shape);
      const catchall = def.catchall as z.ZodType | undefined;
      const open = catchall !== undefined && catchall.def.type !== 'never';
      return withDef(schema, {
        shape,
        catchall: open ? strict(catchall) : refuseUnknownKey(Object.keys(shape)),
      });
    }
    case 'array':
      return withDef(schema, { element: strict(def.element) });
    case 'record':
      return withDef(schema, { valueType: strict(def.valueType) });
    case 'map':
      return withDef(schema, { valueType: strict(def.valueType) });
    case 'set':
      return withDef(schema, { valueType: strict(def.valueType) });
    case 'tuple':
      return withDef(schema, {
        items: (def.items as z.ZodType[]).map(strict),
        rest: def.rest ? strict(def.rest) : def.rest,
      });
    // A discriminated union picks its option by the discriminator, so the chosen option's unknown
    // keys are reported; a plain union reports that no option matched.
    case 'union':
      return withDef(schema, { options: (def.options as z.ZodType[]).map(strict) });
    case 'pipe':
      return withDef(schema, { in: strict(def.in), out: strict(def.out) });
    case 'lazy': {
      const getter = def.getter as () => z.ZodType;
      return withDef(schema, { getter: () => strict(getter()) });
    }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
    case 'success':
    case 'promise':
      return withDef(schema, { innerType: strict(def.innerType) });
    // An intersection's two sides each see the keys of the other: strict sides would refuse each
    // other's keys. Everything else holds no objects.
    default:
      return schema;
  }
}

/**
 * A copy of the schema with some fields of its definition replaced. The definition is copied with its
 * getters (a `.default([])` makes a fresh default on each read through one), and the copy keeps the
 * original's checks (`.refine`, `.superRefine`).
 */
function withDef(schema: z.ZodType, fields: Record<string, unknown>): z.ZodType {
  const def = Object.defineProperties({}, Object.getOwnPropertyDescriptors(schema.def));
  for (const [name, value] of Object.entries(fields)) {
    Object.defineProperty(def, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return schema.clone(def as typeof schema.def);
}

/**
 * The vars of `input` named like the role's own (`postgres_…` for the role postgres) that the role does
 * not declare: a misspelled var of the role, which it would otherwise never see. None for a role whose
 * vars are an open object (`z.looseObject` or a catchall).
 */
export function unknownRoleVars(
  schema: z.ZodObject,
  input: Record<string, unknown>,
  role: string,
): Array<{ name: string; knownKeys: string[] }> {
  if (schema.def.catchall !== undefined) return [];
  const prefix = `${role}_`;
  const known = Object.keys(schema.def.shape);
  return Object.keys(input)
    .filter((name) => name.startsWith(prefix) && !Object.hasOwn(schema.def.shape, name))
    .map((name) => ({ name, knownKeys: known }));
}
