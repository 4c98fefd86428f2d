/**
 * `inventories/local.yml`: every running test host, rewritten after each `testhost up`/`down`, so
 * `verdandi ping local` (or provision local) reaches them right away.
 */
import { join } from 'node:path';
import yaml from 'js-yaml';
import { writeFileAtomic } from './state.js';

export interface InventoryEntry {
  name: string;
  address: string;
  user: string;
  key: string;
}

export const LOCAL_INVENTORY = join('inventories', 'local.yml');

const HEADER = `# Written by \`verdandi testhost up/down\`: every running local test host (Debian 12 in
# systemd-nspawn, see \`verdandi testhost list\`). It is rewritten each time: do not edit it.
# Each host: address (10.231.N.2), user root, key = the harness's private key in its cache dir.
`;

export function renderLocalInventory(hosts: InventoryEntry[]): string {
  const sorted = [...hosts].sort((a, b) => a.name.localeCompare(b.name));
  const document = {
    hosts: Object.fromEntries(sorted.map((h) => [h.name, { address: h.address, user: h.user, key: h.key }])),
    groups: {},
  };
  return HEADER + yaml.dump(document, { lineWidth: -1 });
}

/** Writes `<projectDir>/inventories/local.yml` atomically; returns its path. */
export async function writeLocalInventory(projectDir: string, hosts: InventoryEntry[]): Promise<string> {
  const path = join(projectDir, LOCAL_INVENTORY);
  await writeFileAtomic(path, renderLocalInventory(hosts));
  return path;
}
