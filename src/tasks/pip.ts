/**
 * pip({ virtualenv, packages? | requirements?, state?, indexUrl?, findLinks?, extraArgs? }): Python
 * packages in a virtualenv (Ansible's ansible.builtin.pip).
 *
 * Always in a virtualenv: Debian's Python refuses `pip install` into the system (PEP 668, "externally
 * managed"), so `virtualenv` is required; a missing one is created with `python3 -m venv` (which needs
 * Debian's python3-venv: the task says so when it is missing).
 *
 * present / latest: the probe asks pip itself what an install would do (`pip install --dry-run --report
 * -`, pip 22.2 or later, what Debian 12's venv brings): version specifiers (`flask>=3,<4`), extras and
 * requirements files are resolved by pip, and the task is converged when pip would install nothing.
 * `latest` adds `--upgrade`, so the probe consults the index. absent: the probe lists what is installed
 * (`pip list`) and the step uninstalls the packages among them.
 *
 * `indexUrl` and `findLinks` reach pip as PIP_INDEX_URL / PIP_FIND_LINKS, never on a command line (an
 * index URL may carry a token); a password in `indexUrl` is redacted from output.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { registerSecret } from '../util/redact.js';
import { quote, sh, words } from '../util/shell.js';
import { envFromStdin } from './command.js';
import { defineTask, type PrepareContext } from './define.js';
import { absolutePath, oneOf, says } from './options.js';
import { decodeBase64, MARKER_PREFIX, markedLines } from './probe-output.js';

const MARKER = `${MARKER_PREFIX}pip`;

/** A requirement as pip takes it: a name, optional extras, optional version specifiers (`a[x]>=1,<2`). */
const requirementMessage = says(
  (got) => `packages must hold requirements (name, [extras], version specifiers like >=1,<2), got ${got}`,
);
const requirement = z
  .string(requirementMessage)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?\s*([<>=!~]=?=?\s*[A-Za-z0-9.*+!_-]+\s*,?\s*)*$/,
    requirementMessage,
  );

const packagesMessage = says(
  (got) =>
    `packages must be a requirement (name, extras, version specifiers) or a non-empty list of them, got ${got}`,
);

const options = z.strictObject({
  /** The virtualenv's directory (created with `python3 -m venv` when missing). */
  virtualenv: absolutePath('virtualenv'),
  /** Requirements: `flask`, `flask==3.0.2`, `uvicorn[standard]>=0.29`. */
  packages: z
    .union([z.string(), z.array(z.unknown())], packagesMessage)
    .transform((packages) => (typeof packages === 'string' ? [packages] : packages))
    .pipe(z.array(requirement, packagesMessage).min(1, packagesMessage))
    .optional(),
  /** A requirements file on the host. */
  requirements: absolutePath('requirements').optional(),
  state: oneOf('state', ['present', 'absent', 'latest']).default('present'),
  /** The package index (PIP_INDEX_URL), for example a private one. */
  indexUrl: z.url(says((got) => `indexUrl must be a URL (http://host/simple), got ${got}`)).optional(),
  /** Directories or URLs of wheels (PIP_FIND_LINKS). */
  findLinks: z
    .union(
      [z.string(), z.array(z.string())],
      says((got) => `findLinks must be a path or URL, or a list of them, got ${got}`),
    )
    .transform((links) => (typeof links === 'string' ? [links] : links))
    .optional(),
  /** More arguments for `pip install` (`['--no-index']`, `['--pre']`). */
  extraArgs: z
    .array(
      z.string(),
      says((got) => `extraArgs must be a list of arguments, got ${got}`),
    )
    .default([]),
});

export type PipOptions = z.input<typeof options>;

/** PEP 503 normalised name: lower case, runs of `-`, `_`, `.` become one `-`. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

function requirementName(requirement: string): string {
  return normalizeName(/^[A-Za-z0-9][A-Za-z0-9._-]*/.exec(requirement)?.[0] ?? requirement);
}

interface PipSpec extends z.output<typeof options> {
  label: string;
  /** PIP_* variables: in the probe's script, on the step's standard input. */
  env: Record<string, string>;
}

function prepare(opts: z.output<typeof options>, { fail, label }: PrepareContext): PipSpec {
  if (opts.packages === undefined && opts.requirements === undefined) {
    fail('packages', 'give packages, requirements or both');
  }
  if (opts.state === 'absent' && opts.packages === undefined) {
    fail('packages', 'state absent needs packages (the names to uninstall)');
  }
  const env: Record<string, string> = {};
  if (opts.indexUrl !== undefined) {
    env.PIP_INDEX_URL = opts.indexUrl;
    const password = new URL(opts.indexUrl).password;
    if (password !== '') registerSecret([opts.indexUrl, decodeURIComponent(password)]);
  }
  if (opts.findLinks !== undefined) env.PIP_FIND_LINKS = opts.findLinks.join(' ');
  return { ...opts, label, env };
}

/** `pip install` with the task's arguments, in the virtualenv "$pp_v". */
function installArguments(spec: PipSpec): string {
  return words(
    ...(spec.state === 'latest' ? ['--upgrade'] : []),
    ...spec.extraArgs,
    ...(spec.requirements !== undefined ? ['-r', spec.requirements] : []),
    ...(spec.packages ?? []),
  );
}

