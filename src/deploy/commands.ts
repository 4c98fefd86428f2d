/**
 * The commands a deploy sends to a host whatever the site's runtime, as pure functions returning a
 * shell script (like Kamal's command classes); what differs between runtimes is in runtimes/. Nothing
 * here talks to a host: `deploy.ts` runs these in order and decides what to do when one fails; unit
 * tests check them without a host.
 *
 * Conventions on the host (see roles/sites/README.md):
 *   <root>/<site>/repo.git        bare repository (owned by the app user) the releases are cut from
 *   <root>/<site>/releases/<r>    one directory per release, never changed once live
 *   <root>/<site>/current         symlink → releases/<r>, the live release
 *   <root>/<site>/slots/<color>   symlink → the release a color (blue: port, green: port+1) runs
 *   <root>/<site>/releases/<r>/.env  the release's environment (0600, app user)
 *   /etc/nginx/verdandi/<site>.upstream   `server 127.0.0.1:<port of the live color>;`
 */
import type { DeployLogEntry } from '../util/run-events.js';
import { quote, sh, words } from '../util/shell.js';
import type { ReleaseRecord } from './release.js';
import { releaseDir, releaseEnvFile } from './release-files.js';
import type { Color, SiteBase, SitePaths } from './site-base.js';

/** A git command in the host's bare repository, as the app user (git refuses repos of other owners). */
export function hostGit(paths: SitePaths, ...args: string[]): string {
  return words('runuser', '-u', paths.user, '--', 'git', '-C', paths.repo, ...args);
}

// ---------------------------------------------------------------------------------------------------
// Step 2: code

export function hostHasCommit(paths: SitePaths, sha: string): string {
  return hostGit(paths, 'cat-file', '-e', `${sha}^{commit}`);
}

/** The commits the host's repository already has (tips of its refs), to send only what is missing. */
export function hostRefTips(paths: SitePaths): string {
  return hostGit(paths, 'for-each-ref', '--format=%(objectname)');
}

/**
 * Receives a git bundle of `bytes` bytes (raw, streamed on stdin) into the bare repository and keeps the
 * commit under a ref. A bundle cut short (a lost connection) is refused before git reads it.
 */
export function receiveBundle(paths: SitePaths, sha: string, bytes: number): string {
  const bundle = `${paths.repo}/incoming.bundle`;
  return [
    words('runuser', '-u', paths.user, '--', 'sh', '-c', 'cat > "$1"', 'sh', bundle),
    sh`got=$(stat -c %s ${bundle} 2>/dev/null || echo 0)`,
    `if [ "$got" != ${bytes} ]; then echo "the bundle arrived incomplete ($got of ${bytes} bytes)" >&2; ${sh`rm -f ${bundle}`}; exit 1; fi`,
    hostGit(paths, 'fetch', '--quiet', bundle, `+refs/verdandi/deploy:refs/deploys/${sha}`),
    'rc=$?',
    sh`rm -f ${bundle}`,
    'exit $rc',
  ].join('\n');
}

/** `fetch: pull`: the host fetches the repository itself. */
export function pullFetch(site: SiteBase, paths: SitePaths): string {
  return hostGit(
    paths,
    'fetch',
    '--quiet',
    '--prune',
    '--force',
    site.repo,
    '+refs/heads/*:refs/heads/*',
    '+refs/tags/*:refs/tags/*',
  );
}

