/**
 * Finding and loading an inventory.
 *
 * `<env>` is a name under `<project>/inventories/` (`staging` → `inventories/staging.yml`, `.yaml`,
 * `.ini`, or a file without extension such as Ansible's `hosts`), or a path to an inventory file.
 *
 * The format is told by the content (the extension only settles YAML vs INI when it is `.yml`,
 * `.yaml` or `.ini`):
 * - Verdandi YAML: top-level keys among `vars`, `hosts`, `groups`, `roles` (see verdandi-yaml.ts);
 * - Ansible YAML: top-level keys are groups (`all:`) holding `hosts`/`children`/`vars` (ansible-yaml.ts);
 * - Ansible INI: `[group]` sections and `host key=value` lines (ansible-ini.ts).
 *
 * Beside the inventory file, `group_vars/<group>.yml` (or `.yaml`, `.json`, or a folder
 * `group_vars/<group>/` of such files) and `host_vars/<host>.yml` (same forms) are merged in; files for
 * groups or hosts this inventory does not have are ignored (environments share the folders). The order
 * in which all vars are merged is written at the top of resolve.ts.
 */
import { readdirSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { checkYamlSize, YamlLimitError } from '../util/yaml.js';
import { readAnsibleIni } from './ansible-ini.js';
import { ANSIBLE_GROUP_KEYS, readAnsibleYaml } from './ansible-yaml.js';
import { emptyLayer, normalizeConnectionNames, setFromYaml, setValue, type VarLayer } from './layers.js';
import { RawInventory } from './raw.js';
import { EXTRA_VARS_ORIGIN, resolveInventory } from './resolve.js';
import { didYouMean, listNames } from './suggest.js';
import { type Inventory, InventoryError } from './types.js';
import { readVerdandiYaml, TOP_LEVEL_KEYS } from './verdandi-yaml.js';
import { parseYaml, type YamlNode } from './yaml-positions.js';
import { describeValue } from './yaml-shape.js';

const INVENTORY_EXTENSIONS = ['.yml', '.yaml', '.ini', ''];
const VARS_EXTENSIONS = ['.yml', '.yaml', '.json'];

export interface LoadOptions {
  /** The project directory: `<env>` names are looked up in `<cwd>/inventories/`; messages name files
   * relative to it. */
  cwd: string;
  /** `--var` values (see `parseExtraVars`): above every other var. */
  extraVars?: Record<string, unknown>;
}

/** The absolute path of the inventory for an environment name or a path. */
export function resolveInventoryPath(envOrPath: string, cwd: string): string {
  const inventoriesDir = path.join(cwd, 'inventories');
  const looksLikePath =
    path.isAbsolute(envOrPath) ||
    envOrPath.includes('/') ||
    envOrPath.includes(path.sep) ||
    envOrPath.startsWith('.') ||
    ['.yml', '.yaml', '.ini'].includes(path.extname(envOrPath));
  if (looksLikePath) {
    const file = path.resolve(cwd, envOrPath);
    // `staging.yml` alone most likely means inventories/staging.yml.
    const inInventories = path.join(inventoriesDir, envOrPath);
    if (!isFile(file) && path.basename(envOrPath) === envOrPath && isFile(inInventories)) {
      return inInventories;
    }
    if (!isFile(file)) {
      throw new UserError(
        `inventory file ${envOrPath} does not exist`,
        1,
        'give an environment name from inventories/ or the path of an inventory file',
      );
    }
    return file;
  }
  const candidates = INVENTORY_EXTENSIONS.map((ext) => path.join(inventoriesDir, envOrPath + ext)).filter(
    isFile,
  );
  if (candidates.length > 1) {
    throw new UserError(
      `environment ${JSON.stringify(envOrPath)} is ambiguous: ${candidates.map((c) => path.relative(cwd, c)).join(' and ')} both exist`,
      1,
      'remove one of them, or pass the path of the one you mean',
    );
  }
  if (candidates.length === 1) return candidates[0];
  // A bare file name in the current directory (an Ansible `hosts` file) works too.
  const local = path.resolve(cwd, envOrPath);
  if (isFile(local)) return local;
  const known = listEnvironments(cwd);
  if (known === undefined) {
    throw new UserError(
      `unknown environment ${JSON.stringify(envOrPath)}: there is no inventories/ folder in ${cwd}`,
      1,
      'run Verdandi from the project folder, or pass the path of an inventory file',
    );
  }
  throw new UserError(
    `unknown environment ${JSON.stringify(envOrPath)}${didYouMean(envOrPath, known)}: inventories/ has ${listNames(known)}`,
    1,
    'pass one of these names, or the path of an inventory file',
  );
}

/** Environment names under `<cwd>/inventories/`, sorted; undefined when there is no such folder. */
export function listEnvironments(cwd: string): string[] | undefined {
  const dir = path.join(cwd, 'inventories');
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name);
  } catch {
    return undefined;
  }
  const envs = new Set<string>();
  for (const name of names) {
    const ext = path.extname(name);
    if (name.startsWith('.') || !INVENTORY_EXTENSIONS.includes(ext)) continue;
    envs.add(name.slice(0, name.length - ext.length));
  }
  return [...envs].sort();
}

