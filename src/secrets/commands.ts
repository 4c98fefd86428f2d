/**
 * The `verdandi secrets ...` commands. Each takes the `<env>` name and the options of the command line;
 * the project directory (where `secrets/` lives) is the current directory unless `projectDir` is given.
 *
 * What they print never contains a secret value, except `view`, `decrypt` and `get`, whose purpose is
 * to print them (and which refuse to write into a file inside the project).
 */
import { existsSync, fstatSync, readFileSync, realpathSync } from 'node:fs';
import { basename, isAbsolute, join, relative } from 'node:path';
import type yaml from 'js-yaml';
import { UserError } from '../util/errors.js';
import { redact, registerSecret } from '../util/redact.js';
import { loadYaml } from '../util/yaml.js';
import { ansibleVaultToYaml, obtainAnsiblePassword } from './ansible-vault.js';
import { editText, privateTempRoot, removeEditLeftovers, wipeFile } from './editor.js';
import { gitSetup } from './git-setup.js';
import { warnShortSecrets } from './index.js';
import { lockTimeoutSeconds, withFileLock } from './lock.js';
import { PASSWORD_ENV, type Password, readPasswordFile } from './password.js';
import { displayPath, type SecretsPaths, secretsPaths } from './paths.js';
import { readRecipients } from './recipients.js';
import { canPrompt, promptHidden } from './tty.js';
import {
  currentPassword,
  decryptArmored,
  newPassword,
  type OpenedSecrets,
  openSecrets,
  saveSecrets,
  type Targets,
  targetsFor,
  targetsOf,
  type VaultOptions,
  writeFileAtomically,
} from './vault.js';
import { formatValue, getKey, parseSecretsOf, parseSecretsYaml, setTopLevelKey } from './yaml.js';

export interface CommonOptions {
  projectDir?: string;
  vaultPasswordFile?: string;
  /** May prompts be shown (when on a terminal)? Default true. */
  interactive?: boolean;
}

/** Options of the commands that rewrite the secrets file. */
export interface WriteOptions extends CommonOptions {
  /** `--lock-timeout`: seconds to wait while another command writes the file (see lock.ts). */
  lockTimeout?: string;
}

interface Context {
  paths: SecretsPaths;
  options: VaultOptions;
  /** The secrets file as shown in messages. */
  shown: string;
}

function contextOf(env: string, opts: CommonOptions): Context {
  const paths = secretsPaths(opts.projectDir ?? process.cwd(), env);
  return {
    paths,
    options: { vaultPasswordFile: opts.vaultPasswordFile, interactive: opts.interactive ?? true },
    shown: displayPath(paths, paths.asc),
  };
}

/**
 * What every secrets command does first: wipe the plaintext that killed edits left in RAM (saying how
 * many on stderr), then name its files.
 */
function startCommand(env: string, opts: CommonOptions): Context {
  const removed = removeEditLeftovers();
  if (removed > 0) {
    process.stderr.write(
      `note: removed ${removed} plaintext cop${removed === 1 ? 'y' : 'ies'} of secrets left in ` +
        `${privateTempRoot()} by a secrets edit or create that was killed\n`,
    );
  }
  return contextOf(env, opts);
}

/** Runs a read-modify-write of the secrets file while holding its lock: no concurrent update is lost. */
function underLock<T>(ctx: Context, opts: WriteOptions, fn: () => Promise<T>): Promise<T> {
  const timeoutSeconds = lockTimeoutSeconds(opts.lockTimeout);
  return withFileLock(ctx.paths.asc, { shown: ctx.shown, timeoutSeconds }, fn);
}

function say(line: string): void {
  process.stdout.write(`${redact(line)}\n`);
}

/** Registers every value of the opened file, so no later message can print one. */
function registerValues(text: string, shown: string): void {
  try {
    const secrets = parseSecretsYaml(text);
    registerSecret(secrets);
    warnShortSecrets(secrets, shown);
  } catch {
    // Invalid YAML (written by hand with gpg): the edit will fix it; nothing parsed to register.
  }
}

async function openAndRegister(ctx: Context): Promise<OpenedSecrets> {
  const opened = await openSecrets(ctx.paths, ctx.options);
  registerValues(opened.text, ctx.shown);
  return opened;
}

function editHint(ctx: Context): string {
  return `fix it with: verdandi secrets edit ${ctx.paths.env}`;
}

/** For the commands that write a whole new file: an existing one is replaced only with --force. */
function refuseExisting(ctx: Context, force: boolean | undefined): void {
  if (existsSync(ctx.paths.asc) && !force) {
    throw new UserError(
      `${ctx.shown} already exists`,
      1,
      `change it with: verdandi secrets edit ${ctx.paths.env} (or pass --force to replace it)`,
    );
  }
}

