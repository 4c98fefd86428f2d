/**
 * Host patterns, for `--limit` and a play's `hosts:` (Ansible's syntax):
 *
 * - `web1` a host; `web` a group (its hosts and its children's); `all` or `*` every host;
 * - `web*`, `db?`, `web[12]` globs, matched against host and group names;
 * - `~web\d+` a regular expression, matched the same way;
 * - `a,b` or `a:b` several patterns (`:` only when there is no comma, as in Ansible);
 * - `!pattern` excludes, `&pattern` intersects. As in Ansible, the plain patterns are added first,
 *   then the `&` ones intersect, then the `!` ones exclude, whatever their order; a pattern made only
 *   of `!`/`&` parts starts from every host.
 *
 * A part that matches no host and no group is an error (a typo would otherwise select nothing or, after
 * `!`, exclude nothing), and so is a pattern that selects no host at all. Hosts come in inventory order.
 */
import { UserError } from '../util/errors.js';
import { didYouMean, listNames } from './suggest.js';
import type { Inventory, InventoryHost } from './types.js';

const HINT = "fix --limit or the play's hosts: (a host, a group, a glob like web*, a comma list, !exclusion)";

export function selectHosts(inv: Inventory, pattern?: string): InventoryHost[] {
  const all = [...inv.hosts.values()];
  const text = (pattern ?? '').trim();
  if (text === '' || text === 'all' || text === '*') return all;

  const parts = splitPattern(text);
  const plain = parts.filter((p) => !p.startsWith('!') && !p.startsWith('&'));
  const intersections = parts.filter((p) => p.startsWith('&')).map((p) => p.slice(1));
  const exclusions = parts.filter((p) => p.startsWith('!')).map((p) => p.slice(1));

  let selected = new Set<string>(plain.length === 0 ? all.map((h) => h.name) : []);
  for (const part of plain) for (const name of match(inv, part, text)) selected.add(name);
  for (const part of intersections) {
    const matched = match(inv, part, text);
    selected = new Set([...selected].filter((name) => matched.has(name)));
  }
  for (const part of exclusions) for (const name of match(inv, part, text)) selected.delete(name);

  const hosts = all.filter((h) => selected.has(h.name));
  if (hosts.length === 0) {
    throw new UserError(`host pattern ${JSON.stringify(text)} selects no host; ${listing(inv)}`, 1, HINT);
  }
  return hosts;
}

/** `a,b` splits on commas; without a comma, on colons (`web:&prod:!web3`). */
function splitPattern(text: string): string[] {
  const separator = text.includes(',') ? ',' : ':';
  return text
    .split(separator)
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** Names of the hosts one part of a pattern stands for. */
function match(inv: Inventory, part: string, whole: string): Set<string> {
  const out = new Set<string>();
  if (part === 'all' || part === '*') {
    for (const name of inv.hosts.keys()) out.add(name);
    return out;
  }
  const test = nameTest(part, whole);
  let matchedSomething = false;
  for (const host of inv.hosts.keys()) {
    if (test(host)) {
      out.add(host);
      matchedSomething = true;
    }
  }
  for (const group of inv.groups.keys()) {
    if (!test(group)) continue;
    matchedSomething = true;
    for (const host of inv.hosts.keys()) if (inv.groupsOf(host).includes(group)) out.add(host);
  }
  if (!matchedSomething) {
    const known = [...inv.groups.keys(), ...inv.hosts.keys()];
    throw new UserError(
      `host pattern ${JSON.stringify(whole)}: ${JSON.stringify(part)} matches no host or group${didYouMean(part, known)}; ${listing(inv)}`,
      1,
      HINT,
    );
  }
  return out;
}

function nameTest(part: string, whole: string): (name: string) => boolean {
  if (part.startsWith('~')) {
    let regex: RegExp;
    try {
      regex = new RegExp(part.slice(1));
    } catch (err) {
      throw new UserError(
        `host pattern ${JSON.stringify(whole)}: ${part} is not a valid regular expression (${(err as Error).message})`,
      );
    }
    return (name) => regex.test(name);
  }
  if (/[*?[]/.test(part)) {
    const regex = globToRegExp(part);
    return (name) => regex.test(name);
  }
  return (name) => name === part;
}

/** `*` any run of characters, `?` one character, `[abc]`/`[a-c]` one of a set. */
function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else if (ch === '[' && glob.indexOf(']', i + 1) > i + 1) {
      const close = glob.indexOf(']', i + 1);
      const set = glob
        .slice(i + 1, close)
        .replace(/^!/, '^')
        .replace(/\\/g, '\\\\');
      source += `[${set}]`;
      i = close;
    } else source += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

function listing(inv: Inventory): string {
  return `groups: ${listNames(inv.groups.keys())}; hosts: ${listNames(inv.hosts.keys())}`;
}
