/**
 * The OpenSSH client configuration (`~/.ssh/config`, or the file given with `--ssh-config`), read the
 * way `ssh` reads it for the settings Verdandi uses: the file (and its `Include`s, expanded where they
 * stand) is read from the top, every `Host` and `Match` block that holds for the host applies, and for
 * each setting the first value obtained wins. `Match` criteria that need nothing but the names
 * (`host`, `originalhost`, `user`, `localuser`, `all`, `canonical`, `final`, negated with `!`) are
 * evaluated; those that would run a command or read this machine (`exec`, `localnetwork`...) are not:
 * their block is skipped with a warning naming the line. Each value keeps the file and line it came
 * from, for `verdandi ping -v`.
 *
 * The text is parsed by the `ssh-config` package (quoting, `=` separators, the words of a line); the
 * order, `Include`, the patterns (its glob reads `?` as zero or one character, OpenSSH as exactly one),
 * `Match` and the line numbers are handled here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SSHConfig, { type Line, LineType } from 'ssh-config';
import { UserError } from '../util/errors.js';

/** The settings read, by their lower-case OpenSSH names. */
export const SSH_CONFIG_SETTINGS = [
  'hostname',
  'user',
  'port',
  'identityfile',
  'identitiesonly',
  'proxyjump',
  'userknownhostsfile',
  'stricthostkeychecking',
  'connecttimeout',
  'serveraliveinterval',
  'serveralivecountmax',
] as const;
export type SshConfigSetting = (typeof SSH_CONFIG_SETTINGS)[number];

/** Where a value was written in an ssh config file. */
export interface ConfigSource {
  file: string;
  line: number;
}

export interface ConfigValue {
  value: string;
  source: ConfigSource;
}

/** One condition of a `Match` line: `host a,b`, `!user x`, `final`... */
interface Criterion {
  name: string;
  negate: boolean;
  arg?: string;
}

/** What starts a block: a `Host` line (its patterns) or a `Match` line (its criteria). */
type Guard =
  | { kind: 'host'; patterns: string[]; source: ConfigSource }
  | { kind: 'match'; criteria: Criterion[]; source: ConfigSource };

/**
 * A config file in reading order: where a block starts (its guard is evaluated there, with the values
 * obtained so far, as `ssh` does), and each setting with the guards it needs, all of them true: its own
 * block's and, for a line of an included file, those of the block the `Include` stands in.
 */
type Item =
  | { kind: 'block'; guard: Guard; outer: Guard[] }
  | { kind: 'set'; guards: Guard[]; param: string; values: string[]; source: ConfigSource };

/** Match criteria needing no argument. */
const BARE_CRITERIA = new Set(['all', 'canonical', 'final']);
/** Match criteria OpenSSH has that Verdandi does not evaluate: the block is skipped, with a warning. */
const UNEVALUATED_CRITERIA: Record<string, string> = {
  exec: 'Verdandi does not run local commands from the ssh config',
  localnetwork: "Verdandi does not read this machine's networks for the ssh config",
  tagged: 'Verdandi sets no tag',
  command: 'Verdandi runs many commands on a connection, not one',
  version: "the version is OpenSSH's, not Verdandi's",
  sessiontype: 'Verdandi opens no interactive session',
};

/** What a lookup is asked for: the host as given to ssh, and the user when the inventory sets it. */
export interface LookupOptions {
  /** The inventory's user (like `ssh -l`): what `Match user` compares, before any `User` line. */
  user?: string;
}

/** A parsed configuration: its blocks and settings in reading order, `Include`s expanded. */
export class SshConfig {
  /** Lines that could not be honoured (`Match exec`...), for the commands to print once. */
  readonly warnings = new Set<string>();

  constructor(
    readonly file: string | undefined,
    private readonly items: Item[],
  ) {}

  static empty(): SshConfig {
    return new SshConfig(undefined, []);
  }

