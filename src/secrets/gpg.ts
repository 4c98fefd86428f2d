/**
 * The user's own gpg, for secrets encrypted to team members' keys (as SOPS users know it): when no
 * password is at hand, the local `gpg` is asked to decrypt the message's session key with whatever it
 * has, its keyring, gpg-agent, a smartcard or YubiKey, pinentry for the passphrase. The private key
 * never leaves gpg; Verdandi then decrypts the data itself with that session key (so a damaged file is
 * told apart from a key that does not open it, exactly as with a password).
 *
 * `$VERDANDI_PGP_KEY` (a private key file) stays for CI, where there is no keyring.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { UserError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';

/** gpg's home: `$GNUPGHOME`, else `~/.gnupg`. */
export function gpgHome(): string {
  return process.env.GNUPGHOME || join(homedir(), '.gnupg');
}

/**
 * Key ids (16 hex digits, lowercase, as openpgp gives them) of the secret keys and subkeys gpg has:
 * in its keyring or on a card. None when gpg is not installed or the user has no gpg home (it is not
 * created just to look).
 */
export function gpgSecretKeyIds(): string[] {
  if (!existsSync(gpgHome())) return [];
  const listed = spawnSync('gpg', ['--batch', '--with-colons', '--list-secret-keys'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 30_000,
  });
  if (listed.status !== 0 || typeof listed.stdout !== 'string') return [];
  return (
    listed.stdout
      .split('\n')
      .map((line) => line.split(':'))
      // Field 15 is `#` for a secret part gpg does not have (an offline primary key): not usable.
      .filter(
        (fields) =>
          (fields[0] === 'sec' || fields[0] === 'ssb') &&
          /^[0-9A-F]{16}$/i.test(fields[4] ?? '') &&
          fields[14] !== '#',
      )
      .map((fields) => fields[4].toLowerCase())
  );
}

/** The terminal pinentry should use when gpg's caller has one (gpg cannot tell: its stdin is a pipe). */
function terminalName(): string | undefined {
  if (process.env.GPG_TTY) return process.env.GPG_TTY;
  if (!process.stdin.isTTY) return undefined;
  const tty = spawnSync('tty', { stdio: ['inherit', 'pipe', 'ignore'], encoding: 'utf8' });
  return tty.status === 0 ? tty.stdout.trim() : undefined;
}

/** gpg's error codes (the low 16 bits of the numbers in its ERROR/FAILURE status lines) we explain. */
const GPG_ERR_BAD_PASSPHRASE = 11;
const GPG_ERR_NO_PIN_ENTRY = 85;
const GPG_ERR_CANCELED = 99;

/** gpg could not give the session key (a locked key it may not ask for, a wrong passphrase, no card). */
export class GpgError extends UserError {}

/** What went wrong, from gpg's status lines (never from its log, which holds the session key). */
function failure(status: string, shown: string, interactive: boolean): GpgError {
  const codes = [...status.matchAll(/^\[GNUPG:\] (?:ERROR|FAILURE) \S+ (\d+)/gm)].map(
    (m) => Number(m[1]) & 0xffff,
  );
  const retry = `the file was not changed; or set $VERDANDI_PGP_KEY to a private key file`;
  if (/^\[GNUPG:\] BAD_PASSPHRASE/m.test(status) || codes.includes(GPG_ERR_BAD_PASSPHRASE)) {
    return new GpgError(
      `gpg could not unlock your key for ${shown}: wrong passphrase`,
      1,
      `try again; ${retry}`,
    );
  }
  if (codes.includes(GPG_ERR_CANCELED)) {
    return new GpgError(`gpg: entering the passphrase for ${shown} was cancelled`, 1, retry);
  }
  if (codes.includes(GPG_ERR_NO_PIN_ENTRY) || !interactive) {
    return new GpgError(
      `gpg needs the passphrase of your key to open ${shown}, and cannot ask for it here`,
      1,
      `run from a terminal (or after unlocking the key in gpg-agent); ${retry}`,
    );
  }
  return new GpgError(
    `gpg could not decrypt the session key of ${shown} with your key`,
    1,
    `check that the key (or its card) is available: gpg --list-secret-keys; ${retry}`,
  );
}

/**
 * Asks gpg for the session key of the `armored` message. Its pinentry asks for the passphrase when the
 * agent does not have it, unless `interactive` is false (then only an unlocked key or a card works).
 * gpg tries the public-key packets first (Verdandi writes them first), so it asks for the key's
 * passphrase, not for the file's password.
 */
export async function gpgSessionKey(
  armored: string,
  { shown, interactive }: { shown: string; interactive: boolean },
): Promise<openpgp.SessionKey> {
  const args = [
    '--batch',
    '--no-tty',
    '--status-fd',
    '1',
    '--show-session-key',
    '--yes',
    '--output',
    '/dev/null',
    ...(interactive ? [] : ['--pinentry-mode', 'error']),
    '--decrypt',
  ];
  const tty = terminalName();
  const env = tty ? { ...process.env, GPG_TTY: tty } : process.env;
  const status = await new Promise<string>((resolve, reject) => {
    // stderr is gpg's log: it repeats the session key, so it is never read.
    const child = spawn('gpg', args, { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', () => resolve(out));
    child.stdin.on('error', () => {});
    child.stdin.end(armored);
  });
  const found = status.match(/^\[GNUPG:\] SESSION_KEY (\d+):([0-9A-Fa-f]+)$/m);
  if (!found) throw failure(status, shown, interactive);
  registerSecret(found[2]);
  const algorithm = openpgp.enums.read(
    openpgp.enums.symmetric,
    Number(found[1]),
  ) as openpgp.enums.symmetricNames;
  const data = Uint8Array.from(Buffer.from(found[2], 'hex'));
  return { data, algorithm };
}
