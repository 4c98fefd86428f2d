/**
 * `secrets/<env>.recipients`: the public keys an environment's secrets are encrypted to, one key file
 * per line, relative to `secrets/keys/` (`alice.asc`; `keys/alice.asc` and a YAML list `- alice.asc` are
 * read too). Blank lines and `#` comments are ignored. Adding a team member is: add their key file, add
 * a line, `verdandi secrets rekey <env>`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type * as openpgp from 'openpgp';
import { UserError } from '../util/errors.js';
import type { SecretsPaths } from './paths.js';
import { displayPath } from './paths.js';
import { describeKey, fingerprintOf, keyIdsOf, readKeysFile } from './pgp.js';

export interface Recipient {
  /** The key file, as shown to the user (`secrets/keys/alice.asc`). */
  shown: string;
  key: openpgp.PublicKey;
}

/** The recipients of the environment; [] when it has no recipients file. */
export async function readRecipients(paths: SecretsPaths): Promise<Recipient[]> {
  if (!existsSync(paths.recipients)) return [];
  const listShown = displayPath(paths, paths.recipients);
  const recipients: Recipient[] = [];
  const lines = readFileSync(paths.recipients, 'utf8').split('\n');
  for (const [index, line] of lines.entries()) {
    const entry = line
      .replace(/#.*/, '')
      .trim()
      .replace(/^-\s+/, '')
      .replace(/^["']|["']$/g, '');
    if (!entry) continue;
    const where = `${listShown}:${index + 1}`;
    const file = resolveKeyFile(paths, entry);
    const rel = relative(paths.keysDir, file);
    if (isAbsolute(entry) || rel.startsWith('..') || isAbsolute(rel)) {
      throw new UserError(
        `${where}: ${entry} is not under secrets/keys/`,
        1,
        'put the key file in secrets/keys/',
      );
    }
    const shown = displayPath(paths, file);
    if (!existsSync(file)) {
      throw new UserError(
        `${where}: key file ${shown} does not exist`,
        1,
        "export the member's public key there: gpg --export --armor THEIR_KEY_ID > " + shown,
      );
    }
    for (const key of await readPublicKeys(file, shown, where)) recipients.push({ shown, key });
  }
  return recipients;
}

function resolveKeyFile(paths: SecretsPaths, entry: string): string {
  if (entry.startsWith('keys/')) return resolve(paths.dir, entry);
  if (entry.startsWith('secrets/keys/')) return resolve(paths.projectDir, entry);
  return resolve(paths.keysDir, entry);
}

async function readPublicKeys(file: string, shown: string, where: string): Promise<openpgp.PublicKey[]> {
  let keys: openpgp.Key[];
  try {
    keys = await readKeysFile(file);
  } catch {
    throw new UserError(
      `${where}: ${shown} holds no readable OpenPGP public key`,
      1,
      `export it again: gpg --export --armor THEIR_KEY_ID > ${shown}`,
    );
  }
  for (const key of keys) {
    if (key.isPrivate()) {
      throw new UserError(
        `${shown} holds a PRIVATE key: it must never be in the repository`,
        1,
        `replace it with the public key (gpg --export --armor ${fingerprintOf(key)} > ${shown}); if it was ` +
          'committed, consider that key compromised and have its owner make a new one',
      );
    }
    try {
      await key.getEncryptionKey();
    } catch (err) {
      throw new UserError(
        `${shown}: the key ${describeKey(key)} cannot encrypt (${(err as Error).message})`,
        1,
        'it may be expired or revoked: ask its owner for a current public key',
      );
    }
  }
  return keys as openpgp.PublicKey[];
}

/** The key files of `recipients` that a message encrypted to `keyIds` was meant for (for messages). */
export function recipientsMatching(recipients: Recipient[], keyIds: string[]): string[] {
  return recipients.filter((r) => keyIdsOf(r.key).some((id) => keyIds.includes(id))).map((r) => r.shown);
}

/** The key files in secrets/keys/, whatever the recipients files say (to name who can open a file). */
export async function knownKeys(paths: SecretsPaths): Promise<Recipient[]> {
  if (!existsSync(paths.keysDir)) return [];
  const found: Recipient[] = [];
  for (const name of readdirSync(paths.keysDir)) {
    const file = join(paths.keysDir, name);
    try {
      for (const key of await readKeysFile(file))
        found.push({ shown: displayPath(paths, file), key: key as openpgp.PublicKey });
    } catch {
      // Not a key file (a README...): nothing to name.
    }
  }
  return found;
}
