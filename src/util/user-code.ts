/**
 * Where in the user's code something happened: the first frame of a stack that is not Verdandi's own
 * (its `src/` or `dist/`), nor Node's, nor a dependency's. Roles and playbooks run as bundles that
 * carry their source maps, and Node reads those maps when the bundles load (loader.ts), so the frames
 * already name the `.ts` file and line the user wrote.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: { dir: string; version: string } | undefined;

function findPackage(): { dir: string; version: string } {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dir !== dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const manifest = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'verdandi') {
        root = { dir, version: String(manifest.version) };
        return root;
      }
    }
    dir = dirname(dir);
  }
  throw new Error('cannot find the verdandi package root');
}

/** The folder of Verdandi's own package (holds the built-in `roles/`, `templates/`, `examples/`). */
export function packageRoot(): string {
  return findPackage().dir;
}

/** Verdandi's version: its package.json's, the one place it is written. */
export function verdandiVersion(): string {
  return findPackage().version;
}

/** A path as messages show it: relative to the working directory when inside it. */
export function shownPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}

export interface CodeLocation {
  /** Absolute path of the file. */
  file: string;
  line: number;
  column: number;
}

const FRAME = /\(?((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?\s*$/;

/** The first frame of `stack` in the user's code (a role, a playbook, a module they import, a test). */
export function userFrame(stack: string | undefined): CodeLocation | undefined {
  if (!stack) return undefined;
  const pkg = packageRoot();
  const own = [`${pkg}${sep}src${sep}`, `${pkg}${sep}dist${sep}`];
  const builtInRoles = `${pkg}${sep}roles${sep}`;
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    const file = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
    if (own.some((dir) => file.startsWith(dir))) continue;
    // Built-in roles are the user's code too, even when Verdandi is installed under node_modules.
    if (file.includes(`${sep}node_modules${sep}`) && !file.startsWith(builtInRoles)) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return undefined;
}

/** `file:line` (or `file:line:column`) as messages show a location. */
export function shownLocation(at: CodeLocation, { column = false } = {}): string {
  return `${shownPath(at.file)}:${at.line}${column ? `:${at.column}` : ''}`;
}