/**
 * Decrypted secrets go to a terminal or a pipe, never into a file inside the project (where it could
 * be committed): `verdandi secrets decrypt staging > secrets/staging.yml` is refused.
 */
function refuseStdoutInsideProject(paths: SecretsPaths): void {
  let target: string;
  try {
    if (!fstatSync(1).isFile()) return;
    target = realpathSync('/proc/self/fd/1');
  } catch {
    return; // Not a file, or no /proc to tell where it is.
  }
  const rel = relative(realpathSync(paths.projectDir), target);
  if (rel && !rel.startsWith('..') && !isAbsolute(rel)) {
    throw new UserError(
      `refusing to write decrypted secrets into ${rel}, a file inside the project`,
      1,
      'print them to the terminal or a pipe; if you must have a file, put it outside the repository and remove it after',
    );
  }
}

function template(env: string): string {
  return (
    `# Secrets of ${env}: a YAML map of key: value. Roles, templates and inventory vars read them as\n` +
    '# secrets.<key>; Verdandi shows their values as [secret] in its output.\n' +
    '# database_url: postgres://app:CHANGE-ME@localhost/app\n'
  );
}

export async function createSecrets(env: string, opts: WriteOptions): Promise<void> {
  const ctx = startCommand(env, opts);
  await underLock(ctx, opts, async () => {
    if (existsSync(ctx.paths.asc)) {
      throw new UserError(
        `${ctx.shown} already exists`,
        1,
        `change it with: verdandi secrets edit ${ctx.paths.env}`,
      );
    }
    // Credentials first, so a missing password does not throw away what was typed in the editor.
    const targets = await targetsFor(ctx.paths, ctx.options);
    const initial = template(ctx.paths.env);
    const text = (await editText(ctx.paths.env, initial, ctx.shown)) ?? initial;
    await saveSecrets(ctx.paths, text, targets);
    say(`created ${ctx.shown} (encrypted to ${targets.description})`);
  });
}

export async function editSecrets(env: string, opts: WriteOptions & { allowEmpty?: boolean }): Promise<void> {
  const ctx = startCommand(env, opts);
  await underLock(ctx, opts, async () => {
    const opened = await openAndRegister(ctx);
    const targets = await targetsFor(ctx.paths, ctx.options, opened);
    const edited = await editText(ctx.paths.env, opened.text, ctx.shown);
    if (edited === undefined) {
      say(`no change: ${ctx.shown} left as it was`);
      return;
    }
    registerValues(edited, ctx.shown);
    refuseEmptied(ctx, opened.text, edited, opts.allowEmpty === true);
    await saveSecrets(ctx.paths, edited, targets);
    say(`saved ${ctx.shown} (encrypted to ${targets.description})`);
  });
}

/**
 * An editor that saved an empty file (a crash, a wrong key in vi) would wipe every secret: an edit
 * that leaves no key where there were some is refused unless `--allow-empty` says it is meant.
 */
function refuseEmptied(ctx: Context, before: string, after: string, allowEmpty: boolean): void {
  if (allowEmpty || Object.keys(parseSecretsYaml(after)).length > 0) return;
  let had: number;
  try {
    had = Object.keys(parseSecretsYaml(before)).length;
  } catch {
    had = 1; // Invalid YAML written by hand with gpg: it held something.
  }
  if (had === 0) return;
  throw new UserError(
    `the edited secrets have no key left (there were ${had}): ${ctx.shown} was left as it was`,
    1,
    `to remove every secret, run: verdandi secrets edit ${ctx.paths.env} --allow-empty`,
  );
}

/** `view` and `decrypt`: the YAML text on stdout. */
export async function viewSecrets(env: string, opts: CommonOptions): Promise<void> {
  const ctx = startCommand(env, opts);
  refuseStdoutInsideProject(ctx.paths);
  const opened = await openAndRegister(ctx);
  process.stdout.write(opened.text);
}

