/**
 * A real terminal for the day-two e2e tests (console, db): the CLI runs in a detached tmux session,
 * keys are sent to it and the pane is read; waits are bounded polls on markers in the pane. When the
 * CLI ends, the pane prints `VD_EXIT=<code>` and stays open for it to be read.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI_BIN, PROJECT_ROOT } from '../helpers/cli.js';
import { waitFor } from './deploy-helpers.js';

const run = promisify(execFile);

const tmux = async (...args: string[]) => (await run('tmux', args, { cwd: PROJECT_ROOT })).stdout;

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class Terminal {
  private constructor(readonly name: string) {}

  /**
   * Starts `verdandi <args>` in a 120×40 terminal, in `cwd` (the project's root by default) with `env`
   * added to tmux's environment and the variables of `unset` removed from it.
   */
  static async start(
    name: string,
    args: string[],
    opts: { cwd?: string; env?: Record<string, string>; unset?: string[] } = {},
  ): Promise<Terminal> {
    const environment = [
      ...(opts.unset ?? []).flatMap((variable) => ['-u', variable]),
      ...Object.entries(opts.env ?? {}).map(([variable, value]) => `${variable}=${value}`),
    ];
    const cli = ['env', ...environment, process.execPath, CLI_BIN, ...args].map(shellQuote).join(' ');
    await tmux('kill-session', '-t', name).catch(() => undefined);
    await tmux(
      'new-session',
      '-d',
      '-s',
      name,
      '-x',
      '120',
      '-y',
      '40',
      `cd ${shellQuote(opts.cwd ?? PROJECT_ROOT)} && ${cli}; echo VD_EXIT=$?; sleep 3600`,
    );
    return new Terminal(name);
  }

  /** What the pane shows, with its scrollback (and its colours' escape sequences with `escapes`). */
  async screen(escapes = false): Promise<string> {
    return tmux('capture-pane', '-p', '-J', ...(escapes ? ['-e'] : []), '-S', '-2000', '-t', this.name);
  }

  /** Types `text` (literally), then Enter. */
  async type(text: string): Promise<void> {
    // tmux reads an argument's trailing `;` as its command separator: escaped, it is a key.
    await tmux('send-keys', '-t', this.name, '-l', text.replace(/;$/, '\\;'));
    await tmux('send-keys', '-t', this.name, 'Enter');
  }

  async keys(...keys: string[]): Promise<void> {
    await tmux('send-keys', '-t', this.name, ...keys);
  }

  async resize(cols: number, rows: number): Promise<void> {
    await tmux('resize-window', '-t', this.name, '-x', String(cols), '-y', String(rows));
  }

  /** The pane's size as tmux has it: `rows cols`, what `stty size` prints inside. */
  async paneSize(): Promise<string> {
    return (await tmux('display-message', '-p', '-t', this.name, '#{pane_height} #{pane_width}')).trim();
  }

  /** Waits until the pane matches `re` (bounded); returns the match. */
  async waitFor(re: RegExp, what: string, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    let match: RegExpMatchArray | null = null;
    try {
      await waitFor(
        async () => {
          match = (await this.screen()).match(re);
          return match !== null;
        },
        timeoutMs,
        what,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; the pane shows:\n${await this.screen()}`);
    }
    return match!;
  }

  /** The CLI's exit code, once it ended. */
  async exitCode(timeoutMs = 60_000): Promise<number> {
    const m = await this.waitFor(/VD_EXIT=(\d+)/, 'the CLI to end', timeoutMs);
    return Number(m[1]);
  }

  async close(): Promise<void> {
    await tmux('kill-session', '-t', this.name).catch(() => undefined);
  }
}
