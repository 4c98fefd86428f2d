/**
 * Reads Ansible Vault files (`$ANSIBLE_VAULT;1.1;AES256`, and 1.2 with a vault id), the way in for teams
 * leaving Ansible. The format, as Ansible writes it:
 *
 *   $ANSIBLE_VAULT;1.1;AES256            header (1.2 adds `;<vault-id>`)
 *   <hex, in lines of 80 characters>     hex of: hex(salt) "\n" hex(hmac) "\n" hex(ciphertext)
 *
 *   keys   = PBKDF2-HMAC-SHA256(password, salt, 10000 iterations, 80 bytes)
 *            → AES key (32 bytes), HMAC key (32 bytes), counter IV (16 bytes)
 *   hmac   = HMAC-SHA256(HMAC key, ciphertext), checked before decrypting
 *   plain  = AES-256-CTR(AES key, IV, ciphertext), then PKCS#7 padding (16-byte blocks) removed
 *
 * A plain YAML file whose values are vaulted one by one (`password: !vault |` blocks) is read too.
 */
import { execFileSync } from 'node:child_process';
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import yaml from 'js-yaml';
import { UserError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';
import { loadYaml } from '../util/yaml.js';
import { readPasswordFile } from './password.js';
import { canPrompt, promptHidden } from './tty.js';

const HEADER = /^\$ANSIBLE_VAULT;(1\.[12]);AES256(;[^\r\n]*)?\r?\n/;

export function isAnsibleVault(text: string): boolean {
  return HEADER.test(text);
}

function hexToBytes(hex: string, shown: string): Buffer {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw notAVault(shown);
  return Buffer.from(hex, 'hex');
}

function notAVault(shown: string): UserError {
  return new UserError(
    `${shown} is not a readable Ansible Vault file (damaged or truncated)`,
    1,
    'check it with: ansible-vault view ' + shown,
  );
}

/** Decrypts one vaulted text (a whole file, or one `!vault` value); returns the plaintext. */
export function decryptAnsibleVault(vaultText: string, password: string, shown: string): string {
  const header = HEADER.exec(vaultText);
  if (!header) throw notAVault(shown);
  const body = hexToBytes(vaultText.slice(header[0].length).replace(/\s+/g, ''), shown).toString('ascii');
  const parts = body.split('\n');
  if (parts.length !== 3) throw notAVault(shown);
  const [salt, hmac, ciphertext] = parts.map((p) => hexToBytes(p, shown));
  if (hmac.length !== 32 || ciphertext.length === 0 || ciphertext.length % 16 !== 0) throw notAVault(shown);

  const derived = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, 10000, 80, 'sha256');
  const aesKey = derived.subarray(0, 32);
  const hmacKey = derived.subarray(32, 64);
  const iv = derived.subarray(64, 80);

  const expected = createHmac('sha256', hmacKey).update(ciphertext).digest();
  if (!timingSafeEqual(expected, hmac)) {
    throw new UserError(
      `wrong Ansible Vault password for ${shown} (or the file was altered)`,
      1,
      'check the vault password (--ansible-vault-password-file FILE or $ANSIBLE_VAULT_PASSWORD_FILE)',
    );
  }
  const decipher = createDecipheriv('aes-256-ctr', aesKey, iv);
  const padded = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  const padLength = padded[padded.length - 1];
  if (
    padLength < 1 ||
    padLength > 16 ||
    !padded.subarray(padded.length - padLength).every((b) => b === padLength)
  ) {
    throw notAVault(shown);
  }
  return padded.subarray(0, padded.length - padLength).toString('utf8');
}

/**
 * The YAML text of an Ansible secrets file: a wholly vaulted file gives its plaintext as written; a
 * plain YAML file with `!vault` values gives the same map with those values decrypted.
 */
export function ansibleVaultToYaml(fileText: string, password: string, shown: string): string {
  if (isAnsibleVault(fileText)) return decryptAnsibleVault(fileText, password, shown);
  if (!fileText.includes('!vault')) {
    throw new UserError(
      `${shown} is not encrypted with Ansible Vault (no $ANSIBLE_VAULT header, no !vault value)`,
      1,
      'a plain YAML file is adopted with: verdandi secrets encrypt <env> FILE',
    );
  }
  const vaultType = new yaml.Type('!vault', {
    kind: 'scalar',
    construct: (data: string) => {
      const value = decryptAnsibleVault(data, password, shown);
      registerSecret(value);
      return value;
    },
  });
  const schema = yaml.CORE_SCHEMA.extend([vaultType]);
  let parsed: unknown;
  try {
    parsed = loadYaml(fileText, { schema });
  } catch (err) {
    if (err instanceof UserError) throw err;
    const e = err as InstanceType<typeof yaml.YAMLException>;
    throw new UserError(
      `${shown}:${(e.mark?.line ?? 0) + 1}:${(e.mark?.column ?? 0) + 1}: invalid YAML: ${e.reason}`,
    );
  }
  return yaml.dump(parsed ?? {}, { schema: yaml.CORE_SCHEMA, lineWidth: -1 });
}

export const ANSIBLE_PASSWORD_FILE_ENV = 'ANSIBLE_VAULT_PASSWORD_FILE';

/**
 * The Ansible Vault password: from `--ansible-vault-password-file F`, Ansible's own
 * `$ANSIBLE_VAULT_PASSWORD_FILE`, or a prompt. As in Ansible, an executable password file is a script
 * whose output is the password.
 */
export async function obtainAnsiblePassword({
  passwordFile,
  interactive,
  vaultFileShown,
}: {
  passwordFile?: string;
  interactive: boolean;
  vaultFileShown: string;
}): Promise<string> {
  const file = passwordFile || process.env[ANSIBLE_PASSWORD_FILE_ENV];
  if (file) {
    if (existsSync(file) && (statSync(file).mode & 0o111) !== 0 && statSync(file).isFile()) {
      let output: string;
      try {
        output = execFileSync(file, [], { encoding: 'utf8', stdio: ['inherit', 'pipe', 'inherit'] });
      } catch {
        throw new UserError(
          `the Ansible vault password script ${file} failed`,
          1,
          'run it by hand to see why',
        );
      }
      const password = output.trim();
      if (!password) throw new UserError(`the Ansible vault password script ${file} printed nothing`);
      registerSecret(password);
      return password;
    }
    return readPasswordFile(file, file, { wholeFileTrimmed: true });
  }
  if (!interactive || !canPrompt()) {
    throw new UserError(
      `no Ansible Vault password for ${vaultFileShown}`,
      1,
      `pass --ansible-vault-password-file FILE or set $${ANSIBLE_PASSWORD_FILE_ENV}`,
    );
  }
  const password = await promptHidden(`Ansible Vault password for ${vaultFileShown}: `);
  registerSecret(password);
  return password;
}
