/**
 * Loads roles and playbooks written in TypeScript at run time (through tsx). The CLI itself is compiled
 * JavaScript; TypeScript is only loaded when a role or playbook is.
 */
import { existsSync, readdirSync } from 'node:fs';
import { register as registerHook } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cacheOff } from '../util/cache-dir.js';
import { UserError } from '../util/errors.js';
import { packageRoot } from '../util/user-code.js';
import type { FirstPlay } from './compile-cache.js';
import type { Playbook, Role } from './types.js';

let registered = false;

/** Defined by the bundler (scripts/bundle.js): the engine runs as dist/bundle/, all its modules in that folder. */
declare const VERDANDI_BUNDLED: boolean | undefined;
const bundled = typeof VERDANDI_BUNDLED !== 'undefined' && VERDANDI_BUNDLED;

/** Are we running from TypeScript sources (tests through tsx) or from compiled JavaScript? */
const runningFromSource = !bundled && import.meta.url.endsWith('.ts');

/**
 * The URL of one of the engine's modules, named by its path under src/ without extension: the
 * bundle's entry point of that name, or the module itself beside this one. `index` is the public API
 * that roles import as `verdandi`: the very instance the CLI runs.
 */
function engineModule(path: string): string {
  if (bundled) return new URL(`./${basename(path)}.js`, import.meta.url).href;
  return new URL(`../${path}${runningFromSource ? '.ts' : '.js'}`, import.meta.url).href;
}

async function ensureTypeScriptLoader(): Promise<void> {
  if (registered) return;
  registered = true;
  if (!runningFromSource) {
    // Load the engine's public API before tsx's hooks exist: the modules a playbook imports through
    // `verdandi` are then already in the cache, not each loaded through the hooks (measured: -50 ms).
    await import(engineModule('index'));
    const { register } = await import('tsx/esm/api');
    register();
  }
  registerHook(engineModule('engine/resolve-hook'), { data: { target: engineModule('index') } });
}

/** Does this process load roles and playbooks from cached bundles (compile-cache.ts)? */
const usesCompileCache = () => !runningFromSource && !cacheOff();

export async function importTypeScript(file: string): Promise<Record<string, unknown>> {
  // The compiled CLI loads roles and playbooks from cached bundles (see compile-cache.ts); running from
  // the TypeScript sources (the tests), tsx is already there.
  if (usesCompileCache()) {
    const { importBundled } = await import('./compile-cache.js');
    // The public API every role imports, loaded before source maps are on: Node then does not search
    // the engine's own code for a map it does not have.
    const engine = engineModule('index');
    await import(engine);
    // Bundles carry their source maps: an error thrown in a role then names the role's .ts line
    // (plan.ts shows it). Node reads the maps of modules loaded from now on.
    process.setSourceMapsEnabled(true);
    return importBundled(file, engine);
  }
  await ensureTypeScriptLoader();
  return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
}

function roleDirs(projectDir: string): string[] {
  return [...new Set([join(projectDir, 'roles'), join(packageRoot(), 'roles')])];
}

export function knownRoles(projectDir: string): string[] {
  const names = new Set<string>();
  for (const dir of roleDirs(projectDir)) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && existsSync(join(dir, entry.name, 'index.ts'))) names.add(entry.name);
    }
  }
  return [...names].sort();
}

export function findRoleFile(name: string, projectDir: string): string | undefined {
  for (const dir of roleDirs(projectDir)) {
    const file = join(dir, name, 'index.ts');
    if (existsSync(file)) return file;
  }
  return undefined;
}

function isRole(x: unknown): x is Role {
  return !!x && typeof x === 'object' && (x as Role).kind === 'role';
}

const cache = new Map<string, Role>();
/** Role files found, by project and name: a role is looked up once per host (10,000 hosts, 10,000 stats). */
const foundFiles = new Map<string, string>();

/** Loads `roles/<name>/index.ts` (project first, then built-in). `where` names who asked for it. */
export async function loadRole(name: string, projectDir: string, where?: string): Promise<Role> {
  const key = `${projectDir}\0${name}`;
  const file = foundFiles.get(key) ?? findRoleFile(name, projectDir);
  if (file) foundFiles.set(key, file);
  if (!file) {
    const known = knownRoles(projectDir);
    throw new UserError(
      `${where ? `${where}: ` : ''}unknown role "${name}"`,
      1,
      `known roles: ${known.join(', ') || '(none)'}; a project role lives in roles/${name}/index.ts`,
    );
  }
  const cached = cache.get(file);
  if (cached) return cached;
  let mod: Record<string, unknown>;
  try {
    mod = await importTypeScript(file);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`role ${name} (${file}) failed to load: ${(err as Error).message}`, 1);
  }
  const role = mod.default;
  if (!isRole(role)) {
    throw new UserError(`${file}: the default export is not a role`, 1, 'export default defineRole({ ... })');
  }
  const loaded: Role = { ...role, dir: dirname(file) };
  cache.set(file, loaded);
  return loaded;
}

/**
 * The first play of `file` (its host pattern and serial) as the last load of these very sources found
 * it, without loading it: none without the compile cache, or when a source changed since.
 */
export async function rememberedFirstPlay(file: string): Promise<FirstPlay | undefined> {
  if (!usesCompileCache()) return undefined;
  const cache = await import('./compile-cache.js');
  return cache.rememberedFirstPlay(resolve(file), engineModule('index'));
}

export async function loadPlaybook(file: string): Promise<Playbook> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UserError(`playbook ${file} does not exist`, 1);
  let mod: Record<string, unknown>;
  try {
    mod = await importTypeScript(path);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`playbook ${file} failed to load: ${(err as Error).message}`, 1);
  }
  const pb = mod.default as Playbook | undefined;
  if (pb?.kind !== 'playbook') {
    throw new UserError(
      `${file}: the default export is not a playbook`,
      1,
      'export default definePlaybook({ plays: [...] })',
    );
  }
  const first = pb.plays?.[0];
  if (usesCompileCache() && typeof first?.hosts === 'string') {
    const cache = await import('./compile-cache.js');
    await cache.rememberFirstPlay(path, { hosts: first.hosts, serial: first.serial });
  }
  return pb;
}
