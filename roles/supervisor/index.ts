/**
 * supervisor: keeps the app processes running (a Python site's uvicorn `server` program, for example).
 *
 * Each program is typed data written to `/etc/supervisor/conf.d/verdandi-<name>.conf` (mode 0600: its
 * environment may hold secrets such as a database URL). A changed file notifies `update supervisor
 * programs`, which runs `supervisorctl reread` and then `supervisorctl update` for the changed programs
 * only: the others keep running untouched. Program files of Verdandi that are no longer listed are
 * removed, and the same handler stops those programs.
 */
import {
  apt,
  defineRole,
  prune,
  refuseDuplicateNames,
  service,
  shell,
  type Task,
  template,
  z,
} from 'verdandi';

export const CONF_DIR = '/etc/supervisor/conf.d';
export const FILE_PREFIX = 'verdandi-';
export const UPDATE_SCRIPT = '/usr/local/sbin/verdandi-supervisor-update';
export const LOG_DIR = '/var/log/supervisor';

/** One line of an ini value: no newline (it would start a new key). */
const oneLine = z.string().regex(/^[^\n\r]*$/, 'must be a single line');

const program = z.object({
  /** Program name (`supervisorctl status <name>`). */
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a program name is letters, digits, ".", "_" or "-"'),
  /** The command line, run without a shell (`%(program_name)s` and `%(process_num)d` are expanded). */
  command: oneLine.min(1),
  directory: oneLine.optional(),
  /** Run as this user (must exist). Default: root. */
  user: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/)
    .optional(),
  /** Environment variables: values may come from the secrets (`{{ secrets.database_url }}`). An open
   * map (any variable name), where every other mapping of the vars refuses unknown keys. */
  environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), oneLine).default({}),
  numprocs: z.number().int().min(1).default(1),
  /** Defaults to `%(program_name)s`, or `%(program_name)s_%(process_num)02d` when numprocs > 1. */
  process_name: oneLine.optional(),
  autostart: z.boolean().default(true),
  /** `true`, `false` or `unexpected` (restart only on an exit code not in exitcodes). */
  autorestart: z.union([z.boolean(), z.literal('unexpected')]).default(true),
  /** Seconds the program must stay up to count as started. */
  startsecs: z.number().int().nonnegative().default(1),
  startretries: z.number().int().nonnegative().default(3),
  stopsignal: z.enum(['TERM', 'HUP', 'INT', 'QUIT', 'KILL', 'USR1', 'USR2']).default('TERM'),
  stopwaitsecs: z.number().int().nonnegative().default(10),
  /** Signal the whole process group (uvicorn/gunicorn workers stop with their master). */
  stopasgroup: z.boolean().default(true),
  killasgroup: z.boolean().default(true),
  /** Defaults to `/var/log/supervisor/<name>.out.log`. */
  stdout_logfile: oneLine.optional(),
  /** Defaults to `/var/log/supervisor/<name>.err.log` (unused when redirect_stderr). */
  stderr_logfile: oneLine.optional(),
  redirect_stderr: z.boolean().default(false),
  logfile_maxbytes: z
    .string()
    .regex(/^\d+(KB|MB|GB)?$/)
    .default('50MB'),
  logfile_backups: z.number().int().nonnegative().default(10),
  priority: z.number().int().optional(),
});

export type SupervisorProgram = z.infer<typeof program>;

export const vars = z.object({
  supervisor_programs: z.array(program).default([]),
});

export type SupervisorVars = z.infer<typeof vars>;

const templateFile = (name: string) => new URL(`./templates/${name}`, import.meta.url);

export function programFile(name: string): string {
  return `${CONF_DIR}/${FILE_PREFIX}${name}.conf`;
}

/** A value inside `environment=KEY="value"`: supervisor reads `\"` and `%%` there. */
function envValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
}

/** The `key=value` lines of a program section, in a stable order. */
export function programLines(p: SupervisorProgram): string[] {
  const lines: string[] = [`command=${p.command}`];
  const processName =
    p.process_name ?? (p.numprocs > 1 ? '%(program_name)s_%(process_num)02d' : '%(program_name)s');
  lines.push(`process_name=${processName}`, `numprocs=${p.numprocs}`);
  if (p.directory !== undefined) lines.push(`directory=${p.directory}`);
  if (p.user !== undefined) lines.push(`user=${p.user}`);
  const env = Object.entries(p.environment);
  if (env.length > 0) lines.push(`environment=${env.map(([k, v]) => `${k}=${envValue(v)}`).join(',')}`);
  lines.push(
    `autostart=${p.autostart}`,
    `autorestart=${p.autorestart}`,
    `startsecs=${p.startsecs}`,
    `startretries=${p.startretries}`,
    `stopsignal=${p.stopsignal}`,
    `stopwaitsecs=${p.stopwaitsecs}`,
    `stopasgroup=${p.stopasgroup}`,
    `killasgroup=${p.killasgroup}`,
  );
  if (p.priority !== undefined) lines.push(`priority=${p.priority}`);
  lines.push(
    `redirect_stderr=${p.redirect_stderr}`,
    `stdout_logfile=${p.stdout_logfile ?? `${LOG_DIR}/${p.name}.out.log`}`,
    `stdout_logfile_maxbytes=${p.logfile_maxbytes}`,
    `stdout_logfile_backups=${p.logfile_backups}`,
  );
  if (!p.redirect_stderr) {
    lines.push(
      `stderr_logfile=${p.stderr_logfile ?? `${LOG_DIR}/${p.name}.err.log`}`,
      `stderr_logfile_maxbytes=${p.logfile_maxbytes}`,
      `stderr_logfile_backups=${p.logfile_backups}`,
    );
  }
  return lines;
}

export default defineRole({
  name: 'supervisor',
  description: 'supervisor with typed programs; a changed program is updated alone',
  vars,
  tasks(v, host) {
    refuseDuplicateNames(
      'supervisor_programs',
      v.supervisor_programs.map((p) => p.name),
      host,
    );
    const update = { notify: 'update supervisor programs' };
    const keep = v.supervisor_programs.map((p) => `${FILE_PREFIX}${p.name}.conf`);
    const tasks: Task[] = [
      apt({ packages: ['supervisor'] }),
      service({ unit: 'supervisor', state: 'started', enabled: true }),
      template({
        path: UPDATE_SCRIPT,
        src: templateFile('update-programs.sh.hbs'),
        vars: {},
        owner: 'root',
        group: 'root',
        mode: '0755',
      }),
      prune({
        name: 'remove programs no longer listed',
        dir: CONF_DIR,
        match: `${FILE_PREFIX}*.conf`,
        keep,
        ...update,
      }),
    ];
    for (const p of v.supervisor_programs) {
      tasks.push(
        template({
          name: `program ${p.name}`,
          path: programFile(p.name),
          src: templateFile('program.conf.hbs'),
          vars: { name: p.name, lines: programLines(p) },
          owner: 'root',
          group: 'root',
          mode: '0600',
          // The environment may carry secrets: no content in diffs or output.
          sensitive: Object.keys(p.environment).length > 0,
          ...update,
        }),
      );
    }
    return tasks;
  },
  handlers: {
    'update supervisor programs': () =>
      shell({
        name: 'supervisorctl reread + update of the changed programs',
        script: UPDATE_SCRIPT,
        // Holds whenever the role ran; a guarded task is also not reported as "always runs".
        onlyIf: `test -x ${UPDATE_SCRIPT}`,
      }),
  },
});
