/**
 * The plaintext of a secrets file: a YAML map. The text is stored as the user wrote it (comments and
 * order kept); it is parsed to check it and to read values.
 *
 * Error messages name the line and column but never quote the text: it holds secrets.
 */
import yaml from 'js-yaml';
import { UserError } from '../util/errors.js';
import { loadYaml } from '../util/yaml.js';

/**
 * YAML 1.2 core schema: strings, numbers, booleans, null. Not the default schema, which would turn an
 * unquoted `2024-01-01` secret into a Date.
 */
const SCHEMA = yaml.CORE_SCHEMA;

export class SecretsYamlError extends Error {
  constructor(
    readonly reason: string,
    /** 1-based. */
    readonly line: number,
    readonly column: number,
  ) {
    super(`line ${line}, column ${column}: ${reason}`);
    this.name = 'SecretsYamlError';
  }
}

/** Parses the secrets text; throws SecretsYamlError when it is not YAML or not a map. Empty text is {}. */
export function parseSecretsYaml(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = loadYaml(text, { schema: SCHEMA });
  } catch (err) {
    if (err instanceof yaml.YAMLException) {
      throw new SecretsYamlError(err.reason, (err.mark?.line ?? 0) + 1, (err.mark?.column ?? 0) + 1);
    }
    throw err;
  }
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new SecretsYamlError('the secrets must be a map of `key: value` lines', 1, 1);
  }
  return value as Record<string, unknown>;
}

/** As parseSecretsYaml, with the error as a UserError naming `shown` (file:line:column) and what to do. */
export function parseSecretsOf(text: string, shown: string, hint: string): Record<string, unknown> {
  try {
    return parseSecretsYaml(text);
  } catch (err) {
    if (err instanceof SecretsYamlError) {
      throw new UserError(`${shown}:${err.line}:${err.column}: invalid secrets YAML: ${err.reason}`, 1, hint);
    }
    throw err;
  }
}

/** The value at `key`: a top-level key, or a dotted path into nested maps (`db.password`). */
export function getKey(secrets: Record<string, unknown>, key: string): { found: boolean; value?: unknown } {
  if (Object.hasOwn(secrets, key)) return { found: true, value: secrets[key] };
  let current: unknown = secrets;
  for (const part of key.split('.')) {
    if (!current || typeof current !== 'object' || Array.isArray(current) || !Object.hasOwn(current, part)) {
      return { found: false };
    }
    current = (current as Record<string, unknown>)[part];
  }
  return { found: true, value: current };
}

/** How a value is printed by `get`: strings as they are, anything else as YAML. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return value.endsWith('\n') ? value : `${value}\n`;
  return yaml.dump(value, { schema: SCHEMA, lineWidth: -1 });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Sets a top-level key in the YAML text, changing only that entry's lines (comments and the other
 * entries stay as written); the key is appended when missing. When the text is laid out in a way this
 * cannot follow (flow style `{a: 1}`...), the whole map is written out again (comments are lost then).
 */
export function setTopLevelKey(text: string, key: string, value: unknown): string {
  const secrets = parseSecretsYaml(text);
  const wanted = { ...secrets, [key]: value };
  const entry = yaml.dump({ [key]: value }, { schema: SCHEMA, lineWidth: -1 }).replace(/\n$/, '');
  const edited = replaceEntry(text, key, entry);
  try {
    if (JSON.stringify(parseSecretsYaml(edited)) === JSON.stringify(wanted)) return edited;
  } catch {
    // Fall through to a full rewrite.
  }
  return yaml.dump(wanted, { schema: SCHEMA, lineWidth: -1 });
}

function replaceEntry(text: string, key: string, entry: string): string {
  const lines = text.split('\n');
  const keyPattern = new RegExp(
    `^(${escapeRegExp(key)}|'${escapeRegExp(key)}'|"${escapeRegExp(key)}")\\s*:(\\s|$)`,
  );
  const start = lines.findIndex((l) => keyPattern.test(l));
  if (start === -1) {
    const body = text === '' || text.endsWith('\n') ? text : `${text}\n`;
    return `${body}${entry}\n`;
  }
  // The entry goes on while lines are indented (its nested or multi-line value), blank lines included
  // only when an indented line follows them.
  let end = start + 1;
  for (let i = start + 1; i < lines.length; i++) {
    if (/^[ \t]/.test(lines[i]) && lines[i].trim() !== '') end = i + 1;
    else if (lines[i].trim() !== '') break;
  }
  return [...lines.slice(0, start), ...entry.split('\n'), ...lines.slice(end)].join('\n');
}
