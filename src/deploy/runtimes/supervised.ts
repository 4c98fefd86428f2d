/**
 * What python and node sites share: each color is a supervisor program running a slot symlink
 * (`slots/<color>` → the release), the release's commands run as the app user in the release.
 */
import { quote, sh } from '../../util/shell.js';
import { asApp, releaseDir } from '../release-files.js';
import type { DeployRuntime } from './index.js';

export const supervisedRuntime: Omit<DeployRuntime, 'dependencies' | 'dependenciesTitle' | 'cleanup'> = {
  colors: true,
  slotState: (_site, paths, color) =>
    sh`if [ -L ${paths.slot(color)} ]; then echo "slot_${color}=$(basename "$(readlink ${paths.slot(color)})")"; fi`,
  processState: (_site, paths, color) =>
    `echo "proc_${color}=$(${sh`supervisorctl status ${paths.program(color)}`} 2>&1 | awk '{print $2}' | head -n 1)"`,
  // Sourced by the shell: every value quoted.
  renderEnv: (values) => {
    const lines = Object.entries(values).map(([k, v]) => `${k}=${quote(v)}`);
    return lines.length ? `${lines.join('\n')}\n` : '';
  },
  inRelease: (_site, paths, release, command) => asApp(paths, releaseDir(paths, release), command),
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
  removeArtifacts: () => null,
};
