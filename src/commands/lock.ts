/**
 * `verdandi lock status <env>` and `verdandi lock release <env>`: the hosts' deploy locks
 * (engine/host-lock.ts) without ssh-ing in. `status` says who holds each host's lock, since when, from
 * which command, and whether the holder is alive (its process on this machine, its heartbeat). `release`
 * removes the locks it showed (each only while it is still the same holder's: a lock taken after the
 * question is left alone), after a confirmation on a terminal or with `--yes`, warning when a holder is
 * alive. Each release is a `lock` event, so it is in the run history.
 */
import { type ContextOptions, loadRunContext, type RunContext } from '../engine/context.js';
import type { RunEvents } from '../engine/events.js';
import {
  DEPLOY_LOCK_DIR,
  describeLockStatus,
  type LockStatus,
  lockStatusScript,
  parseLockStatus,
  releaseLockScript,
} from '../engine/host-lock.js';
import { runOutputs } from '../engine/outputs.js';
import { contextWalker, type Walker } from '../engine/walker.js';
import { canPrompt, readLine } from '../secrets/tty.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import { quote } from '../util/shell.js';

export interface LockCommandOptions extends ContextOptions {
  json?: boolean;
  verbose?: boolean;
  /** release: no question asked. */
  yes?: boolean;
  forks?: number;
}

/** The `--json` fields of one host's lock. */
export function lockData(st: LockStatus): Record<string, unknown> {
  if (!st.held || !st.holder) return { lock: { held: false } };
  const { token: _token, ...holder } = st.holder;
  return { lock: { held: true, ...holder, alive: !st.dead, ...(st.dead ? { dead: st.dead } : {}) } };
}

/** The question `release` asks (or refuses to ask without a terminal). */
export function releaseQuestion(held: Array<{ host: string; status: LockStatus }>): string {
  const alive = held.filter((h) => !h.status.dead).length;
  return `release ${held.length === 1 ? 'this lock' : `these ${held.length} locks`}${alive ? ` (${alive} of a holder that may still be running)` : ''}? [y/N] `;
}

function session(ctx: RunContext, command: string, events: RunEvents, forks: number): Walker {
  return contextWalker(
    ctx,
    { command, events, forks },
    ctx.hosts.map((h) => h.name),
  );
}

async function open(env: string, o: LockCommandOptions, command: string) {
  const ctx = await loadRunContext(env, o);
  if (ctx.hosts.length === 0)
    throw new UserError(
      `no host of ${ctx.env}${o.limit ? ` matches --limit ${o.limit}` : ''}`,
      1,
      'check the host names with the inventory',
    );
  const events = await runOutputs({
    json: !!o.json,
    verbose: !!o.verbose,
    check: false,
    warnsToStderr: true,
  });
  return { ctx, events, walker: session(ctx, command, events, o.forks ?? DEFAULT_FORKS) };
}

/** Reads every host's lock (read-only, all hosts at once); prints one line per host unless --json. */
async function readLocks(ctx: RunContext, walker: Walker, events: RunEvents, json: boolean) {
  const runs = await walker.walk(
    ctx.hosts.map((host) => ({ host })),
    { maxFailPercentage: 100 },
    async ({ host }, { conn }) => {
      const res = await conn.exec(lockStatusScript());
      if (res.code !== 0)
        throw new UserError(`cannot read the deploy lock (exit ${res.code}): ${res.stderr.trim()}`, 2);
      const status = parseLockStatus(res.stdout);
      if (!json)
        events.emit({
          type: 'message',
          level: 'info',
          host: host.name,
          text: `${host.name}  ${describeLockStatus(status)}`,
        });
      events.emit({ type: 'result', host: host.name, data: lockData(status) });
      return { ok: true, result: status };
    },
  );
  return runs.flatMap((r) => (r.result ? [{ host: r.host, status: r.result }] : []));
}

export async function lockStatus(env: string, o: LockCommandOptions): Promise<number> {
  const { ctx, events, walker } = await open(env, o, 'lock status');
  try {
    await readLocks(ctx, walker, events, !!o.json);
    return await walker.finish();
  } finally {
    await walker.close();
    events.close();
  }
}

export async function lockRelease(env: string, o: LockCommandOptions): Promise<number> {
  if (!o.yes && !canPrompt())
    throw new UserError(
      'lock release asks for a confirmation on a terminal',
      1,
      'add --yes to release without asking',
    );
  const { ctx, events, walker } = await open(env, o, 'lock release');
  try {
    const held = (await readLocks(ctx, walker, events, !!o.json)).filter((h) => h.status.held);
    if (held.length === 0) {
      if (!o.json)
        events.emit({ type: 'message', level: 'info', text: 'no deploy lock is held: nothing to release' });
      return await walker.finish();
    }
    for (const h of held)
      if (!h.status.dead)
        events.emit({
          type: 'message',
          level: 'warn',
          host: h.host,
          text: `warning: ${h.host}: the holder may still be running (${h.status.holder?.reason ?? 'unknown command'}); releasing its lock lets another deploy start beside it`,
        });
    if (!o.yes) {
      const answer = (await readLine(releaseQuestion(held), { echo: true })).trim().toLowerCase();
      if (answer !== 'y' && answer !== 'yes') {
        events.emit({ type: 'message', level: 'info', text: 'nothing released' });
        return await walker.finish();
      }
    }
    const targets = ctx.hosts.filter((h) => held.some((x) => x.host === h.name)).map((host) => ({ host }));
    await walker.walk(targets, { maxFailPercentage: 100 }, async ({ host }, { conn }) => {
      const st = held.find((x) => x.host === host.name)!.status;
      const token = st.holder?.token;
      // No token (an unreadable file): the lock can only be removed whole, as --break-lock does.
      const script = token
        ? `${releaseLockScript(token)}; test ! -d ${quote(DEPLOY_LOCK_DIR)} && echo released`
        : `rm -rf ${quote(DEPLOY_LOCK_DIR)} && echo released`;
      const res = await conn.exec(script);
      const released = res.stdout.includes('released');
      const holder = describeLockStatus(st).replace(/^held by /, '');
      if (released)
        events.emit({
          type: 'lock',
          host: host.name,
          state: 'released',
          holder,
          message: `released the deploy lock held by ${holder}`,
        });
      else
        events.emit({
          type: 'message',
          level: 'warn',
          host: host.name,
          text: `${host.name}: not released: the lock changed hands since it was read (see verdandi lock status)`,
        });
      events.emit({ type: 'result', host: host.name, data: { released } });
      return { ok: released, result: released };
    });
    return await walker.finish();
  } finally {
    await walker.close();
    events.close();
  }
}
