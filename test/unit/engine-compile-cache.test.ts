/** Roles and playbooks are bundled once and loaded from the cache while none of their files changed. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { importBundled, rememberedFirstPlay, rememberFirstPlay } from '../../src/engine/compile-cache.js';

// The built engine's public API (npm test builds it first): bundles import `verdandi` from there.
const ENGINE = new URL('../../dist/bundle/index.js', import.meta.url).href;

test.serial(
  'a bundle keeps verdandi external, rewrites import.meta.url, and is rebuilt only on change',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'vd-cc-'));
    process.env.VERDANDI_TS_CACHE = join(dir, 'cache');
    writeFileSync(join(dir, 'lib.ts'), 'export const answer: number = 41;\n');
    writeFileSync(
      join(dir, 'play.ts'),
      [
        "import { definePlaybook, quote } from 'verdandi';",
        "import { answer } from './lib.js';",
        'export const here = import.meta.url;',
        'export const value = answer + 1;',
        "export const quoted = quote('a b');",
        "export default definePlaybook({ plays: [{ hosts: 'all' }] });",
        '',
      ].join('\n'),
    );
    const first = await importBundled(join(dir, 'play.ts'), ENGINE);
    t.is(first.value, 42);
    t.is(first.quoted, "'a b'");
    t.is(first.here, pathToFileURL(join(dir, 'play.ts')).href);
    t.is((first.default as { kind: string }).kind, 'playbook');

    const manifest = readdirJson(join(dir, 'cache'));
    const built = statSync(manifest).mtimeMs;
    const again = await importBundled(join(dir, 'play.ts'), ENGINE);
    t.is(again.value, 42);
    t.is(statSync(manifest).mtimeMs, built, 'no rebuild when nothing changed');

    writeFileSync(join(dir, 'lib.ts'), 'export const answer: number = 99;\n');
    const changed = await importBundled(join(dir, 'play.ts'), ENGINE);
    t.is(changed.value, 100);
    t.deepEqual(Object.keys(JSON.parse(readFileSync(manifest, 'utf8')).inputs).sort(), [
      join(dir, 'lib.ts'),
      join(dir, 'play.ts'),
    ]);
  },
);

test.serial('a syntax error is a user error naming file, line and column', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-cc-'));
  process.env.VERDANDI_TS_CACHE = join(dir, 'cache');
  writeFileSync(join(dir, 'bad.ts'), 'export const x = ;\n');
  await t.throwsAsync(importBundled(join(dir, 'bad.ts'), ENGINE), {
    message: /bad\.ts:1:18: Unexpected ";"/,
  });
});

function readdirJson(dir: string): string {
  const json = readdirSync(dir).find((f) => f.endsWith('.json'));
  if (!json) throw new Error('no manifest');
  return join(dir, json);
}

test.serial("a playbook's first play is remembered for the same sources only", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-cc-'));
  process.env.VERDANDI_TS_CACHE = join(dir, 'cache');
  const play = join(dir, 'play.ts');
  writeFileSync(
    play,
    "import { definePlaybook } from 'verdandi';\nexport default definePlaybook({ plays: [{ hosts: 'web' }] });\n",
  );
  t.is(await rememberedFirstPlay(play, ENGINE), undefined, 'never loaded: nothing remembered');
  await importBundled(play, ENGINE);
  t.is(await rememberedFirstPlay(play, ENGINE), undefined, 'loaded, not yet told');
  await rememberFirstPlay(play, { hosts: 'web', serial: '30%' });
  t.deepEqual(await rememberedFirstPlay(play, ENGINE), { hosts: 'web', serial: '30%' });
  // The bundle stays the one built: remembering rewrites the entry, not the bundle.
  const manifest = readdirJson(join(dir, 'cache'));
  const output = JSON.parse(readFileSync(manifest, 'utf8')).output;
  t.is((await importBundled(play, ENGINE)).default !== undefined, true);
  t.is(JSON.parse(readFileSync(manifest, 'utf8')).output, output);

  writeFileSync(
    play,
    "import { definePlaybook } from 'verdandi';\nexport default definePlaybook({ plays: [{ hosts: 'db' }] });\n",
  );
  t.is(await rememberedFirstPlay(play, ENGINE), undefined, 'a changed source: nothing remembered');
  await rememberFirstPlay(play, { hosts: 'db' });
  t.is(await rememberedFirstPlay(play, ENGINE), undefined, 'a stale entry gives nothing, whatever it keeps');
});

test.serial('a cache entry whose bundle was removed is built again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-cc-'));
  process.env.VERDANDI_TS_CACHE = join(dir, 'cache');
  writeFileSync(join(dir, 'play.ts'), 'export const value: number = 7;\n');
  t.is((await importBundled(join(dir, 'play.ts'), ENGINE)).value, 7);
  const manifest = readdirJson(join(dir, 'cache'));
  const bundle = join(dir, 'cache', JSON.parse(readFileSync(manifest, 'utf8')).output);
  rmSync(bundle);
  t.is((await importBundled(join(dir, 'play.ts'), ENGINE)).value, 7);
  t.true(existsSync(bundle), 'the bundle is written again');
});
