/**
 * apt: Debian packages present, absent or at the latest version.
 *
 * The probe reads dpkg's status of each package (`dpkg-query -W`), the age of the apt lists and, for
 * `latest`, the candidate versions (`apt-cache policy`). The plan installs every missing package with
 * ONE apt-get command, noninteractive, keeping existing config files, waiting up to 5 minutes for the
 * dpkg lock (an unattended-upgrades run at boot holds it).
 *
 * The package lists are refreshed (`apt-get update`) only when something must be installed and they are
 * older than `cacheValidTime`, or when they were never downloaded (a fresh image has none, and nothing
 * can be installed without them: this happens even with `updateCache: false`). With `latest`, stale
 * lists are refreshed before comparing, so a `latest` task reports a change at most once per
 * `cacheValidTime` even when nothing newer exists; with fresh lists it changes only when a newer version
 * is available.
 *
 * Options from Ansible's `apt` module: `purge` (with `absent`: `apt-get purge`, and packages removed
 * earlier with only their config files left are purged too), `defaultRelease` (`-t <release>`, also
 * for the candidates of `latest`), `allowDowngrade` (`--allow-downgrades`), and `deb`: a .deb file on the
 * host or a URL the host fetches with curl, installed with `apt-get install <file>` (its dependencies
 * from the lists). A deb is installed when dpkg's version of its package differs from the file's: the
 * probe reads the package and version from the file itself (`dpkg-deb`), a URL fetched to a temporary
 * directory that it removes.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { quote, raw, sh, words } from '../util/shell.js';
import { shownUrl } from '../util/url.js';
import { defineTask, type PrepareContext } from './define.js';
import { curlConfig } from './download.js';
import { flag, oneOf, rule, shown, text } from './options.js';
import { joinReasons, markedLines } from './probe-output.js';

const packageName = z.custom<string>().superRefine(
  rule((name: unknown) =>
    typeof name === 'string' && /^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$/.test(name)
      ? undefined
      : {
          problem: `${shown(name)} is not a Debian package name`,
          hint: 'names are lowercase letters, digits and + - . (optionally :arch)',
        },
  ),
);
const packagesMessage = { error: 'packages must be a package name or a non-empty list of names' };

/** A .deb file: an absolute path on the host (ending in .deb, as apt-get wants it) or a URL. */
const debSource = z.custom<string>().superRefine(
  rule((deb: unknown) =>
    typeof deb === 'string' && (/^https?:\/\/\S+$/.test(deb) || /^\/[^\n]*\.deb$/.test(deb))
      ? undefined
      : {
          problem: `deb must be an absolute path of a .deb file on the host or an http(s) URL, got ${shown(deb)}`,
          hint: "e.g. deb: '/tmp/app_1.0_amd64.deb' or deb: 'https://example.org/app_1.0_amd64.deb'",
        },
  ),
);

const options = z.strictObject({
  /** One package name or a list of them. Give either `packages` or `deb`. */
  packages: z
    .union([z.string(), z.array(z.unknown())], packagesMessage)
    .transform((packages) => (typeof packages === 'string' ? [packages] : packages))
    .pipe(z.array(packageName).min(1, packagesMessage))
    .optional(),
  /** Ansible's `deb`: a .deb file on the host or a URL the host fetches, installed with its dependencies. */
  deb: debSource.optional(),
  /** Default `present`. `absent` removes the packages (config files stay: `apt-get remove`). */
  state: oneOf('state', ['present', 'absent', 'latest']).default('present'),
  /** Ansible's `purge`: with `absent`, remove the config files too (`apt-get purge`). */
  purge: flag('purge').default(false),
  /** Ansible's `default_release`: install from this release (`-t bookworm-backports`). */
  defaultRelease: text('defaultRelease', /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/, 'a release name').optional(),
  /** Ansible's `allow_downgrade`: an install may replace a newer version (`--allow-downgrades`). */
  allowDowngrade: flag('allowDowngrade').default(false),
  /** Refresh the package lists when they are older than `cacheValidTime` (default true). */
  updateCache: z.boolean().default(true),
  /** Age in seconds after which the lists count as stale (default 3600). */
  cacheValidTime: z
    .number({ error: (issue) => `cacheValidTime must be a number of seconds, got ${String(issue.input)}` })
    .min(0, { error: (issue) => `cacheValidTime must be a number of seconds, got ${String(issue.input)}` })
    .default(3600),
});

