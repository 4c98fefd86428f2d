/**
 * service: a systemd unit started or stopped, enabled or disabled at boot.
 *
 * The probe reads `systemctl show` (LoadState, ActiveState, UnitFileState, NeedDaemonReload). When
 * systemd reports that the unit's file changed on disk (NeedDaemonReload=yes), `systemctl daemon-reload`
 * runs first, so the unit runs with the file as it is now.
 *
 * `restarted` and `reloaded` are actions, not states: the task changes something on EVERY run. Use them
 * in handlers (notified by the task that changed a config file), not in a role's task list.
 * `reloaded` starts a unit that is not running (then it reads its config anyway).
 *
 * systemd does not see everything: a drop-in folder (`nginx.service.d/`) created after the unit was
 * loaded is not in its cache of folders, so a new drop-in there leaves NeedDaemonReload at "no" (systemd
 * 252, Debian 12). The probe therefore also lists the drop-in files on disk and compares them with the
 * unit's DropInPaths: a file systemd has not loaded is a change on disk too.
 *
 * `daemonReload: true` (Ansible systemd's `daemon_reload`), with or without a unit: `systemctl
 * daemon-reload` runs when systemd reports that ANY loaded unit's file changed on disk (a unit file, a
 * drop-in, /etc/fstab for its mounts) or that a loaded unit has a drop-in it has not read, not on every
 * run: a rerun reports no change. Ansible reloads and
 * reports a change on every run; a reload with nothing changed is pointless, and "changed" every run
 * would hide real changes. Units systemd has not loaded need no reload: they are read when started.
 *
 * `masked` (Ansible systemd's `masked`): true masks the unit (`systemctl mask`: it can then be started
 * neither by hand nor as a dependency), false unmasks a masked one before it is started or enabled.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { words } from '../util/shell.js';
import { defineTask, type PrepareContext } from './define.js';
import { flag, oneOf, text } from './options.js';
import { MARKER_PREFIX, markedLines } from './probe-output.js';

const options = z.strictObject({
  /** Unit name: `nginx` (same as `nginx.service`), `backup.timer`... */
  unit: text('unit', /^(?!-)[A-Za-z0-9:_.@\\-]+$/, 'a systemd unit name').optional(),
  state: oneOf('state', ['started', 'stopped', 'restarted', 'reloaded']).optional(),
  /** Start at boot (`systemctl enable`) or not (`disable`). Untouched when not given. */
  enabled: flag('enabled').optional(),
  /** Masked (`systemctl mask`) or not (`unmask`). Untouched when not given. */
  masked: flag('masked').optional(),
  /** Reload systemd's units when any loaded unit's file changed on disk (the only option needed). */
  daemonReload: flag('daemonReload').default(false),
});

export type ServiceOptions = z.input<typeof options>;
type Service = z.output<typeof options>;

/** UnitFileState values for which `systemctl is-enabled` succeeds: nothing to enable. */
const ENABLED_LIKE = new Set([
  'enabled',
  'enabled-runtime',
  'alias',
  'static',
  'indirect',
  'generated',
  'transient',
]);
/** ActiveState values that count as running. */
const RUNNING = new Set(['active', 'reloading', 'refreshing']);
/** ActiveState values that count as stopped (a failed unit is not running; stopping it changes nothing). */
const STOPPED = new Set(['inactive', 'failed', 'maintenance']);

const PROPERTIES = ['LoadState', 'ActiveState', 'UnitFileState', 'NeedDaemonReload'];
const RELOAD_MARKER = `${MARKER_PREFIX}daemon-reload`;

/** Prints `verdandi-daemon-reload <unit>` for every loaded unit whose file changed on disk. */
const CHANGED_UNITS_PROBE = `systemctl show '*' -p Id,NeedDaemonReload 2>/dev/null | awk -F= '$1 == "Id" { id = $2 } $1 == "NeedDaemonReload" && $2 == "yes" { print "${RELOAD_MARKER} " id }'`;

/** The folders systemd reads drop-ins from, most specific first (`/lib` is `/usr/lib` on Debian 12). */
const DROP_IN_ROOTS = ['/etc/systemd/system', '/run/systemd/system', '/usr/lib/systemd/system'];
const UNIT_TYPES = /\.(service|socket|device|mount|automount|swap|target|path|timer|slice|scope)$/;

/**
 * Compares the drop-in files on disk with the DropInPaths systemd loaded, per unit and file name (a
 * file of /etc shadows the one of the same name in /usr/lib; a link to /dev/null masks it), and prints
 * `verdandi-daemon-reload <unit>` for each loaded unit that has a file systemd has not read.
 */
