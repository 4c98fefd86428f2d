/**
 * Ending the process without losing output. `process.exit` does not wait for stdout and stderr when
 * they are pipes (`verdandi … --json | jq`, a test reading the output): what is still queued is lost,
 * cutting a --json document of a large run at 64 KB. These wait until everything written so far has
 * been handed to the operating system.
 */

/** Resolves once everything written to `stream` so far is flushed (or the stream is gone). */
export function flushed(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    try {
      stream.write('', () => resolve());
    } catch {
      resolve();
    }
  });
}

/** Flushes stdout and stderr, then ends the process with `code`. */
export async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/**
 * Whether this process printed its `--json` document (engine/json-output.ts says so when it does): a
 * command that stops on an error before that prints an error document instead (cli/errors.ts).
 */
let jsonDocument = false;
export function jsonDocumentWritten(): void {
  jsonDocument = true;
}
export function jsonDocumentPrinted(): boolean {
  return jsonDocument;
}
