// Bundles the engine for Node (run by `npm run build`, after tsc). Started from ~160 compiled modules
// and the hundreds of files of the packages they import, the CLI spent more time in Node's module
// loader than in the work of a `verdandi check`; one esbuild bundle with code splitting loads a few
// files instead.
//
// - Two entry points, the CLI (`dist/bundle/main.js`, what bin/verdandi.js imports) and the public API
//   (`dist/bundle/index.js`, the package's "exports"), and four files run on their own (the resolve
//   hook, the connection keeper and the spare engine of `--persist`, the background import of the run
//   history): the modules they share live in chunks, so the CLI and the roles it loads (their
//   `import ... from 'verdandi'` resolves to that same index) share one instance of every registry, warn-once set and class.
// - Dynamic imports stay lazy: each becomes a chunk loaded only when a command needs it.
// - Pure-JavaScript dependencies the CLI loads on every run are bundled; the others stay external:
//   those that read files beside their own code (WebAssembly, native binaries), register their own
//   loaders (tsx), or are only loaded by some commands.
//   Of Handlebars only its runtime is bundled (src/util/handlebars.ts): templates are precompiled into
//   the compile cache, and its compiler is required from node_modules for a template not seen yet.
// - Every module of the bundle sits in dist/bundle/ itself; `VERDANDI_BUNDLED` tells the engine so
//   (src/engine/loader.ts finds its index and its resolve hook there).
// - zod's locales (64 languages, a third of zod's code) are `z.locales` of the public API, yet a run
//   only ever uses English (zod's default, kept in the bundle). The others live in
//   `dist/bundle/zod-locales.cjs`, loaded (synchronously, by require) the first time a role calls one:
//   a run no longer reads and compiles ~370 KB it never uses (issue 25).
// - `dist/bundle/help.txt`: what the built CLI prints for `verdandi --help`, printed by commander from
//   the real command definitions here, once, so that a user's `verdandi --help` need not load them
//   (src/cli/main.ts).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
const BUNDLED = new Set(['commander', 'handlebars', 'js-yaml', 'zod']);
const external = Object.keys(manifest.dependencies).filter((name) => !BUNDLED.has(name));
const outdir = new URL('dist/bundle/', root);

// zod's locales folder (its index re-exports each language: `export { default as fr } from "./fr.js";`).
const zodLocalesDir = dirname(createRequire(new URL('package.json', root)).resolve('zod/v4/locales'));
const zodLocalesIndex = join(zodLocalesDir, 'index.js');
const LOCALES_FILE = 'zod-locales.cjs';

/**
 * What zod's modules get for their `../locales/index.js`: English itself (zod's default), and for
 * every other language a function of the same name that loads LOCALES_FILE on its first call and
 * calls the real one there. Locale functions only build message strings (zod's util helpers, which
 * that file carries), so a copy of them outside the main bundle behaves the same.
 */
function localesStub() {
  const names = [...readFileSync(zodLocalesIndex, 'utf8').matchAll(/default as (\w+) }/g)].map((m) => m[1]);
  const lines = [
    `import en from ${JSON.stringify(`${zodLocalesDir}/en.js`)};`,
    "import { createRequire } from 'node:module';",
    'const requireBeside = createRequire(import.meta.url);',
    'let locales;',
    `const load = () => (locales ??= requireBeside('./${LOCALES_FILE}'));`,
    'export { en };',
  ];
  for (const name of names.filter((n) => n !== 'en'))
    lines.push(`export function ${name}(...args) { return load().${name}(...args); }`);
  return lines.join('\n');
}

// Chunk names change with their contents: no chunk of an earlier build stays behind.
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: fileURLToPath(root),
  entryPoints: {
    main: 'src/cli/main.ts',
    index: 'src/index.ts',
    // Registered as a module hook, which runs in a thread of its own: a file of its own.
    'resolve-hook': 'src/engine/resolve-hook.ts',
    // The connection keeper of `--persist`, a process of its own (src/connection/kept.ts starts it).
    keeper: 'src/connection/keeper-main.ts',
    // A spare engine of `--persist`, loaded before the command it will serve (src/cli/warm/).
    spare: 'src/cli/warm/spare.ts',
    // The background import of the run history that every recorded run starts (src/cli/recording.ts).
    'history-import': 'src/history/import-main.ts',
  },
  outdir: fileURLToPath(outdir),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  chunkNames: 'chunk-[hash]',
  define: { VERDANDI_BUNDLED: 'true' },
  // Bundled CommonJS packages (handlebars) call require() for Node's own modules: give each ES module one.
  banner: {
    js: "import { createRequire as __vdRequire } from 'node:module'; const require = __vdRequire(import.meta.url);",
  },
  logLevel: 'warning',
  plugins: [
    {
      name: 'zod-locales-apart',
      setup(b) {
        b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
          args.resolveDir.startsWith(dirname(zodLocalesDir))
            ? { path: zodLocalesIndex, namespace: 'zod-locales' }
            : undefined,
        );
        b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, () => ({
          contents: localesStub(),
          resolveDir: zodLocalesDir,
        }));
      },
    },
  ],
});

// Every zod locale, for the stubs above: one CommonJS file, so that a stub can load it synchronously.
await build({
  absWorkingDir: fileURLToPath(root),
  entryPoints: [zodLocalesIndex],
  outfile: fileURLToPath(new URL(LOCALES_FILE, outdir)),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
});

// Run with its output on a pipe, the CLI wraps the help to 80 columns (the width main.ts serves it at),
// and without help.txt yet, commander prints it.
const help = execFileSync(process.execPath, [fileURLToPath(new URL('main.js', outdir)), '--help'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
writeFileSync(new URL('help.txt', outdir), help);
