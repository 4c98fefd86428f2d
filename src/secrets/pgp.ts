/**
 * The OpenPGP side of the vault, with the `openpgp` package: one armored message holding the YAML text,
 * encrypted to passwords and/or public keys, that `gpg --decrypt` reads too.
 */
import { createDecipheriv } from 'node:crypto';
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
  /** The start of the encrypted data packet's body (its version byte first), for `sessionKeyFits`. */
  dataStart?: Uint8Array;
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
  const { data } = await openpgp.unarmor(armored);
  const dataStart = data instanceof Uint8Array ? encryptedDataStart(data) : undefined;
  return { message, passwordProtected, keyIds, dataStart };
}

/** OpenPGP packet tag of the encrypted data (Sym. Encrypted and Integrity Protected Data, RFC 4880 5.13). */
const SEIPD_TAG = 18;

/**
 * The body of the message's encrypted data packet, as far as the binary holds it (a partial-length
 * packet: its first part, which holds the prefix). Undefined when the packets cannot be walked.
 */
export function encryptedDataStart(binary: Uint8Array): Uint8Array | undefined {
  const view = new DataView(binary.buffer, binary.byteOffset, binary.byteLength);
  let at = 0;
  while (at + 1 < binary.length) {
    const header = binary[at];
    if ((header & 0x80) === 0) return undefined;
    let tag: number;
    let length: number;
    let bodyAt: number;
    let partial = false;
    if (header & 0x40) {
      // New format: the length is in the next one, two or five octets, or is the first partial one.
      tag = header & 0x3f;
      const first = binary[at + 1];
      if (first < 192) [length, bodyAt] = [first, at + 2];
      else if (first < 224) [length, bodyAt] = [(first - 192) * 256 + (binary[at + 2] ?? 0) + 192, at + 3];
      else if (first === 255 && at + 6 <= binary.length) [length, bodyAt] = [view.getUint32(at + 2), at + 6];
      else if (first !== 255) [length, bodyAt, partial] = [2 ** (first & 0x1f), at + 2, true];
      else return undefined;
    } else {
      // Old format: the length type is in the header's two low bits; type 3 runs to the end.
      tag = (header >> 2) & 0x0f;
      const type = header & 0x03;
      if (type === 0) [length, bodyAt] = [binary[at + 1], at + 2];
      else if (type === 1 && at + 3 <= binary.length) [length, bodyAt] = [view.getUint16(at + 1), at + 3];
      else if (type === 2 && at + 5 <= binary.length) [length, bodyAt] = [view.getUint32(at + 1), at + 5];
      else if (type === 3) [length, bodyAt] = [binary.length - at - 1, at + 1];
      else return undefined;
    }
    if (tag === SEIPD_TAG) return binary.subarray(bodyAt, Math.min(bodyAt + length, binary.length));
    // Session key packets come whole before the data; a partial one here is not a message we know.
    if (partial) return undefined;
    at = bodyAt + length;
  }
  return undefined;
}

/** The CFB ciphers Node has, by OpenPGP name (every file of Verdandi, and of gpg since 2.1, uses AES). */
const CFB_CIPHERS: Record<string, { cipher: string; blockSize: number }> = {
  aes128: { cipher: 'aes-128-cfb', blockSize: 16 },
  aes192: { cipher: 'aes-192-cfb', blockSize: 16 },
  aes256: { cipher: 'aes-256-cfb', blockSize: 16 },
  tripledes: { cipher: 'des-ede3-cfb', blockSize: 8 },
  camellia128: { cipher: 'camellia-128-cfb', blockSize: 16 },
  camellia192: { cipher: 'camellia-192-cfb', blockSize: 16 },
  camellia256: { cipher: 'camellia-256-cfb', blockSize: 16 },
};

/**
 * Key sizes (bytes) of OpenPGP's symmetric ciphers. A wrong password "decrypts" a session key packet to
 * a random cipher byte and random key: when that byte names a cipher Node cannot check (CAST5, IDEA,
 * Blowfish, Twofish), the key's length still tells it apart, most of the time.
 */
const KEY_SIZES: Record<string, number> = {
  idea: 16,
  tripledes: 24,
  cast5: 16,
  blowfish: 16,
  aes128: 16,
  aes192: 24,
  aes256: 32,
  twofish: 32,
  camellia128: 16,
  camellia192: 24,
  camellia256: 32,
};

/**
 * Does `sessionKey` open the message's data? Version 1 data starts with a random block whose last two
 * bytes are repeated (RFC 4880 5.13): a wrong key fails this check 65,535 times in 65,536, the right
 * key always passes it, and damage after the prefix does not change it. It is the check behind gpg's
 * "Bad session key", which tells a file encrypted for another password or key from a damaged one
 * (that fails the integrity check at the end). Undefined when it cannot tell (AEAD data, a cipher Node
 * lacks, data cut before the prefix).
 */
