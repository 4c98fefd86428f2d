/** Runs to record in history tests, and writer processes recording at the same time. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunRecord } from '../../src/history/types.js';

export function sampleRun(over: Partial<RunRecord> = {}): RunRecord {
  return {
    command: 'provision',
    env: 'staging',
    argv: 'verdandi provision staging',
    user: 'ann',
    machine: 'laptop',
    gitCommit: '0123456789abcdef0123456789abcdef01234567',
    gitDirty: false,
    startedAt: new Date().toISOString(),
    durationMs: 1234,
    status: 'failed',
    exitCode: 2,
    check: false,
    error: null,
    verdandiVersion: '0.1.0',
    hosts: [
      {
        name: 'web1',
        status: 'failed',
        ok: 1,
        changed: 1,
        failed: 1,
        skipped: 0,
        roundTrips: 3,
        startedMs: 10,
        durationMs: 900,
        detail: null,
        tasks: [
          {
            seq: 0,
            label: 'nginx › apt nginx',
            status: 'ok',
            detail: null,
            startedMs: 10,
            durationMs: 300,
            roundTrips: 1,
            diff: null,
            failure: null,
          },
          {
            seq: 1,
            label: 'nginx › template /etc/nginx/nginx.conf',
            status: 'changed',
            detail: 'content differs',
            startedMs: 310,
            durationMs: 200,
            roundTrips: 1,
            diff: '--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n',
            failure: null,
          },
          {
            seq: 2,
            label: 'nginx › service nginx',
            status: 'failed',
            detail: 'step failed',
            startedMs: 510,
            durationMs: 400,
            roundTrips: 1,
            diff: null,
            failure: 'command: systemctl start nginx\nexit code: 1\nstderr:\nJob for nginx.service failed',
          },
        ],
      },
      {
        name: 'db1',
        status: 'unreachable',
        ok: 0,
        changed: 0,
        failed: 0,
        skipped: 0,
        roundTrips: 0,
        startedMs: 20,
        durationMs: 0,
        detail: 'timeout: no answer',
        tasks: [],
      },
    ],
    deploys: [],
    ...over,
  };
}

export interface WriterResult {
  tag: string;
  code: number;
  out: string;
}

/**
 * One history-writer.ts process per tag, each recording `count` runs (argv `... # <tag> <i>`) into
 * `where` (a SQLite file or a postgres:// URL). They are released together once every one of them
 * said it is loaded (their start-up is the slow part), so their writes overlap.
 */
export async function recordConcurrently(
  where: string,
  count: number,
  tags: string[],
): Promise<WriterResult[]> {
  const go = join(mkdtempSync(join(tmpdir(), 'vd-history-go-')), 'go');
  let loaded = 0;
  const all = tags.map(
    (tag) =>
      new Promise<WriterResult>((resolve) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', join(import.meta.dirname, 'history-writer.ts'), where, String(count), tag],
          { env: { ...process.env, GO: go }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        let ready = false;
        child.stdout.on('data', (d) => {
          out += d;
          if (!ready && out.startsWith('ready\n')) {
            ready = true;
            if (++loaded === tags.length) writeFileSync(go, '');
          }
        });
        child.stderr.on('data', (d) => {
          out += d;
        });
        child.on('close', (code) => {
          // A writer that died before it was ready must not leave the others waiting for it.
          if (!ready) writeFileSync(go, '');
          resolve({ tag, code: code ?? 1, out });
        });
      }),
  );
  return Promise.all(all);
}
