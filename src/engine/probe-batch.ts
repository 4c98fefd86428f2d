/**
 * Batched probes: the probes of many tasks go to the host as ONE shell script; each runs in its own
 * subshell, its stdout framed by markers carrying a random nonce, so a probe printing anything cannot
 * confuse the parser. This is what makes a no-change run cost one round trip per role.
 *
 * The paths the tasks of a batch list in `Task.files` are read first, all at once, by one command
 * (tasks/file-state.ts: one `stat`, one `sha256sum`), framed like a probe; each task then gets the
 * states of its own paths in `ProbeResult.files`. The host's cost of a batch is one process per
 * non-empty probe plus those two, not a handful of processes per file task.
 */
import { randomBytes } from 'node:crypto';
import {
  fileStatesOutput,
  fileStatesScript,
  parseFileStates,
  type RawFileRecord,
  rawFileRecords,
} from '../tasks/file-state.js';
import type { FileQuery, FileState, ProbeResult } from './types.js';

/** One probe of a batch: an id, the probe's shell, and the paths whose state its task needs. */
export type BatchProbe = [id: string, probe: string, files?: readonly FileQuery[]];

/**
 * A probe's result as a batch returns it: with what the batch's file-state command printed for its
 * paths, byte for byte, so the same probe's output can be predicted while nothing moved
 * (predictBatchOutput). Tasks see a plain ProbeResult.
 */
export interface BatchResult extends ProbeResult {
  records?: ReadonlyMap<string, RawFileRecord>;
}

export interface ProbeBatch {
  script: string;
  nonce: string;
  ids: string[];
  /** What was asked: the probe of each id, in order. */
  probes: readonly BatchProbe[];
  /** The `files` of each id that has any. */
  files: Map<string, readonly FileQuery[]>;
  /**
   * Ids whose probe is word for word an earlier id's (a handler's service probe and the task's, two
   * tasks on one account): run once, under the earlier id, whose result they share.
   */
  sameAs: Map<string, string>;
  /** Every probe is empty and no file is asked for (a `shell` task's): the host has nothing to tell. */
  empty: boolean;
}

/** The frame of the batch's file states: not a task id (those are numbers and `pending`). */
const FILES_ID = 'files:';

export function newNonce(): string {
  return randomBytes(6).toString('hex');
}

/** How a probe runs in its frame: no stdin, its stderr dropped. */
const PROBE_IO = '</dev/null 2>/dev/null';

/**
 * `script` framed by markers (framedSections reads them back), in a subshell with the redirections
 * `io` (a probe's by default); after the frame, `$vd_rc` holds the subshell's exit code, for a script
 * that goes on according to it (deploy's --if-changed look, the walker's lock opening).
 */
export function framed(id: string, script: string, nonce: string, io = PROBE_IO): string {
  return (
    `printf '%s\\n' '@@vd-${nonce}-begin-${id}'\n` +
    `( ${script}\n) ${io}\n` +
    'vd_rc=$?\n' +
    `printf '\\n%s %s\\n' '@@vd-${nonce}-end-${id}' "$vd_rc"`
  );
}

/**
 * The frames of empty probes (tasks whose plan needs only their files, commands without guards): no
 * subshell each, one `printf` for all of them (it repeats its format for every pair of arguments).
 */
function emptyFrames(ids: string[], nonce: string): string {
  const markers = ids.map((id) => `'@@vd-${nonce}-begin-${id}' '@@vd-${nonce}-end-${id}'`);
  return `printf '%s\\n\\n%s 0\\n' ${markers.join(' ')}`;
}

/** Builds the script probing each `[id, probe, files]`. Probes see no stdin and their stderr is dropped. */
export function buildProbeBatch(probes: BatchProbe[], nonce = newNonce()): ProbeBatch {
  const files = new Map<string, readonly FileQuery[]>();
  for (const [id, , queries] of probes) if (queries && queries.length > 0) files.set(id, queries);
  const parts: string[] = [];
  if (files.size > 0) parts.push(framed(FILES_ID, fileStatesScript([...files.values()].flat()), nonce));
  const empty = probes.filter(([, probe]) => probe.trim() === '').map(([id]) => id);
  if (empty.length > 0) parts.push(emptyFrames(empty, nonce));
  // A probe is a few short processes on the host (`systemctl show`, `getent`...): one the same as an
  // earlier one's is not run again.
  const sameAs = new Map<string, string>();
  const firstWith = new Map<string, string>();
  for (const [id, probe] of probes) {
    if (probe.trim() === '') continue;
    const first = firstWith.get(probe);
    if (first !== undefined) sameAs.set(id, first);
    else {
      firstWith.set(probe, id);
      parts.push(framed(id, probe, nonce));
    }
  }
  return {
    script: parts.join('\n'),
    nonce,
    ids: probes.map(([id]) => id),
    probes,
    files,
    sameAs,
    empty: files.size === 0 && empty.length === probes.length,
  };
}

