/**
 * The command line (after `node`) of a program the engine starts as a process of its own: the
 * connection keeper of `--persist`, the background import of the run history. The build
 * (scripts/bundle.js) makes each one an entry point of its own in dist/bundle/, so that the process
 * loads only what it needs, not the command line (commander and every command's definition). Run from
 * the sources, it is the module beside the caller's, TypeScript through tsx.
 */
import { fileURLToPath } from 'node:url';

/** Defined by the bundler (scripts/bundle.js): every module of the engine sits in dist/bundle/. */
declare const VERDANDI_BUNDLED: boolean | undefined;

/**
 * `bundled`: the entry's file name in dist/bundle/ (`keeper.js`); `module`: its module relative to the
 * caller's, without extension (`./keeper-main`); `callerUrl`: the caller's `import.meta.url`.
 */
export function entryProgram(callerUrl: string, bundled: string, module: string): string[] {
  if (typeof VERDANDI_BUNDLED !== 'undefined' && VERDANDI_BUNDLED)
    return [fileURLToPath(new URL(`./${bundled}`, import.meta.url))];
  const source = callerUrl.endsWith('.ts');
  const main = fileURLToPath(new URL(`${module}.${source ? 'ts' : 'js'}`, callerUrl));
  return source ? ['--import', 'tsx', main] : [main];
}
