/**
 * Where the vault password of an environment comes from, in this order:
 *   1. `--vault-password-file F`
 *   2. `secrets/<env>.vault-password`
 *   3. `$VERDANDI_VAULT_PASSWORD`
 *   4. a prompt without echo, when a person is at a terminal.
 * A password file must be private: not tracked by git, not readable by group or others.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { UserError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';
import { displayPath, type SecretsPaths } from './paths.js';
import { canPrompt, promptHidden } from './tty.js';

export const PASSWORD_ENV = 'VERDANDI_VAULT_PASSWORD';

export interface Password {
  value: string;
  /** Where it came from, for messages ("secrets/staging.vault-password", "$VERDANDI_VAULT_PASSWORD"...). */
  origin: string;
  /** The file it was read from, when it was. */
  file?: string;
}

/** True when git tracks `file` (false when git or a repository is missing). */
export function isTrackedByGit(file: string): boolean {
  const result = spawnSync('git', ['ls-files', '--error-unmatch', '--', basename(file)], {
    cwd: dirname(file),
    stdio: 'ignore',
  });
  return result.status === 0;
}

/**
 * Refuses a password file that others can read: tracked by git (everyone with the repository has it,
 * history included) or readable by group or others.
 */
export function checkPasswordFileIsPrivate(file: string, shown: string): void {
  if (isTrackedByGit(file)) {
    throw new UserError(
      `password file ${shown} is tracked by git, so everyone with the repository can read it`,
      1,
      `untrack it: git rm --cached ${shown} (and make sure .gitignore has *.vault-password); its password is in ` +
        'the git history: change it with `verdandi secrets rekey <env>`',
    );
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new UserError(
      `password file ${shown} is readable by group or others (mode ${mode.toString(8).padStart(3, '0')})`,
      1,
      `make it private: chmod 600 ${shown}`,
    );
  }
}

/**
 * Reads a password file after checking it is private. Verdandi's files hold the password on the first
 * line (like `gpg --passphrase-file`); `wholeFileTrimmed` reads it the way Ansible does.
 */
export function readPasswordFile(file: string, shown: string, { wholeFileTrimmed = false } = {}): string {
  if (!existsSync(file)) {
    throw new UserError(`password file ${shown} does not exist`, 1, 'check the path given');
  }
  checkPasswordFileIsPrivate(file, shown);
  const content = readFileSync(file, 'utf8');
  const value = wholeFileTrimmed ? content.trim() : (content.split('\n')[0] ?? '').replace(/\r$/, '');
  if (value === '') {
    throw new UserError(`password file ${shown} is empty`, 1, 'write the password on its first line');
  }
  registerSecret(value);
  return value;
}

/** The password from the first source that has one, without asking anyone; undefined when none has. */
export function passwordWithoutPrompt(paths: SecretsPaths, vaultPasswordFile?: string): Password | undefined {
  if (vaultPasswordFile) {
    return {
      value: readPasswordFile(vaultPasswordFile, vaultPasswordFile),
      origin: vaultPasswordFile,
      file: vaultPasswordFile,
    };
  }
  if (existsSync(paths.passwordFile)) {
    const shown = displayPath(paths, paths.passwordFile);
    return { value: readPasswordFile(paths.passwordFile, shown), origin: shown, file: paths.passwordFile };
  }
  const fromEnv = process.env[PASSWORD_ENV];
  if (fromEnv) {
    registerSecret(fromEnv);
    return { value: fromEnv, origin: `$${PASSWORD_ENV}` };
  }
  return undefined;
}

export function howToProvidePassword(paths: SecretsPaths): string {
  const file = displayPath(paths, paths.passwordFile);
  return (
    `put it on the first line of ${file} (chmod 600, git-ignored), set $${PASSWORD_ENV}, ` +
    'or pass --vault-password-file FILE'
  );
}

/** The vault password of the environment: from a file or the environment, else asked on the terminal. */
export async function obtainPassword(
  paths: SecretsPaths,
  { vaultPasswordFile, interactive }: { vaultPasswordFile?: string; interactive: boolean },
): Promise<Password> {
  const found = passwordWithoutPrompt(paths, vaultPasswordFile);
  if (found) return found;
  if (!interactive || !canPrompt()) {
    throw new UserError(`no vault password for ${paths.env}`, 1, howToProvidePassword(paths));
  }
  const value = await promptHidden(`Vault password for ${paths.env}: `);
  if (value === '') throw new UserError(`no vault password for ${paths.env}: the password typed was empty`);
  registerSecret(value);
  return { value, origin: 'the prompt' };
}
