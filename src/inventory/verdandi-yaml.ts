/**
 * Verdandi's own inventory format:
 *
 * ```yaml
 * vars:                 # vars of every host (the `all` group)
 *   timezone: Europe/Paris
 * roles: [base]         # roles of every host (the `all` group), before the groups' roles
 * hosts:
 *   web1:
 *     address: 10.0.0.11        # default: the host's name
 *     port: 22                  # default 22
 *     user: deploy              # default root
 *     key: ~/.ssh/deploy        # relative to the inventory file; default: ssh-agent / default keys
 *     become: true              # sudo; default: true when user is not root
 *     vars: { app_port: 8000 }  # vars of this host...
 *     worker_count: 4           # ...any other key is a var of this host too
 *   db1: 10.0.0.21              # shorthand for { address: 10.0.0.21 }
 * groups:
 *   web:
 *     hosts: [web1]             # or a mapping, which may define hosts inline: { web2: { address: ... } }
 *     children: [api]           # groups whose hosts are also in this group
 *     vars: { nginx_workers: 4 }
 *     roles: [nginx, { role: supervisor, vars: { supervisor_programs: [] } }]
 * ```
 *
 * `roles:` may appear at the top level and in groups; hosts get roles only through their groups (a
 * `roles:` key on a host is an error, so it is never mistaken for a var). `groups: { all: ... }` is the
 * same group as the top level. A file with only `hosts:` is fine: every host is in `all`.
 * Ansible's connection variables (`ansible_host`, ...) are accepted wherever Verdandi's names are.
 */
import {
  CONNECTION_ALIASES,
  emptyLayer,
  mergeLayer,
  normalizeConnectionNames,
  setFromYaml,
} from './layers.js';
import { type RawGroup, RawInventory, type RawRole } from './raw.js';
import { closest, didYouMean, editDistance } from './suggest.js';
import { InventoryError } from './types.js';
import type { YamlNode } from './yaml-positions.js';
import {
  checkGroupName,
  describeValue,
  expectMapping,
  expectString,
  hostNames,
  optionalMapping,
  readNameList,
  readVars,
} from './yaml-shape.js';

export const TOP_LEVEL_KEYS = ['vars', 'hosts', 'groups', 'roles'];
const GROUP_KEYS = ['hosts', 'children', 'vars', 'roles'];
/** Host keys a typo is checked against (any other key is a var, so only near misses are caught). */
const HOST_SETTINGS = ['address', 'port', 'user', 'become', 'connection', 'jump'];

export function readVerdandiYaml(root: YamlNode, file: string): RawInventory {
  const inventory = new RawInventory('verdandi', file);
  const top = expectMapping(root, 'the inventory');
  for (const [key, node] of top) {
    const keyOrigin = node.keyOrigin ?? node.origin;
    if (key === 'vars') {
      mergeLayer(inventory.group('all', keyOrigin).layer, readVars(node, 'vars:'));
    } else if (key === 'roles') {
      inventory.group('all', keyOrigin).roles.push(...readRoles(node));
    } else if (key === 'hosts') {
      for (const [name, entry] of optionalMapping(node, 'hosts:')) readHost(inventory, name, entry);
    } else if (key === 'groups') {
      for (const [name, entry] of optionalMapping(node, 'groups:')) readGroup(inventory, name, entry);
    } else {
      throw new InventoryError(
        keyOrigin,
        `unknown top-level key ${JSON.stringify(key)}${didYouMean(key, TOP_LEVEL_KEYS)}: expected vars, hosts, groups or roles`,
      );
    }
  }
  return inventory;
}

function readHost(inventory: RawInventory, name: string, node: YamlNode): string[] {
  const key: YamlNode = { value: name, origin: node.keyOrigin ?? node.origin };
  const layer = emptyLayer();
  if (typeof node.value === 'string') {
    setFromYaml(layer, 'address', node);
  } else if (node.value !== null) {
    const entries = node.entries;
    if (!entries || Array.isArray(node.value)) {
      throw new InventoryError(
        node.origin,
        `host ${JSON.stringify(name)} must be a mapping (address:, port:, user:, key:, become:, vars) or an address, got ${describeValue(node.value)}`,
      );
    }
    for (const [setting, value] of entries) {
      const settingOrigin = value.keyOrigin ?? value.origin;
      if (setting === 'vars') {
        mergeLayer(layer, readVars(value, `vars: of host ${JSON.stringify(name)}`));
      } else if (setting === 'roles') {
        throw new InventoryError(
          settingOrigin,
          `host ${JSON.stringify(name)} has roles:, but roles are given to groups: put the host in a group that lists the roles (or list them at the top level for every host)`,
        );
      } else {
        checkSettingTypo(name, setting, settingOrigin);
        setFromYaml(layer, setting, value);
      }
    }
  }
  normalizeConnectionNames(layer);
  const names = hostNames(name, key);
  for (const hostName of names) inventory.defineHost(hostName, key.origin, layer);
  return names;
}

