/**
 * Runs waiting to be written into the history. A run ends by writing its record here (one small JSON
 * file, about a millisecond) and starting `verdandi history import` in the background, which writes
 * it into the store and deletes the file: loading SQLite or connecting to PostgreSQL (a few hundred
 * milliseconds on a busy machine) never delays the end of a run. `history` and `report` import what
 * waits before they read, so a run is listed as soon as it ended. A store that cannot be written
 * keeps the runs here until it can, and says why (`last-error`) at the end of the next run.
 */
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HistoryLocation } from './store.js';
import { HistoryStore } from './store.js';
import type { RunRecord } from './types.js';

/** An import that claimed a file and has not finished after this long died: the file is free again. */
const STALE_CLAIM_MS = 120_000;
/** How long a reader waits for the runs another import is writing right now. */
const WAIT_FOR_OTHERS_MS = 15_000;

export function spoolDir(projectDir: string): string {
  return path.join(projectDir, '.verdandi', 'history-spool');
}

const errorFile = (dir: string) => path.join(dir, 'last-error');

/** Writes the run where the importer finds it (atomically: a reader never sees half a file). */
export function spoolRun(projectDir: string, run: RunRecord): string {
  const dir = spoolDir(projectDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const name = `${run.startedAt.replace(/[:.]/g, '-')}-${process.pid}-${randomBytes(4).toString('hex')}.json`;
  const tmp = path.join(dir, `.${name}.tmp`);
  writeFileSync(tmp, JSON.stringify(run), { mode: 0o600 });
  renameSync(tmp, path.join(dir, name));
  return path.join(dir, name);
}

/** Why the last import failed and how many runs wait, or undefined when nothing is wrong. */
export function spoolTrouble(projectDir: string): { error: string; waiting: number } | undefined {
  const dir = spoolDir(projectDir);
  if (!existsSync(errorFile(dir))) return undefined;
  const waiting = readdirSync(dir).filter((f) => f.endsWith('.json')).length;
  return { error: readFileSync(errorFile(dir), 'utf8').trim(), waiting };
}

/**
 * Writes every waiting run into the store, oldest first, each file claimed by renaming it so that two
 * importers never write the same run. Returns how many were written; throws the store's error (after
 * noting it in `last-error` and putting the file back).
 */
export async function importSpool(
  projectDir: string,
  location: Exclude<HistoryLocation, { kind: 'off' }>,
  opts: { waitForOthers?: boolean } = {},
): Promise<number> {
  const dir = spoolDir(projectDir);
  if (!existsSync(dir)) return 0;
  let written = await importWaiting(dir, location);
  // A reader (history, report) lists a run that just ended: the background import of it may be
  // writing it right now. Once it is done, what it gave back (it failed) is imported here.
  if (opts.waitForOthers) {
    const inFlight = () => readdirSync(dir).some((f) => /\.importing-\d+$/.test(f));
    const deadline = Date.now() + WAIT_FOR_OTHERS_MS;
    if (inFlight()) {
      while (inFlight() && Date.now() < deadline) await sleep(50);
      written += await importWaiting(dir, location);
    }
  }
  return written;
}

async function importWaiting(
  dir: string,
  location: Exclude<HistoryLocation, { kind: 'off' }>,
): Promise<number> {
  reclaimStale(dir);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (files.length === 0) return 0;
  let store: HistoryStore | undefined;
  let written = 0;
  try {
    for (const file of files) {
      const claimed = path.join(dir, `${file}.importing-${process.pid}`);
      try {
        renameSync(path.join(dir, file), claimed);
        const now = new Date();
        utimesSync(claimed, now, now); // the claim's age, for reclaimStale
      } catch {
        continue; // another importer took it
      }
      try {
        const run = JSON.parse(readFileSync(claimed, 'utf8')) as RunRecord;
        store ??= await HistoryStore.open(location);
        await store.record(run);
      } catch (err) {
        renameSync(claimed, path.join(dir, file));
        throw err;
      }
      unlinkSync(claimed);
      written++;
    }
    if (existsSync(errorFile(dir))) unlinkSync(errorFile(dir));
    return written;
  } catch (err) {
    writeFileSync(errorFile(dir), `${(err as Error).message}\n`, { mode: 0o600 });
    throw err;
  } finally {
    await store?.close();
  }
}

function reclaimStale(dir: string): void {
  for (const f of readdirSync(dir)) {
    const m = /^(.*\.json)\.importing-\d+$/.exec(f);
    if (!m) continue;
    try {
      if (Date.now() - statSync(path.join(dir, f)).mtimeMs > STALE_CLAIM_MS) {
        renameSync(path.join(dir, f), path.join(dir, m[1]));
      }
    } catch {
      /* another importer reclaimed it first */
    }
  }
}