  /**
   * The settings for `host` (the name given to ssh: the inventory host's address), the first value of
   * each, evaluated as `ssh` does: `Host` patterns against the host as given; `Match host` against the
   * `HostName` obtained so far (`%h` expanded) or the host; `Match originalhost` against the host as
   * given; `Match user` against the inventory's user, else the `User` so far, else root (Verdandi's
   * default); `Match localuser` against this machine's user. A `Match final` (not negated) asks for a
   * second pass once the first is done, where `Match final` and `Match canonical` are true and `Host`
   * patterns are matched against the host name found (lower case); the values of the first pass stay.
   * `IdentityFile` collects every value, in order, each once (OpenSSH tries them all).
   */
  lookup(host: string, opts: LookupOptions = {}): SshConfigResult {
    const found: Partial<Record<SshConfigSetting, ConfigValue>> = {};
    const identityFiles: ConfigValue[] = [];
    let wantFinal = false;
    const hostNameSoFar = (name: string) =>
      found.hostname ? expandHostName(found.hostname.value, name).toLowerCase() : name.toLowerCase();

    const pass = (final: boolean, hostName: string, hostNameFixed: boolean) => {
      const results = new Map<Guard, boolean>();
      for (const item of this.items) {
        if (item.kind === 'block') {
          const outer = item.outer.every((g) => results.get(g) === true);
          let ok: boolean;
          if (item.guard.kind === 'host') ok = hostLineMatches(item.guard.patterns, hostName);
          else {
            const evaluated = this.evaluateMatch(item.guard, outer, {
              final,
              host: final ? hostName : hostNameSoFar(hostName),
              original: host,
              user: opts.user ?? found.user?.value ?? 'root',
            });
            wantFinal ||= evaluated.wantFinal;
            ok = evaluated.ok;
          }
          results.set(item.guard, outer && ok);
          continue;
        }
        if (!item.guards.every((g) => results.get(g) === true)) continue;
        const name = item.param.toLowerCase() as SshConfigSetting;
        if (!SSH_CONFIG_SETTINGS.includes(name)) continue;
        if (name === 'hostname' && hostNameFixed) continue;
        const value = item.values.join(' ');
        if (name === 'identityfile') {
          if (!identityFiles.some((f) => f.value === value))
            identityFiles.push({ value, source: item.source });
        } else if (!found[name]) found[name] = { value, source: item.source };
      }
    };
    pass(false, host, false);
    // ssh sets the host name before the final pass: a HostName line read then changes nothing.
    if (wantFinal) pass(true, hostNameSoFar(host), true);
    return { settings: found, identityFiles };
  }

  /**
   * Whether a `Match` line holds. Its criteria must all hold; a criterion Verdandi does not evaluate
   * (`exec`...) makes the block not apply, with a warning naming the line when it was reached (the block
   * it stands in applies, and the criteria before it held: `ssh` would have run the command then).
   */
  private evaluateMatch(
    guard: Extract<Guard, { kind: 'match' }>,
    reached: boolean,
    at: { final: boolean; host: string; original: string; user: string },
  ): { ok: boolean; wantFinal: boolean } {
    let ok = true;
    let wantFinal = false;
    for (const c of guard.criteria) {
      let holds: boolean;
      switch (c.name) {
        case 'all':
          holds = true;
          break;
        case 'canonical':
        case 'final':
          if (c.name === 'final' && !c.negate) wantFinal = true;
          holds = at.final;
          break;
        case 'host':
          holds = patternListMatches(at.host, c.arg!, true) === 1;
          break;
        case 'originalhost':
          holds = patternListMatches(at.original.toLowerCase(), c.arg!, true) === 1;
          break;
        case 'user':
          holds = patternListMatches(at.user, c.arg!, false) === 1;
          break;
        case 'localuser':
          holds = patternListMatches(os.userInfo().username, c.arg!, false) === 1;
          break;
        default: {
          if (reached && ok) {
            this.warnings.add(
              `${guard.source.file}:${guard.source.line}: Match ${c.negate ? '!' : ''}${c.name} is not evaluated ` +
                `(${UNEVALUATED_CRITERIA[c.name]}): the block under it is skipped`,
            );
          }
          ok = false;
          continue;
        }
      }
      if (holds === c.negate) ok = false;
    }
    return { ok, wantFinal };
  }

  /** The names `Host` lines give without wildcards or negation: the aliases a user defined. */
  aliases(): string[] {
    const names = new Set<string>();
    for (const i of this.items) {
      if (i.kind !== 'block' || i.guard.kind !== 'host') continue;
      for (const p of i.guard.patterns) if (!/[*?!]/.test(p)) names.add(p);
    }
    return [...names];
  }

