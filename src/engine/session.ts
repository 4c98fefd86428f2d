/**
 * The former home of the run's context, execution, `provision` and `run`, kept only for src/deploy and
 * src/backup, which import them from here. Their homes: context.ts (inventory, secrets, vars, sudo
 * password), execute.ts (hosts in batches, signals), connection-pool.ts, and src/commands/.
 */
import { type ContextOptions, loadRunContext as loadContext, type RunContext } from './context.js';

export { provision } from '../commands/provision.js';
export { becomePasswordOf } from './connection-pool.js';
export type { RunContext } from './context.js';
export { batchSizes } from './execute.js';

/** The option object src/deploy passes: the command line's, whose `connectTimeout` it types as text. */
type DeployContextOptions = Omit<ContextOptions, 'connectTimeout'> & {
  connectTimeout?: number | string;
  forks?: unknown;
  tags?: unknown;
};

/** loadRunContext of context.ts, for the option object src/deploy and src/backup hand over. */
export function loadRunContext(env: string, o: DeployContextOptions, cwd?: string): Promise<RunContext> {
  const connectTimeout = o.connectTimeout === undefined ? undefined : Number(o.connectTimeout);
  return loadContext(env, { ...o, connectTimeout }, cwd);
}
