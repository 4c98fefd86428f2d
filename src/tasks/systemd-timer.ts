/**
 * systemdTimer({ timer, command, onCalendar? | onBootSec? | onUnitActiveSec?, persistent?,
 * randomizedDelaySec?, user?, description?, state? }): a job run by a systemd timer: the units
 * `/etc/systemd/system/<timer>.service` (oneshot, running `command` with `/bin/sh -c`) and
 * `<timer>.timer`, the timer enabled and started. Ansible has no module for it (roles template the two
 * units, then run `systemd` with `daemon_reload`); this is the systemd counterpart of `cron`.
 *
 * Both units are written like `copy` writes (compared by sha256, atomic). When one changed,
 * `systemctl daemon-reload` runs and the timer is restarted, so its next elapse follows the new
 * schedule. `state: 'absent'` stops and disables the timer, then removes both units.
 */
import { z } from 'zod';
import type { FileQuery, Plan, ProbeResult, Step } from '../engine/types.js';
import { sh, words } from '../util/shell.js';
import { type FileContent, fileContentPlan } from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import { account, flag, presence, text } from './options.js';
import { MARKER_PREFIX, markedLines } from './probe-output.js';

export const UNIT_DIR = '/etc/systemd/system';

const line = (option: string, what = 'one non-empty line') => text(option, /^[^\n\r]+$/, what);
const oneOrMore = (option: string) =>
  z.union([line(option), z.array(line(option)).min(1)]).transform((v) => (typeof v === 'string' ? [v] : v));

const options = z.strictObject({
  /** The units' name, without suffix: `backup` → backup.service and backup.timer. */
  timer: text('timer', /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'a unit name of letters, digits, _ . - (no suffix)'),
  /** A shell command line, run by /bin/sh -c (pipes and redirections work). */
  command: line('command').optional(),
  /** Calendar expressions (`daily`, `*-*-* 03:30:00`, `Mon..Fri 08:00`): see `man systemd.time`. */
  onCalendar: oneOrMore('onCalendar').optional(),
  /** Time after boot (`15min`). */
  onBootSec: line('onBootSec').optional(),
  /** Time after the job last ran (`1h`): a job repeated at an interval. */
  onUnitActiveSec: line('onUnitActiveSec').optional(),
  /** Run at boot a job whose calendar time passed while the machine was off (default true). */
  persistent: flag('persistent').default(true),
  randomizedDelaySec: line('randomizedDelaySec').optional(),
  /** Run the job as this user (default root). */
  user: account('user').optional(),
  description: line('description').optional(),
  state: presence.default('present'),
});

export type SystemdTimerOptions = z.input<typeof options>;
type SystemdTimer = z.output<typeof options>;

interface SystemdTimerSpec {
  timer: string;
  state: 'present' | 'absent';
  service: FileContent;
  timerUnit: FileContent;
}

const MARKER = `${MARKER_PREFIX}systemd-timer`;

/**
 * A shell command as one systemd ExecStart argument: in double quotes, `\` and `"` escaped, `%`
 * (a specifier) and `$` (a variable) doubled, so the shell gets the command exactly as written.
 */
export function execStart(command: string): string {
  const escaped = command
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/%/g, '%%')
    .replace(/\$/g, '$$$$');
  return `/bin/sh -c "${escaped}"`;
}

export function serviceUnit(opts: SystemdTimer): string {
  const lines = [
    `# Managed by verdandi (systemdTimer ${opts.timer}): changes made here are overwritten.`,
    '[Unit]',
    `Description=${opts.description ?? `${opts.timer} (run by ${opts.timer}.timer)`}`,
    '',
    '[Service]',
    'Type=oneshot',
  ];
  if (opts.user !== undefined) lines.push(`User=${opts.user}`);
  lines.push(`ExecStart=${execStart(opts.command as string)}`);
  return `${lines.join('\n')}\n`;
}

export function timerUnit(opts: SystemdTimer): string {
  const lines = [
    `# Managed by verdandi (systemdTimer ${opts.timer}): changes made here are overwritten.`,
    '[Unit]',
    `Description=${opts.description ?? opts.timer} timer`,
    '',
    '[Timer]',
  ];
  for (const calendar of opts.onCalendar ?? []) lines.push(`OnCalendar=${calendar}`);
  if (opts.onBootSec !== undefined) lines.push(`OnBootSec=${opts.onBootSec}`);
  if (opts.onUnitActiveSec !== undefined) lines.push(`OnUnitActiveSec=${opts.onUnitActiveSec}`);
  if (opts.onCalendar !== undefined) lines.push(`Persistent=${opts.persistent}`);
  if (opts.randomizedDelaySec !== undefined) lines.push(`RandomizedDelaySec=${opts.randomizedDelaySec}`);
  lines.push('', '[Install]', 'WantedBy=timers.target');
  return `${lines.join('\n')}\n`;
}