  /**
   * Whether `host` is a name the ssh config defines: a `Host` pattern naming it, or one with wildcards
   * matching it (`Host bastion-*`), but not `*` alone (that would make every name one).
   */
  definesAlias(host: string): boolean {
    return this.items.some(
      (i) =>
        i.kind === 'block' &&
        i.guard.kind === 'host' &&
        i.guard.patterns.some((p) => !p.startsWith('!') && p !== '*' && matchPattern(p, host)),
    );
  }
}

export interface SshConfigResult {
  settings: Partial<Record<SshConfigSetting, ConfigValue>>;
  identityFiles: ConfigValue[];
}

/** `HostName` with `%h` (the host as given) and `%%` expanded, the only tokens ssh expands there. */
export function expandHostName(value: string, host: string): string {
  return value.replace(/%([%h])/g, (_, t: string) => (t === '%' ? '%' : host));
}

/**
 * OpenSSH's pattern: `*` is any run of characters, `?` exactly one (the `ssh-config` package reads `?`
 * as zero or one, hence this), everything else itself.
 */
export function matchPattern(pattern: string, text: string): boolean {
  const source = [...pattern]
    .map((ch) => (ch === '*' ? '[^]*' : ch === '?' ? '[^]' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, 'u').test(text);
}

/**
 * A `Host` line: it matches when one of its patterns does and none of its negated ones (`!pattern`):
 * a line of negations alone matches nothing.
 */
export function hostLineMatches(patterns: string[], host: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (matchPattern(p.slice(1), host)) return false;
    } else if (matchPattern(p, host)) matched = true;
  }
  return matched;
}

/**
 * A comma-separated pattern list of a `Match` criterion: 1 when a pattern matches and no negated one
 * does, -1 when a negated one does, 0 otherwise (OpenSSH's match_pattern_list). Host names compare in
 * lower case.
 */
export function patternListMatches(text: string, list: string, lower: boolean): -1 | 0 | 1 {
  let got: 0 | 1 = 0;
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    let pattern = negated ? raw.slice(1) : raw;
    if (lower) pattern = pattern.toLowerCase();
    if (matchPattern(pattern, text)) {
      if (negated) return -1;
      got = 1;
    }
  }
  return got;
}

/** The user's own file, when there is a home directory. */
export function userSshConfigFile(): string | undefined {
  const home = process.env.HOME || undefined;
  return home ? path.join(home, '.ssh', 'config') : undefined;
}

/**
 * Reads the configuration: `file` (from `--ssh-config`, which must exist) or else the user's
 * `~/.ssh/config` (a missing one, or no home directory, is an empty configuration).
 */