/** Each framed section of `output`, by id. An id whose end marker is missing is left out. */
export function framedSections(output: string, nonce: string): Map<string, ProbeResult> {
  const results = new Map<string, ProbeResult>();
  const begin = `@@vd-${nonce}-begin-`;
  const end = `@@vd-${nonce}-end-`;
  let pos = 0;
  while (true) {
    const b = output.indexOf(begin, pos);
    if (b < 0) break;
    const idEnd = output.indexOf('\n', b);
    if (idEnd < 0) break;
    const id = output.slice(b + begin.length, idEnd);
    const marker = `\n${end}${id} `;
    const e = output.indexOf(marker, idEnd);
    if (e < 0) break;
    const lineEnd = output.indexOf('\n', e + marker.length);
    const code = Number.parseInt(output.slice(e + marker.length, lineEnd < 0 ? undefined : lineEnd), 10);
    results.set(id, { stdout: output.slice(idEnd + 1, e), exitCode: Number.isNaN(code) ? 255 : code });
    pos = lineEnd < 0 ? output.length : lineEnd;
  }
  return results;
}

/**
 * Splits a batch's output back into one ProbeResult per id, with the states of its files. An id whose
 * end marker is missing (the shell died mid-batch) is absent from the map: the caller treats that as
 * a failure of the batch. When the file states were cut off, the ids that needed them get no `files`
 * (their plans say the state could not be read).
 */
/** What the host would answer to a batch of empty probes, without asking it (no round trip). */
export function emptyProbeResults(batch: ProbeBatch): Map<string, ProbeResult> {
  return new Map(batch.ids.map((id) => [id, { stdout: '', exitCode: 0 }]));
}

export function parseProbeBatch(output: string, batch: ProbeBatch): Map<string, BatchResult> {
  const results: Map<string, BatchResult> = framedSections(output, batch.nonce);
  for (const [id, first] of batch.sameAs) {
    const shared = results.get(first);
    if (shared) results.set(id, { ...shared });
  }
  const section = results.get(FILES_ID);
  results.delete(FILES_ID);
  if (batch.files.size === 0) return results;
  const queries = [...batch.files.values()].flat();
  const states = section && parseFileStates(section.stdout, queries);
  const raw = section && rawFileRecords(section.stdout, queries);
  for (const [id, queries] of batch.files) {
    const result = results.get(id);
    if (!result || !states) continue;
    const own = new Map<string, FileState>();
    const records = new Map<string, RawFileRecord>();
    for (const { path } of queries) {
      const state = states.get(path);
      if (state) own.set(path, state);
      const record = raw?.get(path);
      if (record) records.set(path, record);
    }
    results.set(id, { ...result, files: own, ...(raw ? { records } : {}) });
  }
  return results;
}

/**
 * What `batch.script` prints when every probe prints what `results` hold (the same probes, run before
 * anything moved): the frames in buildProbeBatch's order, the file states from each result's raw
 * records. Undefined when a result is missing or cannot say what its files printed. A wrong prediction
 * is never trusted blindly: the host compares it with what it really prints (continuation.ts).
 */
export function predictBatchOutput(
  batch: ProbeBatch,
  results: ReadonlyMap<string, BatchResult>,
): string | undefined {
  const n = batch.nonce;
  const frame = (id: string, stdout: string, code: number) =>
    `@@vd-${n}-begin-${id}\n${stdout}\n@@vd-${n}-end-${id} ${code}\n`;
  let out = '';
  if (batch.files.size > 0) {
    const records = new Map<string, RawFileRecord>();
    for (const id of batch.files.keys()) {
      for (const [path, record] of results.get(id)?.records ?? []) {
        const known = records.get(path);
        if (!known || (known.sum === undefined && record.sum !== undefined)) records.set(path, record);
      }
    }
    const files = fileStatesOutput([...batch.files.values()].flat(), records);
    if (files === undefined) return undefined;
    out += frame(FILES_ID, files, 0);
  }
  const probes = batch.ids.map((id) => ({ id, result: results.get(id) }));
  if (probes.some((p) => !p.result)) return undefined;
  const empty = batch.probes.filter(([, probe]) => probe.trim() === '').map(([id]) => id);
  for (const id of empty) out += frame(id, '', 0);
  for (const [id, probe] of batch.probes) {
    if (probe.trim() === '' || batch.sameAs.has(id)) continue;
    const result = results.get(id)!;
    out += frame(id, result.stdout, result.exitCode);
  }
  return out;
}
