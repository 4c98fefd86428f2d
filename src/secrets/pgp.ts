/**
 * The OpenPGP side of the vault, with the `openpgp` package: one armored message holding the YAML text,
 * encrypted to passwords and/or public keys, that `gpg --decrypt` reads too.
 */
import { readFileSync } from 'node:fs';
import * as openpgp from 'openpgp';
import { UserError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';
import { canPrompt, promptHidden } from './tty.js';

/**
 * SEIPD v1 (CFB + MDC) for password messages: every gpg still in use (Debian's 2.2 included) reads it;
 * the newer AEAD packets of RFC 9580 would lock those users out. With public keys, openpgp follows what
 * the recipients' keys announce, so keys made by gpg 2.2 get v1 too.
 */
const PGP_CONFIG: openpgp.PartialConfig = { aeadProtect: false };

export const PRIVATE_KEY_ENV = 'VERDANDI_PGP_KEY';
export const PASSPHRASE_ENV = 'VERDANDI_PGP_PASSPHRASE';

export interface EncryptionTargets {
  passwords: string[];
  keys: openpgp.PublicKey[];
}

export async function encryptText(text: string, targets: EncryptionTargets): Promise<string> {
  // Bytes, not text: openpgp would turn text newlines into CRLF, and gpg would give those back.
  const message = await openpgp.createMessage({ binary: new TextEncoder().encode(text) });
  return openpgp.encrypt({
    message,
    passwords: targets.passwords.length ? targets.passwords : undefined,
    encryptionKeys: targets.keys.length ? targets.keys : undefined,
    config: PGP_CONFIG,
  });
}

/** An encrypted message as read from a file, before decryption: who can open it. */
export interface SealedMessage {
  message: openpgp.Message<string>;
  /** A password opens it (it has a symmetric-key session key packet). */
  passwordProtected: boolean;
  /** Key IDs (hex) of the public keys it is encrypted to. */
  keyIds: string[];
}

export async function readSealed(armored: string, shown: string): Promise<SealedMessage> {
  let message: openpgp.Message<string>;
  try {
    message = await openpgp.readMessage({ armoredMessage: armored, config: PGP_CONFIG });
  } catch {
    throw corrupted(shown);
  }
  const passwordProtected = message.packets.some((p) => p instanceof openpgp.SymEncryptedSessionKeyPacket);
  const keyIds = message.getEncryptionKeyIDs().map((id) => id.toHex());
  if (!passwordProtected && keyIds.length === 0) throw corrupted(shown);
  return { message, passwordProtected, keyIds };
}

function corrupted(shown: string): UserError {
  return new UserError(
    `${shown} is not a readable OpenPGP message (corrupted or truncated)`,
    1,
    `restore it from git (git checkout -- ${shown}) or from a backup`,
  );
}

function utf8(bytes: Uint8Array, shown: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(
      `${shown} decrypts to something that is not UTF-8 text`,
      1,
      'it was not written by Verdandi',
    );
  }
}

/** True when `password` opens the message (checks the session key only: cheap, and no data decrypted). */
export async function passwordOpens(sealed: SealedMessage, password: string): Promise<boolean> {
  try {
    await openpgp.decryptSessionKeys({ message: sealed.message, passwords: [password], config: PGP_CONFIG });
    return true;
  } catch {
    return false;
  }
}

export async function decryptWithPassword(
  sealed: SealedMessage,
  password: string,
  { shown, origin }: { shown: string; origin: string },
): Promise<string> {
  const sessionKeys = await openSessionKeys(
    sealed,
    { passwords: [password] },
    () =>
      new UserError(
        `wrong password for ${shown} (password from ${origin})`,
        1,
        'check the password and where it comes from; the file was not changed',
      ),
  );
  return decryptData(sealed, sessionKeys, shown);
}

export async function decryptWithKey(
  sealed: SealedMessage,
  privateKey: openpgp.PrivateKey,
  shown: string,
): Promise<string> {
  const sessionKeys = await openSessionKeys(
    sealed,
    { decryptionKeys: privateKey },
    () =>
      new UserError(
        `the private key ${describeKey(privateKey)} could not open ${shown}`,
        1,
        `check $${PRIVATE_KEY_ENV}; ask a team member to add your public key to the recipients and run rekey`,
      ),
  );
  return decryptData(sealed, sessionKeys, shown);
}

/** Decrypts with a session key another program (the user's gpg) decrypted. */
export async function decryptWithSessionKey(
  sealed: SealedMessage,
  sessionKey: openpgp.SessionKey,
  shown: string,
): Promise<string> {
  return decryptData(sealed, [sessionKey], shown);
}

