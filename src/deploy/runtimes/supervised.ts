/**
 * What python and node sites share: each color is a supervisor program running a slot symlink
 * (`slots/<color>` → the release), the workers are supervisor programs running `current`, and the
 * release's commands run as the app user in the release.
 */
import { UserError } from '../../util/errors.js';
import { quote, sh } from '../../util/shell.js';
import { asApp, releaseDir } from '../release-files.js';
import { COLORS, type SitePaths } from '../site-base.js';
import { type ColorOps, initialUpstream, withColors } from './colors.js';
import { allSources, taggedSource } from './log-lines.js';
import type { ConsoleInput, DeployRuntime, LogsQuery, RuntimeSite, SiteRoleNeeds } from './runtime.js';

/** Stops the workers (before migrations). Null when the site has none. */
export function stopWorkers(paths: SitePaths): string | null {
  if (paths.workers.length === 0) return null;
  return sh`supervisorctl stop ${paths.workers}`;
}

/** (Re)starts the workers on whatever `current` points at now. */
export function restartWorkers(paths: SitePaths): string | null {
  if (paths.workers.length === 0) return null;
  return sh`supervisorctl restart ${paths.workers}`;
}

export const supervisorColors: ColorOps<RuntimeSite> = {
  slotState: (_site, paths, color) =>
    sh`if [ -L ${paths.slot(color)} ]; then echo "slot_${color}=$(basename "$(readlink ${paths.slot(color)})")"; fi`,
  processState: (_site, paths, color) =>
    `echo "proc_${color}=$(${sh`supervisorctl status ${paths.program(color)}`} 2>&1 | awk '{print $2}' | head -n 1)"`,
  start: (_site, paths, color, release) => {
    const slot = paths.slot(color);
    const program = paths.program(color);
    return [
      sh`mkdir -p "$(dirname ${slot})"`,
      sh`ln -sfn ${releaseDir(paths, release)} ${`${slot}.tmp`}`,
      sh`mv -T ${`${slot}.tmp`} ${slot}`,
      // A leftover of an interrupted deploy may still run in this color: stop it first.
      sh`{ supervisorctl stop ${program} >/dev/null 2>&1; true; }`,
      sh`supervisorctl start ${program}`,
    ].join(' && ');
  },
  pause: (_site, paths, color) => `${sh`supervisorctl stop ${paths.program(color)} >/dev/null 2>&1`}; true`,
  resume: (_site, paths, color) => sh`supervisorctl start ${paths.program(color)}`,
  stop: (_site, paths, color) =>
    [
      sh`supervisorctl stop ${paths.program(color)} >/dev/null 2>&1`,
      sh`rm -f ${paths.slot(color)}`,
      'true',
    ].join('; '),
  workers: { stop: stopWorkers, restart: restartWorkers },
};

/** The app user's login shell, or bash when it has none (an app user is often `nologin`). */
const APP_USER_SHELL =
  'vd_sh=$(getent passwd "$(id -un)" | cut -d: -f7); ' +
  'case "$vd_sh" in ""|*/nologin|*/false) vd_sh=/bin/bash ;; esac; ' +
  '[ -x "$vd_sh" ] || vd_sh=/bin/sh; exec "$vd_sh"';

/**
 * `verdandi console` for a python or node site: as the app user, in the live release, with its `.env`
 * and virtualenv (asApp), `prelude` first (node's PATH). Each shell `exec`s the next, down to the
 * command: nothing stays between the terminal and it, so Ctrl-C reaches the command alone.
 */
export function supervisedConsole(i: ConsoleInput, prelude = ''): string {
  const command = i.command === undefined ? APP_USER_SHELL : `exec ${i.command}`;
  return `exec ${asApp(i.paths, releaseDir(i.paths, i.release), `${prelude}${command}`)}`;
}

/**
 * The supervisor programs of a site, for the role: one web program per color (`run web <color>
 * <port>`) and one per worker (`run worker <name>`). A site without `process.command` is refused.
 */
export function supervisorNeeds(
  site: RuntimeSite,
  paths: SitePaths,
  packages: string[],
  prelude = '',
): SiteRoleNeeds {
  if (!site.process.command) {
    throw new UserError(
      `site ${site.name}: a ${site.runtime.type} site needs process.command (what serves HTTP on $PORT)`,
      1,
      'e.g. process: { command: "uvicorn app:app --host 127.0.0.1 --port $PORT" }',
    );
  }
  return {
    packages,
    supervisor: {
      command: site.process.command,
      prelude,
      programs: [
        ...COLORS.map((color) => ({
          program: paths.program(color),
          args: `web ${color} ${paths.port(color)}`,
          logName: color,
        })),
        ...site.process.workers.map((w, i) => ({
          program: paths.workers[i],
          args: `worker ${w.name}`,
          logName: `worker-${w.name}`,
        })),
      ],
    },
    upstream: initialUpstream(paths),
  };
}

/**
 * The supervisor log files of both colors and of the workers (`tail -F` follows a file across
 * supervisor's rotation and waits for one not written yet). They hold the program's raw output: no
 * times, so no `--since`.
 */
export function supervisedLogsScript(
  site: RuntimeSite,
  paths: SitePaths,
  q: LogsQuery,
): string | { refused: string } {
  if (q.sinceSeconds !== undefined) {
    return {
      refused: `the logs of ${site.runtime.type} site ${site.name} are supervisor's files of the program's output, without times`,
    };
  }
  const names = [...COLORS, ...site.process.workers.map((w) => `worker-${w.name}`)];
  return allSources(
    names.map((name) =>
      // A color that never ran has no file yet: nothing to say about it.
      taggedSource(
        name,
        `${sh`tail -n ${q.tail} ${q.follow ? ['-F'] : []} ${`${paths.logDir}/${name}.log`}`} 2>/dev/null`,
      ),
    ),
  );
}

/** A python or node runtime but for its schema, dependencies, cleanup and packages. */
export const supervisedRuntime: Omit<DeployRuntime, 'schema' | 'buildSteps' | 'cleanupSteps' | 'roleNeeds'> =
  {
    ...withColors(supervisorColors),
    registryPasswordSecret: () => undefined,
    // Sourced by the shell: every value quoted.
    renderEnv: (values) => {
      const lines = Object.entries(values).map(([k, v]) => `${k}=${quote(v)}`);
      return lines.length ? `${lines.join('\n')}\n` : '';
    },
    inRelease: (_site, paths, release, command) => asApp(paths, releaseDir(paths, release), command),
    consoleScript: (i) => supervisedConsole(i),
    removeArtifacts: () => null,
    logsScript: supervisedLogsScript,
  };
