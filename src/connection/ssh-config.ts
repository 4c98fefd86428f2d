/**
 * The OpenSSH client configuration (`~/.ssh/config`, or the file given with `--ssh-config`), read the
 * way `ssh` reads it for the settings Verdandi uses: the file (and its `Include`s, expanded where they
 * stand) is read from the top, every `Host` block whose patterns match the host applies, and for each
 * setting the first value obtained wins. `Match` blocks are not evaluated (they may run commands):
 * they are skipped. Each value keeps the file and line it came from, for `verdandi ping -v`.
 *
 * The text is parsed by the `ssh-config` package (quoting, `=` separators, `Host` pattern lists);
 * the order, `Include` and the line numbers are handled here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SSHConfig, { glob, type Line, LineType } from 'ssh-config';
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

/** A directive of a config file, with its place, in reading order. */
interface Entry {
  /** The patterns of the `Host` line above it (undefined: before any Host, it applies to all). */
  hosts?: string[];
  /** Inside a `Match` block: never applies. */
  inMatch?: boolean;
  param: string;
  values: string[];
  source: ConfigSource;
}

/** A parsed configuration: its directives in reading order, `Include`s expanded. */
export class SshConfig {
  constructor(
    readonly file: string | undefined,
    private readonly entries: Entry[],
  ) {}

  static empty(): SshConfig {
    return new SshConfig(undefined, []);
  }

  /**
   * The settings for `host` (the name given to ssh: the inventory host's address), the first value of
   * each. `IdentityFile` collects every value, in order (OpenSSH tries them all).
   */
  lookup(host: string): SshConfigResult {
    const found: Partial<Record<SshConfigSetting, ConfigValue>> = {};
    const identityFiles: ConfigValue[] = [];
    for (const e of this.entries) {
      if (e.inMatch || (e.hosts && !glob(e.hosts, host))) continue;
      const name = e.param.toLowerCase() as SshConfigSetting;
      if (!SSH_CONFIG_SETTINGS.includes(name)) continue;
      const value = e.values.join(' ');
      if (name === 'identityfile') identityFiles.push({ value, source: e.source });
      else if (!found[name]) found[name] = { value, source: e.source };
    }
    return { settings: found, identityFiles };
  }

  /** Whether a `Host` line names `host` itself (no wildcard): an alias the user defined. */
  definesAlias(host: string): boolean {
    return this.entries.some((e) => e.hosts?.includes(host));
  }
}

export interface SshConfigResult {
  settings: Partial<Record<SshConfigSetting, ConfigValue>>;
  identityFiles: ConfigValue[];
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

/** The directives of one file's text, its Includes read in place. `seen` stops an Include loop. */
export function parseConfigText(text: string, file: string, seen: Set<string>): Entry[] {
  let parsed: SSHConfig;
  try {
    parsed = SSHConfig.parse(text);
  } catch (err) {
    throw new UserError(`${file}: cannot parse the ssh config (${(err as Error).message})`, 1);
  }
  const entries: Entry[] = [];
  let line = 1;
  // Lines are visited in text order: a section's own line, then the lines of its block.
  const visit = (l: Line, block: { hosts?: string[]; inMatch?: boolean }) => {
    line += newlines(l.before);
    if (l.type === LineType.DIRECTIVE) {
      const source = { file, line };
      const values = valuesOf(l.value);
      if ('config' in l) {
        const isHost = /^host$/i.test(l.param);
        const inner = isHost ? { hosts: values } : { inMatch: !isAll(values) };
        line += newlines(l.after);
        for (const sub of l.config) visit(sub, inner);
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
            const inner = parseConfigText(text, included, new Set([...seen, included]));
            for (const e of inner) {
              // An Include inside a block: the included lines before its own first Host line belong
              // to that block (a Host line of the included file starts a block of its own, as in ssh).
              if (e.hosts || e.inMatch) entries.push(e);
              else entries.push({ ...e, ...block });
            }
          }
        }
      } else {
        entries.push({ ...block, param: l.param, values, source });
      }
    }
    line += newlines(l.after);
  };
  for (const l of parsed) visit(l, {});
  return entries;
}

/** `Match all` applies everywhere; any other Match is skipped. */
function isAll(values: string[]): boolean {
  return values.length === 1 && values[0].toLowerCase() === 'all';
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
    .filter((n) => glob(base, n) && !n.startsWith('.'))
    .sort()
    .map((n) => path.join(dir, n));
}
