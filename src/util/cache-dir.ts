/**
 * The user's compile cache (`~/.cache/verdandi/ts`, or `$VERDANDI_TS_CACHE`): roles and playbooks
 * bundled by esbuild (src/engine/compile-cache.ts) and templates precompiled by Handlebars
 * (handlebars.ts), each kept while its source is unchanged. `VERDANDI_TS_CACHE=off` keeps nothing.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Whether the user turned the compile cache off (`VERDANDI_TS_CACHE=off`). */
export function cacheOff(): boolean {
  return process.env.VERDANDI_TS_CACHE === 'off';
}

export function cacheDir(): string {
  const base =
    process.env.VERDANDI_TS_CACHE ??
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'verdandi', 'ts');
  return resolve(base);
}
