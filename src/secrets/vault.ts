/**
 * Opening and sealing an environment's secrets file: which credentials decrypt it, what it is encrypted
 * to, and the atomic replacement of the file.
 *
 * Decryption uses, in order: a password available without asking (file or environment), the private
 * key of `$VERDANDI_PGP_KEY` when the file is encrypted to it, the user's own gpg when its keyring (or
 * card) has one of the keys the file is encrypted to, then a password asked on the terminal.
 *
 * Encryption targets: the keys listed in `secrets/<env>.recipients`, plus a password when the file
 * had one (re-encrypting never drops it silently: that is `rekey --no-password`), or, for a new file,
 * when a password is at hand or no recipient is listed.
 */

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';
import { gpgSecretKeyIds, gpgSessionKey } from './gpg.js';
import { howToProvidePassword, obtainPassword, type Password, passwordWithoutPrompt } from './password.js';
import { displayPath, type SecretsPaths } from './paths.js';
import {
  decryptWithKey,
  decryptWithPassword,
  decryptWithSessionKey,
  type EncryptionTargets,
  encryptText,
  loadPrivateKey,
  PRIVATE_KEY_ENV,
  passwordOpens,
  readSealed,
  type SealedMessage,
} from './pgp.js';
import { knownKeys, type Recipient, readRecipients, recipientsMatching } from './recipients.js';
import { canPrompt, promptNewPassword } from './tty.js';

export interface VaultOptions {
  /** `--vault-password-file`. */
  vaultPasswordFile?: string;
  /** May we ask on the terminal (when there is one)? */
  interactive: boolean;
}

/** A decrypted secrets file. */
export interface OpenedSecrets {
  /** The YAML text, exactly as encrypted. */
  text: string;
  sealed: SealedMessage;
  /** The password that opened it, when one did. */
  password?: Password;
}

/** Reads and decrypts `secrets/<env>.yml.asc`. */
export async function openSecrets(paths: SecretsPaths, options: VaultOptions): Promise<OpenedSecrets> {
  const shown = displayPath(paths, paths.asc);
  if (!existsSync(paths.asc)) {
    throw new UserError(
      `${paths.env} has no secrets: ${shown} does not exist`,
      1,
      `create it with: verdandi secrets create ${paths.env}`,
    );
  }
  return decryptArmored(paths, readFileSync(paths.asc, 'utf8'), shown, options);
}

/** Decrypts an armored message of the environment (its file, or an old version that git hands over). */
export async function decryptArmored(
  paths: SecretsPaths,
  armored: string,
  shown: string,
  options: VaultOptions,
): Promise<{ text: string; sealed: SealedMessage; password?: Password }> {
  const sealed = await readSealed(armored, shown);
  const openWith = async (password: Password) => ({
    text: await decryptWithPassword(sealed, password.value, { shown, origin: password.origin }),
    sealed,
    password,
  });
  const passwordAtHand = sealed.passwordProtected && passwordWithoutPrompt(paths, options.vaultPasswordFile);
  if (passwordAtHand) return openWith(passwordAtHand);
  if (sealed.keyIds.length > 0) {
    const privateKey = await loadPrivateKey({ interactive: options.interactive, forKeyIds: sealed.keyIds });
    if (privateKey) return { text: await decryptWithKey(sealed, privateKey, shown), sealed };
    if (gpgHoldsOneOf(sealed.keyIds)) {
      const sessionKey = await gpgSessionKey(armored, { shown, interactive: options.interactive });
      return { text: await decryptWithSessionKey(sealed, sessionKey, shown), sealed };
    }
  }
  if (sealed.passwordProtected) return openWith(await obtainPassword(paths, options));
  throw await notForUs(paths, sealed, shown);
}

/** Does the user's gpg have a secret key for one of these key ids (a zero id: any key may be it)? */
export function gpgHoldsOneOf(keyIds: string[]): boolean {
  const held = gpgSecretKeyIds();
  return held.length > 0 && keyIds.some((id) => held.includes(id) || /^0+$/.test(id));
}

