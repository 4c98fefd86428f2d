/**
 * From hosts and groups as written (`RawInventory`) to the `Inventory` the engine uses: references are
 * checked, group depths computed, and each host's vars merged.
 *
 * Precedence, lowest first (a later layer replaces a var whole; mappings are not deep-merged):
 *
 *   1. role defaults (the role's zod schema; applied by `validateRoleVars`, not here)
 *   2. the `all` group: its inline vars (top-level `vars:`, `[all:vars]`, `all: vars:`), then
 *      `group_vars/all.yml`
 *   3. every other group of the host, shallowest first: a group's depth is the length of the longest
 *      path from `all` (top-level groups are 1, their children 2, ...), so a child group beats its
 *      parent. Groups of the same depth are applied in the order they first appear in the inventory
 *      file: the later one wins. For each group, its inline vars, then `group_vars/<group>.yml`, then the
 *      files of `group_vars/<group>/` in name order.
 *   4. the host: its inline vars (all the places it is written, in file order), then
 *      `host_vars/<host>.yml`, then the files of `host_vars/<host>/`
 *   5. vars given with a role in `roles:` (`{ role: nginx, vars: {...} }`), for that role only
 *      (see `varsForRole`)
 *   6. extra vars (`--var key=value`)
 *
 * Connection settings (address, port, user, key, become, connection, and their `ansible_*` names) are
 * merged by the same rules, then taken out of the vars into the host's fields.
 */
import os from 'node:os';
import path from 'node:path';
import { copyLayer, emptyLayer, mergeLayer, removeVar, type VarLayer } from './layers.js';
import type { RawGroup, RawInventory } from './raw.js';
import { didYouMean, listNames } from './suggest.js';
import {
  type Inventory,
  InventoryError,
  type InventoryGroup,
  type InventoryHost,
  type Origin,
  type RoleEntry,
} from './types.js';
import { describeValue } from './yaml-shape.js';

export interface ResolveContext {
  /** Absolute path of the inventory file. */
  file: string;
  /** The inventory file as named in messages. */
  displayFile: string;
  env: string;
  projectDir: string;
  /** The directory `--var key=...` paths are relative to. */
  cwd: string;
  /** Vars files by group and by host name, each in the order they apply. */
  groupVarFiles: Map<string, VarLayer[]>;
  hostVarFiles: Map<string, VarLayer[]>;
  extraVars: Record<string, unknown>;
  extraLayer: VarLayer;
}

export const EXTRA_VARS_ORIGIN: Origin = { file: '--var' };

export function resolveInventory(raw: RawInventory, context: ResolveContext): Inventory {
  checkReferences(raw);
  checkCycles(raw);

  // Groups in the order they are defined in the file (`all` first, then `ungrouped`).
  const definitionOrder = [...raw.groups.values()]
    .filter((g) => g.name !== 'all' && g.name !== 'ungrouped')
    .sort((a, b) => a.order - b.order)
    .map((g) => g.name);
  const order = new Map(['all', 'ungrouped', ...definitionOrder].map((name, index) => [name, index]));
  const parents = parentsByGroup(raw);
  const depths = groupDepths(raw, parents);

  // Hosts in no group of their own are in `ungrouped` (as in Ansible), even when the file names it.
  const directGroups = new Map<string, string[]>();
  for (const host of raw.hosts.keys()) directGroups.set(host, []);
  for (const group of raw.groups.values()) {
    for (const ref of group.hosts) directGroups.get(ref.name)?.push(group.name);
  }
  const ungrouped = raw.group('ungrouped', { file: raw.file });
  ungrouped.hosts = [...raw.hosts.values()]
    .filter((host) => (directGroups.get(host.name) ?? []).every((g) => g === 'all' || g === 'ungrouped'))
    .map((host) => ({ name: host.name, origin: host.origin }));
  depths.set('ungrouped', 1);

  const byPrecedence = (a: string, b: string) =>
    (depths.get(a) ?? 0) - (depths.get(b) ?? 0) || (order.get(a) ?? 0) - (order.get(b) ?? 0);

  const isUngrouped = new Set(ungrouped.hosts.map((h) => h.name));
  const groupsOfHost = new Map<string, string[]>();
  for (const host of raw.hosts.keys()) {
    const found = new Set<string>(['all']);
    const climb = (group: string) => {
      if (found.has(group)) return;
      found.add(group);
      for (const parent of parents.get(group) ?? []) climb(parent);
    };
    for (const group of directGroups.get(host) ?? []) climb(group);
    if (isUngrouped.has(host)) found.add('ungrouped');
    groupsOfHost.set(host, [...found].sort(byPrecedence));
  }

  const groupLayers = new Map<string, VarLayer>();
  for (const group of raw.groups.values()) {
    const layer = copyLayer(group.layer);
    for (const file of context.groupVarFiles.get(group.name) ?? []) mergeLayer(layer, file);
    groupLayers.set(group.name, layer);
  }

  const hosts = new Map<string, InventoryHost>();
  for (const rawHost of raw.hosts.values()) {
    const memberOf = groupsOfHost.get(rawHost.name) ?? ['all'];
    const layer = emptyLayer();
    for (const group of memberOf) mergeLayer(layer, groupLayers.get(group) ?? emptyLayer());
    mergeLayer(layer, rawHost.layer);
    for (const file of context.hostVarFiles.get(rawHost.name) ?? []) mergeLayer(layer, file);
    mergeLayer(layer, context.extraLayer);
    const connection = takeConnectionSettings(rawHost.name, layer, context);
    const roleEntries = rolesOf(memberOf.map((name) => raw.groups.get(name)).filter((g) => g !== undefined));
    hosts.set(rawHost.name, {
      name: rawHost.name,
      ...connection,
      groups: (directGroups.get(rawHost.name) ?? []).filter((g) => g !== 'all' && g !== 'ungrouped'),
      vars: layer.vars,
      varOrigins: layer.origins,
      roles: roleEntries.map((entry) => entry.role),
      roleEntries,
      origin: rawHost.origin,
    });
  }

  const groups = new Map<string, InventoryGroup>();
  for (const name of order.keys()) {
    const group = raw.groups.get(name)!;
    const layer = groupLayers.get(name) ?? copyLayer(group.layer);
    groups.set(name, {
      name,
      children:
        name === 'all'
          ? [...order.keys()].filter((g) => g !== 'all' && (parents.get(g) ?? []).includes('all'))
          : group.children.map((c) => c.name),
      hosts: name === 'all' ? [...raw.hosts.keys()] : group.hosts.map((h) => h.name),
      vars: layer.vars,
      varOrigins: layer.origins,
      roles: group.roles.map((r) => r.role),
      origin: group.origin,
      depth: depths.get(name) ?? 0,
    });
  }

  return {
    env: context.env,
    file: context.file,
    projectDir: context.projectDir,
    hosts,
    groups,
    groupsOf: (hostName: string) => [...(groupsOfHost.get(hostName) ?? [])],
    format: raw.format,
    extraVars: context.extraVars,
  };
}

