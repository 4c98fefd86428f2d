/**
 * `verdandi secrets ...`: the encrypted secrets of an environment (`secrets/<env>.yml.asc`). The
 * implementation (and openpgp with it) is imported only when a secrets command runs.
 */
import type { Command } from 'commander';

const implementation = () => import('../../secrets/commands.js');

/** Options every command that reads or writes a secrets file takes. */
function withVaultOptions(command: Command): Command {
  return command
    .option(
      '--project-dir <dir>',
      'the project directory, where secrets/ is (default: the current directory)',
    )
    .option('--vault-password-file <file>', 'read the vault password from the first line of this file');
}

/** Options of the commands that rewrite the secrets file, which they do under its lock. */
function withWriteOptions(command: Command): Command {
  return withVaultOptions(command).option(
    '--lock-timeout <seconds>',
    'wait this long while another command writes the same secrets file (default: $VERDANDI_SECRETS_LOCK_TIMEOUT or 60)',
  );
}

export function register(program: Command): void {
  const secrets = program
    .command('secrets')
    .description(
      'encrypted secrets of an environment: secrets/<env>.yml.asc, an OpenPGP message gpg reads too',
    )
    .addHelpText(
      'after',
      `
The vault password comes from --vault-password-file, secrets/<env>.vault-password, $VERDANDI_VAULT_PASSWORD,
or a prompt. Files encrypted to public keys (secrets/<env>.recipients) are opened with the private key file
named by $VERDANDI_PGP_KEY (passphrase: $VERDANDI_PGP_PASSPHRASE or a prompt).`,
    );

  withWriteOptions(secrets.command('create <env>'))
    .description('create the secrets of <env> in your editor ($VISUAL, $EDITOR or vi)')
    .action(async (env: string, opts) => (await implementation()).createSecrets(env, opts));

  withWriteOptions(secrets.command('edit <env>'))
    .description('edit the secrets in your editor; unchanged text leaves the file byte for byte as it was')
    .option('--allow-empty', 'save the edit even when it leaves no key (removes every secret)')
    .action(async (env: string, opts) => (await implementation()).editSecrets(env, opts));

  withVaultOptions(secrets.command('view <env>'))
    .description('print the decrypted secrets (YAML) on stdout')
    .action(async (env: string, opts) => (await implementation()).viewSecrets(env, opts));

  withVaultOptions(secrets.command('decrypt <env>'))
    .description('print the decrypted secrets on stdout (never into a file inside the project)')
    .action(async (env: string, opts) => (await implementation()).viewSecrets(env, opts));

  withVaultOptions(secrets.command('get <env> <key>'))
    .description('print one value (a top-level key, or a dotted path like db.password)')
    .action(async (env: string, key: string, opts) => (await implementation()).getSecret(env, key, opts));

  withWriteOptions(secrets.command('set <env> <key>'))
    .description('set a top-level key to the value read from stdin (typed without echo on a terminal)')
    .option('--yaml', 'parse the value as YAML (a number, a list, a map) instead of storing it as a string')
    .action(async (env: string, key: string, opts) => (await implementation()).setSecret(env, key, opts));

  withWriteOptions(secrets.command('encrypt <env> <file>'))
    .description('adopt a plain YAML file as the secrets of <env>')
    .option('--force', 'replace the existing secrets of <env>')
    .option('--remove-plain', 'overwrite and remove the plain file once encrypted')
    .action(async (env: string, file: string, opts) => (await implementation()).encryptFile(env, file, opts));

  withWriteOptions(secrets.command('rekey <env>'))
    .description(
      'encrypt the same secrets again: to a new password and/or the keys now in secrets/<env>.recipients',
    )
    .option('--new-vault-password-file <file>', 'the new password, from the first line of this file')
    .option('--keep-password', 'keep the current password (to apply a change of recipients only)')
    .option('--no-password', "no password any more: the recipients' keys only")
    .action(async (env: string, opts) => (await implementation()).rekeySecrets(env, opts));

  withWriteOptions(secrets.command('import-ansible-vault <env> <file>'))
    .description('import an Ansible Vault file ($ANSIBLE_VAULT;1.1;AES256, or YAML with !vault values)')
    .option(
      '--ansible-vault-password-file <file>',
      'its vault password (default: $ANSIBLE_VAULT_PASSWORD_FILE, or a prompt)',
    )
    .option('--force', 'replace the existing secrets of <env>')
    .action(async (env: string, file: string, opts) =>
      (await implementation()).importAnsibleVault(env, file, opts),
    );

  secrets
    .command('git-setup')
    .description(
      'make git diff show decrypted secrets, and refuse commits of plaintext secrets or password files',
    )
    .option(
      '--project-dir <dir>',
      'the project directory, where secrets/ is (default: the current directory)',
    )
    .option('--textconv-command <command>', 'the command git runs to decrypt (default: this verdandi)')
    .action(async (opts) => (await implementation()).setupGit(opts));

  // Run by git (see git-setup), not by people.
  withVaultOptions(secrets.command('textconv <file>', { hidden: true })).action(async (file: string, opts) =>
    (await implementation()).textconv(file, opts),
  );
}
