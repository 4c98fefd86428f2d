/**
 * The JSON Schema of Verdandi's inventory format (`verdandi schema`), so an editor with the YAML
 * language server (VS Code, Neovim...) completes and checks `inventories/*.yml` as they are typed:
 * the structure (vars, roles, hosts, groups), the connection settings, and every var of every role the
 * project can use (built-in and `roles/<name>/`), with the types, defaults, descriptions and allowed
 * values of the role's zod schema.
 *
 * What the YAML side allows that a role's schema alone would not:
 * - any value may be written with `{{ ... }}` (a secret, another var): such text is accepted wherever
 *   a value is, since it is only known once the secrets are decrypted;
 * - a host's or group's vars are shared by all its roles and may be the project's own, so unknown names
 *   are accepted there, except names that start like a role's vars (`nginx_`) and that role has no such
 *   var: those are misspellings (`nginx_worker_proceses`);
 * - vars given with a role (`{ role: nginx, vars: {...} }`) are that role's only: any other name is an
 *   error there, as is an unknown key in a role's nested objects (`nginx_sites[0].server_name`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { knownRoles, loadRole } from '../engine/loader.js';
import type { VarsSchema } from '../engine/types.js';
import { resolveInventoryPath } from '../inventory/index.js';
import { CONNECTION_ALIASES } from '../inventory/layers.js';

type Json = Record<string, unknown>;

/** A role as the schema needs it. */
export interface SchemaRole {
  name: string;
  description?: string;
  vars: VarsSchema;
}

/** Where `verdandi schema` writes, relative to the project; inventories name it in their first line. */
export const SCHEMA_FILE = join('inventories', 'inventory.schema.json');
/** The first line of an inventory that uses it (the inventory lives beside it). */
export const SCHEMA_COMMENT = '# yaml-language-server: $schema=./inventory.schema.json';
/** The schema of a vars file (`group_vars/web.yml`, `host_vars/web1.yml`): `$schema=../vars.schema.json`. */
export const VARS_SCHEMA_FILE = join('inventories', 'vars.schema.json');

const ref = (name: string) => ({ $ref: `#/definitions/${name}` });
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The formats of draft-07, the ones editors know. */
const STANDARD_FORMATS = [
  'date-time',
  'date',
  'time',
  'email',
  'idn-email',
  'hostname',
  'idn-hostname',
  'ipv4',
  'ipv6',
  'uri',
  'uri-reference',
  'iri',
  'iri-reference',
  'uri-template',
  'json-pointer',
  'relative-json-pointer',
  'regex',
];

/** The settings of a host (also accepted as vars of a group, like Ansible's connection variables). */
const SETTINGS: Record<string, Json> = {
  address: { type: 'string', description: 'Address to connect to (default: the host name).' },
  port: { type: 'integer', minimum: 1, maximum: 65535, default: 22, description: 'SSH port.' },
  user: { type: 'string', default: 'root', description: 'SSH user.' },
  key: {
    type: 'string',
    description: 'Private key file (~ expanded, relative to the inventory); without it, ssh-agent.',
  },
  become: { type: 'boolean', description: 'Run commands with sudo (default: true when user is not root).' },
  connection: {
    enum: ['ssh', 'local'],
    default: 'ssh',
    description: '`local` runs the commands on this machine.',
  },
  jump: {
    type: 'string',
    description:
      'Jump hosts (bastions), comma-separated, reached in order: inventory host names or user@host:port.',
  },
  become_password: {
    type: 'string',
    description: 'sudo password, from the secrets: "{{ secrets.sudo_password }}".',
  },
};

function settingsSchemas(): Record<string, Json> {
  const all: Record<string, Json> = { ...SETTINGS };
  for (const [alias, canonical] of Object.entries(CONNECTION_ALIASES)) {
    if (alias !== canonical) {
      all[alias] = { ...SETTINGS[canonical], description: `Ansible's name of ${canonical}.` };
    }
  }
  return all;
}

/**
 * The JSON Schema of one role's vars (draft-07, what the input may be: defaults make vars optional).
 * Nested objects that zod would silently strip unknown keys from get `additionalProperties: false`.
 */
export function roleVarsSchema(role: SchemaRole): Json {
  const schema = z.toJSONSchema(role.vars, {
    target: 'draft-07',
    io: 'input',
    // Refinements and transforms have no JSON Schema form: what they check is left to `verdandi check`.
    unrepresentable: 'any',
    reused: 'inline',
    override: (ctx) => {
      const def = (ctx.zodSchema as { _zod: { def: { type: string; catchall?: unknown } } })._zod.def;
      if (def.type === 'object' && def.catchall === undefined) ctx.jsonSchema.additionalProperties = false;
      // zod names checks like startsWith as formats of its own; the pattern beside them says it all.
      const format = ctx.jsonSchema.format;
      if (typeof format === 'string' && !STANDARD_FORMATS.includes(format)) delete ctx.jsonSchema.format;
    },
  }) as Json;
  delete schema.$schema;
  const properties = isObject(schema.properties) ? schema.properties : {};
  for (const property of Object.values(properties)) {
    if (!isObject(property)) continue;
    property.description =
      property.description === undefined
        ? `Var of the ${role.name} role.`
        : `${role.name}: ${property.description}`;
  }
  // Schemas zod chose to share (cycles) move to the inventory schema's definitions, renamed per role.
  const { definitions, ...own } = schema;
  if (!isObject(definitions) || Object.keys(definitions).length === 0) return own;
  return renameRefs({ ...own, definitions }, role.name) as Json;
}