export type AptOptions = z.input<typeof options>;
/** The options, with `packages` empty when a `deb` is given. */
type Apt = z.output<typeof options> & { packages: string[] };

function prepare(opts: z.output<typeof options>, { fail }: PrepareContext): Apt {
  if ((opts.packages === undefined) === (opts.deb === undefined)) {
    fail('packages', 'give exactly one of packages or deb');
  }
  if (opts.deb !== undefined && opts.state !== 'present') {
    fail(
      'state',
      `a deb is installed with state present, got ${shown(opts.state)}`,
      'remove its package with packages and state absent',
    );
  }
  if (opts.purge && opts.state !== 'absent') {
    fail('purge', `purge goes with state absent, got state ${shown(opts.state)}`);
  }
  return { ...opts, packages: opts.packages ?? [] };
}

const MARKER = 'verdandi-apt';

/** Files whose modification time tells when the lists were last downloaded; the newest one counts. */
const CACHE_STAMPS = [
  '/var/lib/apt/periodic/update-success-stamp',
  '/var/lib/apt/lists/partial',
  '/var/lib/apt/lists',
];

/** apt-get options every call uses: no prompts, keep changed config files, wait for the dpkg lock. */
export const APT_GET = words(
  raw('DEBIAN_FRONTEND=noninteractive'),
  'apt-get',
  '-q',
  '-y',
  '-o',
  'DPkg::Lock::Timeout=300',
  '-o',
  'Dpkg::Options::=--force-confdef',
  '-o',
  'Dpkg::Options::=--force-confold',
);

/**
 * `apt-get update`, then mark the time: when nothing changed upstream apt may touch no file in the lists
 * folder, and the next run would think the lists are still stale.
 */
export const APT_UPDATE: RunStep = {
  kind: 'run',
  command: `${APT_GET} update && touch -c /var/lib/apt/lists/partial`,
  description: 'apt-get update',
};

/** Finishes the configuration of packages left unpacked or half-configured by an interrupted dpkg. */
const DPKG_CONFIGURE: RunStep = {
  kind: 'run',
  command: 'DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a',
  description: 'dpkg --configure -a',
};

/**
 * Shell printing `verdandi-apt deb <package> <version>` of the .deb, and dpkg's state of its package
 * (or `verdandi-apt deb-missing` / `deb-unfetched <curl's message>`). A URL is fetched into a temporary
 * directory removed at once.
 */
function debProbe(deb: string): string {
  const read = [
    `vd_pkg=$(dpkg-deb -f "$vd_deb" Package 2>/dev/null) && vd_ver=$(dpkg-deb -f "$vd_deb" Version 2>/dev/null) && echo "${MARKER} deb $vd_pkg $vd_ver" || echo "${MARKER} deb-unreadable"`,
    `[ -n "$vd_pkg" ] && dpkg-query -W -f="${MARKER} pkg \\\${Package} \\\${Status} \\\${Version}\\n" "$vd_pkg" 2>/dev/null`,
  ];
  if (!isUrl(deb)) {
    return [
      `vd_deb=${quote(deb)}`,
      'if [ -f "$vd_deb" ]; then',
      ...read,
      `else echo "${MARKER} deb-missing"; fi`,
    ].join('\n');
  }
  return [
    `if ! command -v curl >/dev/null 2>&1; then echo "${MARKER} deb-nocurl"; else`,
    'vd_debd=$(mktemp -d) && vd_deb="$vd_debd/package.deb"',
    // The URL is in a here-document of the probe (which travels on standard input), never an argument.
    `if curl -fsSL -o "$vd_deb" -K - 2>"$vd_debd/error" <<'VD_URL'`,
    `${curlConfig(deb)}VD_URL`,
    'then',
    ...read,
    `else echo "${MARKER} deb-unfetched $(head -n 1 "$vd_debd/error")"; fi`,
    'rm -rf "$vd_debd"',
    'fi',
  ].join('\n');
}

