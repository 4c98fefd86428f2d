/**
 * Templates are precompiled into the compile cache and run on Handlebars' runtime (src/util/handlebars.ts,
 * issue 25): this proves a later process renders a template it compiled before without loading
 * Handlebars' compiler, that what comes from the cache behaves as what was compiled (strict, no HTML
 * escaping, no `log` helper), and that a cache turned off or not writable only means compiling again.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { compileTemplate } from '../../src/util/handlebars.js';

const MODULE = fileURLToPath(new URL('../../src/util/handlebars.ts', import.meta.url));
const SOURCE = 'server {{name}} <{{log}}>;\n{{#each ports}}listen {{this}};\n{{/each}}';
const VARS = { name: 'a&b', log: 'app.log', ports: [80, 443] };
const RENDERED = 'server a&b <app.log>;\nlisten 80;\nlisten 443;\n';

/** Renders SOURCE in a process of its own; says whether Handlebars' compiler was loaded for it. */
function renderElsewhere(cache: string): Promise<{ output: string; compilerLoaded: boolean }> {
  const script = `
    import { createRequire } from 'node:module';
    const { compileTemplate } = await import(${JSON.stringify(MODULE)});
    const output = compileTemplate(${JSON.stringify(SOURCE)})(${JSON.stringify(VARS)});
    const compilerLoaded = Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('compiler'));
    process.stdout.write(JSON.stringify({ output, compilerLoaded }));`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { env: { ...process.env, VERDANDI_TS_CACHE: cache } },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
    );
  });
}

test('a template is compiled once: a later process renders it from the cache, without the compiler', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'verdandi-hbs-'));
  t.deepEqual(await renderElsewhere(cache), { output: RENDERED, compilerLoaded: true });
  t.is(readdirSync(join(cache, 'templates')).length, 1, 'one precompiled template kept');
  t.deepEqual(await renderElsewhere(cache), { output: RENDERED, compilerLoaded: false });
});

test('from the cache as compiled: strict, no HTML escaping, {{log}} a var', (t) => {
  const saved = process.env.VERDANDI_TS_CACHE;
  process.env.VERDANDI_TS_CACHE = mkdtempSync(join(tmpdir(), 'verdandi-hbs-'));
  try {
    const source = 'a {{x}}\nb {{y.z}}\n';
    const compiled = compileTemplate(source); // compiled, then kept
    const cached = compileTemplate(source); // read back
    t.is(readdirSync(join(process.env.VERDANDI_TS_CACHE, 'templates')).length, 1);
    for (const render of [compiled, cached]) {
      t.is(render({ x: '<&>', y: { z: 1 } }), 'a <&>\nb 1\n');
      t.throws(() => render({ x: 1 }), { any: true, message: /^"z" not defined in undefined - 2:4$/ });
    }
    t.is(compileTemplate('{{log}}')({ log: 'l' }), 'l');
    t.throws(() => compileTemplate('{{#if}}'), {
      any: true,
      message: /#if requires exactly one argument|Parse error/,
    });
  } finally {
    process.env.VERDANDI_TS_CACHE = saved;
  }
});

test('with the cache off or not writable, templates are compiled each time and nothing is kept', (t) => {
  const saved = process.env.VERDANDI_TS_CACHE;
  try {
    process.env.VERDANDI_TS_CACHE = 'off';
    t.is(compileTemplate('off {{a}}')({ a: 1 }), 'off 1');
    const file = join(mkdtempSync(join(tmpdir(), 'verdandi-hbs-')), 'not-a-dir');
    writeFileSync(file, '');
    process.env.VERDANDI_TS_CACHE = file;
    t.is(compileTemplate('unwritable {{a}}')({ a: 2 }), 'unwritable 2');
  } finally {
    process.env.VERDANDI_TS_CACHE = saved;
  }
});
