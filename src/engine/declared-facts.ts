/**
 * Declared facts: the read-only state of a host a role (or a play's `tasks`) needs to build its task
 * list, named in `facts: { ... }`. Each fact is a shell fragment that only reads, and a pure parser of
 * what it printed. The engine gathers every declared fact of a host in the read-only pass before the
 * plan (one round trip per host, together with `gatherFacts`), also in `--check`, and hands the parsed
 * values to `tasks()`, typed from the declaration: `FactValues<typeof facts>`.
 *
 * What Ansible does with `register` on a read-only `command` (and `check_mode: false`), `stat`,
 * `package_facts` and `getent` is a declared fact here: the values are known before the plan, so the
 * plan (and `--check`) still shows every task before anything runs.
 */
import { UserError } from '../util/errors.js';
import { holdsSecret } from '../util/redact.js';
import { quote } from '../util/shell.js';
import type { Fact, FactOutput } from './types.js';

export function isFact(value: unknown): value is Fact<unknown> {
  return (
    !!value &&
    typeof value === 'object' &&
    (value as Fact<unknown>).kind === 'fact' &&
    typeof (value as Fact<unknown>).probe === 'string' &&
    typeof (value as Fact<unknown>).parse === 'function'
  );
}

function absolutePath(path: unknown, what: string): string {
  if (typeof path !== 'string' || !path.startsWith('/'))
    throw new UserError(`${what}: the path must be absolute, got ${JSON.stringify(path)}`);
  if (path.includes('\n')) throw new UserError(`${what}: the path holds a newline`);
  return path;
}

// ---------------------------------------------------------------------------------------------------
// stat

export type PathType = 'file' | 'dir' | 'link' | 'other';

/** What is at a path (a symbolic link is not followed: `type: 'link'` with its `linkTarget`). */
export type PathStat =
  | { exists: false }
  | {
      exists: true;
      type: PathType;
      /** Permission bits in octal, four digits: `'0644'`, `'2775'` (what Ansible's stat calls `mode`). */
      mode: string;
      /** User and group names (`UNKNOWN` when the id has no entry), and the ids. */
      owner: string;
      group: string;
      uid: number;
      gid: number;
      /** Size in bytes (of the link itself for a link). */
      size: number;
      /** sha256 of a regular file's content, with `stat(path, { checksum: true })`. */
      sha256?: string;
      /** Where a symbolic link points, as stored in the link. */
      linkTarget?: string;
    };

// The file-type bits of st_mode (S_IFREG, S_IFDIR, S_IFLNK). A Map: an object literal's octal keys get
// rewritten by the formatter.
const TYPE_BITS = new Map<number, PathType>([
  [0o100000, 'file'],
  [0o040000, 'dir'],
  [0o120000, 'link'],
]);

/** The state of a path: `stat('/etc/nginx/nginx.conf')` (Ansible's `stat` module, read before the plan). */
export function stat(path: string, opts: { checksum?: boolean } = {}): Fact<PathStat> {
  const p = absolutePath(path, 'stat');
  const q = quote(p);
  const checksum = opts.checksum
    ? `\n  if [ -f ${q} ] && [ ! -L ${q} ]; then printf 'sha256='; sha256sum < ${q} | cut -c1-64; fi`
    : '';
  return {
    kind: 'fact',
    label: `stat ${p}`,
    // `%f` (raw mode in hex) gives the type; names come last (they are the only fields that are text).
    probe:
      `if [ -e ${q} ] || [ -L ${q} ]; then\n` +
      `  stat -c 'stat=%f %u %g %s %U %G' -- ${q} || exit 3${checksum}\n` +
      `  if [ -L ${q} ]; then printf 'target='; readlink -- ${q}; fi\n` +
      `else echo absent; fi`,
    parse: ({ stdout, exitCode }) => parseStat(stdout, exitCode),
  };
}

export function parseStat(stdout: string, exitCode = 0): PathStat {
  if (exitCode !== 0) throw new Error(`the path could not be read (exit code ${exitCode})`);
  if (stdout.trim() === 'absent') return { exists: false };
  const line = /^stat=([0-9a-f]+) (\d+) (\d+) (\d+) (\S+) (\S+)$/m.exec(stdout);
  if (!line) throw new Error(`unexpected stat output: ${JSON.stringify(stdout.slice(0, 200))}`);
  const raw = Number.parseInt(line[1], 16);
  const result: PathStat = {
    exists: true,
    type: TYPE_BITS.get(raw & 0o170000) ?? 'other',
    mode: (raw & 0o7777).toString(8).padStart(4, '0'),
    uid: Number(line[2]),
    gid: Number(line[3]),
    size: Number(line[4]),
    owner: line[5],
    group: line[6],
  };
  const sha = /^sha256=([0-9a-f]{64})$/m.exec(stdout);
  if (sha) result.sha256 = sha[1];
  // The target is the rest of the output: it may hold any character but NUL (readlink ends it with \n).
  const target = stdout.indexOf('target=');
  if (target >= 0) result.linkTarget = stdout.slice(target + 'target='.length).replace(/\n$/, '');
  return result;
}

