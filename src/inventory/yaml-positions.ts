/**
 * YAML with positions: js-yaml gives plain values, but every inventory error must name the line and
 * column of what it is about. js-yaml has no AST; it does call a `listener` when it starts and ends
 * reading each node (with the reader's offset). We record those calls as a tree of events and line it
 * up with the values js-yaml returned:
 *
 * - a mapping's events are its keys and values in source order; a key is recognised by the `:` that
 *   follows it (and by its text being one of the mapping's keys);
 * - a sequence's events are its items, in order;
 * - js-yaml sometimes wraps a node in a second event with the same result (it first tries to read a
 *   block value as the key of a mapping); such wrappers are looked through;
 * - failed attempts (a node that turned out empty) have neither a `kind` nor a result and are dropped;
 * - a sequence item written as a bare `-` has no event at all: items are lined up by their values.
 *
 * When the two cannot be lined up (merge keys `<<`, aliases, odd null items), a value gets the position
 * of its nearest located parent: never wrong about the file, at worst a little early.
 */
import yaml from 'js-yaml';
import { loadYaml, YamlLimitError } from '../util/yaml.js';
import { InventoryError, type Origin } from './types.js';

/** A value read from YAML, with where it was written. */
export interface YamlNode {
  value: unknown;
  /**
   * Where the value is written. For a mapping entry whose value does not start on the key's line (a
   * block mapping or list, or nothing), the key's position: the line a reader looks at.
   */
  origin: Origin;
  /** For a mapping entry: where its key is written. */
  keyOrigin?: Origin;
  /** For a mapping: its entries, in source order. */
  entries?: Map<string, YamlNode>;
  /** For a sequence: its items. */
  items?: YamlNode[];
}

interface ParseEvent {
  start: number;
  end: number;
  kind: string | null;
  result: unknown;
  children: ParseEvent[];
}

/** An event that read something (an alias has a result but no kind; a failed attempt has neither). */
function isMeaningful(event: ParseEvent): boolean {
  return event.kind !== null || (event.result !== null && event.result !== undefined);
}

const NO_EVENT: ParseEvent = { start: 0, end: 0, kind: null, result: undefined, children: [] };

/**
 * The schema for inventories: YAML 1.2 core types (no surprise dates from `2024-01-01`) plus merge keys
 * (`<<: *defaults`), which inventories use to share settings.
 */
// js-yaml exports its types at run time; @types/js-yaml does not declare them.
const { merge } = (yaml as unknown as { types: { merge: yaml.Type } }).types;
const INVENTORY_SCHEMA = yaml.CORE_SCHEMA.extend({ implicit: [merge] });

/**
 * Parses one YAML document. `file` is how the file is named in messages. Returns undefined for an empty
 * document (nothing but comments and blank lines). A syntax error, or a document past the bounds of
 * `loadYaml` (size, nesting, alias expansion), becomes an InventoryError at js-yaml's line and column.
 */
export function parseYaml(text: string, file: string): YamlNode | undefined {
  // js-yaml strips a byte order mark itself, which would shift every offset by one: strip it first.
  const input = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const roots: ParseEvent[] = [];
  const open: ParseEvent[] = [];
  let value: unknown;
  try {
    value = loadYaml(input, {
      filename: file,
      schema: INVENTORY_SCHEMA,
      listener(eventType, state) {
        if (eventType === 'open') {
          open.push({
            start: state.position,
            end: state.position,
            kind: null,
            result: undefined,
            children: [],
          });
          return;
        }
        const event = open.pop();
        if (!event) return;
        event.end = state.position;
        event.kind = state.kind;
        event.result = state.result;
        (open.length > 0 ? open[open.length - 1].children : roots).push(event);
      },
    });
  } catch (err) {
    if (err instanceof yaml.YAMLException) {
      const mark = err.mark as { line?: number; column?: number } | undefined;
      throw new InventoryError(
        { file, line: (mark?.line ?? 0) + 1, column: (mark?.column ?? 0) + 1 },
        err instanceof YamlLimitError ? err.reason : `YAML syntax error: ${err.reason}`,
      );
    }
    throw err;
  }
  const root = roots.filter(isMeaningful).at(-1);
  // Nothing but comments and blank lines: js-yaml says null (or undefined for no text at all).
  if (value === undefined || (value === null && !root)) return undefined;
  const locator = new Locator(input, file);
  if (!root) return { value, origin: { file, line: 1, column: 1 } };
  return locator.build(root, value, locator.origin(root.start));
}

class Locator {
  private readonly lineStarts: number[] = [0];

