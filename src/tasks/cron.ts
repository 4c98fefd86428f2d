/**
 * cron({ job, schedule, command, user?, environment?, state? }): a job in its own file,
 * `/etc/cron.d/<job>`, run by cron as `user` (default root). Ansible's `cron` with `cron_file`: one
 * file per job here, named after it, so removing a job removes its file and nothing else.
 *
 * The file is written like `copy` writes (compared by sha256, atomic, with a diff), owned by root and
 * mode 0644: cron ignores files in /etc/cron.d that others can write. The command is written as given:
 * as in any crontab, an unescaped `%` ends the command (write `\%`).
 */
import { z } from 'zod';
import type { FileQuery, Plan, ProbeResult } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { type FileContent, fileContentFiles, fileContentPlan, fileContentProbe } from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import { account, environment, presence, rule, shown, text } from './options.js';

export const CRON_DIR = '/etc/cron.d';

const NICKNAMES = [
  '@reboot',
  '@yearly',
  '@annually',
  '@monthly',
  '@weekly',
  '@daily',
  '@midnight',
  '@hourly',
];

/** Five time fields (`*\/5 * * * *`, `0 3 * * mon-fri`) or a nickname (`@daily`). */
const schedule = z.custom<string>().superRefine(
  rule((value: unknown) => {
    if (typeof value === 'string') {
      const fields = value.trim().split(/\s+/);
      if (fields.length === 1 && NICKNAMES.includes(fields[0])) return undefined;
      if (fields.length === 5 && fields.every((field) => /^[0-9A-Za-z*/,-]+$/.test(field))) return undefined;
    }
    return {
      problem: `schedule must be five cron fields or one of ${NICKNAMES.join(' ')}, got ${shown(value)}`,
      hint: "like schedule: '30 2 * * *' (02:30 every day) or schedule: '@daily'",
    };
  }),
);

const options = z.strictObject({
  /** Names the file /etc/cron.d/<job>: letters, digits, _ and - (cron skips names with a dot). */
  job: text(
    'job',
    /^[A-Za-z0-9_-]+$/,
    'a file name of letters, digits, _ and - (cron ignores names with a dot)',
  ),
  schedule: schedule.optional(),
  /** A shell command line, run by /bin/sh. */
  command: text('command', /^[^\n\r]+$/, 'one non-empty line').optional(),
  user: account('user').default('root'),
  /** Variables set for the job (`MAILTO: ''`, `PATH: ...`): one-line values. */
  environment: environment('environment').optional(),
  state: presence.default('present'),
});

export type CronOptions = z.input<typeof options>;
type Cron = z.output<typeof options>;

interface CronSpec extends FileContent {
  state: 'present' | 'absent';
}

/** The file's content: a header, the variables, then the job's line. */
export function cronFile(job: Cron): string {
  const lines = [`# Managed by verdandi (cron ${job.job}): changes made here are overwritten.`];
  for (const [name, value] of Object.entries(job.environment ?? {})) lines.push(`${name}=${value}`);
  lines.push(`${(job.schedule as string).trim().split(/\s+/).join(' ')} ${job.user} ${job.command}`);
  return `${lines.join('\n')}\n`;
}

function prepare(opts: Cron, { fail }: PrepareContext): CronSpec {
  const path = `${CRON_DIR}/${opts.job}`;
  if (opts.state === 'present') {
    if (opts.schedule === undefined) fail('schedule', 'schedule is required with state present');
    if (opts.command === undefined) fail('command', 'command is required with state present');
    const multiline = Object.entries(opts.environment ?? {}).find(([, value]) => /[\n\r]/.test(value));
    if (multiline) fail('environment', `environment ${multiline[0]} must be one line`);
  }
  return {
    label: `cron ${opts.job}`,
    path,
    content: opts.state === 'present' ? cronFile(opts) : '',
    attributes: { owner: 'root', group: 'root', mode: '0644' },
    state: opts.state,
  };
}

function files(spec: CronSpec): FileQuery[] {
  return spec.state === 'present' ? fileContentFiles(spec) : [{ path: spec.path }];
}

function plan(spec: CronSpec, result: ProbeResult): Plan {
  if (spec.state === 'present') return fileContentPlan(spec, result);
  const state = result.files?.get(spec.path);
  if (!state || state.type === 'absent') return { steps: [] };
  return { steps: [{ kind: 'run', command: sh`rm -f -- ${spec.path}` }], reason: `${spec.path} exists` };
}

export const cron = defineTask({
  type: 'cron',
  becomeUser: { refuse: 'only root may write its file in /etc/cron.d (the job itself runs as `user`)' },
  options,
  subject: 'job',
  label: (job) => `cron ${job}`,
  prepare,
  probe: (spec) => (spec.state === 'present' ? fileContentProbe(spec) : ''),
  files,
  plan,
});