export async function loadInventory(envOrPath: string, options: LoadOptions): Promise<Inventory> {
  const cwd = path.resolve(options.cwd);
  const file = resolveInventoryPath(envOrPath, cwd);
  const displayFile = displayPath(file, cwd);
  const text = await readInventoryFile(file, displayFile);
  const raw = parseInventory(text, displayFile, path.extname(file));

  const dir = path.dirname(file);
  const groupVarsDir = path.join(dir, 'group_vars');
  const groupVarsNames = await entriesOf(groupVarsDir);
  const groupVarFiles = new Map<string, VarLayer[]>();
  for (const group of new Set([...raw.groups.keys(), 'all', 'ungrouped'])) {
    groupVarFiles.set(group, await readVarFiles(groupVarsDir, groupVarsNames, group, cwd));
  }
  const hostVarsDir = path.join(dir, 'host_vars');
  const hostVarsNames = await entriesOf(hostVarsDir);
  const hostVarFiles = new Map<string, VarLayer[]>();
  for (const host of raw.hosts.keys()) {
    hostVarFiles.set(host, await readVarFiles(hostVarsDir, hostVarsNames, host, cwd));
  }

  const extraVars = options.extraVars ?? {};
  const extraLayer = emptyLayer();
  for (const [name, value] of Object.entries(extraVars)) setValue(extraLayer, name, value, EXTRA_VARS_ORIGIN);
  normalizeConnectionNames(extraLayer);

  const ext = path.extname(file);
  const inInventories = path.basename(dir) === 'inventories';
  return resolveInventory(raw, {
    file,
    displayFile,
    env: path.basename(file, INVENTORY_EXTENSIONS.includes(ext) ? ext : ''),
    projectDir: inInventories ? path.dirname(dir) : dir,
    cwd,
    groupVarFiles,
    hostVarFiles,
    extraVars,
    extraLayer,
  });
}

/** Reads inventory text in whichever format it is written. `file` names it in messages. */
export function parseInventory(text: string, file: string, extension = ''): RawInventory {
  const format =
    extension === '.ini' ? 'ini' : extension === '.yml' || extension === '.yaml' ? 'yaml' : guessSyntax(text);
  if (format === 'ini') return readAnsibleIni(text, file);
  const root = parseYaml(text, file);
  if (!root || root.value === null) return new RawInventory('verdandi', file);
  return isAnsibleYaml(root) ? readAnsibleYaml(root, file) : readVerdandiYaml(root, file);
}

