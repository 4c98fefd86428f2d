/**
 * The inventory model every loader (Verdandi YAML, Ansible INI, Ansible YAML) produces. See
 * `load.ts` for the formats and the order in which vars are merged.
 */

/** Where a value was written: used in every error message. */
export interface Origin {
  file: string;
  line?: number;
  column?: number;
}

export function formatOrigin(o: Origin): string {
  if (o.line === undefined) return o.file;
  return o.column === undefined ? `${o.file}:${o.line}` : `${o.file}:${o.line}:${o.column}`;
}

export interface InventoryHost {
  name: string;
  /** Address to connect to (defaults to the name). */
  address: string;
  port: number;
  user: string;
  /** Private key file, resolved to an absolute path. Undefined: ssh-agent / default keys. */
  key?: string;
  /** Run commands through sudo (implied when user is not root... only if set). */
  become: boolean;
  /** Direct groups (as written) — see `Inventory.groupsOf` for all ancestors. */
  groups: string[];
  /**
   * The host's merged vars (all < parent group < child group < host < --var), connection keys
   * removed. Not interpolated: `{{ secrets.x }}` is still text here (see `interpolateVars`).
   */
  vars: Record<string, unknown>;
  /**
   * For each var, where its winning value came from. Keys are var names, plus the path of every value
   * nested in a list or mapping (`nginx_sites[0].listen`), so a type error can point at the exact line.
   * Vars from `--var` have the origin `{ file: '--var' }`.
   */
  varOrigins: Record<string, Origin>;
  /** Roles the host gets from its groups, in order (ancestor groups first, no duplicates). */
  roles: string[];
  /**
   * The same roles with where each was listed and the vars given with it (`{ role: nginx, vars: {...} }`
   * in a group's `roles:`). Those vars apply to that role only, above the host's vars and below --var:
   * use `varsForRole(host, role)` to get the merged result.
   */
  roleEntries?: RoleEntry[];
  /** `local` runs commands on this machine (Ansible's `ansible_connection=local`); default ssh. */
  connection?: 'ssh' | 'local';
  /**
   * The jump hosts (bastions) to reach it through, as written: inventory host names or
   * `user@host:port`, comma-separated, the first one reached first (OpenSSH's ProxyJump).
   */
  jump?: string;
  /**
   * Where each connection setting the inventory gives explicitly was written. A setting not listed
   * here took its default, and the OpenSSH client configuration may give it (src/connection/route.ts).
   */
  settingOrigins?: Partial<Record<ExplicitSetting, Origin>>;
  origin: Origin;
}

/** The connection settings the OpenSSH client configuration can also give. */
export type ExplicitSetting = 'address' | 'port' | 'user' | 'key' | 'become' | 'jump';

export interface RoleEntry {
  role: string;
  /** Vars given with the role in `roles:` (empty for a plain name). */
  vars: Record<string, unknown>;
  varOrigins: Record<string, Origin>;
  /** Where the role was listed. */
  origin: Origin;
  /** The group that listed it (`all` for top-level `roles:`). */
  group: string;
}

export interface InventoryGroup {
  name: string;
  /** Direct child groups. */
  children: string[];
  /** Direct member hosts (for `all`: every host; for `ungrouped`: hosts in no other group). */
  hosts: string[];
  /** The group's own vars: inline vars, then its group_vars file(s). */
  vars: Record<string, unknown>;
  varOrigins?: Record<string, Origin>;
  roles: string[];
  origin: Origin;
  /** 0 for `all`, 1 for top-level groups, parent's depth + 1 below (longest path from `all`). */
  depth?: number;
}

export interface Inventory {
  /** Environment name: the file name without extension (`staging`). */
  env: string;
  /** Absolute path of the inventory file. */
  file: string;
  /** Directory of the project (the inventory's `..` when under `inventories/`, else its own folder). */
  projectDir: string;
  /** In file order. */
  hosts: Map<string, InventoryHost>;
  /** In file order, `all` first and `ungrouped` second (both always present, as in Ansible). */
  groups: Map<string, InventoryGroup>;
  /**
   * Every group the host belongs to, directly or through children, in precedence order (lowest first:
   * `all`, then by depth, then file order). Includes `all` (and `ungrouped` when the host is in no
   * other group). Empty for an unknown host.
   */
  groupsOf(hostName: string): string[];
  /** Which loader read the file. */
  format?: 'verdandi' | 'ansible-ini' | 'ansible-yaml';
  /** The `--var` values given to `loadInventory` (already merged into every host's vars). */
  extraVars?: Record<string, unknown>;
}

export class InventoryError extends Error {
  constructor(
    readonly origin: Origin,
    readonly detail: string,
  ) {
    super(`${formatOrigin(origin)}: ${detail}`);
    this.name = 'InventoryError';
  }
}
