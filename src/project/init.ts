/**
 * `verdandi init [dir]`: an ops project to start from, the way `kamal init` makes one.
 *
 *   inventories/staging.yml, production.yml   commented examples: nginx → app under supervisor → PostgreSQL
 *   inventories/*.schema.json                 editor completion (`verdandi schema`; the inventories name it)
 *   roles/example/                            a typed role with a template and a README
 *   site.ts                                   a playbook
 *   secrets/README.md                         how secrets and team members' keys work
 *   .gitignore                                vault passwords and decrypted files never committed
 *   tsconfig.json                             the editor type-checks roles against Verdandi's types
 *   package.json                              verdandi as a devDependency; provision/deploy/check scripts
 *
 * Nothing that exists is overwritten: a file that is there is kept as it is, except that the lines
 * `.gitignore` needs and the scripts and devDependency `package.json` needs are added when missing.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { UserError } from '../util/errors.js';
import { packageRoot, verdandiVersion } from '../util/user-code.js';
import { projectRoles, SCHEMA_FILE, schemaFiles, VARS_SCHEMA_FILE } from './schema.js';

/** The files copied as they are, from the package's `templates/project/`. */
export function templateDir(): string {
  return join(packageRoot(), 'templates', 'project');
}

/** Lines the project's `.gitignore` must have (secrets first: they are why it exists). */
export const GITIGNORE_LINES = [
  '# Secrets: only the encrypted secrets/<env>.yml.asc files are committed.',
  '*.vault-password',
  'secrets/*.yml',
  'secrets/*.decrypted*',
  'secrets/.tmp*',
  'secrets/*.lock*',
  '# Written by `verdandi testhost up/down`.',
  'inventories/local.yml',
  '# Known host keys and caches of this machine.',
  '.verdandi/',
  'node_modules/',
];

/** The scripts of the project's package.json. */
export const SCRIPTS: Record<string, string> = {
  check: 'verdandi check staging && verdandi check production',
  'provision:staging': 'verdandi provision staging',
  'deploy:staging': 'verdandi deploy staging --branch main',
  schema: 'verdandi schema',
};

export type Outcome = 'created' | 'kept' | 'updated' | 'skipped';

export interface InitResult {
  dir: string;
  /** Every file of the scaffold, relative to `dir`, with what happened to it. */
  files: Array<{ file: string; outcome: Outcome; detail?: string }>;
}

/** A package name from a folder name (`Ops Repo` → `ops-repo`). */
export function packageName(dir: string): string {
  const name = basename(resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+|[-]+$/g, '');
  return name || 'ops';
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = join(prefix, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(dir, path)));
    else files.push(path);
  }
  return files.sort();
}

/** Writes `content` at `file` unless something is there (`wx`: even one created meanwhile is kept). */
async function createFile(file: string, content: string | Buffer): Promise<Outcome> {
  await mkdir(dirname(file), { recursive: true });
  try {
    await writeFile(file, content, { flag: 'wx' });
    return 'created';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return 'kept';
    throw err;
  }
}

async function gitignore(file: string): Promise<{ outcome: Outcome; detail?: string }> {
  if (!existsSync(file)) {
    await createFile(file, `${GITIGNORE_LINES.join('\n')}\n`);
    return { outcome: 'created' };
  }
  const text = await readFile(file, 'utf8');
  const present = new Set(text.split(/\r?\n/).map((line) => line.trim()));
  const missing = GITIGNORE_LINES.filter((line) => !line.startsWith('#') && !present.has(line));
  if (missing.length === 0) return { outcome: 'kept' };
  const separator = text === '' || text.endsWith('\n') ? '' : '\n';
  await appendFile(file, `${separator}# Added by \`verdandi init\`.\n${missing.join('\n')}\n`);
  return { outcome: 'updated', detail: `added ${missing.join(' ')}` };
}