function probe(spec: PipSpec): string {
  const lines = [
    sh`pp_v=${spec.virtualenv}`,
    'if [ ! -x "$pp_v/bin/python" ]; then',
    `  if ! command -v python3 >/dev/null 2>&1; then echo ${quote(`${MARKER} no-python`)}`,
    `  elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then echo ${quote(`${MARKER} no-venv-module`)}`,
    `  else echo ${quote(`${MARKER} no-virtualenv`)}; fi`,
    '  exit 0',
    'fi',
    'export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1',
    ...Object.entries(spec.env).map(([name, value]) => `${name}=${quote(value)}; export ${name}`),
  ];
  if (spec.state === 'absent') {
    lines.push(
      `"$pp_v/bin/python" -m pip list --format=freeze 2>/dev/null | sed -e 's/^/${MARKER} installed /' -e 's/==/ /'`,
      `echo ${quote(`${MARKER} listed`)}`,
    );
    return lines.join('\n');
  }
  // What an install would do, as pip's JSON report; pip's own words when it cannot resolve.
  const dryRun = `"$pp_v/bin/python" -m pip install --dry-run --quiet --no-cache-dir --report - ${installArguments(spec)}`;
  lines.push(
    `if pp_j=$(${dryRun} 2>/dev/null); then printf '%s %s\\n' ${quote(`${MARKER} report`)} "$(printf '%s' "$pp_j" | base64 -w0)"`,
    `else printf '%s %s\\n' ${quote(`${MARKER} failed`)} "$(${dryRun} 2>&1 >/dev/null | grep -v '^\\s*$' | tail -n 6 | base64 -w0)"; fi`,
  );
  return lines.join('\n');
}

interface ReportItem {
  metadata?: { name?: string; version?: string };
}

/** `name version` of each distribution pip's report would install, or undefined when it is not a report. */
export function reportedInstalls(report: string): string[] | undefined {
  let parsed: { install?: ReportItem[] };
  try {
    parsed = JSON.parse(report) as { install?: ReportItem[] };
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed.install)) return undefined;
  return parsed.install.map((item) => `${item.metadata?.name ?? '?'} ${item.metadata?.version ?? '?'}`);
}

/** The step running `pip <arguments>` in the virtualenv, the PIP_* variables on standard input. */
function pipStep(spec: PipSpec, pipArguments: string, description: string): RunStep {
  const env = envFromStdin({ PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INPUT: '1', ...spec.env });
  return {
    kind: 'run',
    command: `${env.prelude}\n${words(`${spec.virtualenv}/bin/python`, '-m', 'pip')} ${pipArguments}`,
    stdin: env.stdin,
    description,
  };
}

function installSteps(spec: PipSpec): RunStep[] {
  const what = [
    ...(spec.packages ?? []),
    ...(spec.requirements !== undefined ? [`-r ${spec.requirements}`] : []),
  ];
  return [
    pipStep(
      spec,
      `install ${installArguments(spec)}`,
      `pip install ${what.join(' ')} into ${spec.virtualenv}`,
    ),
  ];
}

function plan(spec: PipSpec, result: ProbeResult): Plan {
  const { label, virtualenv } = spec;
  const fields = markedLines(result.stdout, MARKER);
  const status = (name: string) => fields.find(([field]) => field === name);
  if (status('no-python')) {
    return {
      steps: [],
      error: `${label}: python3 is not installed on the host: install it first with apt({ packages: ['python3', 'python3-venv'] })`,
    };
  }
  if (status('no-venv-module')) {
    return {
      steps: [],
      error: `${label}: python3 cannot create virtualenvs: install Debian's python3-venv first with apt({ packages: 'python3-venv' })`,
    };
  }
  if (status('no-virtualenv')) {
    if (spec.state === 'absent') return { steps: [] };
    return {
      steps: [
        {
          kind: 'run',
          command: words('python3', '-m', 'venv', virtualenv),
          description: `python3 -m venv ${virtualenv}`,
        },
        ...installSteps(spec),
      ],
      reason: `virtualenv ${virtualenv} is missing`,
    };
  }
  if (spec.state === 'absent') {
    if (!status('listed'))
      return {
        steps: [],
        error: `${label}: could not list the packages of ${virtualenv} (exit code ${result.exitCode})`,
      };
    const installed = new Set(
      fields.filter(([field]) => field === 'installed').map(([, name]) => normalizeName(name)),
    );
    const present = (spec.packages ?? []).map(requirementName).filter((name) => installed.has(name));
    if (present.length === 0) return { steps: [] };
    return {
      steps: [
        pipStep(
          spec,
          `uninstall --yes ${words(...present)}`,
          `pip uninstall ${present.join(' ')} from ${virtualenv}`,
        ),
      ],
      reason: `removes ${present.join(', ')}`,
    };
  }
  const failed = status('failed');
  if (failed) {
    const words = decodeBase64(failed[1])?.trim();
    return {
      steps: [],
      error: `${label}: pip cannot install the packages: ${words || `exit code ${result.exitCode}`}`,
    };
  }
  const report = status('report');
  const installs = report ? reportedInstalls(decodeBase64(report[1]) ?? '') : undefined;
  if (installs === undefined) {
    return {
      steps: [],
      error: `${label}: pip in ${virtualenv} gave no install report: pip 22.2 or later is needed (${virtualenv}/bin/python -m pip install --upgrade pip)`,
    };
  }
  if (installs.length === 0) return { steps: [] };
  return { steps: installSteps(spec), reason: `installs ${installs.join(', ')}` };
}

export const pip = defineTask({
  type: 'pip',
  options,
  subject: 'virtualenv',
  label: (virtualenv) => `pip ${virtualenv}`,
  describe: (spec) =>
    `pip ${[...(spec.packages ?? []), ...(spec.requirements !== undefined ? [`-r ${spec.requirements}`] : [])].join(' ')} in ${spec.virtualenv}`,
  prepare,
  probe,
  plan,
});
