/**
 * Pending-handler records on the host: a notified handler that has not run yet survives a lost host, a
 * stopped run or a killed controller, and the next run that defines it runs it.
 *
 * One record is one file in PENDING_DIR, named after its key (a hash of the source, unit and handler),
 * holding that key as a line of JSON:
 *
 *   {"source":"playbook site.ts","unit":"play 1","handler":"restart"}
 *
 * The source is what defines the handler: `role <name>`, or `playbook <file>` (relative to the
 * project). Only the same handler of the same unit of the same file can replay or clear a record: two
 * playbooks whose first plays both have a `restart` never touch each other's records.
 *
 * A record is written to a temporary name and renamed (whole or nothing: a full disk fails the write,
 * and the change it guards does not happen); it is cleared with one `rm -f` of its own file, which
 * touches no other record. A record already on the host is not written again.
 *
 * Records in the format of earlier versions (LEGACY_PENDING_FILE, `unit<TAB>handler` lines, keyed by
 * `play N` whatever the playbook) are never replayed: they do not say which playbook they belong to.
 * Every run reports them (see PendingLedger) until the file is removed.
 */
import { createHash } from 'node:crypto';
import { quote } from '../util/shell.js';

/** The engine's own state directory on the host. */
export const STATE_DIR = '/var/lib/verdandi';
export const PENDING_DIR = `${STATE_DIR}/pending`;
/** Where earlier versions kept every record, one `unit<TAB>handler` line each. */
export const LEGACY_PENDING_FILE = `${STATE_DIR}/pending-handlers`;

/** What defines a handler: the role or playbook file, and the unit (a role, a play) in it. */
export interface HandlerOwner {
  /** `role nginx`, `playbook playbooks/site.ts`. */
  source: string;
  /** The role's name, or the play's name (`play 2` when it has none). */
  unit: string;
}

export interface HandlerRecord extends HandlerOwner {
  handler: string;
}

/** A record as read on the host: its file and its key (undefined when the file does not hold one). */
export interface ReadRecord {
  file: string;
  record?: HandlerRecord;
}

export interface PendingOnHost {
  records: ReadRecord[];
  /** Lines of LEGACY_PENDING_FILE (`unit<TAB>handler`). */
  legacy: string[];
}

/** The key of a record: the same for the same handler of the same unit of the same file only. */
export function recordKey(r: HandlerRecord): string {
  return JSON.stringify([r.source, r.unit, r.handler]);
}

/** Path of a record's file on the host. */
export function recordPath(r: HandlerRecord): string {
  return `${PENDING_DIR}/${createHash('sha256').update(recordKey(r)).digest('hex').slice(0, 32)}.json`;
}

/** `handler "restart" of playbook site.ts, play 1`. */
export function describeRecord(r: HandlerRecord): string {
  return `handler "${r.handler}" of ${r.source}${r.source === `role ${r.unit}` ? '' : `, ${r.unit}`}`;
}

/**
 * Writes one record per handler (each whole or not at all); fails when one could not be written. A
 * half-written temporary file is removed.
 */
export function recordPendingScript(owner: HandlerOwner, handlers: string[]): string {
  if (handlers.length === 0) return ':';
  const writes = handlers.map((handler) => {
    const record: HandlerRecord = { source: owner.source, unit: owner.unit, handler };
    const path = recordPath(record);
    const tmp = `${PENDING_DIR}/.new-$$-${path.slice(PENDING_DIR.length + 1)}`;
    const line = JSON.stringify({ source: record.source, unit: record.unit, handler });
    return (
      `{ [ -f ${quote(path)} ] || { printf '%s\\n' ${quote(line)} > "${tmp}" && mv -f "${tmp}" ${quote(path)}; } ` +
      `|| { rm -f "${tmp}"; false; }; }`
    );
  });
  return [`mkdir -p ${PENDING_DIR}`, ...writes].join(' && ');
}

/** Printed by clearPendingScript when the record stays (the engine warns; the handler stays pending). */
export const UNCLEARED_MARKER = '@@vd-pending-uncleared';

/**
 * Removes the record of one handler once it ran: its own file only. When that fails (a read-only
 * filesystem), the line `UNCLEARED_MARKER <path>` tells the engine, which warns: the record stays and
 * the handler runs again at the next run.
 */
export function clearPendingScript(owner: HandlerOwner, handler: string): string {
  const path = quote(recordPath({ ...owner, handler }));
  return `rm -f ${path} 2>/dev/null; if [ -e ${path} ]; then printf '%s %s\\n' '${UNCLEARED_MARKER}' ${path}; fi`;
}

/** The path of a record that could not be cleared, when `output` starts with clearPendingScript's line. */
export function unclearedRecord(output: string): string | undefined {
  const prefix = `${UNCLEARED_MARKER} `;
  const text = output.replace(/^\n+/, '');
  if (!text.startsWith(prefix)) return undefined;
  const end = text.indexOf('\n');
  return text.slice(prefix.length, end < 0 ? undefined : end);
}

