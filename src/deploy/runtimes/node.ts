/** Node sites: supervisor programs; the dependencies are the site's install command (`npm ci`). */
import { asApp, releaseDir } from '../release-files.js';
import type { DeployRuntime } from './index.js';
import { supervisedRuntime } from './supervised.js';

export const node: DeployRuntime = {
  ...supervisedRuntime,
  dependenciesTitle: 'dependencies',
  dependencies: (site, paths, release) => {
    if (site.runtime.type !== 'node') throw new Error('not a node site');
    return asApp(paths, releaseDir(paths, release), site.runtime.install);
  },
  cleanup: () => [],
};