// ---------------------------------------------------------------------------------------------------
// getent

/** A passwd entry (`getent passwd`). */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

/** A group entry (`getent group`). */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/**
 * An account or group by name or id, undefined when there is none: `getent('passwd', 'deploy')`
 * (Ansible's `getent` module, one key).
 */
export function getent(database: 'passwd', key: string | number): Fact<PasswdEntry | undefined>;
export function getent(database: 'group', key: string | number): Fact<GroupEntry | undefined>;
export function getent(
  database: 'passwd' | 'group',
  key: string | number,
): Fact<PasswdEntry | GroupEntry | undefined> {
  if (database !== 'passwd' && database !== 'group')
    throw new UserError(`getent: the database must be passwd or group, got ${JSON.stringify(database)}`);
  const k = String(key);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.$-]*$/.test(k))
    throw new UserError(`getent ${database}: ${JSON.stringify(k)} is not a user or group name or id`);
  return {
    kind: 'fact',
    label: `getent ${database} ${k}`,
    probe: `getent ${database} ${quote(k)}`,
    parse: ({ stdout, exitCode }) => parseGetent(database, stdout, exitCode),
  };
}

export function parseGetent(
  database: 'passwd' | 'group',
  stdout: string,
  exitCode: number,
): PasswdEntry | GroupEntry | undefined {
  // getent's exit code 2: the key is not in the database.
  if (exitCode === 2) return undefined;
  if (exitCode !== 0) throw new Error(`getent ${database} failed (exit code ${exitCode})`);
  const fields = stdout.split('\n')[0].split(':');
  if (database === 'passwd') {
    if (fields.length < 7)
      throw new Error(`unexpected passwd entry: ${JSON.stringify(stdout.slice(0, 200))}`);
    return {
      name: fields[0],
      uid: Number(fields[2]),
      gid: Number(fields[3]),
      gecos: fields[4],
      home: fields[5],
      shell: fields[6],
    };
  }
  if (fields.length < 4) throw new Error(`unexpected group entry: ${JSON.stringify(stdout.slice(0, 200))}`);
  return {
    name: fields[0],
    gid: Number(fields[2]),
    members: fields[3] === '' ? [] : fields[3].split(','),
  };
}

// ---------------------------------------------------------------------------------------------------
// installed packages

const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$/;
// dpkg's second status letter: installed, or installed with triggers awaited or pending.
const INSTALLED = new Set(['i', 'W', 't']);

/**
 * The installed version of each package, undefined when it is not installed (removed, only its
 * configuration left, or unknown): `installedPackages(['postgresql-15'])` (Ansible's `package_facts`,
 * for the packages named).
 */
export function installedPackages<const N extends string>(
  names: readonly N[],
): Fact<{ [K in N]: string | undefined }> {
  if (!Array.isArray(names) || names.length === 0)
    throw new UserError('installedPackages: name at least one package');
  for (const name of names) {
    if (typeof name !== 'string' || !PACKAGE_NAME.test(name))
      throw new UserError(`installedPackages: ${JSON.stringify(name)} is not a Debian package name`);
  }
  return {
    kind: 'fact',
    label: `installedPackages ${names.join(' ')}`,
    // dpkg-query exits 1 when a name is unknown, after printing the others: its status is not used.
    probe: `dpkg-query -W -f '\${Package} \${db:Status-Abbrev} \${Version}\\n' -- ${names.map(quote).join(' ')}; exit 0`,
    parse: ({ stdout }) => parsePackages(names, stdout) as { [K in N]: string | undefined },
  };
}

export function parsePackages(names: readonly string[], stdout: string): Record<string, string | undefined> {
  const found = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    // `<name> <want><status><err> <version>`: the abbreviation is three letters, the last one often a space.
    const m = /^(\S+) (\S)(\S) ?\s*(\S*)$/.exec(line);
    if (m && INSTALLED.has(m[3]) && m[4] !== '') found.set(m[1], m[4]);
  }
  const out: Record<string, string | undefined> = {};
  // An arch-qualified name (`libc6:amd64`) is printed without its architecture.
  for (const name of names) out[name] = found.get(name) ?? found.get(name.split(':')[0]);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// command facts