function isUrl(deb: string): boolean {
  return /^https?:\/\//.test(deb);
}

function probe({ packages, state, deb, defaultRelease }: Apt): string {
  return [
    // Every probe runs on every no-change run: as few processes as the shell allows (one date, one stat
    // for the stamps that exist, the lists counted by a glob).
    'export LC_ALL=C',
    `date +${quote(`${MARKER} now %s`)}`,
    `stat -c ${quote(`${MARKER} stamp %Y`)} -- ${CACHE_STAMPS.map((p) => quote(p)).join(' ')} 2>/dev/null`,
    // Downloaded lists are files named like <mirror>_debian_dists_bookworm_main_binary-amd64_Packages.
    'set -- /var/lib/apt/lists/*_Packages*',
    `if [ -e "$1" ]; then echo "${MARKER} indexes $#"; else echo '${MARKER} indexes 0'; fi`,
    // Packages dpkg never heard of are simply missing from the output (the error goes to /dev/null).
    packages.length > 0 &&
      sh`dpkg-query -W -f=${`${MARKER} pkg \${Package} \${Status} \${Version}\\n`} ${packages} 2>/dev/null`,
    deb !== undefined && debProbe(deb),
    state === 'latest' &&
      `apt-cache ${words(...releaseArgs(defaultRelease), 'policy', ...packages)} 2>/dev/null | sed -n ${quote(
        `s/^\\([^ ].*\\):$/${MARKER} policy \\1/p; s/^  Candidate: /${MARKER} candidate /p`,
      )}`,
    'true',
  ]
    .filter((line): line is string => typeof line === 'string')
    .join('\n');
}