export function sessionKeyFits(sealed: SealedMessage, sessionKey: openpgp.SessionKey): boolean | undefined {
  const data = sealed.dataStart;
  const size = typeof sessionKey.algorithm === 'string' ? KEY_SIZES[sessionKey.algorithm] : undefined;
  if (size !== undefined && sessionKey.data.length !== size) return false;
  const algorithm = typeof sessionKey.algorithm === 'string' ? CFB_CIPHERS[sessionKey.algorithm] : undefined;
  if (data?.[0] !== 1 || !algorithm) return undefined;
  const { cipher, blockSize } = algorithm;
  const encrypted = data.subarray(1, 1 + blockSize + 2);
  if (encrypted.length < blockSize + 2) return undefined;
  let prefix: Buffer;
  try {
    const decipher = createDecipheriv(cipher, sessionKey.data, Buffer.alloc(blockSize));
    prefix = Buffer.concat([decipher.update(encrypted), decipher.final()]);
  } catch {
    return false; // A key of the wrong length for its cipher: not this message's key.
  }
  return prefix[blockSize - 2] === prefix[blockSize] && prefix[blockSize - 1] === prefix[blockSize + 1];
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
    const keys = await openpgp.decryptSessionKeys({
      message: sealed.message,
      passwords: [password],
      config: PGP_CONFIG,
    });
    // A file of `gpg --symmetric` derives the key from the password: any password "decrypts" it.
    return (keys as openpgp.SessionKey[]).some((key) => sessionKeyFits(sealed, key) !== false);
  } catch {
    return false;
  }
}

export async function decryptWithPassword(
  sealed: SealedMessage,
  password: string,
  { shown, origin }: { shown: string; origin: string },
): Promise<string> {
  const { sessionKeys, checked } = await openSessionKeys(
    sealed,
    { passwords: [password] },
    () =>
      new UserError(
        `wrong password for ${shown} (password from ${origin}), or a file encrypted for another password or key`,
        1,
        'check the password and where it comes from; a file encrypted elsewhere (another project, ' +
          'gpg --symmetric) opens only with the password it was made with; the file was not changed',
      ),
  );
  return decryptData(
    sealed,
    sessionKeys,
    shown,
    checked ? undefined : `the password is wrong (password from ${origin})`,
  );
}

export async function decryptWithKey(
  sealed: SealedMessage,
  privateKey: openpgp.PrivateKey,
  shown: string,
): Promise<string> {
  const { sessionKeys, checked } = await openSessionKeys(
    sealed,
    { decryptionKeys: privateKey },
    () =>
      new UserError(
        `the private key ${describeKey(privateKey)} could not open ${shown} (a file encrypted for other keys or a password)`,
        1,
        `check $${PRIVATE_KEY_ENV}; ask a team member to add your public key to the recipients and run rekey`,
      ),
  );
  return decryptData(
    sealed,
    sessionKeys,
    shown,
    checked ? undefined : `the key ${describeKey(privateKey)} is not one it was encrypted for`,
  );
}

/** Decrypts with a session key another program (the user's gpg) decrypted. */
export async function decryptWithSessionKey(
  sealed: SealedMessage,
  sessionKey: openpgp.SessionKey,
  shown: string,
): Promise<string> {
  if (sessionKeyFits(sealed, sessionKey) === false) {
    throw new UserError(
      `the session key gpg gave does not open ${shown} (a file encrypted for another key or password)`,
      1,
      'check which keys the file is encrypted to (gpg --list-packets); the file was not changed',
    );
  }
  return decryptData(sealed, [sessionKey], shown);
}

/**
 * Decrypts the session key first, so a wrong password or key (no session key, or one that fails the
 * quick check of `sessionKeyFits`) is told apart from damaged data (the key fits, but the data fails
 * its integrity check).
 */
async function openSessionKeys(
  sealed: SealedMessage,
  credentials: { passwords?: string[]; decryptionKeys?: openpgp.PrivateKey },
  wrongCredentials: () => UserError,
): Promise<{ sessionKeys: openpgp.SessionKey[]; checked: boolean }> {
  let sessionKeys: openpgp.SessionKey[];
  try {
    const keys = await openpgp.decryptSessionKeys({
      message: sealed.message,
      ...credentials,
      config: PGP_CONFIG,
    });
    // `algorithm` is null only for AEAD (SEIPD v2) messages, where the data packet names it itself.
    sessionKeys = (keys as openpgp.SessionKey[]).filter((key) => sessionKeyFits(sealed, key) !== false);
  } catch {
    throw wrongCredentials();
  }
  if (sessionKeys.length === 0) throw wrongCredentials();
  // Checked: every key passed the quick check, so a later integrity failure is damage, not a wrong key.
  return { sessionKeys, checked: sessionKeys.every((key) => sessionKeyFits(sealed, key) === true) };
}

async function decryptData(
  sealed: SealedMessage,
  sessionKeys: openpgp.SessionKey[],
  shown: string,
  /** Set when the quick check could not tell a wrong credential: the failure then names both causes. */
  maybeWrong?: string,
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
    if (maybeWrong) {
      throw new UserError(
        `${shown} could not be decrypted: either ${maybeWrong} (or the file was encrypted for another password or key), or its data is corrupted or truncated (integrity check failed)`,
        1,
        `check the password or key first; if it is right, restore the file from git (git checkout -- ${shown}) or from a backup`,
      );
    }
    throw new UserError(
      `${shown} could not be decrypted: the password or key is right, but its data is corrupted or truncated (integrity check failed)`,
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