const UNREAD_DROP_INS_AWK = String.raw`
function key(path,  name) {
  unit = path; sub(/\/[^\/]*$/, "", unit); sub(/^.*\//, "", unit); sub(/\.d$/, "", unit)
  name = path; sub(/^.*\//, "", name)
  return unit "/" name
}
$0 == "${MARKER_PREFIX}files" { files = 1; next }
!files && /^Id=/ { loaded[substr($0, 4)] = 1; next }
!files && /^DropInPaths=/ { n = split(substr($0, 13), p, " "); for (i = 1; i <= n; i++) read[key(p[i])] = 1; next }
files && /^masked / { read[key(substr($0, 8))] = 1; next }
files && /^file / { k = key(substr($0, 6)); if ((unit in loaded) && !(k in read) && !(unit in said)) { said[unit] = 1; print "${RELOAD_MARKER} " unit } }
`;

/**
 * The probe of UNREAD_DROP_INS_AWK, for every loaded unit (`*`) or for one unit. `shown` prints the
 * unit's `systemctl show` lines with Id and DropInPaths: that command itself, or, for one unit, the
 * printf of the lines its probe has already read (one `systemctl` process less on the host).
 */
function unreadDropInsProbe(unit: string | undefined, shown?: string): string {
  const id = unit === undefined ? '*' : UNIT_TYPES.test(unit) ? unit : `${unit}.service`;
  // The unit's name is quoted for the shell; the folders' glob (`*.d` for every unit) is not.
  const folders = DROP_IN_ROOTS.map((root) =>
    unit === undefined ? `${root}/*.d/*.conf` : `${root}/${words(`${id}.d`)}/*.conf`,
  );
  // The files on disk are listed by the shell alone; without any, nothing can be unread, and neither
  // awk nor (for every unit) systemctl runs: the common case, on every no-change run.
  return [
    'vd_dropins=',
    `for f in ${folders.join(' ')}; do if [ "$f" -ef /dev/null ]; then vd_dropins="\${vd_dropins}masked $f\n"; elif [ -e "$f" ]; then vd_dropins="\${vd_dropins}file $f\n"; fi; done`,
    `if [ -n "$vd_dropins" ]; then { ${shown ?? `${words('systemctl', 'show', '-p', 'Id,DropInPaths', '--', id)} 2>/dev/null`}; echo '${MARKER_PREFIX}files'; printf '%s' "$vd_dropins"; } |`,
    `awk '${UNREAD_DROP_INS_AWK}'; fi`,
  ].join('\n');
}

function probe({ unit, daemonReload }: Service): string {
  if (unit === undefined) return [CHANGED_UNITS_PROBE, unreadDropInsProbe(undefined)].join('\n');
  if (daemonReload) {
    // The unit's own `systemctl show` comes last: its exit code is the probe's.
    const show = `${words('systemctl', 'show', '-p', PROPERTIES.join(','), '--', unit)} 2>&1`;
    return [CHANGED_UNITS_PROBE, unreadDropInsProbe(undefined), show].join('\n');
  }
  // One `systemctl show` of the unit serves both: the drop-in check reads its Id and DropInPaths, the
  // plan the four properties; its output is printed and its exit code made the probe's (the probe runs
  // in a subshell of its own: `exit` ends that subshell only).
  return [
    `vd_show=$(${words('systemctl', 'show', '-p', ['Id', 'DropInPaths', ...PROPERTIES].join(','), '--', unit)} 2>&1); vd_show_rc=$?`,
    unreadDropInsProbe(unit, `printf '%s\\n' "$vd_show"`),
    `printf '%s\\n' "$vd_show"`,
    'exit "$vd_show_rc"',
  ].join('\n');
}

function prepare(service: Service, { fail }: PrepareContext): Service {
  if (service.unit === undefined) {
    if (!service.daemonReload)
      fail('unit', 'unit is required', 'name the unit, or give daemonReload: true alone');
    const extra = (['state', 'enabled', 'masked'] as const).find((option) => service[option] !== undefined);
    if (extra) fail(extra, `${extra} needs a unit`, 'name the unit with unit: …');
  }
  if (service.masked === true && (service.enabled === true || (service.state ?? 'stopped') !== 'stopped')) {
    fail(
      'masked',
      `a masked unit cannot be ${service.enabled === true ? 'enabled' : service.state}`,
      'give masked: true with state stopped (or no state) and without enabled: true',
    );
  }
  return service;
}