function plan(spec: Apt, result: ProbeResult): Plan {
  const { packages, state, updateCache, cacheValidTime, purge } = spec;
  const seen = parseAptProbe(result.stdout);
  if (seen.now === undefined) {
    return {
      steps: [],
      error: `the apt probe printed nothing usable (exit code ${result.exitCode}): is this Debian?`,
    };
  }
  if (spec.deb !== undefined) return debPlan(spec, spec.deb, seen);
  const status = new Map(packages.map((p) => [p, seen.packages.get(baseName(p)) ?? 'missing'] as const));
  const named = (wanted: PackageState[]) => packages.filter((p) => wanted.includes(status.get(p)!));

  if (state === 'absent') {
    const present = named(['installed', 'unconfigured', 'half-installed']);
    // Purged too: what an earlier `remove` left (config files only).
    const leftovers = purge ? packages.filter((p) => seen.configFiles.has(baseName(p))) : [];
    const removed = [...present, ...leftovers];
    if (removed.length === 0) return { steps: [] };
    const verb = purge ? 'purge' : 'remove';
    return {
      steps: [
        {
          kind: 'run',
          command: `${APT_GET} ${verb} ${words(...removed)}`,
          description: `apt-get ${verb} ${removed.join(' ')}`,
        },
      ],
      reason: joinReasons([
        ...(present.length > 0 ? [`installed: ${present.join(', ')}`] : []),
        ...(leftovers.length > 0 ? [`config files left: ${leftovers.join(', ')}`] : []),
      ]),
    };
  }

  const cacheAge = seen.lastUpdate === undefined ? Number.POSITIVE_INFINITY : seen.now - seen.lastUpdate;
  const cacheStale = updateCache && cacheAge > cacheValidTime;
  const neverUpdated = seen.indexCount === 0;
  const cacheReason = neverUpdated
    ? 'apt lists were never downloaded'
    : `apt lists are ${Number.isFinite(cacheAge) ? `${cacheAge}s` : 'of unknown age'} old (refreshed after ${cacheValidTime}s)`;

  const missing = named(['missing']);
  const unconfigured = named(['unconfigured']);
  const halfInstalled = named(['half-installed']);
  const reasons: string[] = [];
  if (missing.length > 0) reasons.push(`not installed: ${missing.join(', ')}`);
  if (unconfigured.length > 0) reasons.push(`not fully configured: ${unconfigured.join(', ')}`);
  if (halfInstalled.length > 0) reasons.push(`half-installed: ${halfInstalled.join(', ')}`);
  let toInstall = named(['missing', 'half-installed']);

  if (state === 'latest') {
    if (cacheStale || neverUpdated) {
      // The candidates printed by apt-cache come from the stale lists: refresh, then let apt-get pick
      // the newest version of every package (it leaves those already at the newest one alone).
      return {
        steps: [
          APT_UPDATE,
          ...(unconfigured.length > 0 ? [DPKG_CONFIGURE] : []),
          installStep(spec, packages, halfInstalled.length > 0),
        ],
        reason: [...reasons, `${cacheReason}: refresh and install the latest versions`].join('; '),
      };
    }
    const outdated = named(['installed']).filter((p) => {
      const installed = seen.versions.get(baseName(p));
      const candidate = seen.candidates.get(p) ?? seen.candidates.get(baseName(p));
      return (
        installed !== undefined &&
        candidate !== undefined &&
        candidate !== '(none)' &&
        compareDebianVersions(installed, candidate) < 0
      );
    });
    if (outdated.length > 0) {
      reasons.push(
        `newer version available: ${outdated
          .map(
            (p) =>
              `${p} ${seen.versions.get(baseName(p))} → ${seen.candidates.get(p) ?? seen.candidates.get(baseName(p))}`,
          )
          .join(', ')}`,
      );
    }
    toInstall = packages.filter((p) => toInstall.includes(p) || outdated.includes(p));
  }

  if (toInstall.length === 0 && unconfigured.length === 0) return { steps: [] };
  const steps: RunStep[] = [];
  // Only worth refreshing when something is downloaded.
  if (toInstall.length > 0 && (neverUpdated || cacheStale)) {
    steps.push(APT_UPDATE);
    reasons.push(cacheReason);
  }
  if (unconfigured.length > 0) steps.push(DPKG_CONFIGURE);
  if (toInstall.length > 0) steps.push(installStep(spec, toInstall, halfInstalled.length > 0));
  return { steps, reason: reasons.join('; ') };
}

