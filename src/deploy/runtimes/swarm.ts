/**
 * Swarm sites: the release's image, deployed as a stack that does its own rolling update
 * (start-first, health-gated in the compose file). No colors: nothing to start, pause or stop beside it.
 */

import { dockerImage } from './docker.js';
import type { DeployRuntime } from './index.js';

const noColors = (what: string) => () => {
  throw new Error(`${what}: swarm sites have no colors`);
};

export const swarm: DeployRuntime = {
  ...dockerImage,
  colors: false,
  slotState: () => '',
  processState: () => null,
  start: noColors('start'),
  pause: noColors('pause'),
  resume: noColors('resume'),
  stop: noColors('stop'),
};