export async function getSecret(env: string, key: string, opts: CommonOptions): Promise<void> {
  const ctx = startCommand(env, opts);
  refuseStdoutInsideProject(ctx.paths);
  const opened = await openAndRegister(ctx);
  const secrets = parseSecretsOf(opened.text, ctx.shown, editHint(ctx));
  const { found, value } = getKey(secrets, key);
  if (!found) {
    const keys = Object.keys(secrets);
    throw new UserError(
      `no key "${key}" in ${ctx.shown}`,
      1,
      keys.length ? `its keys are: ${keys.join(', ')}` : 'it has no keys yet: verdandi secrets set',
    );
  }
  process.stdout.write(formatValue(value));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The value to set: stdin (one final newline dropped, as `echo` adds one), or typed without echo. */
async function readValue(key: string, asYaml: boolean): Promise<unknown> {
  const text = process.stdin.isTTY
    ? await promptHidden(`Value of ${key}: `)
    : (await readStdin()).replace(/\r?\n$/, '');
  if (text === '') {
    throw new UserError(
      `no value for ${key}: stdin was empty`,
      1,
      `pipe it in: printf %s "$VALUE" | verdandi secrets set ENV ${key}`,
    );
  }
  registerSecret(text);
  if (!asYaml) return text;
  try {
    const value = loadYaml(text);
    registerSecret(value);
    return value;
  } catch (err) {
    const e = err as InstanceType<typeof yaml.YAMLException>;
    throw new UserError(
      `the value of ${key} is not valid YAML (--yaml): ${e.reason ?? 'parse error'}`,
      1,
      'drop --yaml to store the text as a string',
    );
  }
}

export async function setSecret(
  env: string,
  key: string,
  opts: WriteOptions & { yaml?: boolean },
): Promise<void> {
  const ctx = startCommand(env, opts);
  if (key.trim() === '') throw new UserError('the key is empty', 1, 'name it: verdandi secrets set ENV KEY');
  const value = await readValue(key, opts.yaml === true);
  warnShortSecrets({ [key]: value }, ctx.shown);
  // The file is read under the lock: a `set` running at the same time has saved its key by then.
  await underLock(ctx, opts, async () => {
    let text = '';
    let targets: Targets;
    if (existsSync(ctx.paths.asc)) {
      const opened = await openAndRegister(ctx);
      const secrets = parseSecretsOf(opened.text, ctx.shown, editHint(ctx));
      if (Object.hasOwn(secrets, key) && JSON.stringify(secrets[key]) === JSON.stringify(value)) {
        say(`no change: ${key} already has this value in ${ctx.shown}`);
        return;
      }
      text = opened.text;
      targets = await targetsFor(ctx.paths, ctx.options, opened);
    } else {
      targets = await targetsFor(ctx.paths, ctx.options);
    }
    await saveSecrets(ctx.paths, setTopLevelKey(text, key, value), targets);
    say(`set ${key} in ${ctx.shown} (encrypted to ${targets.description})`);
  });
}

export async function encryptFile(
  env: string,
  file: string,
  opts: WriteOptions & { force?: boolean; removePlain?: boolean },
): Promise<void> {
  const ctx = startCommand(env, opts);
  if (!existsSync(file))
    throw new UserError(`${file} does not exist`, 1, 'give the plain YAML file to encrypt');
  const text = readFileSync(file, 'utf8');
  const secrets = parseSecretsOf(text, file, `fix ${file}, then run this again`);
  registerSecret(secrets);
  warnShortSecrets(secrets, ctx.shown);
  await underLock(ctx, opts, async () => {
    refuseExisting(ctx, opts.force);
    const targets = await targetsFor(ctx.paths, ctx.options);
    await saveSecrets(ctx.paths, text, targets);
    say(`encrypted ${file} into ${ctx.shown} (encrypted to ${targets.description})`);
  });
  if (opts.removePlain) {
    wipeFile(file);
    say(`removed ${file} (overwritten first)`);
  } else {
    say(`warning: ${file} still holds the secrets in clear: remove it (or pass --remove-plain next time)`);
  }
}

export interface RekeyOptions extends WriteOptions {
  newVaultPasswordFile?: string;
  keepPassword?: boolean;
  /** commander's `--no-password` sets `password: false`. */
  password?: boolean;
}

export async function rekeySecrets(env: string, opts: RekeyOptions): Promise<void> {
  const ctx = startCommand(env, opts);
  const noPassword = opts.password === false;
  if ([noPassword, opts.keepPassword, !!opts.newVaultPasswordFile].filter(Boolean).length > 1) {
    throw new UserError('choose one of --new-vault-password-file, --keep-password and --no-password');
  }
  await underLock(ctx, opts, () => rekeyLocked(ctx, opts));
}

async function rekeyLocked(ctx: Context, opts: RekeyOptions): Promise<void> {
  const noPassword = opts.password === false;
  const opened = await openAndRegister(ctx);
  const recipients = await readRecipients(ctx.paths);
  const recipientsShown = displayPath(ctx.paths, ctx.paths.recipients);

  let password: Password | undefined;
  if (noPassword) {
    if (recipients.length === 0) {
      throw new UserError(
        `--no-password needs recipients, and ${recipientsShown} lists none`,
        1,
        `add public key files to ${recipientsShown} first`,
      );
    }
  } else if (opts.newVaultPasswordFile) {
    const value = readPasswordFile(opts.newVaultPasswordFile, opts.newVaultPasswordFile);
    password = { value, origin: opts.newVaultPasswordFile, file: opts.newVaultPasswordFile };
  } else if (opts.keepPassword) {
    if (!opened.sealed.passwordProtected) {
      throw new UserError(`${ctx.shown} has no password to keep`, 1, 'drop --keep-password to choose one');
    }
    password = await currentPassword(ctx.paths, ctx.options, opened);
  } else if (opened.sealed.passwordProtected || recipients.length === 0) {
    if (!ctx.options.interactive || !canPrompt()) {
      throw new UserError(
        `rekey ${ctx.paths.env}: no new password given`,
        1,
        'run it on a terminal, or pass --new-vault-password-file FILE, --keep-password or --no-password',
      );
    }
    password = await newPassword(ctx.paths, ctx.options);
  }

  const targets = targetsOf(password, recipients);
  await saveSecrets(ctx.paths, opened.text, targets);
  say(`rekeyed ${ctx.paths.env}: ${ctx.shown} encrypted to ${targets.description}`);

  if (password && !opts.keepPassword) {
    // A new password: the env's password file must follow, or the next command would fail.
    if (existsSync(ctx.paths.passwordFile) && password.file !== ctx.paths.passwordFile) {
      writeFileAtomically(ctx.paths.passwordFile, `${password.value}\n`, 0o600);
      say(`updated ${displayPath(ctx.paths, ctx.paths.passwordFile)} with the new password`);
    }
    if (process.env[PASSWORD_ENV]) {
      say(`note: $${PASSWORD_ENV} holds the old password: update it where it is set (CI...)`);
    }
  }
}

export async function importAnsibleVault(
  env: string,
  file: string,
  opts: WriteOptions & { ansibleVaultPasswordFile?: string; force?: boolean },
): Promise<void> {
  const ctx = startCommand(env, opts);
  if (!existsSync(file))
    throw new UserError(`${file} does not exist`, 1, 'give the Ansible Vault file to import');
  refuseExisting(ctx, opts.force);
  await underLock(ctx, opts, () => importLocked(ctx, file, opts));
}

async function importLocked(
  ctx: Context,
  file: string,
  opts: WriteOptions & { ansibleVaultPasswordFile?: string; force?: boolean },
): Promise<void> {
  // Checked again under the lock: another command may have created the file meanwhile.
  refuseExisting(ctx, opts.force);
  const vaultText = readFileSync(file, 'utf8');
  const ansiblePassword = await obtainAnsiblePassword({
    passwordFile: opts.ansibleVaultPasswordFile,
    interactive: ctx.options.interactive,
    vaultFileShown: file,
  });
  const text = ansibleVaultToYaml(vaultText, ansiblePassword, file);
  const secrets = parseSecretsOf(
    text,
    `${file} (decrypted)`,
    'fix it with ansible-vault edit, then import it again',
  );
  registerSecret(secrets);
  warnShortSecrets(secrets, ctx.shown);
  const targets = await targetsFor(ctx.paths, ctx.options);
  await saveSecrets(ctx.paths, text, targets);
  const count = Object.keys(secrets).length;
  say(
    `imported ${count} key${count === 1 ? '' : 's'} from ${file} into ${ctx.shown} (encrypted to ${targets.description})`,
  );
  say(
    `check them with: verdandi secrets view ${ctx.paths.env}; then remove ${file} and its Ansible password file`,
  );
}

export function setupGit(opts: { projectDir?: string; textconvCommand?: string }): void {
  const { messages } = gitSetup({
    projectDir: opts.projectDir ?? process.cwd(),
    textconvCommand: opts.textconvCommand,
  });
  for (const m of messages) say(m);
  say(
    'git diff now shows secrets/*.yml.asc decrypted (when you can decrypt them); commits of plaintext are refused',
  );
}

/**
 * The environment of a file git hands to textconv: `secrets/staging.yml.asc` in the work tree, or a
 * temporary copy of an old version named `XXXXXX_staging.yml.asc`.
 */
export function envOfTextconvFile(file: string, projectDir: string): string {
  const name = basename(file).replace(/\.yml\.asc$/, '');
  const temporary = /^[A-Za-z0-9]{6}_(.+)$/.exec(name);
  if (temporary && !existsSync(join(projectDir, 'secrets', `${name}.yml.asc`))) return temporary[1];
  return name;
}

/**
 * git's textconv: the decrypted text of `file` on stdout, without ever asking (git may run it with no
 * terminal). When it cannot decrypt, one line says why, so `git diff` still works.
 */
export async function textconv(file: string, opts: CommonOptions): Promise<void> {
  const projectDir = opts.projectDir ?? process.cwd();
  try {
    const armored = readFileSync(file, 'utf8');
    if (armored.trim() === '') return;
    const paths = secretsPaths(projectDir, envOfTextconvFile(file, projectDir));
    const { text } = await decryptArmored(paths, armored, displayPath(paths, paths.asc), {
      vaultPasswordFile: opts.vaultPasswordFile,
      interactive: false,
    });
    process.stdout.write(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    process.stdout.write(`[verdandi: cannot decrypt ${basename(file)}: ${redact(reason)}]\n`);
  }
}