/** A .deb: installed when dpkg's version of its package is another one (or none). */
function debPlan(spec: Apt, deb: string, seen: AptProbe): Plan {
  const label = `apt ${shownUrl(deb)}`;
  const { debFile } = seen;
  if (debFile === undefined || 'problem' in debFile) {
    const problem = debFile?.problem ?? 'the probe printed nothing about the .deb';
    return { steps: [], error: `${label}: ${problem}` };
  }
  const state = seen.packages.get(debFile.name) ?? 'missing';
  const version = seen.versions.get(debFile.name);
  if (state === 'installed' && version === debFile.version) return { steps: [] };
  const reason =
    state === 'missing'
      ? `${debFile.name} is not installed (the .deb holds ${debFile.version})`
      : state === 'installed'
        ? `${debFile.name} ${version} is installed, the .deb holds ${debFile.version}`
        : `${debFile.name} is ${state === 'unconfigured' ? 'not fully configured' : 'half-installed'}`;
  const steps: RunStep[] = [];
  // The .deb's dependencies come from the lists: a fresh image has none.
  if (seen.indexCount === 0) steps.push(APT_UPDATE);
  const flags = installFlags(spec, state !== 'missing' && state !== 'installed');
  const install = `${APT_GET} install${flags.length > 0 ? ` ${words(...flags)}` : ''}`;
  if (isUrl(deb)) {
    steps.push({
      kind: 'run',
      command: [
        'set -e',
        'vd_debd=$(mktemp -d)',
        `trap 'rm -rf "$vd_debd"' EXIT`,
        // The URL comes on stdin (`-K -`): it is on no command line.
        `if ! out=$(curl -fsSL -o "$vd_debd/package.deb" -K - 2>&1); then printf '%s\\n' ${quote(`could not fetch ${shownUrl(deb)}:`)}" $out" >&2; exit 1; fi`,
        `${install} "$vd_debd/package.deb"`,
      ].join('\n'),
      stdin: curlConfig(deb),
      description: `apt-get install ${shownUrl(deb)}`,
    });
  } else {
    steps.push({ kind: 'run', command: `${install} ${quote(deb)}`, description: `apt-get install ${deb}` });
  }
  return { steps, reason };
}

/** `-t <release>` of `defaultRelease`. */
function releaseArgs(defaultRelease: string | undefined): string[] {
  return defaultRelease === undefined ? [] : ['-t', defaultRelease];
}

/** The install options the task asks for. */
function installFlags(spec: Apt, reinstall: boolean): string[] {
  return [
    ...releaseArgs(spec.defaultRelease),
    ...(spec.allowDowngrade ? ['--allow-downgrades'] : []),
    ...(reinstall ? ['--reinstall'] : []),
  ];
}

export const apt = defineTask({
  type: 'apt',
  becomeUser: { refuse: 'only root may install and remove packages' },
  options,
  subject: 'packages',
  label: (packages) => (packages === undefined ? 'apt' : `apt ${packages.join(', ')}`),
  describe: (spec) =>
    spec.deb !== undefined ? `apt ${shownUrl(spec.deb)}` : `apt ${spec.packages.join(', ')}`,
  prepare,
  probe,
  plan,
});

function installStep(spec: Apt, packages: string[], reinstall: boolean): RunStep {
  return {
    kind: 'run',
    command: `${APT_GET} install ${words(...installFlags(spec, reinstall), ...packages)}`,
    description: `apt-get install ${packages.join(' ')}`,
  };
}

/** `nginx:amd64` → `nginx`: dpkg-query's `${Package}` has no architecture. */
function baseName(pkg: string): string {
  return pkg.split(':')[0];
}

/**
 * What dpkg says of a package:
 * - installed: usable (`installed`, or `triggers-pending`/`triggers-awaited`, which dpkg finishes itself);
 * - missing: never installed, or removed with only its config files left;
 * - unconfigured: unpacked or half-configured (an interrupted install): `dpkg --configure -a` finishes it;
 * - half-installed: files partly unpacked, or flagged reinstall-required: must be reinstalled.
 */
export type PackageState = 'installed' | 'missing' | 'unconfigured' | 'half-installed';

export interface AptProbe {
  now?: number;
  /** Newest modification time of the cache stamps, when any exists. */
  lastUpdate?: number;
  /** How many package index files the lists folder holds (0: `apt-get update` never ran). */
  indexCount?: number;
  packages: Map<string, PackageState>;
  versions: Map<string, string>;
  candidates: Map<string, string>;
  /** Packages removed with their config files left (dpkg's `config-files`): what `purge` removes. */
  configFiles: Set<string>;
  /** The package and version a `deb` holds, or why they could not be read. */
  debFile?: { name: string; version: string } | { problem: string };
}

const STATE_RANK: Record<PackageState, number> = {
  missing: 0,
  'half-installed': 1,
  unconfigured: 2,
  installed: 3,
};