function renameRefs(value: unknown, prefix: string): unknown {
  if (Array.isArray(value)) return value.map((item) => renameRefs(item, prefix));
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] =
      key === '$ref' && typeof inner === 'string'
        ? inner.replace(/^#\/definitions\//, `#/definitions/${prefix}.`)
        : renameRefs(inner, prefix);
  }
  return out;
}

/** Accepts what zod would accept as a string, whatever it is: then `{{ ... }}` text is fine as it is. */
function acceptsAnyString(node: Json): boolean {
  if (Object.keys(node).every((key) => key === 'description' || key === 'default')) return true;
  const types = Array.isArray(node.type) ? node.type : [node.type];
  return (
    types.includes('string') &&
    node.pattern === undefined &&
    node.format === undefined &&
    node.enum === undefined &&
    node.const === undefined &&
    node.maxLength === undefined &&
    node.anyOf === undefined
  );
}

/** A value position (a property, an item...): the value as typed, or `{{ ... }}` text. */
function valuePosition(node: unknown): unknown {
  if (!isObject(node)) return node;
  acceptTemplates(node);
  if (acceptsAnyString(node) || node.$ref !== undefined) return node;
  const { description, default: fallback, ...typed } = node;
  return {
    ...(description === undefined ? {} : { description }),
    ...(fallback === undefined ? {} : { default: fallback }),
    anyOf: [typed, ref('interpolated')],
  };
}

/** Walks a schema, letting every value inside it be `{{ ... }}` text too. Changes `node` in place. */
function acceptTemplates(node: Json): Json {
  for (const key of ['properties', 'patternProperties', 'definitions']) {
    const map = node[key];
    if (!isObject(map)) continue;
    for (const name of Object.keys(map)) map[name] = valuePosition(map[name]);
  }
  if (Array.isArray(node.items)) node.items = node.items.map(valuePosition);
  else if (isObject(node.items)) node.items = valuePosition(node.items);
  if (isObject(node.additionalProperties))
    node.additionalProperties = valuePosition(node.additionalProperties);
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const list = node[key];
    if (Array.isArray(list))
      node[key] = list.map((member) => (isObject(member) ? acceptTemplates(member) : member));
  }
  return node;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The JSON Schema of the inventory format, with the vars of `roles`. */