/** Output of a command fact is bounded: a fact is a small answer, not a log. */
export const COMMAND_FACT_MAX_BYTES = 64 * 1024;

export interface CommandFactOptions {
  /** Also read the command's standard error, merged into `stdout` (`nginx -v` prints on stderr). */
  stderr?: boolean;
  /** Exit codes the parser is given; any other is an error (default: `[0]`). */
  okCodes?: number[];
  /** The most output read, in bytes (default 64 KiB, at most 1 MiB); more is an error. */
  maxBytes?: number;
}

const RC_MARKER = '\n@@vd-fact-rc=';

/**
 * A read-only command and a parser of its output: `commandFact(['nginx', '-v'], ({ stdout }) => ...,
 * { stderr: true })` (Ansible's `command` + `register` + `check_mode: false`). The command is words,
 * run without a shell; it must only read, since `--check` runs it too, and must not hold a secret (a
 * command line shows in the host's process list). Its output is bounded (`maxBytes`).
 */
export function commandFact<T>(
  argv: readonly string[],
  parse: (output: FactOutput) => T,
  opts: CommandFactOptions = {},
): Fact<T> {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((w) => typeof w !== 'string'))
    throw new UserError('commandFact: the command must be a non-empty array of words', 1);
  if (typeof parse !== 'function')
    throw new UserError(`commandFact ${argv.join(' ')}: give a parser function`);
  const max = opts.maxBytes ?? COMMAND_FACT_MAX_BYTES;
  if (!Number.isInteger(max) || max < 1 || max > 1024 * 1024)
    throw new UserError(`commandFact ${argv.join(' ')}: maxBytes must be from 1 to 1048576, got ${max}`);
  const okCodes = opts.okCodes ?? [0];
  const words = argv.map(quote).join(' ');
  const label = `command ${argv.join(' ')}`;
  return {
    kind: 'fact',
    label,
    argv: [...argv],
    // The command's status goes out on fd 4 (captured), its output through `head` on fd 3 (the probe's
    // stdout): one byte more than the bound tells a cut output apart from one that fits.
    probe:
      'exec 3>&1\n' +
      `vd_rc=$( { ( ${words}${opts.stderr ? ' 2>&1' : ''}; printf '%s' "$?" >&4 ) | head -c ${max + 1} >&3; } 4>&1 )\n` +
      `printf '${RC_MARKER.replace('\n', '\\n')}%s\\n' "$vd_rc"`,
    parse: (output) => {
      const { stdout, exitCode } = commandOutput(output.stdout, max);
      if (!okCodes.includes(exitCode))
        throw new Error(
          `the command exited with ${exitCode}${okCodes.length === 1 && okCodes[0] === 0 ? '' : ` (okCodes: ${okCodes.join(', ')})`}`,
        );
      return parse({ stdout, exitCode });
    },
  };
}

/** The command's output and status from what a command fact's probe printed. */
export function commandOutput(printed: string, max: number): FactOutput {
  const at = printed.lastIndexOf(RC_MARKER);
  if (at < 0) throw new Error('the command did not complete');
  const stdout = printed.slice(0, at);
  if (Buffer.byteLength(stdout) > max)
    throw new Error(`the command printed more than ${max} bytes (a fact reads a bounded output: maxBytes)`);
  const code = Number.parseInt(printed.slice(at + RC_MARKER.length), 10);
  return { stdout, exitCode: Number.isNaN(code) ? 255 : code };
}

/**
 * The problem with a declaration, or undefined when every entry is a fact whose command holds no
 * secret (checked when the secrets are known, just before gathering).
 */
export function factsSpecProblem(spec: unknown): string | undefined {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec))
    return 'facts must be an object of named facts (stat(), getent(), installedPackages(), commandFact())';
  for (const [name, fact] of Object.entries(spec)) {
    if (!isFact(fact))
      return `facts.${name} is not a fact: build it with stat(), getent(), installedPackages() or commandFact()`;
    if (fact.argv?.some((w) => holdsSecret(w)))
      return `facts.${name} (${fact.label.split(' ')[0]}): the command holds a secret; a fact's command is read-only and shows in the host's process list, so it never carries secrets`;
  }
  return undefined;
}