/** Prints `record<TAB><file><TAB><first line>` per record, `legacy<TAB><line>` per old-format line. */
export const readPendingProbe = [
  `for vd_p in ${PENDING_DIR}/*.json; do`,
  `  if [ -f "$vd_p" ]; then printf 'record\\t%s\\t' "$vd_p"; head -n 1 -- "$vd_p" | tr -d '\\n'; echo; fi`,
  'done',
  `if [ -f ${LEGACY_PENDING_FILE} ]; then sed 's/^/legacy\\t/' ${LEGACY_PENDING_FILE}; fi`,
  'true',
].join('\n');

function asRecord(json: string): HandlerRecord | undefined {
  try {
    const value = JSON.parse(json) as Record<string, unknown>;
    const { source, unit, handler } = value ?? {};
    if (typeof source === 'string' && typeof unit === 'string' && typeof handler === 'string') {
      return { source, unit, handler };
    }
  } catch {
    // Not a record: reported as unreadable by its file.
  }
  return undefined;
}

export function parsePending(text: string): PendingOnHost {
  const out: PendingOnHost = { records: [], legacy: [] };
  for (const line of text.split('\n')) {
    if (line.startsWith('record\t')) {
      const rest = line.slice('record\t'.length);
      const tab = rest.indexOf('\t');
      if (tab < 0) continue;
      out.records.push({ file: rest.slice(0, tab), record: asRecord(rest.slice(tab + 1)) });
    } else if (line.startsWith('legacy\t')) {
      const legacy = line.slice('legacy\t'.length);
      if (legacy.trim() && !out.legacy.includes(legacy)) out.legacy.push(legacy);
    }
  }
  return out;
}

/** The handlers of `owner` that are pending on the host. */
export function pendingHandlersOf(pending: PendingOnHost, owner: HandlerOwner): string[] {
  const out: string[] = [];
  for (const { record } of pending.records) {
    if (
      record &&
      record.source === owner.source &&
      record.unit === owner.unit &&
      !out.includes(record.handler)
    ) {
      out.push(record.handler);
    }
  }
  return out;
}

/** What PendingLedger.of reads of a host's plan: its name and each unit's file, name and handlers. */
export interface PlansHandlers {
  host: { name: string };
  units: readonly { definedBy: string; name: string; handlers: Readonly<Record<string, unknown>> }[];
}

/**
 * Which pending records a command can replay on each host: the handlers of every unit it runs there
 * (every play of a playbook). The others are reported once per host and command, every run, naming
 * their file: never dropped in silence.
 */
export class PendingLedger {
  private readonly checked = new Set<string>();

  constructor(private readonly known: ReadonlyMap<string, ReadonlySet<string>>) {}

  /**
   * The handlers of every unit of these plans (all the plays of a playbook), per host. Typed by the
   * shape it reads (a HostPlan fits), so this module imports nothing of the planner's.
   */
  static of(plans: Iterable<PlansHandlers>): PendingLedger {
    const known = new Map<string, Set<string>>();
    for (const { host, units } of plans) {
      const keys = known.get(host.name) ?? new Set<string>();
      for (const u of units) {
        for (const handler of Object.keys(u.handlers)) {
          keys.add(recordKey({ source: u.definedBy, unit: u.name, handler }));
        }
      }
      known.set(host.name, keys);
    }
    return new PendingLedger(known);
  }

  /** Whether the records of `host` are still to be looked at in this command. */
  unchecked(host: string): boolean {
    return !this.checked.has(host);
  }

  /** Warnings for the records of `host` that no unit of this command can replay (once per host). */
  unreplayable(host: string, pending: PendingOnHost): string[] {
    if (this.checked.has(host)) return [];
    this.checked.add(host);
    const known = this.known.get(host) ?? new Set<string>();
    const out: string[] = [];
    for (const { file, record } of pending.records) {
      if (!record) {
        out.push(
          `${host}: ${file} is not a handler record Verdandi can read; remove it once you know what it was`,
        );
      } else if (!known.has(recordKey(record))) {
        out.push(
          `${host}: ${describeRecord(record)} is pending since an earlier run (${file}), and nothing in this run defines it: ` +
            `run ${record.source} to run it, or remove the file if it no longer applies`,
        );
      }
    }
    if (pending.legacy.length > 0) {
      const shown = pending.legacy.map((line) => line.replace('\t', ' › ')).join(', ');
      out.push(
        `${host}: ${LEGACY_PENDING_FILE} holds handlers an earlier version of Verdandi left pending (${shown}); ` +
          'they are not run, since that format does not say which playbook or role they belong to: ' +
          'run them (or the roles and playbooks that define them), then remove the file',
      );
    }
    return out;
  }
}
