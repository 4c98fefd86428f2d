/**
 * npm({ package, version?, source?, path? | global?, state?, registry?, extraArgs? }): a Node.js package
 * installed with npm, globally or in a project directory (Ansible's community.general.npm).
 *
 * The probe reads the installed version from the package's own package.json under `node_modules` (the
 * directory's, or npm's global root): present is converged when the package is there and, when
 * `version` is given, at that version; absent when it is not there. Installing runs
 * `npm install <package>@<version>` in `path` (created when missing), or `npm install --global`; with
 * `source` (a tarball path, a URL, `git+https://...`) that is what is installed instead, and `version`
 * then names the version the source holds. `registry` reaches npm as npm_config_registry, not on a
 * command line. npm comes from Debian's `npm` package (with `nodejs`): a host without it fails the task
 * saying so. Unlike Ansible's module there is no `state: latest` (it would ask the registry on every run).
 */
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { and, quote, sh, words } from '../util/shell.js';
import { envFromStdin } from './command.js';
import { defineTask, type PrepareContext } from './define.js';
import { absolutePath, flag, nonEmpty, presence, says, text } from './options.js';
import { MARKER_PREFIX, markedLines } from './probe-output.js';

const MARKER = `${MARKER_PREFIX}npm`;

const options = z.strictObject({
  /** The package's name (`pm2`, `@scope/name`). */
  package: text('package', /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/, 'an npm package name'),
  /** The exact version wanted (`5.3.1`). Not given: any installed version will do. */
  version: text('version', /^[0-9A-Za-z.+-]+$/, 'an exact version like 5.3.1').optional(),
  /** What to install instead of `<package>@<version>`: a tarball, a URL, a git URL. */
  source: nonEmpty('source').optional(),
  /** The project directory (its node_modules). Give `path` or `global: true`. */
  path: absolutePath('path').optional(),
  /** Install into npm's global prefix. */
  global: flag('global').default(false),
  state: presence.default('present'),
  /** The registry URL (npm_config_registry). */
  registry: z.url(says((got) => `registry must be a URL, got ${got}`)).optional(),
  /** More arguments for `npm install` (`['--omit=dev']`, `['--offline']`). */
  extraArgs: z
    .array(
      z.string(),
      says((got) => `extraArgs must be a list of arguments, got ${got}`),
    )
    .default([]),
});

export type NpmOptions = z.input<typeof options>;

interface NpmSpec extends z.output<typeof options> {
  label: string;
}

function prepare(opts: z.output<typeof options>, { fail, label }: PrepareContext): NpmSpec {
  if ((opts.path === undefined) === !opts.global) {
    fail('path', 'give either path (a project directory) or global: true');
  }
  return { ...opts, label };
}

/** Shell setting nm_r to the node_modules directory the package goes to. */
function modulesRoot(spec: NpmSpec): string {
  return spec.global ? 'nm_r=$(npm root --global 2>/dev/null)' : sh`nm_r=${`${spec.path}/node_modules`}`;
}

function probe(spec: NpmSpec): string {
  return [
    `command -v npm >/dev/null 2>&1 || { echo ${quote(`${MARKER} no-npm`)}; exit 0; }`,
    modulesRoot(spec),
    sh`nm_j="$nm_r"/${spec.package}/package.json`,
    'if [ -f "$nm_j" ]; then',
    // node comes with npm; JSON is read by node, not by sed.
    `  printf '%s %s\\n' ${quote(`${MARKER} installed`)} "$(node -e 'process.stdout.write(String(require(process.argv[1]).version))' "$nm_j" 2>/dev/null || echo unknown)"`,
    `else echo ${quote(`${MARKER} missing`)}; fi`,
  ].join('\n');
}

/** An npm command in the project directory (created when missing) or global, the registry on stdin. */
function npmStep(spec: NpmSpec, npmArguments: string[], description: string): RunStep {
  const env = envFromStdin(spec.registry !== undefined ? { npm_config_registry: spec.registry } : {});
  const npm = words(
    'npm',
    ...npmArguments,
    '--no-audit',
    '--no-fund',
    '--no-update-notifier',
    spec.global && '--global',
  );
  const command = and(
    env.prelude,
    spec.path !== undefined && sh`mkdir -p ${spec.path} && cd ${spec.path}`,
    npm,
  );
  const step: RunStep = { kind: 'run', command, description };
  if (env.stdin !== '') step.stdin = env.stdin;
  return step;
}

function plan(spec: NpmSpec, result: ProbeResult): Plan {
  const { label } = spec;
  const fields = markedLines(result.stdout, MARKER);
  if (fields.some(([status]) => status === 'no-npm')) {
    return {
      steps: [],
      error: `${label}: npm is not installed on the host: install it first with apt({ packages: ['nodejs', 'npm'] })`,
    };
  }
  const installed = fields.find(([status]) => status === 'installed')?.[1];
  if (!installed && !fields.some(([status]) => status === 'missing')) {
    return {
      steps: [],
      error: `${label}: could not read whether ${spec.package} is installed (exit code ${result.exitCode})`,
    };
  }
  const where = spec.global ? 'globally' : `in ${spec.path}`;
  if (spec.state === 'absent') {
    if (installed === undefined) return { steps: [] };
    return {
      steps: [npmStep(spec, ['uninstall', spec.package], `npm uninstall ${spec.package} ${where}`)],
      reason: `${spec.package} ${installed} is installed`,
    };
  }
  if (installed !== undefined && (spec.version === undefined || installed === spec.version))
    return { steps: [] };
  const target =
    spec.source ?? (spec.version !== undefined ? `${spec.package}@${spec.version}` : spec.package);
  return {
    steps: [npmStep(spec, ['install', ...spec.extraArgs, target], `npm install ${target} ${where}`)],
    reason:
      installed === undefined
        ? `${spec.package} is not installed`
        : `${spec.package} ${installed} → ${spec.version}`,
  };
}

export const npm = defineTask({
  type: 'npm',
  options,
  subject: 'package',
  label: (name) => `npm ${name}`,
  prepare,
  probe,
  plan,
});
