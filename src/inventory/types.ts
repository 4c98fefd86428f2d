/** The inventory model every loader (Verdandi YAML, Ansible INI, Ansible YAML) produces. */

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
  /** The host's merged vars (all < parent group < child group < host), connection keys removed. */
  vars: Record<string, unknown>;
  /** For each var, where its winning value came from. */
  varOrigins: Record<string, Origin>;
  /** Roles the host gets from its groups, in order (ancestor groups first, no duplicates). */
  roles: string[];
  origin: Origin;
}

export interface InventoryGroup {
  name: string;
  children: string[];
  hosts: string[];
  vars: Record<string, unknown>;
  roles: string[];
  origin: Origin;
}

export interface Inventory {
  /** Environment name: the file name without extension (`staging`). */
  env: string;
  /** Absolute path of the inventory file. */
  file: string;
  /** Directory of the project (the inventory's `..` when under `inventories/`, else its own folder). */
  projectDir: string;
  hosts: Map<string, InventoryHost>;
  groups: Map<string, InventoryGroup>;
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