/**
 * Decrypts the session key first, so a wrong password or key (the session key does not open) is told
 * apart from damaged data (it opens, but the data fails its integrity check).
 */
async function openSessionKeys(
  sealed: SealedMessage,
  credentials: { passwords?: string[]; decryptionKeys?: openpgp.PrivateKey },
  wrongCredentials: () => UserError,
): Promise<openpgp.SessionKey[]> {
  try {
    const keys = await openpgp.decryptSessionKeys({
      message: sealed.message,
      ...credentials,
      config: PGP_CONFIG,
    });
    // `algorithm` is null only for AEAD (SEIPD v2) messages, where the data packet names it itself.
    return keys as openpgp.SessionKey[];
  } catch {
    throw wrongCredentials();
  }
}

async function decryptData(
  sealed: SealedMessage,
  sessionKeys: openpgp.SessionKey[],
  shown: string,
): Promise<string> {
  let data: Uint8Array;
  try {
    const result = await openpgp.decrypt({
      message: sealed.message,
      sessionKeys,
      format: 'binary',
      config: PGP_CONFIG,
    });
    data = result.data as Uint8Array;
  } catch {
    throw new UserError(
      `${shown} could not be decrypted: its data is corrupted or truncated (integrity check failed)`,
      1,
      `restore it from git (git checkout -- ${shown}) or from a backup`,
    );
  }
  return utf8(data, shown);
}

/** Reads armored or binary keys from a file. */
export async function readKeysFile(file: string): Promise<openpgp.Key[]> {
  const bytes = readFileSync(file);
  const text = bytes.toString('utf8');
  return text.includes('-----BEGIN PGP')
    ? openpgp.readKeys({ armoredKeys: text })
    : openpgp.readKeys({ binaryKeys: new Uint8Array(bytes) });
}

export function fingerprintOf(key: openpgp.Key): string {
  return key.getFingerprint().toUpperCase();
}

export function describeKey(key: openpgp.Key): string {
  const user = key.getUserIDs()[0];
  return user ? `${user} (${fingerprintOf(key)})` : fingerprintOf(key);
}

export function keyIdsOf(key: openpgp.Key): string[] {
  return key.getKeyIDs().map((id) => id.toHex());
}

/**
 * The user's private key, from the file named by `$VERDANDI_PGP_KEY`, unlocked with
 * `$VERDANDI_PGP_PASSPHRASE` or a passphrase asked on the terminal. Undefined when the variable is
 * unset, or when the key is not one of `forKeyIds` (a message's recipients): then no passphrase is asked.
 */
export async function loadPrivateKey({
  interactive,
  forKeyIds,
}: {
  interactive: boolean;
  forKeyIds: string[];
}): Promise<openpgp.PrivateKey | undefined> {
  const file = process.env[PRIVATE_KEY_ENV];
  if (!file) return undefined;
  let key: openpgp.Key | undefined;
  try {
    [key] = await readKeysFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(
        `$${PRIVATE_KEY_ENV} names ${file}, which does not exist`,
        1,
        'point it to your private key file',
      );
    }
    throw new UserError(
      `$${PRIVATE_KEY_ENV} names ${file}, which holds no readable OpenPGP key`,
      1,
      'export it with: gpg --export-secret-keys --armor YOUR_KEY_ID > FILE',
    );
  }
  if (!key?.isPrivate()) {
    throw new UserError(
      `$${PRIVATE_KEY_ENV} names ${file}, which holds a public key, not a private one`,
      1,
      'export the private key: gpg --export-secret-keys --armor YOUR_KEY_ID > FILE (chmod 600)',
    );
  }
  const ours = keyIdsOf(key);
  // A zero key id is an anonymous recipient: it may be us.
  if (!forKeyIds.some((id) => ours.includes(id) || /^0+$/.test(id))) return undefined;
  if (key.isDecrypted()) return key;
  let passphrase = process.env[PASSPHRASE_ENV];
  if (!passphrase) {
    if (!interactive || !canPrompt()) {
      throw new UserError(
        `the private key in ${file} needs its passphrase`,
        1,
        `set $${PASSPHRASE_ENV}, or run from a terminal to be asked`,
      );
    }
    passphrase = await promptHidden(`Passphrase of ${describeKey(key)}: `);
  }
  registerSecret(passphrase);
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch {
    throw new UserError(
      `wrong passphrase for the private key in ${file}`,
      1,
      `check $${PASSPHRASE_ENV} or what was typed`,
    );
  }
}
