/**
 * Ansible's INI inventory format, read as it is:
 *
 * ```ini
 * bastion ansible_host=10.0.0.2        ; hosts before any section are "ungrouped"
 * [web]
 * web[01:02] ansible_user=deploy       # ranges; then key=value vars of the host
 * web3:2222 app_name="my app"          # host:port; quoted values keep spaces
 * [web:vars]
 * nginx_workers=4
 * [prod:children]
 * web
 * ```
 *
 * Values are typed as in Ansible, with fewer surprises: a number when it reads back the same (`8080`,
 * `1.5`; but `0755` and `3.10` stay strings), a boolean for true/false/yes/no (any case), a JSON list or
 * object when it parses as one (`tags='["a", "b"]'`, quoted or not), else a string. Otherwise a quoted
 * value is a string (`port="8080"`, `flag="yes"`). On host lines, `#` after a space starts a comment;
 * in `[g:vars]` sections the whole line after `=` is the value (as in Ansible). A `[g:vars]` or `[g:children]` entry naming a group that is never given its own section or
 * child entry is an error (a typo would otherwise silently apply nothing).
 */
import { expandHostRange } from './host-ranges.js';
import { emptyLayer, normalizeConnectionNames, setValue } from './layers.js';
import { type RawGroup, RawInventory } from './raw.js';
import { InventoryError, type Origin } from './types.js';

const SECTION = /^\[([^:\]\s]+)(?::([^\]\s]*))?\]\s*(?:[#;].*)?$/;

/** Hosts before any section belong to no group of their own (they end up in `ungrouped`). */
type Section = { kind: 'hosts'; group?: RawGroup } | { kind: 'vars' | 'children'; group: RawGroup };

export function readAnsibleIni(text: string, file: string): RawInventory {
  const inventory = new RawInventory('ansible-ini', file);
  const lines = text.replace(/^\ufeff/, '').split(/\r\n|\r|\n/);
  let section: Section = { kind: 'hosts' };
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const indent = raw.length - raw.trimStart().length;
    const at = (column: number): Origin => ({ file, line, column });
    if (trimmed.startsWith('[')) {
      section = readSectionHeader(inventory, trimmed, at(indent + 1));
      return;
    }
    if (section.kind === 'hosts') readHostLine(inventory, section.group, raw, line, file);
    else if (section.kind === 'vars') readVarLine(section.group, trimmed, indent, at);
    else readChildLine(inventory, section.group, trimmed, at(indent + 1));
  });
  return inventory;
}

function readSectionHeader(inventory: RawInventory, trimmed: string, origin: Origin): Section {
  const match = SECTION.exec(trimmed);
  if (!match) {
    throw new InventoryError(
      origin,
      `malformed section header ${JSON.stringify(trimmed)}: expected [group], [group:vars] or [group:children]`,
    );
  }
  const [, name, suffix] = match;
  const nameOrigin = { ...origin, column: (origin.column ?? 1) + 1 };
  if (suffix === undefined) return { kind: 'hosts', group: inventory.defineGroup(name, nameOrigin) };
  // A `[g:children]` section makes g a group; `[g:vars]` only adds to a group defined elsewhere.
  if (suffix === 'children') return { kind: 'children', group: inventory.defineGroup(name, nameOrigin) };
  if (suffix === 'vars') {
    inventory.groupsThatMustExist.push({ name, origin: nameOrigin });
    return { kind: 'vars', group: inventory.group(name, nameOrigin) };
  }
  throw new InventoryError(
    { ...origin, column: (origin.column ?? 1) + name.length + 1 },
    `unknown section type ":${suffix}" in ${trimmed}: expected [${name}], [${name}:vars] or [${name}:children]`,
  );
}

interface Token {
  text: string;
  /** 1-based column of the token's first character. */
  column: number;
  /** For `key=value`: the value's column and whether it was quoted. */
  valueColumn: number;
  quoted: boolean;
}

/**
 * Splits a host line into words the way a shell would (quotes group, and are removed), remembering
 * columns for messages. `#` at the start of a word starts a comment.
 */