/** For a file without a telling extension: YAML when its first line of content is `key:` or `---`. */
function guessSyntax(text: string): 'ini' | 'yaml' {
  for (const line of text.replace(/^\ufeff/, '').split(/\r\n|\r|\n/)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    return trimmed === '---' || /^[^\s=[]+:(\s|$)/.test(trimmed) ? 'yaml' : 'ini';
  }
  return 'ini';
}

/**
 * Ansible YAML when the top-level keys are not Verdandi's and every top-level value is a group
 * (nothing, or a mapping of hosts/children/vars).
 */
function isAnsibleYaml(root: YamlNode): boolean {
  if (!root.entries || Array.isArray(root.value)) return false;
  const keys = [...root.entries.keys()];
  if (keys.every((key) => TOP_LEVEL_KEYS.includes(key))) return false;
  return [...root.entries.values()].every(
    (node) =>
      node.value === null ||
      (node.entries !== undefined &&
        !Array.isArray(node.value) &&
        [...node.entries.keys()].every((key) => ANSIBLE_GROUP_KEYS.includes(key))),
  );
}

/**
 * The names in `group_vars/` or `host_vars/` (none when it does not exist), read once: looking up
 * every candidate file of every host cost four `stat`s per host (40,000 for 10,000 hosts).
 */
async function entriesOf(dir: string): Promise<Set<string>> {
  try {
    return new Set(await fs.readdir(dir));
  } catch {
    return new Set();
  }
}

/**
 * The vars files of one group or host, in the order they apply: `<name>.yml`/`.yaml`/`.json`, then a
 * `<name>` file without extension, then the files of a `<name>/` folder in name order. `names`: what
 * `dir` holds (entriesOf).
 */
async function readVarFiles(dir: string, names: Set<string>, name: string, cwd: string): Promise<VarLayer[]> {
  const layers: VarLayer[] = [];
  for (const ext of [...VARS_EXTENSIONS, '']) {
    if (!names.has(name + ext)) continue;
    const file = path.join(dir, name + ext);
    const stat = await fs.stat(file).catch(() => undefined);
    if (stat?.isFile()) layers.push(await readVarFile(file, cwd));
    else if (stat?.isDirectory() && ext === '') {
      for (const entry of (await fs.readdir(file)).sort()) {
        if (!VARS_EXTENSIONS.includes(path.extname(entry)) || entry.startsWith('.')) continue;
        const inner = path.join(file, entry);
        if ((await fs.stat(inner)).isFile()) layers.push(await readVarFile(inner, cwd));
      }
    }
  }
  return layers;
}

/** An inventory or vars file's text; a file past the YAML size bound is refused before it is read. */
async function readInventoryFile(file: string, displayFile: string): Promise<string> {
  try {
    checkYamlSize((await fs.stat(file)).size, displayFile);
  } catch (err) {
    if (err instanceof YamlLimitError)
      throw new InventoryError({ file: displayFile, line: 1, column: 1 }, err.reason);
    throw err;
  }
  return fs.readFile(file, 'utf8');
}

async function readVarFile(file: string, cwd: string): Promise<VarLayer> {
  const displayFile = displayPath(file, cwd);
  const text = await readInventoryFile(file, displayFile);
  if (text.startsWith('$ANSIBLE_VAULT')) {
    throw new InventoryError(
      { file: displayFile, line: 1, column: 1 },
      'this file is encrypted with ansible-vault, which Verdandi does not read: move its values to secrets/<env>.yml.asc and refer to them as "{{ secrets.name }}"',
    );
  }
  const root = parseYaml(text, displayFile);
  const layer = emptyLayer();
  if (!root || root.value === null) return layer;
  if (!root.entries || Array.isArray(root.value)) {
    throw new InventoryError(
      root.origin,
      `expected a mapping of vars (name: value), got ${describeValue(root.value)}`,
    );
  }
  for (const [name, node] of root.entries) setFromYaml(layer, name, node);
  return normalizeConnectionNames(layer);
}

/** Paths in messages: relative to the project when inside it, absolute otherwise. */
export function displayPath(file: string, cwd: string): string {
  const relative = path.relative(cwd, file);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