function prepare(opts: SystemdTimer, { fail }: PrepareContext): SystemdTimerSpec {
  if (opts.state === 'present') {
    if (opts.command === undefined) fail('command', 'command is required with state present');
    if (opts.onCalendar === undefined && opts.onBootSec === undefined && opts.onUnitActiveSec === undefined) {
      fail(
        'onCalendar',
        'give onCalendar, onBootSec or onUnitActiveSec: when the job runs',
        "like onCalendar: 'daily'",
      );
    }
  }
  const file = (suffix: string, content: string): FileContent => ({
    label: `systemdTimer ${opts.timer}`,
    path: `${UNIT_DIR}/${opts.timer}.${suffix}`,
    content,
    attributes: { owner: 'root', group: 'root', mode: '0644' },
  });
  const present = opts.state === 'present';
  return {
    timer: opts.timer,
    state: opts.state,
    service: file('service', present ? serviceUnit(opts) : ''),
    timerUnit: file('timer', present ? timerUnit(opts) : ''),
  };
}

function probe(spec: SystemdTimerSpec): string {
  return sh`printf '%s %s\\n' ${MARKER} "$(systemctl show -p ActiveState -p UnitFileState --value -- ${`${spec.timer}.timer`} 2>/dev/null | tr '\\n' ' ')"`;
}

function files(spec: SystemdTimerSpec): FileQuery[] {
  return [
    { path: spec.service.path, checksum: true },
    { path: spec.timerUnit.path, checksum: true },
  ];
}

function plan(spec: SystemdTimerSpec, result: ProbeResult): Plan {
  const [activeState, unitFileState] = markedLines(result.stdout, MARKER).at(-1) ?? [];
  const timerName = `${spec.timer}.timer`;
  if (spec.state === 'absent') {
    const present = [spec.service.path, spec.timerUnit.path].filter(
      (path) => result.files?.get(path)?.type !== 'absent',
    );
    const steps: Step[] = [];
    if (activeState === 'active' || unitFileState === 'enabled') {
      steps.push({ kind: 'run', command: words('systemctl', 'disable', '--now', timerName) });
    }
    if (present.length > 0) {
      steps.push(
        { kind: 'run', command: sh`rm -f -- ${present}` },
        { kind: 'run', command: 'systemctl daemon-reload' },
      );
    }
    return steps.length === 0 ? { steps: [] } : { steps, reason: `${timerName} is installed` };
  }

  const steps: Step[] = [];
  const reasons: string[] = [];
  let diff: Plan['diff'];
  let timerChanged = false;
  for (const unit of [spec.service, spec.timerUnit]) {
    const unitPlan = fileContentPlan(unit, result);
    if (unitPlan.error) return unitPlan;
    if (unitPlan.steps.length === 0) continue;
    steps.push(...unitPlan.steps);
    if (unitPlan.reason) reasons.push(`${unit.path.slice(UNIT_DIR.length + 1)}: ${unitPlan.reason}`);
    diff ??= unitPlan.diff;
    if (unit === spec.timerUnit) timerChanged = true;
  }
  if (steps.some((step) => step.kind === 'write')) {
    steps.push({ kind: 'run', command: 'systemctl daemon-reload' });
  }
  if (unitFileState !== 'enabled') {
    steps.push({ kind: 'run', command: words('systemctl', 'enable', timerName) });
    reasons.push(`${timerName} is not enabled`);
  }
  if (activeState !== 'active' || timerChanged) {
    steps.push({ kind: 'run', command: words('systemctl', 'restart', timerName) });
    if (activeState !== 'active') reasons.push(`${timerName} is not started`);
  }
  if (steps.length === 0) return { steps: [] };
  return { steps, reason: reasons.join(', '), ...(diff ? { diff } : {}) };
}

export const systemdTimer = defineTask({
  type: 'systemdTimer',
  becomeUser: {
    refuse: 'only root may write its units in /etc/systemd/system (the job itself runs as `user`)',
  },
  options,
  subject: 'timer',
  label: (timer) => `systemdTimer ${timer}`,
  prepare,
  probe,
  files,
  plan,
});
