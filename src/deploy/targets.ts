/**
 * From the inventory to what deploy, rollback and status work on: the hosts that have sites, each with
 * its validated `sites` vars, and the environment values of each site (vars + secrets).
 */
import { validateRoleVars } from '../inventory/role-vars.js';
import type { InventoryHost } from '../inventory/types.js';
import { UserError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';
import { runtimeOf } from './runtimes/index.js';
import { type Site, type SitesVars, sitesVarsSchema } from './site.js';

export interface SiteTarget {
  host: InventoryHost;
  vars: SitesVars;
}

/**
 * Validates a host's `sites` vars exactly as the `sites` role does (same schema, same checks: a wrong
 * type or an unknown key names the host, the var, its file:line:col and the key that was meant).
 * `sensitive`: the vars whose values come from the secrets, shown as [secret] in messages.
 */
export function parseSitesVars(
  host: InventoryHost,
  vars: Record<string, unknown>,
  sensitive?: Iterable<string>,
): SitesVars {
  return validateRoleVars(sitesVarsSchema, vars, {
    role: 'sites',
    host: host.name,
    origins: host.varOrigins ?? {},
    sensitive,
  });
}

/** Reads `a.b.c` in the secrets. */
function lookup(secrets: Record<string, unknown>, key: string): unknown {
  let v: unknown = secrets;
  for (const part of key.split('.')) {
    if (!v || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** A value of the secrets named by a site's field, registered for redaction; missing: a user error. */
function secretValue(secrets: Record<string, unknown>, key: string, field: string, env: string): string {
  const v = lookup(secrets, key);
  if (v === undefined || v === null || typeof v === 'object') {
    throw new UserError(
      `${field} names the secret "${key}", which the secrets of ${env} do not hold`,
      1,
      `add it with \`verdandi secrets edit ${env}\``,
    );
  }
  registerSecret(String(v));
  return String(v);
}

/** The site's environment: plain vars, then secrets (a missing secret is a user error). */
export function siteEnvValues(
  site: Site,
  secrets: Record<string, unknown>,
  env: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(site.env.vars)) out[k] = String(v);
  for (const [k, key] of Object.entries(site.env.secrets))
    out[k] = secretValue(secrets, key, `site ${site.name}: env.secrets.${k}`, env);
  return out;
}

/** The password of the site's registry (swarm sites), from the secrets (a missing secret is a user error). */
export function siteRegistryPassword(
  site: Site,
  secrets: Record<string, unknown>,
  env: string,
): string | undefined {
  const key = runtimeOf(site).registryPasswordSecret(site);
  if (key === undefined) return undefined;
  return secretValue(secrets, key, `site ${site.name}: runtime.registry.password`, env);
}

export function siteEnvFile(site: Site, secrets: Record<string, unknown>, env: string): string {
  try {
    return runtimeOf(site).renderEnv(siteEnvValues(site, secrets, env));
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`site ${site.name}: ${(err as Error).message}`, 1);
  }
}

/** Keeps only the sites asked for (`--site a,b`), failing on a name no host has. */
export function filterSites(targets: SiteTarget[], only: string[] | undefined): SiteTarget[] {
  if (!only?.length) return targets.filter((t) => t.vars.sites.length > 0);
  const known = new Set(targets.flatMap((t) => t.vars.sites.map((s) => s.name)));
  for (const name of only) {
    if (!known.has(name)) {
      throw new UserError(
        `no host of this environment has a site named "${name}"`,
        1,
        `known sites: ${[...known].join(', ') || 'none'}`,
      );
    }
  }
  return targets
    .map((t) => ({ ...t, vars: { ...t.vars, sites: t.vars.sites.filter((s) => only.includes(s.name)) } }))
    .filter((t) => t.vars.sites.length > 0);
}