function plan(service: Service, result: ProbeResult): Plan {
  const { unit, state, enabled, masked: wantMasked, daemonReload } = service;
  // Two probes may name one unit (its file changed and it has an unread drop-in): each is named once.
  const changedUnits = [
    ...new Set(markedLines(result.stdout, RELOAD_MARKER).map((fields) => fields.join(' '))),
  ];
  const reload: RunStep[] = [];
  const reloadReasons: string[] = [];
  if (daemonReload && changedUnits.length > 0) {
    reload.push({ kind: 'run', command: 'systemctl daemon-reload' });
    const shown = changedUnits.slice(0, 3).join(', ') + (changedUnits.length > 3 ? ', …' : '');
    reloadReasons.push(`changed on disk: ${shown}: daemon-reload`);
  }
  if (unit === undefined) {
    return reload.length > 0 ? { steps: reload, reason: reloadReasons.join(', ') } : { steps: [] };
  }
  const systemctl = (...args: string[]): RunStep => ({
    kind: 'run',
    command: words('systemctl', ...args, unit),
  });
  const props = parseShow(result.stdout);
  if (result.exitCode !== 0 || props.LoadState === undefined) {
    const output = result.stdout.trim().split('\n').slice(-3).join(' ');
    return { steps: [], error: `systemctl show ${unit} failed (exit code ${result.exitCode}): ${output}` };
  }
  // Masking a unit that does not exist is fine: it keeps a later install from starting it.
  if (props.LoadState === 'not-found' && wantMasked !== true) {
    return {
      steps: [],
      error: `unit ${unit} not found on the host (systemd reports LoadState=not-found): install the package that provides it, or write its unit file, in an earlier task; check the name (systemctl list-unit-files)`,
    };
  }
  const masked = props.LoadState === 'masked' || props.UnitFileState?.startsWith('masked') === true;
  if (masked && wantMasked !== false && (enabled === true || (state !== undefined && state !== 'stopped'))) {
    return {
      steps: [],
      error: `unit ${unit} is masked: it cannot be started or enabled; unmask it (systemctl unmask ${unit}) if it should run`,
    };
  }

  const steps: RunStep[] = reload;
  const reasons: string[] = reloadReasons;
  if (reload.length === 0 && props.NeedDaemonReload === 'yes') {
    steps.push({ kind: 'run', command: 'systemctl daemon-reload' });
    reasons.push('unit file changed on disk: daemon-reload');
  } else if (reload.length === 0 && changedUnits.length > 0) {
    steps.push({ kind: 'run', command: 'systemctl daemon-reload' });
    reasons.push('new drop-in on disk: daemon-reload');
  }
  if (wantMasked === true && !masked) {
    steps.push(systemctl('mask'));
    reasons.push('masked');
  } else if (wantMasked === false && masked) {
    steps.push(systemctl('unmask'));
    reasons.push('unmasked');
  }

  const active = props.ActiveState ?? 'unknown';
  if (state === 'started' && !RUNNING.has(active)) {
    steps.push(systemctl('start'));
    reasons.push(`${active} → started`);
  } else if (state === 'stopped' && !STOPPED.has(active)) {
    steps.push(systemctl('stop'));
    reasons.push(`${active} → stopped`);
  } else if (state === 'restarted') {
    steps.push(systemctl('restart'));
    reasons.push('restart requested');
  } else if (state === 'reloaded') {
    if (RUNNING.has(active)) {
      steps.push(systemctl('reload'));
      reasons.push('reload requested');
    } else {
      steps.push(systemctl('start'));
      reasons.push(`reload requested but ${active}: start`);
    }
  }

  const fileState = props.UnitFileState ?? '';
  if (enabled === true && !ENABLED_LIKE.has(fileState)) {
    steps.push(systemctl('enable'));
    reasons.push(`${fileState || 'not enabled'} → enabled`);
  } else if (enabled === false && fileState === 'enabled') {
    steps.push(systemctl('disable'));
    reasons.push('enabled → disabled');
  }
  return steps.length > 0 ? { steps, reason: reasons.join(', ') } : { steps: [] };
}

/** `service({ unit, state, enabled, masked, daemonReload })`; `name` is the label (it was the unit before: still accepted). */
export const service = defineTask({
  type: 'service',
  becomeUser: { refuse: 'only root may start, stop, enable or mask system units' },
  options,
  subject: 'unit',
  subjectWasName: true,
  newerThanRename: ['daemonReload'],
  label: (unit) => (unit === undefined ? 'service' : `service ${unit}`),
  describe: ({ unit }) => (unit === undefined ? 'service daemon-reload' : `service ${unit}`),
  prepare,
  probe,
  plan,
});

/** `Key=value` lines of `systemctl show` into an object. */
export function parseShow(stdout: string): Record<string, string | undefined> {
  const props: Record<string, string | undefined> = {};
  for (const line of stdout.split('\n')) {
    const match = line.match(/^([A-Za-z]+)=(.*)$/);
    if (match && PROPERTIES.includes(match[1])) props[match[1]] = match[2].trim();
  }
  return props;
}