export function loadSshConfig(file?: string): SshConfig {
  if (file !== undefined) {
    const absolute = path.resolve(file);
    let text: string;
    try {
      text = readFileSync(absolute, 'utf8');
    } catch (err) {
      throw new UserError(
        `cannot read the ssh config file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        1,
        'give --ssh-config the path of an OpenSSH client configuration file',
      );
    }
    return new SshConfig(absolute, parseConfigText(text, absolute, new Set([absolute])));
  }
  const own = userSshConfigFile();
  if (!own) return SshConfig.empty();
  let text: string;
  try {
    text = readFileSync(own, 'utf8');
  } catch {
    return SshConfig.empty();
  }
  return new SshConfig(own, parseConfigText(text, own, new Set([own])));
}

/**
 * The blocks and settings of one file's text, its Includes read in place. `outer`: the guards of the
 * block an `Include` of this file stands in (none at the top). `seen` stops an Include loop.
 */
export function parseConfigText(text: string, file: string, seen: Set<string>, outer: Guard[] = []): Item[] {
  // The package reads Match criteria itself, refusing `!final` and others OpenSSH takes, with no line
  // number: each Match line is given to it as a Host line (the same words, the same block), and its
  // criteria are read here (parseCriteria), from the line numbers noted.
  const matchLines = new Set<number>();
  const lines = text.split('\n').map((l, i) => {
    if (!/^\s*match(?=[\s=])/i.test(l)) return l;
    matchLines.add(i + 1);
    return l.replace(/^(\s*)match/i, '$1Host ');
  });
  let parsed: SSHConfig;
  try {
    parsed = SSHConfig.parse(lines.join('\n'));
  } catch (err) {
    throw new UserError(`${file}: cannot parse the ssh config (${(err as Error).message})`, 1);
  }
  const items: Item[] = [];
  let line = 1;
  // Lines are visited in text order: a section's own line, then the lines of its block.
  const visit = (l: Line, guards: Guard[]) => {
    line += newlines(l.before);
    if (l.type === LineType.DIRECTIVE) {
      const source = { file, line };
      const values = valuesOf(l.value);
      if ('config' in l) {
        const guard: Guard = matchLines.has(line)
          ? { kind: 'match', criteria: parseCriteria(values, source), source }
          : { kind: 'host', patterns: values, source };
        items.push({ kind: 'block', guard, outer });
        line += newlines(l.after);
        for (const sub of l.config) visit(sub, [...outer, guard]);
        return;
      }
      if (/^include$/i.test(l.param)) {
        for (const pattern of values) {
          for (const included of includedFiles(pattern)) {
            if (seen.has(included)) continue;
            let text: string;
            try {
              text = readFileSync(included, 'utf8');
            } catch {
              continue; // OpenSSH ignores an Include that matches nothing readable
            }
            // The included lines before its own first Host or Match line belong to the block the
            // Include stands in; its own blocks apply only when that block does (as in ssh).
            items.push(...parseConfigText(text, included, new Set([...seen, included]), guards));
          }
        }
      } else {
        items.push({ kind: 'set', guards, param: l.param, values, source });
      }
    }
    line += newlines(l.after);
  };
  for (const l of parsed) visit(l, outer);
  return items;
}

/**
 * The criteria of a `Match` line. One OpenSSH does not know, or one missing its argument, is an error
 * naming the line (ssh itself refuses the file).
 */
function parseCriteria(values: string[], source: ConfigSource): Criterion[] {
  const criteria: Criterion[] = [];
  const where = `${source.file}:${source.line}`;
  if (values.length === 0 || (values.length === 1 && values[0] === '')) {
    throw new UserError(
      `${where}: Match without criteria`,
      1,
      'write Match all, or Match host <patterns>...',
    );
  }
  for (let i = 0; i < values.length; i++) {
    const word = values[i];
    const negate = word.startsWith('!');
    const name = (negate ? word.slice(1) : word).toLowerCase();
    if (BARE_CRITERIA.has(name)) {
      criteria.push({ name, negate });
      continue;
    }
    const known =
      ['host', 'originalhost', 'user', 'localuser'].includes(name) || name in UNEVALUATED_CRITERIA;
    if (!known) {
      throw new UserError(
        `${where}: unknown Match criterion ${JSON.stringify(word)}`,
        1,
        'OpenSSH knows all, canonical, final, exec, localnetwork, host, originalhost, tagged, command, user, localuser, version, sessiontype',
      );
    }
    const arg = values[i + 1];
    if (arg === undefined || arg === '') {
      throw new UserError(`${where}: Match ${word} needs a pattern list after it`, 1);
    }
    criteria.push({ name, negate, arg });
    i++;
  }
  return criteria;
}

function newlines(text: string | undefined): number {
  return text ? text.split('\n').length - 1 : 0;
}

function valuesOf(value: string | { val: string }[]): string[] {
  return typeof value === 'string' ? [value] : value.map((v) => v.val);
}

/**
 * The files an `Include` names: `~` is the home directory, a relative path is under `~/.ssh` (as for
 * the user's configuration; OpenSSH's rule), wildcards in the file name are expanded, in name order.
 */
function includedFiles(pattern: string): string[] {
  const home = process.env.HOME || os.homedir();
  let p = pattern.startsWith('~/') ? path.join(home, pattern.slice(2)) : pattern;
  if (!path.isAbsolute(p)) p = path.join(home, '.ssh', p);
  const dir = path.dirname(p);
  const base = path.basename(p);
  if (!/[*?]/.test(base)) return [p];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => matchPattern(base, n) && !n.startsWith('.'))
    .sort()
    .map((n) => path.join(dir, n));
}
