/**
 * What a format reader produces: hosts and groups as written, before checking references and merging
 * vars. The three readers (Verdandi YAML, Ansible YAML, Ansible INI) fill it through `RawInventory`'s
 * methods; `resolve.ts` turns it into an `Inventory`.
 */
import { emptyLayer, mergeLayer, type VarLayer } from './layers.js';
import type { Origin } from './types.js';

export interface Reference {
  name: string;
  origin: Origin;
}

export interface RawRole {
  role: string;
  layer: VarLayer;
  origin: Origin;
}

export interface RawHost {
  name: string;
  /** Where the host is first written. */
  origin: Origin;
  /** The host's own vars (all its definitions merged, later ones winning). */
  layer: VarLayer;
}

export interface RawGroup {
  name: string;
  /** Where the group is defined (until then: where it was first referenced). */
  origin: Origin;
  /** False for a group only referenced (as a child, or by an INI `[g:vars]` section). */
  defined: boolean;
  /** Rank of its definition in the file: among groups of the same depth, a later one wins. */
  order: number;
  hosts: Reference[];
  children: Reference[];
  layer: VarLayer;
  roles: RawRole[];
}

export type InventoryFormat = 'verdandi' | 'ansible-ini' | 'ansible-yaml';

export class RawInventory {
  readonly hosts = new Map<string, RawHost>();
  readonly groups = new Map<string, RawGroup>();
  /** Sections like INI's `[web:vars]` whose group must be defined somewhere in the file. */
  readonly groupsThatMustExist: Reference[] = [];
  private definitions = 0;
  /** Each group's host names, so that adding a host is O(1): a group of 10,000 hosts is read in linear time. */
  private readonly hostNamesOf = new Map<RawGroup, Set<string>>();

  constructor(
    readonly format: InventoryFormat,
    /** The inventory file as named in messages. */
    readonly file: string,
  ) {
    // Every host is in `all`; its position is the file until the file writes `all` somewhere.
    this.group('all', { file });
  }

  /** Defines a host, or adds vars to one already defined (later vars win). */
  defineHost(name: string, origin: Origin, layer: VarLayer = emptyLayer()): RawHost {
    let host = this.hosts.get(name);
    if (!host) {
      host = { name, origin, layer: emptyLayer() };
      this.hosts.set(name, host);
    }
    mergeLayer(host.layer, layer);
    return host;
  }

  /** Returns the group, creating it (undefined yet) the first time it is met. */
  group(name: string, origin: Origin): RawGroup {
    let group = this.groups.get(name);
    if (!group) {
      group = {
        name,
        origin,
        defined: false,
        order: -1,
        hosts: [],
        children: [],
        layer: emptyLayer(),
        roles: [],
      };
      this.groups.set(name, group);
    }
    return group;
  }

  defineGroup(name: string, origin: Origin): RawGroup {
    const group = this.group(name, origin);
    if (!group.defined) {
      group.defined = true;
      group.origin = origin;
      group.order = this.definitions++;
    }
    return group;
  }

  addHostToGroup(group: RawGroup, host: Reference): void {
    let names = this.hostNamesOf.get(group);
    if (!names) {
      names = new Set(group.hosts.map((h) => h.name));
      this.hostNamesOf.set(group, names);
    }
    if (names.has(host.name)) return;
    names.add(host.name);
    group.hosts.push(host);
  }

  addChild(parent: RawGroup, child: Reference): void {
    if (!parent.children.some((c) => c.name === child.name)) parent.children.push(child);
  }
}
