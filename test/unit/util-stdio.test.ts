/** A large --json document reaches a pipe whole: the process ends only once stdout is flushed. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const STDIO = fileURLToPath(new URL('../../src/util/stdio.ts', import.meta.url));

function outputLength(script: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let length = 0;
    // A slow reader, as a pipe into jq or a test harness under load can be.
    child.stdout.pause();
    setTimeout(() => child.stdout.resume(), 300);
    child.stdout.on('data', (chunk: Buffer) => {
      length += chunk.length;
    });
    child.on('error', reject);
    child.on('close', () => resolve(length));
  });
}

test('exitWhenFlushed: 3 MB written to a pipe all arrive (process.exit alone cuts them)', async (t) => {
  const size = 3_000_000;
  const cut = await outputLength(`process.stdout.write('x'.repeat(${size})); process.exit(0);`);
  t.true(cut < size, `process.exit alone delivered ${cut} of ${size} bytes`);
  const whole = await outputLength(
    `const { exitWhenFlushed } = await import(${JSON.stringify(STDIO)}); process.stdout.write('x'.repeat(${size})); await exitWhenFlushed(0);`,
  );
  t.is(whole, size);
});
