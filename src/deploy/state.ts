/**
 * What the deploy knows of a site on its host before it plans: read by one read-only script (the
 * runtime adds its lines: the release each color runs), parsed into a `SiteState`.
 */
import { raw, sh } from '../util/shell.js';
import { DEPLOYED_MARK, provisionedTest, RELEASE_RECORD } from './commands.js';
import { runtimeOf } from './runtimes/index.js';
import type { Site } from './site.js';
import { COLORS, type Color, type SitePaths } from './site-base.js';

/**
 * Read-only: what the deploy needs to know of a site on the host, as `key=value` lines
 * (`release=` once per release directory).
 */
export function stateScript(site: Site, paths: SitePaths): string {
  const lines = [
    `if ${provisionedTest(paths)}; then echo provisioned=yes; else echo provisioned=no; fi`,
    sh`if [ -L ${paths.current} ]; then echo "current=$(basename "$(readlink ${paths.current})")"; fi`,
    sh`if [ -f ${paths.upstream} ]; then echo "upstream_port=$(sed -n 's/.*server 127\\.0\\.0\\.1:\\([0-9]*\\).*/\\1/p' ${paths.upstream} | head -n 1)"; fi`,
    sh`if [ -e ${paths.maintenanceFlag} ]; then echo maintenance=on; else echo maintenance=off; fi`,
    // A maintenance switched on by hand: since when and by whom (maintenance.ts writes them).
    sh`sed -n 's/^\\(since\\|by\\|by-hand\\)=/maintenance_&/p' ${paths.maintenanceFlag} 2>/dev/null`,
    sh`if [ -d ${paths.releases} ]; then for r in ${paths.releases}/*; do [ -d "$r" ] && echo "release=$(basename "$r")"; [ -e "$r/${raw(DEPLOYED_MARK)}" ] && echo "deployed=$(basename "$r")"; done; fi`,
    sh`if [ -f ${`${paths.current}/${RELEASE_RECORD}`} ]; then printf 'record=%s\n' "$(tr -d '\n' < ${`${paths.current}/${RELEASE_RECORD}`})"; fi`,
  ];
  lines.push(...runtimeOf(site).stateLines(site, paths));
  // Only reads: its exit code means nothing (a missing container makes the last test fail).
  lines.push('exit 0');
  return lines.join('\n');
}

export interface SiteState {
  provisioned: boolean;
  current?: string;
  /** The color nginx sends traffic to, from the upstream file. */
  live?: Color;
  maintenance: boolean;
  /** Switched on by hand (`verdandi maintenance on`): when (the host's clock, UTC) and by whom. */
  maintenanceByHand?: { since: string; by: string };
  releases: string[];
  /** Releases that once served (rollback targets). */
  deployed: string[];
  record?: string;
  slots: Partial<Record<Color, string>>;
}

export function parseState(paths: SitePaths, stdout: string): SiteState {
  const state: SiteState = { provisioned: false, maintenance: false, releases: [], deployed: [], slots: {} };
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).trim();
    if (key === 'provisioned') state.provisioned = value === 'yes';
    else if (key === 'current' && value) state.current = value;
    else if (key === 'upstream_port') {
      const port = Number(value);
      state.live = COLORS.find((c) => paths.port(c) === port);
    } else if (key === 'maintenance') state.maintenance = value === 'on';
    else if (key === 'maintenance_by-hand' && value === 'yes')
      state.maintenanceByHand ??= { since: '?', by: '?' };
    else if (key === 'maintenance_since' || key === 'maintenance_by') {
      state.maintenanceByHand ??= { since: '?', by: '?' };
      state.maintenanceByHand[key === 'maintenance_since' ? 'since' : 'by'] = value;
    } else if (key === 'release' && value) state.releases.push(value);
    else if (key === 'deployed' && value) state.deployed.push(value);
    else if (key === 'record' && value) state.record = value;
    else if (key === 'slot_blue' && value) state.slots.blue = value;
    else if (key === 'slot_green' && value) state.slots.green = value;
  }
  state.releases.sort();
  return state;
}