/** Every group named somewhere must be defined, and every host a group lists must exist. */
function checkReferences(raw: RawInventory): void {
  const defined = [...raw.groups.values()].filter((g) => g.defined).map((g) => g.name);
  const groupList = () => `defined groups: ${listNames(defined)}`;
  for (const ref of raw.groupsThatMustExist) {
    if (!raw.groups.get(ref.name)?.defined) {
      throw new InventoryError(
        ref.origin,
        `group ${JSON.stringify(ref.name)} is not defined (no [${ref.name}] or [${ref.name}:children] section)${didYouMean(ref.name, defined)}; ${groupList()}`,
      );
    }
  }
  for (const group of raw.groups.values()) {
    for (const child of group.children) {
      if (child.name === 'all') {
        throw new InventoryError(
          child.origin,
          `group "all" cannot be a child of ${JSON.stringify(group.name)}: it holds every host`,
        );
      }
      if (!raw.groups.get(child.name)?.defined) {
        throw new InventoryError(
          child.origin,
          `child group ${JSON.stringify(child.name)} of ${JSON.stringify(group.name)} is not defined${didYouMean(child.name, defined)}; ${groupList()}`,
        );
      }
    }
    for (const host of group.hosts) {
      if (!raw.hosts.has(host.name)) {
        throw new InventoryError(
          host.origin,
          `host ${JSON.stringify(host.name)} in group ${JSON.stringify(group.name)} is not defined under hosts:${didYouMean(host.name, raw.hosts.keys())}; defined hosts: ${listNames(raw.hosts.keys())}`,
        );
      }
    }
  }
}

/** A group that is (through children) its own child would make membership and depth infinite. */
function checkCycles(raw: RawInventory): void {
  const done = new Set<string>();
  const visit = (group: RawGroup, trail: string[]) => {
    if (done.has(group.name)) return;
    for (const child of group.children) {
      const loopStart = trail.indexOf(child.name);
      if (loopStart !== -1 || child.name === group.name) {
        const loop = [...trail.slice(loopStart === -1 ? trail.length : loopStart), group.name, child.name];
        throw new InventoryError(child.origin, `groups form a cycle through children: ${loop.join(' → ')}`);
      }
      const next = raw.groups.get(child.name);
      if (next) visit(next, [...trail, group.name]);
    }
    done.add(group.name);
  };
  for (const group of raw.groups.values()) visit(group, []);
}

/** Parents of each group; a group nobody lists as a child is a child of `all`. */
function parentsByGroup(raw: RawInventory): Map<string, string[]> {
  const parents = new Map<string, string[]>();
  for (const group of raw.groups.values()) {
    for (const child of group.children) {
      const list = parents.get(child.name) ?? [];
      if (!list.includes(group.name)) list.push(group.name);
      parents.set(child.name, list);
    }
  }
  for (const name of raw.groups.keys()) {
    if (name !== 'all' && !parents.has(name)) parents.set(name, ['all']);
  }
  return parents;
}

