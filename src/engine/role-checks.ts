/**
 * Checks the built-in roles (and a project's own) make of their vars before they build any task: one
 * place, so that every role words the same problem the same way.
 */
import { UserError } from '../util/errors.js';
import type { HostInfo } from './types.js';

/**
 * Refuses a name given twice in a role's list var (two sites, databases or programs of one name would
 * write the same files): `nginx_sites of host web1: "shop" is listed twice`.
 */
export function refuseDuplicateNames(
  listVar: string,
  names: readonly string[],
  host: HostInfo,
  hint?: string,
): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name))
      throw new UserError(`${listVar} of host ${host.name}: "${name}" is listed twice`, 1, hint);
    seen.add(name);
  }
}

/** What a role's user entry says of its password: given (from `{{ secrets.x }}`) or the name of a secret. */
export interface PasswordSource {
  password?: string;
  password_secret?: string;
}

/**
 * The password of a user a role creates: given as is, or read from the environment's secrets by name.
 * `who` names the entry in the messages (`postgres_users of host db1: user "app"`).
 */
export function passwordOf(source: PasswordSource, host: HostInfo, who: string): string | undefined {
  if (source.password !== undefined && source.password_secret !== undefined)
    throw new UserError(`${who} has both password and password_secret`, 1, 'keep one of them');
  if (source.password_secret === undefined) return source.password;
  const value = host.secrets[source.password_secret];
  if (typeof value !== 'string' || value === '') {
    throw new UserError(
      `${who} takes its password from the secret "${source.password_secret}", which the ${host.env} secrets do not hold`,
      1,
      `add it with: verdandi secrets edit ${host.env}`,
    );
  }
  return value;
}
