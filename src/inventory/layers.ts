/**
 * A var layer: the vars one place sets (a group's `vars:`, a host line, a group_vars file, --var), with
 * where each value was written. Layers are merged in precedence order; a later layer replaces a var
 * whole (no deep merge of mappings, like Ansible's default `hash_behaviour=replace`): what you see in
 * the winning file is the whole value, and its origin stays true.
 */
import type { Origin } from './types.js';
import type { YamlNode } from './yaml-positions.js';

export interface VarLayer {
  vars: Record<string, unknown>;
  /**
   * By var name and by path of nested values (`sites[0].listen`), see `formatVarPath`. A key written on
   * the same line as its value (`listen: 80`) also has its own position, under `keyOriginPath`.
   */
  origins: Record<string, Origin>;
}

export function emptyLayer(): VarLayer {
  return { vars: {}, origins: {} };
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `['sites', 0, 'listen']` → `sites[0].listen`; keys that are not identifiers are quoted: `a["b c"]`. */
export function formatVarPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && IDENTIFIER.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/**
 * Where the key of the value at `path` is written, in a layer's origins: the path and a colon
 * (`sites[0].listen:`), which no value's path ends with. Only recorded where the key is not at the
 * value's own position; an unknown key is reported there.
 */
export function keyOriginPath(path: ReadonlyArray<PropertyKey>): string {
  return `${formatVarPath(path)}:`;
}

/** Sets one var in a layer from a located YAML value (its nested values get their own origins). */
export function setFromYaml(layer: VarLayer, name: string, node: YamlNode): void {
  removeVar(layer, name);
  layer.vars[name] = node.value;
  recordOrigins(layer.origins, [name], node);
}

function recordOrigins(origins: Record<string, Origin>, path: PropertyKey[], node: YamlNode): void {
  origins[formatVarPath(path)] = node.origin;
  const key = node.keyOrigin;
  if (key && (key.line !== node.origin.line || key.column !== node.origin.column)) {
    origins[keyOriginPath(path)] = key;
  }
  for (const [key, child] of node.entries ?? []) recordOrigins(origins, [...path, key], child);
  for (const [index, child] of (node.items ?? []).entries()) recordOrigins(origins, [...path, index], child);
}

/** Sets one var whose nested values have no positions of their own (INI values, --var). */
export function setValue(layer: VarLayer, name: string, value: unknown, origin: Origin): void {
  removeVar(layer, name);
  layer.vars[name] = value;
  layer.origins[name] = origin;
}

/** Removes a var and the origins of everything nested in it. */
export function removeVar(layer: VarLayer, name: string): void {
  delete layer.vars[name];
  const prefix = formatVarPath([name]);
  for (const key of Object.keys(layer.origins)) {
    if (
      key === prefix ||
      key === keyOriginPath([name]) ||
      key.startsWith(`${prefix}.`) ||
      key.startsWith(`${prefix}[`)
    )
      delete layer.origins[key];
  }
}

/** Applies `upper` over `lower` (in place): each var of `upper` replaces the one of `lower`. */
export function mergeLayer(lower: VarLayer, upper: VarLayer): void {
  for (const [name, value] of Object.entries(upper.vars)) {
    removeVar(lower, name);
    lower.vars[name] = value;
  }
  for (const [path, origin] of Object.entries(upper.origins)) lower.origins[path] = origin;
}

export function copyLayer(layer: VarLayer): VarLayer {
  return { vars: { ...layer.vars }, origins: { ...layer.origins } };
}

/**
 * Connection settings: Verdandi's own names and the Ansible variables that mean the same thing. They
 * are renamed when a layer is read, so `ansible_user` in `[all:vars]` and `user:` on a host are the
 * same setting and follow the same precedence; they end up in the host's fields, not in its vars.
 */
export const CONNECTION_ALIASES: Record<string, ConnectionKey> = {
  address: 'address',
  ansible_host: 'address',
  ansible_ssh_host: 'address',
  port: 'port',
  ansible_port: 'port',
  ansible_ssh_port: 'port',
  user: 'user',
  ansible_user: 'user',
  ansible_ssh_user: 'user',
  key: 'key',
  ansible_ssh_private_key_file: 'key',
  ansible_private_key_file: 'key',
  become: 'become',
  ansible_become: 'become',
  connection: 'connection',
  ansible_connection: 'connection',
  jump: 'jump',
};

export type ConnectionKey = 'address' | 'port' | 'user' | 'key' | 'become' | 'connection' | 'jump';

export const CONNECTION_KEYS: ConnectionKey[] = [
  'address',
  'port',
  'user',
  'key',
  'become',
  'connection',
  'jump',
];

/** Renames the Ansible connection variables of a layer to Verdandi's names (in place). */
export function normalizeConnectionNames(layer: VarLayer): VarLayer {
  for (const name of Object.keys(layer.vars)) {
    const canonical = CONNECTION_ALIASES[name];
    if (!canonical || canonical === name) continue;
    const value = layer.vars[name];
    const origin = layer.origins[name];
    removeVar(layer, name);
    setValue(layer, canonical, value, origin);
  }
  return layer;
}
