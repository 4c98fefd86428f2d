/**
 * Where the secrets of an environment live, relative to the project directory:
 *
 *   secrets/<env>.yml.asc         the YAML map, one armored OpenPGP message (committed)
 *   secrets/<env>.recipients      public key files it is also encrypted to, one per line (committed)
 *   secrets/keys/<name>.asc       armored public keys of the team (committed)
 *   secrets/<env>.vault-password  the password, first line (never committed: git-ignored, mode 0600)
 */
import { basename, join, relative, resolve } from 'node:path';
import { UserError } from '../util/errors.js';

export interface SecretsPaths {
  env: string;
  projectDir: string;
  dir: string;
  /** The encrypted file. */
  asc: string;
  recipients: string;
  keysDir: string;
  passwordFile: string;
}

const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * The environment name of a CLI `<env>` argument: a name (`staging`), or a path to an inventory file
 * (`inventories/staging.yml`), whose file name without extension is the name (as in the inventory).
 */
export function envName(envArg: string): string {
  const name =
    envArg.includes('/') || /\.ya?ml$/.test(envArg) ? basename(envArg).replace(/\.ya?ml$/, '') : envArg;
  if (!ENV_NAME.test(name) || name.includes('..')) {
    throw new UserError(
      `"${envArg}" is not a valid environment name`,
      1,
      'use letters, digits, ".", "_" or "-" (like staging or production)',
    );
  }
  return name;
}

export function secretsPaths(projectDir: string, envArg: string): SecretsPaths {
  const env = envName(envArg);
  const root = resolve(projectDir);
  const dir = join(root, 'secrets');
  return {
    env,
    projectDir: root,
    dir,
    asc: join(dir, `${env}.yml.asc`),
    recipients: join(dir, `${env}.recipients`),
    keysDir: join(dir, 'keys'),
    passwordFile: join(dir, `${env}.vault-password`),
  };
}

/** A path as the user should read it in messages: relative to the project when inside it. */
export function displayPath(paths: Pick<SecretsPaths, 'projectDir'>, file: string): string {
  const rel = relative(paths.projectDir, file);
  return rel && !rel.startsWith('..') ? rel : file;
}
