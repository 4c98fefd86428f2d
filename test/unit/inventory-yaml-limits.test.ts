/**
 * The bounds of src/util/yaml.ts (size, nesting, alias expansion) and how each YAML reader reports a
 * document past them: inventories and vars files, `--var` files and values, secrets. The command line
 * itself (exit code, message, time) is test/unit/inventory-yaml-limits-cli.test.ts.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import yaml from 'js-yaml';
import { parseExtraVars, parseScalar } from '../../src/inventory/extra-vars.js';
import { InventoryError, loadInventory } from '../../src/inventory/index.js';
import { parseYaml } from '../../src/inventory/yaml-positions.js';
import { parseSecretsYaml, SecretsYamlError } from '../../src/secrets/yaml.js';
import {
  loadYaml,
  MAX_YAML_ALIASED_VALUES,
  MAX_YAML_BYTES,
  MAX_YAML_DEPTH,
  YamlLimitError,
} from '../../src/util/yaml.js';
import { aliasBomb } from '../fixtures/inventory/alias-bomb.js';

/**
 * What `fn` throws (undefined when it does not). Not `t.throws`: ava only accepts native errors, and
 * js-yaml's YAMLException is not one.
 */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** What `fn` throws, as a YamlLimitError (failing the test otherwise), and how long it took. */
function limitOf(t: import('ava').ExecutionContext, fn: () => unknown): { err: YamlLimitError; ms: number } {
  const started = performance.now();
  const err = thrown(fn);
  const ms = performance.now() - started;
  t.true(err instanceof YamlLimitError, `expected a YamlLimitError, got ${String(err)}`);
  return { err: err as YamlLimitError, ms };
}

test('an alias bomb is refused within a second, at the line of its first alias', (t) => {
  const text = aliasBomb(7);
  t.true(text.length < 360, `${text.length} bytes`);
  const { err: limit, ms } = limitOf(t, () => loadYaml(text, { filename: 'bomb.yml' }));
  t.true(limit instanceof yaml.YAMLException, 'callers that handle js-yaml errors handle it too');
  t.regex(limit.reason, /aliases \(\*name\) expand this document to more than 100000 repeated values/);
  t.is(limit.mark.line, 1, '0-based: the second line holds the first alias');
  t.is(limit.mark.column, 9);
  t.true(ms < 1000, `${ms} ms`);
});

test('a deeper bomb (9 levels, which exhausted the heap before) is refused as fast', (t) => {
  const { ms } = limitOf(t, () => loadYaml(aliasBomb(9)));
  t.true(ms < 1000, `${ms} ms`);
});

test('ordinary aliases and merge keys load: shared settings across thousands of hosts', (t) => {
  const hosts = Array.from({ length: 3000 }, (_, i) => `  h${i}: {<<: *defaults, n: ${i}}`).join('\n');
  const text = `defaults: &defaults {user: deploy, port: 22, tags: &tags [a, b, c]}\nother: *tags\nhosts:\n${hosts}\n`;
  const { types } = yaml as unknown as { types: { merge: yaml.Type } };
  const value = loadYaml(text, { schema: yaml.CORE_SCHEMA.extend({ implicit: [types.merge] }) }) as {
    hosts: Record<string, { user: string; n: number; tags: string[] }>;
  };
  t.is(Object.keys(value.hosts).length, 3000);
  t.deepEqual(value.hosts.h2999.tags, ['a', 'b', 'c']);
});

test('aliases may repeat up to the bound, not past it', (t) => {
  // One list of 99 scalars repeated n times: n * 100 repeated values (the list and its items).
  const doc = (n: number) =>
    `base: &b [${Array(99).fill('x').join(',')}]\nuses: [${Array(n).fill('*b').join(',')}]\n`;
  const fits = MAX_YAML_ALIASED_VALUES / 100;
  t.notThrows(() => loadYaml(doc(fits)));
  limitOf(t, () => loadYaml(doc(fits + 1)));
});

test('nesting: written deeper than the bound, or made deeper through aliases, is refused', (t) => {
  const deep = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
  t.notThrows(() => loadYaml(deep(MAX_YAML_DEPTH - 2)));
  const { err: written } = limitOf(t, () => loadYaml(deep(MAX_YAML_DEPTH + 10)));
  t.is(written.reason, `nested deeper than ${MAX_YAML_DEPTH} levels`);
  t.false(written.message.includes('[[['), 'no excerpt of the text: it may hold secrets');
  // Each anchor is shallow, but each holds the one before: 40 x 3 levels once expanded.
  const lines = ['a0: &a0 [[[1]]]'];
  for (let i = 1; i < 40; i++) lines.push(`a${i}: &a${i} [[[*a${i - 1}]]]`);
  const { err: chained } = limitOf(t, () => loadYaml(lines.join('\n')));
  t.regex(chained.reason, /aliases nest this document deeper than 64 levels/);
});

