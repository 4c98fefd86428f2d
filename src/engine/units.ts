/**
 * What runs on each host, before evaluation: the units (roles with their validated vars, a play's own
 * tasks) of `verdandi provision` (the roles of each host's groups) and of a playbook (per play).
 * Errors are collected, so that all of them are reported at once.
 */
import { resolve } from 'node:path';
import { selectHosts } from '../inventory/index.js';
import { formatOrigin } from '../inventory/types.js';
import { UserError } from '../util/errors.js';
import type { PlanContext } from './context.js';
import { loadRole } from './loader.js';
import { type ErrorCollector, type HostUnits, playUnit, roleUnit, shown, type Unit } from './plan.js';
import type { Play, Playbook, Role, RoleRef } from './types.js';
import { batchSizes } from './walker.js';

async function resolveRoleRef(ref: RoleRef, projectDir: string, where: string) {
  if (typeof ref === 'string') return { role: await loadRole(ref, projectDir, where) };
  if ('kind' in ref && ref.kind === 'role') return { role: ref };
  const r = ref as { role: string | Role; vars?: Record<string, unknown>; tags?: string[] };
  const role = typeof r.role === 'string' ? await loadRole(r.role, projectDir, where) : r.role;
  return { role, vars: r.vars, tags: r.tags };
}

/** The units of each host's roles (provision): roles loaded, vars validated; errors collected. */
export async function provisionUnits(ctx: PlanContext, errors: ErrorCollector): Promise<HostUnits[]> {
  const out: HostUnits[] = [];
  for (const host of ctx.hosts) {
    const units: Unit[] = [];
    for (const entry of host.roleEntries ?? host.roles.map((role) => ({ role, origin: host.origin }))) {
      await errors.attempt(async () => {
        const role = await loadRole(entry.role, ctx.projectDir, formatOrigin(entry.origin));
        units.push(roleUnit(ctx, host, role));
      });
    }
    out.push({ host, units });
  }
  return out;
}

/** The units of every play of a playbook, per play: roles loaded, vars validated; errors collected. */
export async function playbookUnits(
  ctx: PlanContext,
  playbook: Playbook,
  file: string,
  errors: ErrorCollector,
): Promise<Array<{ play: Play; hosts: HostUnits[] }>> {
  const limited = new Set(ctx.hosts.map((h) => h.name));
  const out: Array<{ play: Play; hosts: HostUnits[] }> = [];
  for (const [i, play] of playbook.plays.entries()) {
    const where = `${shown(file)} play ${i + 1}`;
    const selected = await errors.attempt(() =>
      selectHosts(ctx.inventory, play.hosts).filter((h) => limited.has(h.name)),
    );
    const refs: Array<Awaited<ReturnType<typeof resolveRoleRef>>> = [];
    for (const r of play.roles ?? []) {
      const ref = await errors.attempt(() => resolveRoleRef(r, ctx.projectDir, where));
      if (ref) refs.push(ref);
    }
    // A bad `serial` would only show when the play starts, after the plays before it changed hosts.
    await errors.attempt(() => {
      try {
        batchSizes(Math.max(1, selected?.length ?? 0), play.serial);
      } catch (err) {
        throw err instanceof UserError ? new UserError(`${where}: ${err.message}`, 1) : err;
      }
    });
    const hosts: HostUnits[] = [];
    for (const host of selected ?? []) {
      const units: Unit[] = [];
      for (const r of refs) {
        await errors.attempt(() => {
          units.push(roleUnit(ctx, host, r.role, { vars: r.vars, tags: r.tags }));
        });
      }
      if (play.tasks || play.handlers) units.push(playUnit(play, i, resolve(file), ctx.projectDir));
      hosts.push({ host, units });
    }
    out.push({ play, hosts });
  }
  return out;
}
