/**
 * The layers point one way (README, Development): cli → commands → engine → tasks/connection →
 * inventory/secrets → util. A module importing from a layer above it fails here, naming the line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** `file:line: import` of every import in `dir` (recursively) whose source matches `pattern`. */
function importsIn(dir: string, pattern: RegExp): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(SRC, dir), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const from = /\bfrom '([^']+)'/.exec(line)?.[1];
        if (from && pattern.test(from)) found.push(`${relative(SRC, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  return found;
}

test('the engine and the commands import nothing from the command line', (t) => {
  t.deepEqual(importsIn('engine', /^\.\.\/cli\//), []);
  t.deepEqual(importsIn('commands', /^\.\.\/cli\//), []);
});

test('tasks, connections, inventory, secrets and util import nothing from the layers above', (t) => {
  // engine/types.ts is the vocabulary tasks are written in (Task, Plan); it imports nothing of Verdandi.
  const above = /^\.\.\/(cli|commands|deploy|backup)\/|^\.\.\/engine\/(?!types\.js$)/;
  for (const dir of ['tasks', 'connection', 'inventory', 'secrets', 'util']) {
    t.deepEqual(importsIn(dir, above), [], dir);
  }
  t.deepEqual(importsIn('util', /^\.\.\//), [], 'util imports only util');
});
