/**
 * Roles and playbooks are TypeScript. Loading them through tsx on every run costs a few hundred
 * milliseconds (its loader thread, then each module through its hooks): on a no-change run that is
 * most of the time Verdandi spends on this machine. So a role or playbook is bundled once with esbuild
 * (the compiler tsx itself uses) into one ES module kept in the user's cache, and later runs import that
 * file directly while none of its source files changed.
 *
 * - `verdandi` stays an import of this very engine (an absolute URL): never a second copy of it.
 * - `import.meta.url` in each source file is replaced by that file's own URL, so
 *   `new URL('./templates/x.hbs', import.meta.url)` still finds the role's templates.
 * - The cache entry records every input file with its sha256 and the engine build it was made for.
 * - A playbook's entry also remembers its first play's host pattern and `serial` as its last load found
 *   them (`firstPlay`): the next run of the same sources connects to those hosts while it loads the
 *   playbook, instead of after (connecting changes nothing on a host).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cacheDir } from '../util/cache-dir.js';
import { UserError } from '../util/errors.js';

/** What a run needs to connect to a playbook's first hosts before the playbook is loaded. */
export interface FirstPlay {
  hosts: string;
  serial?: number | string;
}

interface Manifest {
  engine: string;
  output: string;
  inputs: Record<string, string>;
  firstPlay?: FirstPlay;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Identifies the engine build: a rebuilt engine invalidates every bundle. */
async function engineId(engineIndexUrl: string): Promise<string> {
  const s = await stat(fileURLToPath(engineIndexUrl));
  return `${engineIndexUrl}@${s.mtimeMs}`;
}

async function fresh(manifest: Manifest, engine: string): Promise<boolean> {
  if (manifest.engine !== engine) return false;
  for (const [file, hash] of Object.entries(manifest.inputs)) {
    try {
      if (sha256(await readFile(file)) !== hash) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** esbuild's message → one line with file:line:column, like every other user error. */
function buildError(file: string, err: unknown): UserError {
  const errors = (
    err as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } }> }
  ).errors;
  const first = errors?.[0];
  if (first?.location) {
    const { location: l } = first;
    return new UserError(
      `${l.file}:${l.line}:${l.column + 1}: ${first.text}`,
      1,
      `fix ${file} and run again`,
    );
  }
  return new UserError(`${file} failed to compile: ${(err as Error).message}`, 1);
}

const manifestPath = (file: string) => join(cacheDir(), `${sha256(file).slice(0, 24)}.json`);

/**
 * The cache entry of `file`, when it and its bundle exist and none of its inputs changed since it was
 * built.
 */
async function freshManifest(file: string, engineIndexUrl: string): Promise<Manifest | undefined> {
  try {
    const manifest = JSON.parse(await readFile(manifestPath(file), 'utf8')) as Manifest;
    await stat(join(cacheDir(), manifest.output));
    return (await fresh(manifest, await engineId(engineIndexUrl))) ? manifest : undefined;
  } catch {
    return undefined; // no cache entry yet, an unreadable one, or its bundle removed: build it again
  }
}

/** The first play that the last load of these very sources found (none: changed, or never loaded). */
export async function rememberedFirstPlay(
  file: string,
  engineIndexUrl: string,
): Promise<FirstPlay | undefined> {
  return (await freshManifest(file, engineIndexUrl))?.firstPlay;
}

/**
 * Keeps `firstPlay` in the cache entry of `file` for the next run (a cache that cannot be written keeps
 * nothing). Called right after the load that imported or built that entry: its inputs are not hashed
 * again. An entry that went stale meanwhile is never used, whatever it keeps.
 */
export async function rememberFirstPlay(file: string, firstPlay: FirstPlay): Promise<void> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath(file), 'utf8')) as Manifest;
  } catch {
    return; // no entry to keep it in
  }
  const known = manifest.firstPlay;
  if (known?.hosts === firstPlay.hosts && known.serial === firstPlay.serial) return;
  await writeManifest(file, {
    ...manifest,
    firstPlay: { hosts: firstPlay.hosts, serial: firstPlay.serial },
  }).catch(() => {});
}

/** Written beside and renamed: a run reading it at the same time never sees half of it. */
async function writeManifest(file: string, manifest: Manifest): Promise<void> {
  const path = manifestPath(file);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(manifest));
  await rename(tmp, path);
}

/** Imports `file` (TypeScript) from its cached bundle, building the bundle when needed. */
export async function importBundled(file: string, engineIndexUrl: string): Promise<Record<string, unknown>> {
  const dir = cacheDir();
  const key = sha256(file).slice(0, 24);
  const engine = await engineId(engineIndexUrl);
  const cached = await freshManifest(file, engineIndexUrl);
  if (cached) return (await import(pathToFileURL(join(dir, cached.output)).href)) as Record<string, unknown>;

  const esbuild = await import('esbuild');
  // The engine's index is <package>/dist/bundle/index.js (dist/src/index.js for tsc's own output).
  const enginePackage = fileURLToPath(new URL('../../', engineIndexUrl));
  const inputs: Record<string, string> = {};
  let result: Awaited<ReturnType<typeof esbuild.build>>;
  try {
    result = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      logLevel: 'silent',
      // The bundle carries its source map, its sources named relative to the cache folder where the
      // bundle is written: a stack frame in a role then maps to the role's own .ts file and line.
      sourcemap: 'inline',
      outdir: dir,
      // Bundled CommonJS packages may call require(): give the ES module one.
      banner: {
        js: "import { createRequire as __vdRequire } from 'node:module'; const require = __vdRequire(import.meta.url);",
      },
      plugins: [
        {
          name: 'verdandi',
          setup(build) {
            build.onResolve({ filter: /^verdandi$/ }, () => ({ path: engineIndexUrl, external: true }));
            build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
              const text = await readFile(args.path, 'utf8');
              inputs[args.path] = sha256(text);
              // Third-party packages are bundled as they are; Verdandi's own built-in roles live under
              // node_modules too once it is installed, and need their own URL to find their templates.
              if (args.path.includes('/node_modules/') && !args.path.startsWith(enginePackage))
                return undefined;
              const own = JSON.stringify(pathToFileURL(args.path).href);
              const ext = args.path.match(/\.([cm]?)([jt]sx?)$/);
              const loader = (ext?.[2] ?? 'ts') as 'ts' | 'tsx' | 'js' | 'jsx';
              return { contents: text.replace(/\bimport\.meta\.url\b/g, own), loader };
            });
          },
        },
      ],
    });
  } catch (err) {
    throw buildError(file, err);
  }
  const code = result.outputFiles?.[0]?.text ?? '';
  const output = `${key}-${sha256(code).slice(0, 16)}.mjs`;
  await mkdir(dir, { recursive: true });
  // Both written beside and renamed: another run building the same bundle at the same time never
  // imports a half-written file.
  const tmpOutput = `${join(dir, output)}.${process.pid}.tmp`;
  await writeFile(tmpOutput, code);
  await rename(tmpOutput, join(dir, output));
  await writeManifest(file, { engine, output, inputs });
  return (await import(pathToFileURL(join(dir, output)).href)) as Record<string, unknown>;
}
