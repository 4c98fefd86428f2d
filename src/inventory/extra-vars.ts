/**
 * `--var` values, highest in precedence. Each is one of:
 * - `key=value`: the value is typed as a YAML scalar (`port=8080` is a number, `debug=true` a boolean,
 *   `name=~` null; a number only when it reads back the same, so `0755` and `3.10` stay text), a flow
 *   list or mapping when it starts with `[` or `{`, else the text as written (`msg=a # b` keeps its
 *   `# b`); quote it (`name="8080"`) to force a string;
 * - a JSON (or YAML flow) object: `{"port": 8080, "debug": true}`;
 * - `@file.yml`: a YAML file holding a mapping of vars (relative to `cwd`).
 * Later values win.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { UserError } from '../util/errors.js';
import { checkYamlSize, loadYaml, YamlLimitError } from '../util/yaml.js';

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const USAGE = '--var takes key=value, a JSON object, or @file.yml';

export function parseExtraVars(
  list: string[],
  { cwd = process.cwd() }: { cwd?: string } = {},
): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const item of list) {
    const trimmed = item.trim();
    if (trimmed.startsWith('{')) {
      Object.assign(vars, parseObject(trimmed, `--var ${trimmed}`));
    } else if (trimmed.startsWith('@')) {
      const file = path.resolve(cwd, trimmed.slice(1));
      let text: string;
      try {
        checkYamlSize(statSync(file).size);
        text = readFileSync(file, 'utf8');
      } catch (err) {
        if (err instanceof YamlLimitError) throw new UserError(`--var ${trimmed}: ${err.reason}`, 1, USAGE);
        throw new UserError(`--var ${trimmed}: cannot read ${trimmed.slice(1)}`, 1, USAGE);
      }
      Object.assign(vars, parseObject(text, `--var ${trimmed}`));
    } else {
      const eq = item.indexOf('=');
      const name = eq === -1 ? '' : item.slice(0, eq).trim();
      if (eq === -1 || !VAR_NAME.test(name)) {
        throw new UserError(
          eq === -1
            ? `--var ${JSON.stringify(item)} has no "=": ${USAGE}`
            : `--var ${JSON.stringify(item)}: ${JSON.stringify(name)} is not a var name (letters, digits and _, not starting with a digit)`,
          1,
          USAGE,
        );
      }
      vars[name] = parseScalar(item.slice(eq + 1));
    }
  }
  return vars;
}

/** Types one `key=value` value (see the header comment). */
export function parseScalar(text: string): unknown {
  if (text === '') return '';
  let parsed: unknown;
  try {
    parsed = loadYaml(text);
  } catch {
    return text;
  }
  if (typeof parsed === 'number') return String(parsed) === text ? parsed : text;
  if (parsed === null || typeof parsed === 'boolean') {
    // `a #b` would load as "a": only take YAML's reading when it read the whole text.
    return text.includes('#') ? text : parsed;
  }
  if (typeof parsed === 'string' && /^(["']).*\1$/s.test(text.trim())) return parsed;
  if (typeof parsed === 'object' && /^[[{]/.test(text.trim())) return parsed;
  return text;
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = loadYaml(text);
  } catch (err) {
    if (err instanceof YamlLimitError) {
      const { line, column } = err.mark;
      throw new UserError(`${what}, line ${line + 1}, column ${column + 1}: ${err.reason}`, 1, USAGE);
    }
    const reason = err instanceof yaml.YAMLException ? err.reason : String(err);
    throw new UserError(`${what}: not valid JSON or YAML (${reason})`, 1, USAGE);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UserError(
      `${what}: expected a mapping of vars, got ${Array.isArray(parsed) ? 'a list' : typeof parsed}`,
      1,
      USAGE,
    );
  }
  return parsed as Record<string, unknown>;
}
