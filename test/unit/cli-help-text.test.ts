/**
 * `verdandi --help` is served from dist/bundle/help.txt, which the build writes (src/cli/main.ts,
 * scripts/bundle.js). This proves that text is what commander prints from the command definitions
 * (src/cli/program.ts) and that the CLI prints it, byte for byte; and that at another width than the
 * text's 80 columns commander still wraps the help itself. Needs `npm run build` after a change in src/.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { CommanderError } from 'commander';
import { createProgram } from '../../src/cli/program.js';

const BIN = fileURLToPath(new URL('../../bin/verdandi.js', import.meta.url));
const HELP_TEXT = fileURLToPath(new URL('../../dist/bundle/help.txt', import.meta.url));

function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { env: { ...process.env, CI: 'true' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/**
 * What commander itself prints for `verdandi <args>`: on an output that is not a terminal (commander's
 * own default width, 80 columns), or on a terminal `width` columns wide; no colours.
 */
function commanderOutput(args: string[], width?: number): string {
  const program = createProgram(args);
  let out = '';
  program.configureOutput({
    writeOut: (s) => {
      out += s;
    },
    // Off a terminal commander's getOutHelpWidth gives undefined, which its Help takes as 80.
    getOutHelpWidth: () => width ?? 80,
    getOutHasColors: () => false,
  });
  const error = (() => {
    try {
      program.parse(args, { from: 'user' });
    } catch (err) {
      return err;
    }
  })();
  if (!(error instanceof CommanderError) || error.code !== 'commander.helpDisplayed') throw error;
  return out;
}

test('the built help text is what commander prints for verdandi --help', (t) => {
  t.true(existsSync(HELP_TEXT), 'dist/bundle/help.txt is missing: run npm run build');
  const expected = commanderOutput(['--help']);
  t.regex(expected, /^Usage: verdandi \[options\] \[command\]\n/);
  t.is(readFileSync(HELP_TEXT, 'utf8'), expected, 'dist/bundle/help.txt is stale: run npm run build');
});

for (const flag of ['--help', '-h']) {
  test(`verdandi ${flag} prints it, byte for byte, and exits 0`, async (t) => {
    const res = await run(process.execPath, [BIN, flag]);
    t.is(res.code, 0, res.stderr);
    t.is(res.stderr, '');
    t.is(res.stdout, commanderOutput([flag]));
  });
}

test('on a terminal of another width, commander wraps the help to it', async (t) => {
  // script(1) gives the CLI a terminal; stty sets its width to 120 columns.
  const script = '/usr/bin/script';
  if (!existsSync(script)) {
    t.fail('this test needs script(1) (util-linux) to give the CLI a terminal');
    return;
  }
  const res = await run(script, ['-qec', `stty cols 120; ${process.execPath} ${BIN} --help`, '/dev/null']);
  t.is(res.code, 0, res.stderr);
  const printed = res.stdout.replaceAll('\r\n', '\n');
  t.is(printed, commanderOutput(['--help'], 120));
  // Not the built text: commander wraps the longest descriptions at 120 columns, the text does not.
  t.true(
    readFileSync(HELP_TEXT, 'utf8')
      .split('\n')
      .some((l) => l.length > 120),
  );
  t.false(printed.split('\n').some((l) => l.length > 120));
});