async function packageJson(file: string, dir: string): Promise<{ outcome: Outcome; detail?: string }> {
  const devDependency = `^${verdandiVersion()}`;
  if (!existsSync(file)) {
    const manifest = {
      name: packageName(dir),
      private: true,
      type: 'module',
      description: 'Servers provisioned and deployed with Verdandi',
      scripts: SCRIPTS,
      devDependencies: { verdandi: devDependency },
    };
    await createFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
    return { outcome: 'created' };
  }
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UserError(
      `${relative(process.cwd(), file) || file} is not valid JSON (${(err as Error).message})`,
      1,
      'fix it, or move it away and run verdandi init again',
    );
  }
  const added: string[] = [];
  const scripts = { ...((manifest.scripts as Record<string, string> | undefined) ?? {}) };
  for (const [name, command] of Object.entries(SCRIPTS)) {
    if (scripts[name] !== undefined) continue;
    scripts[name] = command;
    added.push(`scripts.${name}`);
  }
  const has = (field: string) =>
    (manifest[field] as Record<string, string> | undefined)?.verdandi !== undefined;
  let devDependencies = manifest.devDependencies as Record<string, string> | undefined;
  if (!has('dependencies') && !has('devDependencies')) {
    devDependencies = { ...(devDependencies ?? {}), verdandi: devDependency };
    added.push('devDependencies.verdandi');
  }
  if (added.length === 0) return { outcome: 'kept' };
  const updated = { ...manifest, scripts, ...(devDependencies ? { devDependencies } : {}) };
  await writeFile(file, `${JSON.stringify(updated, null, 2)}\n`);
  return { outcome: 'updated', detail: `added ${added.join(', ')}` };
}

/** Scaffolds the project in `dir` (created when missing). */
export async function scaffold(dir: string): Promise<InitResult> {
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const result: InitResult = { dir: root, files: [] };
  // First: an unreadable package.json stops everything before any file is written.
  const manifest = await packageJson(join(root, 'package.json'), root);
  const templates = templateDir();
  for (const file of await listFiles(templates)) {
    const outcome = await createFile(join(root, file), await readFile(join(templates, file)));
    result.files.push({ file, outcome });
  }
  // From the roles the project has now (its own roles/ included): `verdandi schema` refreshes them.
  // A role of the project that does not load yet leaves the rest of the scaffold useful.
  let schemas: Map<string, string> | undefined;
  let problem = '';
  try {
    schemas = schemaFiles(await projectRoles(root));
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    problem = `${err.message}; fix it, then run: verdandi schema`;
  }
  for (const file of [SCHEMA_FILE, VARS_SCHEMA_FILE]) {
    const text = schemas?.get(file);
    if (existsSync(join(root, file))) result.files.push({ file, outcome: 'kept' });
    else if (text === undefined) result.files.push({ file, outcome: 'skipped', detail: problem });
    else result.files.push({ file, outcome: await createFile(join(root, file), text) });
  }
  result.files.push({ file: '.gitignore', ...(await gitignore(join(root, '.gitignore'))) });
  result.files.push({ file: 'package.json', ...manifest });
  return result;
}

/** What `verdandi init` prints: each file, then the next steps. */
export function describeResult(result: InitResult, cwd: string): string {
  const lines = result.files
    .sort((a, b) => a.file.localeCompare(b.file))
    .map(({ file, outcome, detail }) => {
      const note = outcome === 'kept' ? ' (exists, left as it is)' : detail ? ` (${detail})` : '';
      return `${outcome.padEnd(8)}${file}${note}`;
    });
  const where = relative(cwd, result.dir);
  const cd = where === '' ? '' : `cd ${where.startsWith('..') ? result.dir : where} && `;
  const steps: Array<[string, string]> = [
    [`${cd}npm install`, 'Verdandi as a devDependency: npx verdandi, the types for your editor'],
    ['npm run check', 'inventories, roles, templates and secrets, without touching a server'],
    ['npx verdandi testhost up', 'a throwaway Debian machine, test1 (Linux, as root): inventories/local.yml'],
    ['npx verdandi run local site.ts --limit test1', 'the playbook: roles/example on it'],
    ['npm run provision:staging', 'once inventories/staging.yml lists your servers'],
  ];
  const width = Math.max(...steps.map(([command]) => command.length));
  return `${lines.join('\n')}\n\nNext:\n${steps.map(([command, why]) => `  ${command.padEnd(width)}  # ${why}`).join('\n')}\n`;
}

export async function initCommand(dir: string): Promise<void> {
  const result = await scaffold(dir);
  process.stdout.write(describeResult(result, process.cwd()));
}