function tokenize(raw: string, line: number, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < raw.length) {
    while (i < raw.length && /\s/.test(raw[i])) i++;
    if (i >= raw.length || raw[i] === '#') break;
    const token: Token = { text: '', column: i + 1, valueColumn: 0, quoted: false };
    while (i < raw.length && !/\s/.test(raw[i])) {
      const ch = raw[i];
      if (ch === '=' && token.valueColumn === 0) token.valueColumn = i + 2;
      if (ch === '"' || ch === "'") {
        const close = raw.indexOf(ch, i + 1);
        if (close === -1) {
          throw new InventoryError(
            { file, line, column: i + 1 },
            `unterminated ${ch} quote: close it on the same line`,
          );
        }
        token.text += raw.slice(i + 1, close);
        if (token.valueColumn !== 0) token.quoted = true;
        i = close + 1;
      } else {
        token.text += ch;
        i++;
      }
    }
    tokens.push(token);
  }
  return tokens;
}

function readHostLine(
  inventory: RawInventory,
  group: RawGroup | undefined,
  raw: string,
  line: number,
  file: string,
): void {
  const [hostToken, ...varTokens] = tokenize(raw, line, file);
  const hostOrigin: Origin = { file, line, column: hostToken.column };
  const { name, port } = splitHostPort(hostToken.text);
  const layer = emptyLayer();
  if (port !== undefined) setValue(layer, 'port', port, hostOrigin);
  for (const token of varTokens) {
    const origin: Origin = { file, line, column: token.column };
    const eq = token.text.indexOf('=');
    if (eq <= 0) {
      throw new InventoryError(
        origin,
        `expected key=value after the host name, got ${JSON.stringify(token.text)} (quote values that contain spaces)`,
      );
    }
    const value = token.text.slice(eq + 1);
    setValue(
      layer,
      token.text.slice(0, eq),
      token.quoted ? parseJsonCollection(value) : parseIniValue(value),
      { file, line, column: token.valueColumn },
    );
  }
  normalizeConnectionNames(layer);
  for (const hostName of expandHostRange(name, hostOrigin)) {
    inventory.defineHost(hostName, hostOrigin, layer);
    if (group) inventory.addHostToGroup(group, { name: hostName, origin: hostOrigin });
  }
}

/** `web1:2222` is host web1 on port 2222 (not for IPv6 addresses, which hold colons themselves). */
function splitHostPort(text: string): { name: string; port?: number } {
  const match = /^([^:]+):(\d+)$/.exec(text);
  return match ? { name: match[1], port: Number(match[2]) } : { name: text };
}

function readVarLine(group: RawGroup, trimmed: string, indent: number, at: (column: number) => Origin): void {
  const eq = trimmed.indexOf('=');
  if (eq <= 0) {
    throw new InventoryError(
      at(indent + 1),
      `expected key=value in [${group.name}:vars], got ${JSON.stringify(trimmed)}`,
    );
  }
  const key = trimmed.slice(0, eq).trimEnd();
  const rawValue = trimmed.slice(eq + 1);
  const value = rawValue.trim();
  const valueColumn = indent + eq + 2 + (rawValue.length - rawValue.trimStart().length);
  const quoted = /^(["']).*\1$/.test(value) && value.length >= 2;
  setValue(
    group.layer,
    key,
    quoted ? parseJsonCollection(value.slice(1, -1)) : parseIniValue(value),
    at(valueColumn),
  );
  normalizeConnectionNames(group.layer);
}

function readChildLine(inventory: RawInventory, group: RawGroup, trimmed: string, origin: Origin): void {
  const name = trimmed.replace(/\s+[#;].*$/, '');
  if (/\s/.test(name)) {
    throw new InventoryError(
      origin,
      `expected one group name per line in [${group.name}:children], got ${JSON.stringify(trimmed)}`,
    );
  }
  inventory.group(name, origin);
  inventory.groupsThatMustExist.push({ name, origin });
  inventory.addChild(group, { name, origin });
}

/** Types an unquoted INI value (see the header comment). */
export function parseIniValue(text: string): unknown {
  if (/^(true|yes)$/i.test(text)) return true;
  if (/^(false|no)$/i.test(text)) return false;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    const number = Number(text);
    if (Number.isFinite(number) && String(number) === text.replace(/^\+/, '')) return number;
    return text;
  }
  return parseJsonCollection(text);
}

/** `["a", "b"]` or `{"k": 1}` as a list or mapping; anything else stays text. */
function parseJsonCollection(text: string): unknown {
  if (!/^\[.*\]$|^\{.*\}$/s.test(text)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
