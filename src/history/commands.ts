/** `verdandi history [env]` and `verdandi history show <id>`: the runs recorded in this project. */
import { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { formatRun, formatRunList } from './show.js';
import { importSpool } from './spool.js';
import { HistoryStore, historyLocation } from './store.js';

export interface HistoryOptions {
  host?: string;
  status?: string;
  command?: string;
  last?: string;
  json?: boolean;
}

function projectLocation(projectDir: string) {
  const location = historyLocation(projectDir);
  if (location.kind === 'off') {
    throw new UserError('the run history is off (VERDANDI_HISTORY_URL or history.url is "off")', 1);
  }
  return location;
}

/** The project's history, open, with the runs that waited in the spool written first. */
export async function openProjectHistory(projectDir = process.cwd()): Promise<HistoryStore> {
  const location = projectLocation(projectDir);
  try {
    await importSpool(projectDir, location, { waitForOthers: true });
    return await HistoryStore.open(location);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot open the run history: ${(err as Error).message}`, 1);
  }
}

/** `verdandi history import`: writes the runs waiting in .verdandi/history-spool into the store. */
export async function importRuns(o: { quiet?: boolean }): Promise<number> {
  const location = projectLocation(process.cwd());
  try {
    const n = await importSpool(process.cwd(), location);
    if (!o.quiet) process.stdout.write(`${n} run(s) written into the history\n`);
    return 0;
  } catch (err) {
    throw new UserError(
      `cannot write the run history: ${(err as Error).message}`,
      1,
      'the runs stay in .verdandi/history-spool',
    );
  }
}

export async function listRuns(env: string | undefined, o: HistoryOptions): Promise<number> {
  const last = o.last === undefined ? 20 : Number(o.last);
  if (!Number.isInteger(last) || last < 1)
    throw new UserError(`--last must be a positive number, got "${o.last}"`, 1);
  const store = await openProjectHistory();
  try {
    const runs = await store.list({ env, host: o.host, status: o.status, command: o.command, last });
    process.stdout.write(redact(o.json ? `${JSON.stringify({ runs }, null, 2)}\n` : formatRunList(runs)));
    return 0;
  } finally {
    await store.close();
  }
}

export async function showRun(idText: string, o: { json?: boolean }): Promise<number> {
  const id = Number(idText);
  if (!Number.isInteger(id) || id < 1) throw new UserError(`a run id is a number, got "${idText}"`, 1);
  const store = await openProjectHistory();
  try {
    const run = await store.get(id);
    if (!run)
      throw new UserError(`no run ${id} in the history at ${store.where}`, 1, 'see `verdandi history`');
    process.stdout.write(redact(o.json ? `${JSON.stringify(run, null, 2)}\n` : formatRun(run)));
    return 0;
  } finally {
    await store.close();
  }
}