/** Depth = length of the longest path from `all` (so a group is always deeper than all its parents). */
function groupDepths(raw: RawInventory, parents: Map<string, string[]>): Map<string, number> {
  const depths = new Map<string, number>([['all', 0]]);
  const depthOf = (name: string): number => {
    const known = depths.get(name);
    if (known !== undefined) return known;
    const depth = 1 + Math.max(0, ...(parents.get(name) ?? ['all']).map(depthOf));
    depths.set(name, depth);
    return depth;
  };
  for (const name of raw.groups.keys()) depthOf(name);
  return depths;
}

/** Roles in group precedence order, each once; vars given with a role listed twice are merged. */
function rolesOf(groups: RawGroup[]): RoleEntry[] {
  const entries = new Map<string, RoleEntry>();
  for (const group of groups) {
    for (const role of group.roles) {
      const existing = entries.get(role.role);
      if (existing) {
        const merged: VarLayer = { vars: existing.vars, origins: existing.varOrigins };
        mergeLayer(merged, role.layer);
        continue;
      }
      const layer = copyLayer(role.layer);
      entries.set(role.role, {
        role: role.role,
        vars: layer.vars,
        varOrigins: layer.origins,
        origin: role.origin,
        group: group.name,
      });
    }
  }
  return [...entries.values()];
}

type ConnectionSettings = Pick<
  InventoryHost,
  'address' | 'port' | 'user' | 'key' | 'become' | 'connection' | 'jump' | 'settingOrigins'
>;

/** Takes the connection settings out of a host's merged vars, checking their types. */
function takeConnectionSettings(host: string, layer: VarLayer, context: ResolveContext): ConnectionSettings {
  const origins = { ...layer.origins };
  const take = (name: string) => {
    const value = layer.vars[name];
    removeVar(layer, name);
    return value;
  };
  const fail = (name: string, expected: string, value: unknown): never => {
    throw new InventoryError(
      origins[name] ?? { file: context.displayFile },
      `host ${JSON.stringify(host)}: ${name} must be ${expected}, got ${describeValue(value)}`,
    );
  };

  const address = take('address') ?? host;
  if (typeof address !== 'string' || address === '') fail('address', 'a host name or IP address', address);

  let port = take('port') ?? 22;
  if (typeof port === 'string' && /^\d+$/.test(port)) port = Number(port);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    fail('port', 'a number from 1 to 65535', port);
  }

  const user = take('user') ?? 'root';
  if (typeof user !== 'string' || user === '') fail('user', 'a user name', user);

  const keyValue = take('key');
  let key: string | undefined;
  if (keyValue !== undefined && keyValue !== null) {
    if (typeof keyValue !== 'string' || keyValue === '')
      fail('key', 'the path of a private key file', keyValue);
    key = resolveKeyPath(
      keyValue as string,
      origins.key?.file === EXTRA_VARS_ORIGIN.file ? context.cwd : path.dirname(context.file),
    );
  }

  const becomeValue = take('become');
  let become = user !== 'root';
  if (becomeValue !== undefined && becomeValue !== null) {
    const parsed = parseBoolean(becomeValue);
    if (parsed === undefined) fail('become', 'true or false', becomeValue);
    become = parsed as boolean;
  }

  const connectionValue = take('connection');
  let connection: 'ssh' | 'local' | undefined;
  if (connectionValue !== undefined && connectionValue !== null) {
    if (connectionValue === 'local') connection = 'local';
    else if (connectionValue === 'ssh' || connectionValue === 'smart' || connectionValue === 'paramiko')
      connection = 'ssh';
    else fail('connection', 'ssh or local', connectionValue);
  }

  const jumpValue = take('jump');
  let jump: string | undefined;
  // `jump: none` (or empty): this host is reached directly, even when its group has a jump host.
  if (jumpValue !== undefined && jumpValue !== null && jumpValue !== '' && jumpValue !== 'none') {
    if (typeof jumpValue !== 'string')
      fail('jump', 'a host name or user@host:port (several: comma-separated)', jumpValue);
    jump = jumpValue as string;
  }

  // What was given explicitly, and where: it wins over the OpenSSH client configuration.
  const settingOrigins: InventoryHost['settingOrigins'] = {};
  for (const name of ['address', 'port', 'user', 'key', 'become', 'jump'] as const) {
    const origin = origins[name];
    if (origin) settingOrigins[name] = origin;
  }

  return {
    address: address as string,
    port: port as number,
    user: user as string,
    key,
    become,
    connection,
    jump,
    settingOrigins,
  };
}

function parseBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  if (typeof value === 'string') {
    if (/^(true|yes|on|1)$/i.test(value)) return true;
    if (/^(false|no|off|0)$/i.test(value)) return false;
  }
  return undefined;
}

/** `~/x` is in the home directory; a relative path is relative to `base`. */
export function resolveKeyPath(value: string, base: string): string {
  if (value === '~') return os.homedir();
  if (value.startsWith('~/')) return path.join(os.homedir(), value.slice(2));
  return path.resolve(base, value);
}