export function inventorySchema(roles: readonly SchemaRole[]): Json {
  const sorted = [...roles].sort((a, b) => a.name.localeCompare(b.name));
  const definitions: Json = {
    interpolated: {
      type: 'string',
      pattern: '\\{\\{.*\\}\\}',
      description: 'A value given with {{ ... }}: a secret ({{ secrets.name }}) or another var.',
    },
  };
  const varProperties: Json = {};
  const varNames: string[] = [];
  for (const role of sorted) {
    const schema = roleVarsSchema(role);
    const { definitions: shared, ...own } = schema;
    if (isObject(shared)) {
      for (const [name, def] of Object.entries(shared)) definitions[`${role.name}.${name}`] = def;
    }
    definitions[`role.${role.name}`] = acceptTemplates(own);
    const properties = isObject(own.properties) ? own.properties : {};
    for (const name of Object.keys(properties)) {
      // Two roles with a var of the same name: the first one's schema (they share the value anyway).
      if (name in varProperties) continue;
      varProperties[name] = { $ref: `#/definitions/role.${role.name}/properties/${name}` };
      varNames.push(name);
    }
  }
  const settings = Object.fromEntries(
    Object.entries(settingsSchemas()).map(([name, schema]) => [name, valuePosition(structuredClone(schema))]),
  );
  const prefixes = sorted.map((role) => escapeRegExp(`${role.name}_`));
  // A name that starts like a role's vars must be one of them (else it is a misspelling).
  const propertyNames =
    prefixes.length === 0
      ? {}
      : {
          propertyNames: {
            anyOf: [
              { enum: [...varNames, ...Object.keys(settings)] },
              { not: { pattern: `^(${prefixes.join('|')})` } },
            ],
          },
        };

  definitions.vars = {
    description: 'Vars: of the roles (completed here), or your own (any other name).',
    type: ['object', 'null'],
    properties: { ...settings, ...varProperties },
    ...propertyNames,
  };
  definitions.host = {
    anyOf: [
      { type: 'string', description: "The host's address (shorthand for { address: ... })." },
      { type: 'null' },
      {
        type: 'object',
        description: 'Connection settings; any other key is a var of this host.',
        properties: {
          ...settings,
          vars: { ...ref('vars'), description: 'Vars of this host.' },
          roles: { not: {}, description: 'Roles are given to groups (or at the top level), not to hosts.' },
          ...varProperties,
        },
        ...propertyNames,
      },
    ],
  };
  definitions.roles = {
    description: 'Roles, in order: names, or { role: name, vars: {...} } with vars for that role only.',
    type: ['array', 'null'],
    items: {
      anyOf: [
        ...sorted.map((role) => ({
          const: role.name,
          description: role.description ?? `The ${role.name} role.`,
        })),
        ...sorted.map((role) => ({
          type: 'object',
          description: role.description ?? `The ${role.name} role.`,
          required: ['role'],
          additionalProperties: false,
          properties: {
            role: { const: role.name },
            vars: {
              description: `Vars for the ${role.name} role only, above the host's.`,
              anyOf: [ref(`role.${role.name}`), { type: 'null' }],
            },
          },
        })),
      ],
    },
  };
  const names = { type: 'array', items: { type: 'string' } };
  definitions.group = {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: {
      hosts: {
        description: 'Hosts of the group: names of hosts defined under hosts:, or hosts defined here.',
        anyOf: [names, { type: 'object', additionalProperties: ref('host') }, { type: 'null' }],
      },
      children: {
        description: 'Groups whose hosts are also in this group.',
        anyOf: [names, { type: 'object', additionalProperties: { type: 'null' } }, { type: 'null' }],
      },
      vars: { ...ref('vars'), description: "Vars of the group's hosts." },
      roles: { ...ref('roles'), description: "Roles of the group's hosts, after those of parent groups." },
    },
  };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Verdandi inventory',
    description: 'Written by `verdandi schema`: run it again after adding a role or a var.',
    type: ['object', 'null'],
    additionalProperties: false,
    properties: {
      vars: { ...ref('vars'), description: 'Vars of every host (the all group).' },
      roles: { ...ref('roles'), description: "Roles of every host, before the groups' roles." },
      hosts: {
        description: 'The hosts: name → settings and vars (or just an address).',
        type: ['object', 'null'],
        additionalProperties: ref('host'),
      },
      groups: {
        description: 'Groups: name → hosts, children, vars, roles.',
        type: ['object', 'null'],
        propertyNames: { pattern: '^[^\\s,:!&*?\\[\\]~]+$' },
        additionalProperties: ref('group'),
      },
    },
    definitions,
  };
}

/** The schema of a `group_vars/` or `host_vars/` file: a mapping of vars, as `vars:` in an inventory. */
export function varsFileSchema(inventory: Json): Json {
  return {
    $schema: inventory.$schema,
    title: 'Verdandi vars file (group_vars/, host_vars/)',
    description: inventory.description,
    $ref: '#/definitions/vars',
    definitions: inventory.definitions,
  };
}

/** Both schema files of a project, by path relative to it. */
export function schemaFiles(roles: readonly SchemaRole[]): Map<string, string> {
  const inventory = inventorySchema(roles);
  const text = (schema: Json) => `${JSON.stringify(schema, null, 2)}\n`;
  return new Map([
    [SCHEMA_FILE, text(inventory)],
    [VARS_SCHEMA_FILE, text(varsFileSchema(inventory))],
  ]);
}

/** Every role the project can use (its own `roles/` first, then the built-in ones), loaded. */
export async function projectRoles(projectDir: string): Promise<SchemaRole[]> {
  const roles: SchemaRole[] = [];
  for (const name of knownRoles(projectDir)) {
    const role = await loadRole(name, projectDir);
    roles.push({ name, description: role.description, vars: role.vars });
  }
  return roles;
}

export interface WriteSchemaOptions {
  /** Write only the inventory schema, there (`-`: on standard output). */
  output?: string;
  cwd?: string;
}

/**
 * `verdandi schema [env]`: the schemas of the project of `env` (an environment or an inventory file;
 * default: the current folder), in its `inventories/`. Returns what was written.
 */
export async function writeSchema(
  env: string | undefined,
  options: WriteSchemaOptions = {},
): Promise<string[]> {
  const cwd = options.cwd ?? process.cwd();
  const projectDir = env === undefined ? cwd : projectDirOf(resolveInventoryPath(env, cwd));
  const files = schemaFiles(await projectRoles(projectDir));
  if (options.output === '-') {
    process.stdout.write(files.get(SCHEMA_FILE) ?? '');
    return [];
  }
  const targets: Array<[string, string]> = options.output
    ? [[resolve(cwd, options.output), files.get(SCHEMA_FILE) ?? '']]
    : [...files].map(([file, text]) => [join(projectDir, file), text]);
  for (const [file, text] of targets) {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, text);
  }
  return targets.map(([file]) => relative(cwd, file) || file);
}

/** The project of an inventory file: the parent of `inventories/`, else the file's own folder. */
function projectDirOf(inventoryFile: string): string {
  const dir = dirname(inventoryFile);
  return basename(dir) === 'inventories' ? dirname(dir) : dir;
}
