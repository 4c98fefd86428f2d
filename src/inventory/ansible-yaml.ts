/**
 * Ansible's YAML inventory format, read as it is:
 *
 * ```yaml
 * all:
 *   vars: { ansible_user: deploy }
 *   hosts:
 *     bastion: { ansible_host: 10.0.0.2 }
 *   children:
 *     web:
 *       hosts:
 *         web[1:2]:            # ranges work as in Ansible
 *       vars: { nginx_workers: 4 }
 * ```
 *
 * Top-level keys are groups (usually just `all`); each group has `hosts` (a mapping of host names to
 * their vars, or nothing), `vars` and `children` (a mapping of groups, nested the same way). A group
 * written in several places is one group. Values are YAML 1.2: `yes`/`no` stay strings in vars (the
 * connection setting `ansible_become: yes` is still understood).
 */
import { emptyLayer, mergeLayer } from './layers.js';
import { type RawGroup, RawInventory } from './raw.js';
import { didYouMean } from './suggest.js';
import { InventoryError } from './types.js';
import type { YamlNode } from './yaml-positions.js';
import {
  checkGroupName,
  describeValue,
  expectMapping,
  hostNames,
  optionalMapping,
  readVars,
} from './yaml-shape.js';

export const ANSIBLE_GROUP_KEYS = ['hosts', 'children', 'vars'];

export function readAnsibleYaml(root: YamlNode, file: string): RawInventory {
  const inventory = new RawInventory('ansible-yaml', file);
  for (const [name, node] of expectMapping(root, 'the inventory'))
    readGroup(inventory, name, node, undefined);
  return inventory;
}

function readGroup(
  inventory: RawInventory,
  name: string,
  node: YamlNode,
  parent: RawGroup | undefined,
): void {
  const key: YamlNode = { value: name, origin: node.keyOrigin ?? node.origin };
  checkGroupName(name, key);
  const group = inventory.defineGroup(name, key.origin);
  if (parent) inventory.addChild(parent, { name, origin: key.origin });
  for (const [field, value] of optionalMapping(node, `group ${JSON.stringify(name)}`)) {
    if (field === 'hosts') {
      for (const [hostName, hostNode] of expectHostMapping(value, name)) {
        const hostKey: YamlNode = { value: hostName, origin: hostNode.keyOrigin ?? hostNode.origin };
        const layer =
          hostNode.value === null ? emptyLayer() : readVars(hostNode, `host ${JSON.stringify(hostName)}`);
        for (const expanded of hostNames(hostName, hostKey)) {
          inventory.defineHost(expanded, hostKey.origin, layer);
          inventory.addHostToGroup(group, { name: expanded, origin: hostKey.origin });
        }
      }
    } else if (field === 'vars') {
      mergeLayer(group.layer, readVars(value, `vars: of group ${JSON.stringify(name)}`));
    } else if (field === 'children') {
      for (const [childName, childNode] of optionalMapping(
        value,
        `children: of group ${JSON.stringify(name)}`,
      )) {
        readGroup(inventory, childName, childNode, group);
      }
    } else {
      throw new InventoryError(
        value.keyOrigin ?? value.origin,
        `group ${JSON.stringify(name)}: unknown key ${JSON.stringify(field)}${didYouMean(field, ANSIBLE_GROUP_KEYS)}: expected hosts, children or vars`,
      );
    }
  }
}

function expectHostMapping(node: YamlNode, group: string): Map<string, YamlNode> {
  if (node.value === null) return new Map();
  if (node.entries && !Array.isArray(node.value)) return node.entries;
  throw new InventoryError(
    node.origin,
    `hosts: of group ${JSON.stringify(group)} must be a mapping of host names (web1: or web1: { ansible_host: ... }), got ${describeValue(node.value)}`,
  );
}
