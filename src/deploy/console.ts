/**
 * `verdandi console <env> <site> [--host H] [-- command…]`: a terminal in the live release's
 * environment on one host of the site, as its runtime enters it (runtimes/<type>.ts `consoleScript`):
 * the app user in the release with its `.env` and virtualenv, or the running container (for swarm, on
 * the node that runs a task, which the site's host names: `consoleHost`). The command
 * is the user's, else the site's `console`, else a shell. Its exit code is the command's.
 */
import type { Connection } from '../connection/types.js';
import { pickHost, requireTerminal, runInteractive } from '../engine/interactive.js';
import type { HostRun } from '../engine/walker.js';
import { UserError } from '../util/errors.js';
import { words } from '../util/shell.js';
import { closeSession, type DeployCliOptions, openSession, walkOptions } from './deploy.js';
import { runtimeOf } from './runtimes/index.js';
import type { ConsoleInput } from './runtimes/runtime.js';
import { sitePaths } from './site-base.js';
import { parseState, stateScript } from './state.js';

export interface ConsoleCliOptions extends DeployCliOptions {
  /** The host to open the console on (default: the first that runs the site). */
  host?: string;
}

/** What kept the console from starting on its host (a user error, reported after the walk). */
interface NotStarted {
  refused: UserError;
}

/** The console opens on another host than the site's (a swarm node that runs a task). */
interface Elsewhere {
  host: string;
  entry: ConsoleInput;
}

export async function consoleCommand(
  env: string,
  siteName: string,
  command: string[],
  o: ConsoleCliOptions,
): Promise<number> {
  if (o.json) throw new UserError("verdandi console has no --json: its output is the remote command's", 1);
  requireTerminal('verdandi console', command.length > 0);
  if (!/^[a-z][a-z0-9-]*$/.test(siteName))
    throw new UserError(
      `"${siteName}" is not a site name`,
      1,
      'give one site: verdandi console <env> <site>',
    );
  const s = await openSession(env, { ...o, site: siteName }, 'console');
  try {
    const first = s.targets[0].vars.sites.find((x) => x.name === siteName)!;
    // A swarm site's host (a manager) says which node runs a task: --host chooses among those nodes.
    const elsewhere = runtimeOf(first).consoleHost;
    const inventory = [...s.ctx.inventory.hosts.values()];
    const picked = pickHost(
      s.targets.map((t) => t.host.name),
      `site ${siteName}`,
      inventory.map((h) => h.name),
      elsewhere ? undefined : o.host,
    );
    const target = s.targets.find((t) => t.host.name === picked.host)!;
    if (picked.note) s.out.warn(picked.note);
    const open = async (
      conn: Connection,
      signal: AbortSignal,
      host: string,
      entry: ConsoleInput,
    ): Promise<{ ok: boolean; result: number | NotStarted }> => {
      const script = runtimeOf(entry.site).consoleScript(entry);
      s.out.warn(`console: ${entry.site.name} on ${host}, release ${entry.release}`);
      try {
        const code = await runInteractive(conn, script, signal);
        return { ok: !signal.aborted, result: code };
      } catch (err) {
        if (err instanceof UserError) return { ok: true, result: { refused: err } };
        throw err;
      }
    };
    const runs = await s.walker.walk(
      [target],
      walkOptions(s, undefined, false),
      async (t, { conn, signal }): Promise<{ ok: boolean; result: number | NotStarted | Elsewhere }> => {
        const site = t.vars.sites.find((x) => x.name === siteName)!;
        const paths = sitePaths(site, t.vars.sites_root);
        const state = parseState(paths, (await conn.exec(stateScript(site, paths))).stdout);
        if (!state.current) {
          const why = state.provisioned ? 'nothing is deployed there yet' : 'it is not provisioned there';
          return {
            ok: true,
            result: {
              refused: new UserError(
                `site ${site.name} on ${t.host.name}: ${why}, so there is no live release to open a console in`,
                1,
                state.provisioned
                  ? `deploy it first: verdandi deploy ${env} --site ${site.name}`
                  : `provision it (the sites role), then deploy: verdandi deploy ${env} --site ${site.name}`,
              ),
            },
          };
        }
        const entry: ConsoleInput = {
          site,
          paths,
          release: state.current,
          live: state.live,
          command: command.length > 0 ? words(...command) : site.console,
        };
        const rt = runtimeOf(site).consoleHost;
        if (rt) {
          let node: { host: string; note?: string };
          try {
            node = rt.pick(site, (await conn.exec(rt.script(site))).stdout, inventory, o.host);
          } catch (err) {
            if (err instanceof UserError) return { ok: true, result: { refused: err } };
            throw err;
          }
          if (node.note) s.out.warn(node.note);
          if (node.host !== t.host.name) return { ok: true, result: { host: node.host, entry } };
        }
        return open(conn, signal, t.host.name, entry);
      },
    );
    let run: HostRun<number | NotStarted | Elsewhere> = runs[0];
    if (
      run.status === 'ok' &&
      run.result !== undefined &&
      typeof run.result === 'object' &&
      'host' in run.result
    ) {
      // The second host (a swarm node) gets its own walk: its connection, its Ctrl-C handling.
      const { host, entry } = run.result;
      const node = s.ctx.inventory.hosts.get(host)!;
      [run] = await s.walker.walk(
        [{ host: node }],
        walkOptions(s, undefined, false),
        ({ host: h }, { conn, signal }) => open(conn, signal, h.name, entry),
      );
    }
    const exitCode = await s.walker.finish();
    if (run.status !== 'ok' || run.result === undefined) return exitCode;
    if (typeof run.result !== 'number') {
      if ('refused' in run.result) throw run.result.refused;
      return exitCode;
    }
    return run.result;
  } finally {
    await closeSession(s);
  }
}