test('size: a document over the bound is refused before it is parsed', (t) => {
  const big = `x: "${'a'.repeat(MAX_YAML_BYTES)}"\n`;
  const { err } = limitOf(t, () => loadYaml(big, { filename: 'big.yml' }));
  t.regex(err.reason, /^the document is 4\.0 MiB; at most 4\.0 MiB is read$/);
  t.notThrows(() => loadYaml(`x: "${'a'.repeat(MAX_YAML_BYTES - 100)}"\n`));
});

test('inventory YAML: the bomb is an InventoryError naming file, line and column', (t) => {
  const err = t.throws(() => parseYaml(`vars:\n${aliasBomb(7, '  ')}`, 'inventories/bomb.yml'), {
    instanceOf: InventoryError,
  });
  t.regex(err?.message ?? '', /^inventories\/bomb\.yml:3:12: aliases \(\*name\) expand this document/);
});

test('inventory files: a vars file or an Ansible YAML inventory with a bomb, a file too big', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-yaml-limits-'));
  const inventories = join(dir, 'inventories');
  mkdirSync(join(inventories, 'group_vars'), { recursive: true });
  writeFileSync(join(inventories, 'staging.yml'), 'hosts:\n  web1: {address: 10.0.0.1}\n');
  writeFileSync(join(inventories, 'group_vars', 'all.yml'), aliasBomb(8));
  const vars = await t.throwsAsync(loadInventory('staging', { cwd: dir }), { instanceOf: InventoryError });
  t.regex(vars?.message ?? '', /^inventories\/group_vars\/all\.yml:2:10: aliases/);

  writeFileSync(
    join(inventories, 'ansible.yml'),
    `all:\n  hosts:\n    web1:\n  vars:\n${aliasBomb(7, '    ')}`,
  );
  const ansible = await t.throwsAsync(loadInventory('ansible', { cwd: dir }), { instanceOf: InventoryError });
  t.regex(ansible?.message ?? '', /^inventories\/ansible\.yml:6:14: aliases/);

  writeFileSync(join(inventories, 'huge.yml'), `# ${'x'.repeat(MAX_YAML_BYTES)}\n`);
  const huge = await t.throwsAsync(loadInventory('huge', { cwd: dir }), { instanceOf: InventoryError });
  t.regex(
    huge?.message ?? '',
    /^inventories\/huge\.yml:1:1: the document is 4\.0 MiB; at most 4\.0 MiB is read$/,
  );
});

test('--var: a file or a value with a bomb', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-yaml-limits-var-'));
  writeFileSync(join(dir, 'bomb.yml'), aliasBomb(7));
  const err = t.throws(() => parseExtraVars(['@bomb.yml'], { cwd: dir }));
  t.regex(err?.message ?? '', /^--var @bomb\.yml, line 2, column 10: aliases \(\*name\) expand/);
  // A `key=value` that is not a plain YAML value stays the text as written: never expanded.
  const value = `[${aliasBomb(7)
    .trim()
    .split('\n')
    .map((l) => l.replace(/^a\d+: /, ''))
    .join(',')}]`;
  t.is(parseScalar(value), value);
});

test('secrets: the bomb is a SecretsYamlError with line and column, quoting no text', (t) => {
  const err = t.throws(() => parseSecretsYaml(aliasBomb(7)), { instanceOf: SecretsYamlError });
  t.is(err?.line, 2);
  t.is(err?.column, 10);
  t.notRegex(err?.message ?? '', /\*a0|x,x/);
});

test('merge keys copying more than the bound are refused as well', (t) => {
  const { types } = yaml as unknown as { types: { merge: yaml.Type } };
  const schema = yaml.CORE_SCHEMA.extend({ implicit: [types.merge] });
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}: ${i}`).join(', ');
  const doc = (hosts: number) => `d: &d {${keys}}\nhosts: [${Array(hosts).fill('{<<: *d}').join(', ')}]\n`;
  t.notThrows(() => loadYaml(doc(90), { schema }));
  const { err } = limitOf(t, () => loadYaml(doc(101), { schema }));
  t.is(err.reason, 'merge keys (<<) copy more than 100000 values into this document');
});
