/**
 * Secrets for the engine: an environment's `secrets/<env>.yml.asc`, decrypted once per run, in memory
 * only. Every value is registered with `registerSecret`, so `redact()` hides it in all output.
 *
 * This module loads the OpenPGP code only when there is something to decrypt.
 */
import { existsSync } from 'node:fs';
import { registerSecret } from '../util/redact.js';
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
  return secrets;
}