  constructor(
    private readonly input: string,
    private readonly file: string,
  ) {
    for (const match of input.matchAll(/\r\n|\r|\n/g)) {
      this.lineStarts.push((match.index ?? 0) + match[0].length);
    }
  }

  /** The position of the first significant character at or after `offset` (spaces, line breaks and
   * comments skipped: js-yaml reports some nodes before the separator that precedes them). */
  origin(offset: number): Origin {
    let at = offset;
    const text = this.input;
    while (at < text.length) {
      const ch = text[at];
      if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
        at++;
      } else if (ch === '#') {
        while (at < text.length && text[at] !== '\n' && text[at] !== '\r') at++;
      } else {
        break;
      }
    }
    return this.originAt(Math.min(at, text.length));
  }

  private originAt(offset: number): Origin {
    // Binary search for the last line starting at or before offset.
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.lineStarts[mid] <= offset) low = mid;
      else high = mid - 1;
    }
    return { file: this.file, line: low + 1, column: offset - this.lineStarts[low] + 1 };
  }

  /** Whether a `:` follows the event on its line: the mark of a mapping key. */
  private isFollowedByColon(event: ParseEvent): boolean {
    let at = event.end;
    while (this.input[at] === ' ' || this.input[at] === '\t') at++;
    return this.input[at] === ':';
  }

  private isKeyOf(event: ParseEvent, mapping: Record<string, unknown>): boolean {
    return (
      event.kind === 'scalar' && Object.hasOwn(mapping, String(event.result)) && this.isFollowedByColon(event)
    );
  }

  /** Looks through wrapper events (same result, one meaningful child) down to the one that holds the
   * node's own children. */
  private unwrap(event: ParseEvent): ParseEvent {
    let current = event;
    while (true) {
      const meaningful = current.children.filter(isMeaningful);
      if (
        meaningful.length === 1 &&
        meaningful[0].result === current.result &&
        meaningful[0].kind === current.kind
      ) {
        current = meaningful[0];
      } else {
        return current;
      }
    }
  }

  build(event: ParseEvent, value: unknown, origin: Origin): YamlNode {
    const node: YamlNode = { value, origin };
    if (Array.isArray(value)) {
      node.items = this.buildItems(event, value, origin);
    } else if (value !== null && typeof value === 'object') {
      node.entries = this.buildEntries(event, value as Record<string, unknown>, origin);
    }
    return node;
  }

  private buildItems(event: ParseEvent, value: unknown[], origin: Origin): YamlNode[] {
    const own = event.result === value ? this.unwrap(event) : undefined;
    const children = (own?.children ?? []).filter(isMeaningful);
    let next = 0;
    return value.map((item) => {
      const child = children[next];
      if (child && Object.is(child.result, item)) {
        next++;
        return this.build(child, item, this.origin(child.start));
      }
      // A bare `-` (null item) or an item we could not line up: the sequence's own position.
      return this.build(NO_EVENT, item, origin);
    });
  }

  private buildEntries(
    event: ParseEvent,
    value: Record<string, unknown>,
    origin: Origin,
  ): Map<string, YamlNode> {
    const own = event.result === value ? this.unwrap(event) : undefined;
    const children = (own?.children ?? []).filter(isMeaningful);
    const located = new Map<string, { key: ParseEvent; value?: ParseEvent }>();
    for (let i = 0; i < children.length; i++) {
      const child = children[i];
      if (!this.isKeyOf(child, value)) continue;
      const next = children[i + 1];
      const nextIsKey = next !== undefined && this.isKeyOf(next, value);
      located.set(String(child.result), { key: child, value: next && !nextIsKey ? next : undefined });
      if (next && !nextIsKey) i++;
    }
    const entries = new Map<string, YamlNode>();
    // Source order first (Object.keys would put integer-like keys first), then anything not located.
    const keys = [...located.keys(), ...Object.keys(value).filter((k) => !located.has(k))];
    for (const key of keys) {
      const where = located.get(key);
      if (!where) {
        entries.set(key, this.build(NO_EVENT, value[key], origin));
        continue;
      }
      const keyOrigin = this.origin(where.key.start);
      const valueOrigin = where.value ? this.origin(where.value.start) : undefined;
      const shown = valueOrigin && valueOrigin.line === keyOrigin.line ? valueOrigin : keyOrigin;
      const entry = where.value
        ? this.build(where.value, value[key], shown)
        : this.build(NO_EVENT, value[key], shown);
      entry.keyOrigin = keyOrigin;
      entries.set(key, entry);
    }
    return entries;
  }
}
