/**
 * How the harness reports what it is doing: an ora spinner on a terminal, plain lines otherwise (CI, a
 * pipe, a test), nothing at all for programmatic callers that do not ask. Always on stderr, so stdout
 * stays for results.
 */
export interface Progress {
  /** A step that takes a while begins. */
  start(text: string): void;
  /** The current step ended well. */
  succeed(text: string): void;
  /** The current step failed. */
  fail(text: string): void;
  /** A remark that is not a step. */
  info(text: string): void;
}

export const silentProgress: Progress = {
  start() {},
  succeed() {},
  fail() {},
  info() {},
};

export function plainProgress(
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Progress {
  return {
    start: (text) => write(`${text}...`),
    succeed: (text) => write(text),
    fail: (text) => write(`failed: ${text}`),
    info: (text) => write(text),
  };
}

/** A spinner when stderr is a terminal and not in CI, else plain lines. */
export async function terminalProgress(): Promise<Progress> {
  // A terminal that reports no width (a pty nobody sized) would make ora's redraw loop forever.
  if (!process.stderr.isTTY || process.env.CI || !process.stderr.columns) return plainProgress();
  const { default: ora } = await import('ora');
  const spinner = ora({ stream: process.stderr });
  return {
    start: (text) => {
      spinner.start(text);
    },
    succeed: (text) => {
      spinner.succeed(text);
    },
    fail: (text) => {
      spinner.fail(text);
    },
    // Printed above a running spinner, which then keeps spinning (several hosts boot at once).
    info: (text) => {
      const running = spinner.isSpinning ? spinner.text : undefined;
      spinner.info(text);
      if (running !== undefined) spinner.start(running);
    },
  };
}