/** `adress: 10.0.0.1` would silently be a var: catch near misses of the connection settings. */
function checkSettingTypo(host: string, setting: string, origin: YamlNode['origin']): void {
  if (setting in CONNECTION_ALIASES || setting.length < 4) return;
  const guess = closest(setting, HOST_SETTINGS);
  // One edit away, same first letter, not a plural (`users` is a fine var name, `host` is not `port`).
  if (!guess || editDistance(setting, guess) > 1 || setting[0] !== guess[0] || setting === `${guess}s`)
    return;
  throw new InventoryError(
    origin,
    `host ${JSON.stringify(host)}: unknown setting ${JSON.stringify(setting)} (did you mean "${guess}"?); to have a var with this name, put it under vars:`,
  );
}

function readGroup(inventory: RawInventory, name: string, node: YamlNode): void {
  const key: YamlNode = { value: name, origin: node.keyOrigin ?? node.origin };
  checkGroupName(name, key);
  const group = inventory.defineGroup(name, key.origin);
  for (const [field, value] of optionalMapping(node, `group ${JSON.stringify(name)}`)) {
    const fieldOrigin = value.keyOrigin ?? value.origin;
    if (field === 'hosts') {
      readGroupHosts(inventory, group, value);
    } else if (field === 'children') {
      for (const child of readNameList(value, `children: of group ${JSON.stringify(name)}`)) {
        if (child.node !== child.key && child.node.value !== null) {
          throw new InventoryError(
            child.node.origin,
            `children: of group ${JSON.stringify(name)} lists group names only: define group ${JSON.stringify(child.name)} under groups:`,
          );
        }
        checkGroupName(child.name, child.key);
        inventory.group(child.name, child.key.origin);
        inventory.addChild(group, { name: child.name, origin: child.key.origin });
      }
    } else if (field === 'vars') {
      mergeLayer(group.layer, readVars(value, `vars: of group ${JSON.stringify(name)}`));
    } else if (field === 'roles') {
      group.roles.push(...readRoles(value));
    } else {
      throw new InventoryError(
        fieldOrigin,
        `group ${JSON.stringify(name)}: unknown key ${JSON.stringify(field)}${didYouMean(field, GROUP_KEYS)}: expected hosts, children, vars or roles`,
      );
    }
  }
}

/** `hosts: [web1, web2]` references hosts defined under the top-level `hosts:`; a mapping may define them. */
function readGroupHosts(inventory: RawInventory, group: RawGroup, node: YamlNode): void {
  for (const entry of readNameList(node, `hosts: of group ${JSON.stringify(group.name)}`)) {
    const names =
      entry.node !== entry.key && entry.node.value !== null
        ? readHost(inventory, entry.name, entry.node)
        : hostNames(entry.name, entry.key);
    for (const name of names) inventory.addHostToGroup(group, { name, origin: entry.key.origin });
  }
}

/** `roles: [nginx, { role: supervisor, vars: {...} }]`. */
export function readRoles(node: YamlNode): RawRole[] {
  if (node.value === null) return [];
  if (!node.items) {
    throw new InventoryError(
      node.origin,
      `roles: must be a list of role names or of { role: name, vars: {...} }, got ${describeValue(node.value)}`,
    );
  }
  return node.items.map((item): RawRole => {
    if (typeof item.value === 'string')
      return { role: expectString(item, 'a role'), layer: emptyLayer(), origin: item.origin };
    const fields = item.entries;
    if (!fields || Array.isArray(item.value)) {
      throw new InventoryError(
        item.origin,
        `a roles: entry must be a role name or { role: name, vars: {...} }, got ${describeValue(item.value)}`,
      );
    }
    const roleNode = fields.get('role');
    if (!roleNode)
      throw new InventoryError(item.origin, 'a roles: entry written as a mapping needs role: <name>');
    let layer = emptyLayer();
    for (const [field, value] of fields) {
      if (field === 'vars') {
        layer = readVars(value, `vars: of role ${JSON.stringify(roleNode.value)}`, {
          connectionNames: false,
        });
      } else if (field !== 'role') {
        throw new InventoryError(
          value.keyOrigin ?? value.origin,
          `unknown key ${JSON.stringify(field)} in a roles: entry: expected role and vars`,
        );
      }
    }
    return { role: expectString(roleNode, 'role:'), layer, origin: roleNode.origin };
  });
}