/** Prints the full sha of a branch, tag or sha in the host's repository. */
export function resolveOnHost(paths: SitePaths, ref: string): string {
  return hostGit(paths, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`);
}

/** The site exists on the host (the sites role made its releases directory and bare repository). */
export function provisionedTest(paths: SitePaths): string {
  return sh`[ -d ${paths.releases} ] && [ -d ${paths.repo} ]`;
}

/** What each release records of itself (checkout writes it, JSON on one line), read back by state.ts. */
export const RELEASE_RECORD = '.verdandi-release.json';

/**
 * Succeeds when the site is provisioned and its live release (`current`) runs the commit held by the
 * shell variable `commitVar`: the release's record names it (`"commit":"<sha>"`, as checkout wrote it).
 */
export function liveRunsCommit(paths: SitePaths, commitVar: string): string {
  const record = `${paths.current}/${RELEASE_RECORD}`;
  return `${provisionedTest(paths)} && ${sh`[ -L ${paths.current} ]`} && grep -qF "\\"commit\\":\\"$${commitVar}\\"" ${quote(record)}`;
}

/** Exit code of wantedCommit when the host knows the commit and the live release runs another one. */
export const COMMIT_NOT_LIVE = 3;

/**
 * Prints the commit to deploy as the host's repository knows it: `pushed`, the one the controller
 * resolved (hostHasCommit), or `ref` resolved on the host (resolveOnHost). Exits 0 when the live
 * release runs it (liveRunsCommit), COMMIT_NOT_LIVE when it runs another or none, 1 when the host lacks
 * the commit or cannot resolve the ref.
 */
export function wantedCommit(paths: SitePaths, ref: string, pushed?: string): string {
  return [
    pushed
      ? `${hostHasCommit(paths, pushed)} || exit 1\nvd_c=${quote(pushed)}`
      : `vd_c=$(${resolveOnHost(paths, ref)}) || exit 1`,
    'echo "$vd_c"',
    `${liveRunsCommit(paths, 'vd_c')} || exit ${COMMIT_NOT_LIVE}`,
  ].join('\n');
}

/** Cuts the release out of the bare repository (no .git inside) and records what it is. */
export function checkout(paths: SitePaths, record: ReleaseRecord): string {
  const dir = releaseDir(paths, record.release);
  const script =
    'set -e; mkdir "$1"; git -C "$2" archive --format=tar "$3" | tar -x -C "$1"; ' +
    `printf "%s\\n" "$3" > "$1/REVISION"; printf "%s\\n" "$4" > "$1/${RELEASE_RECORD}"`;
  return words(
    'runuser',
    '-u',
    paths.user,
    '--',
    'sh',
    '-c',
    script,
    'sh',
    dir,
    paths.repo,
    record.commit,
    JSON.stringify(record),
  );
}

/** The release's environment file, content on stdin (never on a command line): 0600, app user. */
export function writeEnvFile(paths: SitePaths, release: string): string {
  const file = releaseEnvFile(paths, release);
  const tmp = `${file}.tmp`;
  return [
    'umask 077',
    sh`cat > ${tmp}`,
    sh`chown ${`${paths.user}:`} ${tmp}`,
    sh`chmod 0600 ${tmp}`,
    sh`mv -f ${tmp} ${file}`,
  ].join(' && ');
}

// ---------------------------------------------------------------------------------------------------
// Step 4: maintenance

/**
 * The line of a maintenance flag switched on by hand (`verdandi maintenance on`, maintenance.ts); a
 * deploy's own flag is empty. A deploy never ends a maintenance switched on by hand.
 */
export const MAINTENANCE_BY_HAND = 'by-hand=yes';

/** nginx tests the flag on each request: no reload needed. `touch` keeps a flag set by hand as it is. */
export function maintenanceOn(paths: SitePaths): string {
  return sh`mkdir -p "$(dirname ${paths.maintenanceFlag})" && touch ${paths.maintenanceFlag}`;
}

/** Ends the deploy's maintenance; one switched on by hand stays (it is said). */
export function maintenanceOff(paths: SitePaths): string {
  return [
    sh`if grep -qsx ${MAINTENANCE_BY_HAND} ${paths.maintenanceFlag}; then`,
    '  echo "maintenance stays on: it was switched on by hand (verdandi maintenance off ends it)"',
    'else',
    sh`  rm -f ${paths.maintenanceFlag}`,
    'fi',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Steps 5-6: health, nginx, current

/** The Host header of health checks: the first real server name. */
export function healthHost(site: SiteBase): string {
  return (
    site.nginx.serverNames.find((n) => n !== '_' && !n.startsWith('~') && !n.includes('*')) ?? 'localhost'
  );
}

/**
 * Waits (bounded by the site's health timeout) until `http://127.0.0.1:<port><path>` answers the
 * expected status. Prints the last status seen on failure.
 */
export function healthCheck(site: SiteBase, port: number): string {
  const h = site.health;
  const url = `http://127.0.0.1:${port}${h.path}`;
  return [
    `end=$(( $(date +%s) + ${h.timeout} )); code=none`,
    'while :; do',
    `  code=$(${words('curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', '-H', `Host: ${healthHost(site)}`, url)})`,
    `  if [ "$code" = ${quote(String(h.status))} ]; then echo "health check ${url}: $code"; exit 0; fi`,
    '  if [ "$(date +%s)" -ge "$end" ]; then break; fi',
    '  sleep 0.5',
    'done',
    `echo "health check ${url} answered $code (expected ${h.status}) for ${h.timeout} s" >&2`,
    'exit 1',
  ].join('\n');
}

/** Content of the upstream include that sends the site's traffic to `color`. */
export function upstreamContent(paths: SitePaths, color: Color): string {
  return `# Written by verdandi deploy: the live color of this site.\nserver 127.0.0.1:${paths.port(color)}; # ${color}\n`;
}

/** PIDs of nginx worker processes, read from /proc (procps may not be installed). */
const NGINX_WORKERS = [
  'vd_workers() {',
  '  for d in /proc/[0-9]*; do',
  `    case "$(tr '\\0' ' ' < "$d/cmdline" 2>/dev/null)" in`,
  `      'nginx: worker process'*) echo "\${d#/proc/}" ;;`,
  '    esac',
  '  done',
  '}',
].join('\n');

/**
 * Points nginx at `color`: the upstream file is replaced atomically, checked with `nginx -t` (put back
 * when the test fails), nginx reloads, and the command returns once the old nginx workers have finished
 * their requests (at most `drainSeconds`), so the old color can then be stopped without cutting any.
 */
export function switchUpstream(paths: SitePaths, color: Color, drainSeconds = 10): string {
  const up = paths.upstream;
  return [
    NGINX_WORKERS,
    'old=$(vd_workers)',
    sh`mkdir -p "$(dirname ${up})"`,
    sh`if [ -f ${up} ]; then cp -p ${up} ${`${up}.prev`}; fi`,
    sh`printf '%s' ${upstreamContent(paths, color)} > ${`${up}.new`}`,
    sh`mv -f ${`${up}.new`} ${up}`,
    'if ! out=$(nginx -t 2>&1); then',
    sh`  if [ -f ${`${up}.prev`} ]; then mv -f ${`${up}.prev`} ${up}; fi`,
    '  echo "$out" >&2; exit 1',
    'fi',
    'systemctl reload nginx || nginx -s reload || exit 1',
    `i=0; while [ "$i" -lt ${drainSeconds * 10} ]; do`,
    '  alive=; for p in $old; do if [ -d "/proc/$p" ]; then alive=1; fi; done',
    '  [ -z "$alive" ] && break',
    '  sleep 0.1; i=$((i + 1))',
    'done',
    'exit 0',
  ].join('\n');
}

/** `current` → the release, atomically (a rename never leaves a moment without the link). */
export function switchCurrent(paths: SitePaths, release: string): string {
  const tmp = `${paths.current}.tmp`;
  return [
    sh`ln -sfn ${`releases/${release}`} ${tmp}`,
    sh`mv -T ${tmp} ${paths.current}`,
    // Marks the release as one that served: rollback only goes back to such releases.
    sh`touch ${`${releaseDir(paths, release)}/${DEPLOYED_MARK}`}`,
  ].join(' && ');
}

/** File in a release that went live (a release left by an interrupted deploy has none). */
export const DEPLOYED_MARK = '.verdandi-deployed';

// ---------------------------------------------------------------------------------------------------
// Step 7: bookkeeping

/** Appends one JSON line to the site's deploy log (read back by records.ts). */
export function recordDeploy(paths: SitePaths, entry: DeployLogEntry): string {
  return sh`printf '%s\n' ${JSON.stringify(entry)} >> ${paths.deployLog}`;
}