export function parseAptProbe(stdout: string): AptProbe {
  const result: AptProbe = {
    packages: new Map(),
    versions: new Map(),
    candidates: new Map(),
    configFiles: new Set(),
  };
  let policyName: string | undefined;
  for (const fields of markedLines(stdout, MARKER)) {
    const [kind, ...rest] = fields;
    if (kind === 'now' && /^\d+$/.test(rest[0] ?? '')) result.now = Number(rest[0]);
    else if (kind === 'stamp' && /^\d+$/.test(rest[0] ?? '')) {
      result.lastUpdate = Math.max(result.lastUpdate ?? 0, Number(rest[0]));
    } else if (kind === 'indexes' && /^\d+$/.test(rest[0] ?? '')) result.indexCount = Number(rest[0]);
    else if (kind === 'pkg' && rest.length >= 4) {
      // pkg <name> <want> <error flag> <status> [<version>]
      const [name, , errorFlag, dpkgStatus, version] = rest;
      const state = packageState(errorFlag, dpkgStatus);
      if (dpkgStatus === 'config-files') result.configFiles.add(name);
      // Several lines for one name: one per installed architecture. The most installed one counts.
      const known = result.packages.get(name);
      if (known === undefined || STATE_RANK[state] > STATE_RANK[known]) {
        result.packages.set(name, state);
        if (version) result.versions.set(name, version);
      }
    } else if (kind === 'deb' && rest.length === 2) result.debFile = { name: rest[0], version: rest[1] };
    else if (kind === 'deb-missing') result.debFile = { problem: 'no such file on the host' };
    else if (kind === 'deb-unreadable') result.debFile = { problem: 'not a .deb file dpkg-deb can read' };
    else if (kind === 'deb-nocurl') {
      result.debFile = {
        problem: "curl is not installed on the host: install it first (apt({ packages: 'curl' }))",
      };
    } else if (kind === 'deb-unfetched')
      result.debFile = { problem: `could not fetch it: ${rest.join(' ')}` };
    else if (kind === 'policy' && rest[0]) policyName = rest[0];
    else if (kind === 'candidate' && policyName !== undefined && rest[0]) {
      result.candidates.set(policyName, rest[0]);
      policyName = undefined;
    }
  }
  return result;
}

function packageState(errorFlag: string, dpkgStatus: string): PackageState {
  if (errorFlag === 'reinstreq') return 'half-installed';
  switch (dpkgStatus) {
    case 'installed':
    case 'triggers-pending':
    case 'triggers-awaited':
      return 'installed';
    case 'unpacked':
    case 'half-configured':
      return 'unconfigured';
    case 'half-installed':
      return 'half-installed';
    default:
      // not-installed, config-files
      return 'missing';
  }
}

/**
 * Debian version comparison (deb-version(7)), as `dpkg --compare-versions` does it:
 * negative when a < b, 0 when equal, positive when a > b.
 */
export function compareDebianVersions(a: string, b: string): number {
  const pa = splitVersion(a);
  const pb = splitVersion(b);
  if (pa.epoch !== pb.epoch) return pa.epoch - pb.epoch;
  return compareFragment(pa.upstream, pb.upstream) || compareFragment(pa.revision, pb.revision);
}

function splitVersion(version: string): { epoch: number; upstream: string; revision: string } {
  let rest = version.trim();
  let epoch = 0;
  const colon = rest.indexOf(':');
  if (colon >= 0 && /^\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  return dash >= 0
    ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) }
    : { epoch, upstream: rest, revision: '' };
}

/** Sort weight of a non-digit character: `~` before the end of the string, letters before other signs. */
function charOrder(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';

/** dpkg's verrevcmp: alternating runs of non-digits (compared by charOrder) and digits (numerically). */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const diff = charOrder(isDigit(a[i]) ? undefined : a[i]) - charOrder(isDigit(b[j]) ? undefined : b[j]);
      if (diff !== 0) return diff;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    let firstDiff = 0;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}
