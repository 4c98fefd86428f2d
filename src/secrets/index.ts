/**
 * Secrets for the engine: an environment's `secrets/<env>.yml.asc`, decrypted once per run, in memory
 * only. Every value is registered with `registerSecret`, so `redact()` hides it in all output.
 *
 * This module loads the OpenPGP code only when there is something to decrypt.
 */
import { existsSync, readFileSync } from 'node:fs';
import { MIN_SECRET_LENGTH, registerSecret, shortSecretKeys } from '../util/redact.js';
import { PASSWORD_ENV, passwordWithoutPrompt } from './password.js';
import { displayPath, secretsPaths } from './paths.js';

export interface LoadSecretsOptions {
  /** Where `secrets/` is (the inventory's projectDir). */
  projectDir: string;
  /** The environment name (`staging`), or its inventory file path. */
  env: string;
  /** `--vault-password-file`. */
  vaultPasswordFile?: string;
  /** May the password (or key passphrase) be asked on the terminal when no other source has it? */
  interactive: boolean;
}

/** The keys already warned about in this process: the warning is printed once per run. */
const warnedShort = new Set<string>();

/**
 * Warns on stderr, once per run and key, about the values of `secrets` too short to be hidden in
 * output (see MIN_SECRET_LENGTH): naming their keys, never their values.
 */
export function warnShortSecrets(secrets: unknown, shown: string): void {
  const keys = shortSecretKeys(secrets).filter((key) => !warnedShort.has(`${shown}\0${key}`));
  if (keys.length === 0) return;
  for (const key of keys) warnedShort.add(`${shown}\0${key}`);
  const many = keys.length > 1;
  process.stderr.write(
    `warning: ${shown}: the value${many ? 's' : ''} of ${keys.join(', ')} ${many ? 'are' : 'is'} shorter than ` +
      `${MIN_SECRET_LENGTH} characters, too short to be hidden in output (values that short would hide ordinary words): ` +
      `make ${many ? 'them' : 'it'} longer, or mark the tasks that print ${many ? 'them' : 'it'} sensitive\n`,
  );
}

/** True when the environment has a secrets file. */
export function hasSecrets(projectDir: string, env: string): boolean {
  return existsSync(secretsPaths(projectDir, env).asc);
}

/**
 * The decrypted secrets map of the environment; `{}` when it has no secrets file. Throws a UserError
 * (wrong password, damaged file, not a YAML map...) that names the file and says what to do.
 */
export async function loadSecrets(options: LoadSecretsOptions): Promise<Record<string, unknown>> {
  const paths = secretsPaths(options.projectDir, options.env);
  if (!existsSync(paths.asc)) return {};
  const [{ openSecrets }, { parseSecretsOf }] = await Promise.all([
    import('./vault.js'),
    import('./yaml.js'),
  ]);
  const opened = await openSecrets(paths, options);
  const secrets = parseSecretsOf(
    opened.text,
    displayPath(paths, paths.asc),
    `fix it with: verdandi secrets edit ${paths.env}`,
  );
  registerSecret(secrets);
  warnShortSecrets(secrets, displayPath(paths, paths.asc));
  return secrets;
}

/** The secrets of `verdandi check`: decrypted when that needs nobody, else what is known without them. */
export type SecretsWithoutAsking =
  | { decrypted: true; secrets: Record<string, unknown> }
  | {
      decrypted: false;
      /** The file as messages show it (`secrets/staging.yml.asc`). */
      shown: string;
      /** What it is encrypted to: "a password", "2 keys", "a password and 1 key". */
      lockedTo: string;
      /** Why it was not decrypted, and how it could be. */
      why: string;
    };

/**
 * For a check in CI or a pre-commit hook: the file must be a readable OpenPGP message (a damaged one is
 * an error, as in a run); it is decrypted when a password is at hand without asking (file, variable),
 * with `$VERDANDI_PGP_KEY`, or by the user's gpg without pinentry (a key the agent holds unlocked, a
 * card). Otherwise, or when gpg could not open it without asking, it says why. Undefined when the
 * environment has no secrets file.
 */
export async function secretsWithoutAsking(
  options: Omit<LoadSecretsOptions, 'interactive'>,
): Promise<SecretsWithoutAsking | undefined> {
  const paths = secretsPaths(options.projectDir, options.env);
  if (!existsSync(paths.asc)) return undefined;
  const [{ PRIVATE_KEY_ENV, readSealed }, { gpgHoldsOneOf }, { GpgError }] = await Promise.all([
    import('./pgp.js'),
    import('./vault.js'),
    import('./gpg.js'),
  ]);
  const shown = displayPath(paths, paths.asc);
  const sealed = await readSealed(readFileSync(paths.asc, 'utf8'), shown);
  const open = async () => ({
    decrypted: true as const,
    secrets: await loadSecrets({ ...options, interactive: false }),
  });
  const keys = sealed.keyIds.length;
  const lockedTo = [
    sealed.passwordProtected ? 'a password' : '',
    keys ? `${keys} key${keys === 1 ? '' : 's'}` : '',
  ]
    .filter(Boolean)
    .join(' and ');
  if (sealed.passwordProtected && passwordWithoutPrompt(paths, options.vaultPasswordFile)) return open();
  if (keys > 0 && process.env[PRIVATE_KEY_ENV]) return open();
  if (keys > 0 && gpgHoldsOneOf(sealed.keyIds)) {
    try {
      return await open();
    } catch (err) {
      // A key gpg has but cannot unlock without pinentry: only a person can; that is not a fault.
      if (!(err instanceof GpgError)) throw err;
      return { decrypted: false, shown, lockedTo, why: err.message };
    }
  }
  const ways = [
    ...(sealed.passwordProtected
      ? ['--vault-password-file', displayPath(paths, paths.passwordFile), `$${PASSWORD_ENV}`]
      : []),
    ...(keys > 0 ? [`$${PRIVATE_KEY_ENV}`, 'a key of your gpg unlocked in its agent'] : []),
  ];
  return {
    decrypted: false,
    shown,
    lockedTo,
    why: `nothing opens it without asking (${ways.join(', ')})`,
  };
}
