/** Shape checks shared by the YAML readers: each failure names where and what was expected. */
import { expandHostRange } from './host-ranges.js';
import { emptyLayer, normalizeConnectionNames, setFromYaml, type VarLayer } from './layers.js';
import { InventoryError } from './types.js';
import type { YamlNode } from './yaml-positions.js';

/** How a value reads in a message: `a list`, `a mapping`, `the string "x"`, `the number 3`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `the ${typeof value} ${String(value)}`;
}

export function expectMapping(node: YamlNode, what: string): Map<string, YamlNode> {
  if (node.entries && !Array.isArray(node.value)) return node.entries;
  throw new InventoryError(
    node.origin,
    `${what} must be a mapping (name: value), got ${describeValue(node.value)}`,
  );
}

/** A mapping that may be empty (`vars:` with nothing under it). */
export function optionalMapping(node: YamlNode, what: string): Map<string, YamlNode> {
  if (node.value === null) return new Map();
  return expectMapping(node, what);
}

export function expectString(node: YamlNode, what: string): string {
  if (typeof node.value === 'string' && node.value !== '') return node.value;
  throw new InventoryError(node.origin, `${what} must be a name, got ${describeValue(node.value)}`);
}

/**
 * `vars:` mappings: every entry is a var. For host and group vars, Ansible's connection names are
 * renamed to Verdandi's (`ansible_user` → `user`); a role's own vars are left as they are.
 */
export function readVars(node: YamlNode, what: string, { connectionNames = true } = {}): VarLayer {
  const layer = emptyLayer();
  for (const [name, value] of optionalMapping(node, what)) setFromYaml(layer, name, value);
  return connectionNames ? normalizeConnectionNames(layer) : layer;
}

/** Host or group names given as a list (`[web1, web2]`) or as a mapping's keys (`web1:`). */
export function readNameList(
  node: YamlNode,
  what: string,
): Array<{ name: string; node: YamlNode; key: YamlNode }> {
  if (node.value === null) return [];
  if (node.items) {
    return node.items.map((item) => ({
      name: expectString(item, `an entry of ${what}`),
      node: item,
      key: item,
    }));
  }
  if (node.entries) {
    return [...node.entries].map(([name, child]) => ({
      name,
      node: child,
      key: { value: name, origin: child.keyOrigin ?? child.origin },
    }));
  }
  throw new InventoryError(node.origin, `${what} must be a list of names, got ${describeValue(node.value)}`);
}

/** Host names with ranges expanded (`web[1:3]`). */
export function hostNames(name: string, key: YamlNode): string[] {
  return expandHostRange(name, key.origin);
}

const FORBIDDEN_IN_GROUP_NAMES = /[\s,:!&*?[\]~]/;

/** Group names are used in `--limit` patterns, so they may not hold pattern characters. */
export function checkGroupName(name: string, key: YamlNode): void {
  if (FORBIDDEN_IN_GROUP_NAMES.test(name)) {
    throw new InventoryError(
      key.origin,
      `group name ${JSON.stringify(name)} may not contain spaces or any of , : ! & * ? [ ] ~ (they have a meaning in --limit patterns)`,
    );
  }
}
