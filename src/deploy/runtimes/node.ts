/** Node sites: supervisor programs; the dependencies are the site's install command (`npm ci`). */
import { z } from 'zod';
import { asApp, releaseDir } from '../release-files.js';
import type { DeployRuntime, RuntimeSite } from './runtime.js';
import { supervisedConsole, supervisedRuntime, supervisorNeeds } from './supervised.js';

const schema = z.object({
  type: z.literal('node'),
  /** Install command run in the release. */
  install: z.string().default('npm ci'),
});

export type NodeSite = RuntimeSite<z.infer<typeof schema>>;

/**
 * The release's own tools (`node_modules/.bin`) first on `PATH`, as npm scripts have them: for the web
 * and worker commands (`next start`), the checks, build and migrations (`jest`, `knex migrate:latest`)
 * and the console alike.
 */
export const NODE_PATH = 'PATH="$PWD/node_modules/.bin:$PATH"; export PATH; ';

export const node: DeployRuntime<NodeSite, typeof schema> = {
  ...supervisedRuntime,
  schema,
  buildSteps: ({ site, paths, release }) => [
    {
      phase: 'build',
      title: 'dependencies',
      command: asApp(paths, releaseDir(paths, release), site.runtime.install),
    },
  ],
  cleanupSteps: () => [],
  inRelease: (_site, paths, release, command) =>
    asApp(paths, releaseDir(paths, release), `${NODE_PATH}${command}`),
  consoleScript: (i) => supervisedConsole(i, NODE_PATH),
  roleNeeds: (site, paths) => supervisorNeeds(site, paths, ['nodejs', 'npm'], NODE_PATH),
};