async function notForUs(paths: SecretsPaths, sealed: SealedMessage, shown: string): Promise<UserError> {
  const holders = recipientsMatching(await knownKeys(paths), sealed.keyIds);
  const who = holders.length ? holders.join(', ') : `key ids ${sealed.keyIds.join(', ')}`;
  const yours = process.env[PRIVATE_KEY_ENV]
    ? `the key in $${PRIVATE_KEY_ENV} is not one of them, nor is any secret key of your gpg`
    : 'your gpg has none of their secret keys';
  return new UserError(
    `${shown} is encrypted to other keys (${who}) and not to a password; ${yours}`,
    1,
    `import your key into gpg (or set $${PRIVATE_KEY_ENV} to its file), or ask a recipient to add your public key to ` +
      `${displayPath(paths, paths.recipients)} and run: verdandi secrets rekey ${paths.env}`,
  );
}

export interface Targets extends EncryptionTargets {
  /** For messages: "password, secrets/keys/alice.asc". */
  description: string;
  /** The password, when there is one (to remember where it came from). */
  password?: Password;
}

export function targetsOf(password: Password | undefined, recipients: Recipient[]): Targets {
  return {
    passwords: password ? [password.value] : [],
    keys: recipients.map((r) => r.key),
    password,
    description: [password ? 'password' : '', ...new Set(recipients.map((r) => r.shown))]
      .filter(Boolean)
      .join(', '),
  };
}

/** What to encrypt the environment's secrets to now, given the file as it was (when there was one). */
export async function targetsFor(
  paths: SecretsPaths,
  options: VaultOptions,
  existing?: Pick<OpenedSecrets, 'sealed' | 'password'>,
): Promise<Targets> {
  const recipients = await readRecipients(paths);
  let password: Password | undefined;
  if (existing) {
    if (existing.sealed.passwordProtected) {
      password = await currentPassword(paths, options, existing);
    } else if (recipients.length === 0) {
      throw new UserError(
        `${displayPath(paths, paths.asc)} is encrypted to keys only, and ${displayPath(paths, paths.recipients)} lists none now`,
        1,
        `restore the recipients file, or choose a password with: verdandi secrets rekey ${paths.env}`,
      );
    }
  } else {
    password = passwordWithoutPrompt(paths, options.vaultPasswordFile);
    if (!password && recipients.length === 0) password = await newPassword(paths, options);
  }
  return targetsOf(password, recipients);
}

/**
 * The password of a password-protected file: the one that opened it, or, when a key did, the password
 * obtained now and checked against the file, so a typing mistake cannot silently change it.
 */
export async function currentPassword(
  paths: SecretsPaths,
  options: VaultOptions,
  opened: Pick<OpenedSecrets, 'sealed' | 'password'>,
): Promise<Password> {
  if (opened.password) return opened.password;
  const password = await obtainPassword(paths, options);
  if (!(await passwordOpens(opened.sealed, password.value))) {
    throw new UserError(
      `wrong password for ${displayPath(paths, paths.asc)} (password from ${password.origin})`,
      1,
      'it is needed to encrypt the file to its password again; check it, the file was not changed',
    );
  }
  return password;
}

/** A password chosen now, for a new file or a rekey: asked twice on the terminal. */
export async function newPassword(paths: SecretsPaths, options: VaultOptions): Promise<Password> {
  if (!options.interactive || !canPrompt()) {
    throw new UserError(
      `no vault password for ${paths.env}, and no recipient in ${displayPath(paths, paths.recipients)}`,
      1,
      howToProvidePassword(paths),
    );
  }
  const value = await promptNewPassword(`vault password for ${paths.env}`);
  registerSecret(value);
  return { value, origin: 'the prompt' };
}

export async function seal(text: string, targets: Targets): Promise<string> {
  if (targets.passwords.length === 0 && targets.keys.length === 0) {
    throw new UserError('nothing to encrypt to: no password and no recipient');
  }
  return encryptText(text, targets);
}

/**
 * Replaces `file` atomically: the new content is written to a temporary file beside it, flushed, then
 * renamed over it, so a crash leaves either the old file or the new one, never half of one.
 */
export function writeFileAtomically(file: string, content: string, mode?: number): void {
  mkdirSync(dirname(file), { recursive: true });
  const keepMode = mode ?? (existsSync(file) ? statSync(file).mode & 0o777 : 0o644);
  const temp = join(dirname(file), `.tmp-${basename(file)}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(temp, 'wx', keepMode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, file);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // Already closed.
    }
    if (existsSync(temp)) unlinkSync(temp);
    throw err;
  }
}

/** Encrypts `text` to `targets` and replaces the environment's secrets file with it. */
export async function saveSecrets(paths: SecretsPaths, text: string, targets: Targets): Promise<void> {
  writeFileAtomically(paths.asc, await seal(text, targets));
}
