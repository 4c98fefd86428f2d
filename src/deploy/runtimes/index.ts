/**
 * The registry of deploy runtimes. Adding one is a file in this folder (its `DeployRuntime`, see
 * runtime.ts) plus its line in RUNTIMES: the schema of `runtime:` in a site follows from it.
 */
import { z } from 'zod';
import { docker } from './docker.js';
import { node } from './node.js';
import { python } from './python.js';
import type { DeployRuntime, RuntimeSite } from './runtime.js';
import { swarm } from './swarm.js';

const RUNTIMES = { python, node, docker, swarm };

type Runtimes = typeof RUNTIMES;
type RuntimeSchema = Runtimes[keyof Runtimes]['schema'];

/** `runtime:` of a site: one of the runtimes' schemas, chosen by its `type`. */
export const runtimeSchema = z.discriminatedUnion(
  'type',
  Object.values(RUNTIMES).map((r) => r.schema) as [RuntimeSchema, ...RuntimeSchema[]],
);

/** The runtime of a site: what plan, state, status and the `sites` role ask. */
export function runtimeOf(site: RuntimeSite): DeployRuntime {
  // The schema admits only the types of RUNTIMES, and each runtime gets sites of its own type.
  const runtime: DeployRuntime | undefined = (RUNTIMES as Record<string, DeployRuntime>)[site.runtime.type];
  if (!runtime) throw new Error(`site ${site.name}: no runtime "${site.runtime.type}"`);
  return runtime;
}
