/**
 * The entry point of the `verdandi` command line (bin/verdandi.js imports its build). The command line
 * itself, commander and every command's options, is program.ts, imported from here.
 *
 * `verdandi --help` alone is answered without it: the build (scripts/bundle.js) runs the built CLI once
 * with `--help` and keeps what commander printed in `help.txt` beside this module, and that text is
 * printed as it is. Loading commander and declaring every command's options was most of what `--help`
 * cost above Node's own start (issue 25); test/unit/cli-help-text.test.ts proves the text is the one
 * commander prints. Commander wraps help to the terminal's width, 80 columns when the output is not a
 * terminal: at any other width commander prints it, as before. Without the file (the build itself, or
 * the engine run from its TypeScript sources) commander prints it too.
 */
import { readFileSync } from 'node:fs';

/** The width commander wraps `--help` to on standard output (its `getOutHelpWidth`, 80 by default). */
function helpWidth(): number {
  return (process.stdout.isTTY ? process.stdout.columns : undefined) ?? 80;
}

/** The help text the build wrote, when this command line asks for exactly it; undefined otherwise. */
function builtHelp(args: readonly string[]): Buffer | undefined {
  if (args.length !== 1 || (args[0] !== '--help' && args[0] !== '-h') || helpWidth() !== 80) return undefined;
  try {
    return readFileSync(new URL('./help.txt', import.meta.url));
  } catch {
    return undefined;
  }
}

/**
 * With `--persist` (or $VERDANDI_PERSIST), a spare engine may be ready for this command (warm/): the
 * command is handed to it, and this process only relays its terminal.
 */
async function servedWarm(): Promise<boolean> {
  if (!process.argv.some((arg) => arg.startsWith('--persist')) && !process.env.VERDANDI_PERSIST) return false;
  const { runWarm } = await import('./warm/client.js');
  const code = await runWarm(process.argv);
  if (code === undefined) return false;
  const { exitWhenFlushed } = await import('../util/stdio.js');
  await exitWhenFlushed(code);
  return true;
}

const help = builtHelp(process.argv.slice(2));
if (help) {
  process.stdout.write(help);
} else if (!(await servedWarm())) {
  const { runCli } = await import('./program.js');
  await runCli(process.argv);
}
