/**
 * Every YAML document Verdandi reads from a user's files is loaded here: inventories (Verdandi's and
 * Ansible's), group_vars and host_vars, `--var` files and values, secrets, Ansible vaults. The load is
 * bounded, so a hostile or broken file costs little time and memory and ends in a clear error:
 *
 * - size: at most MAX_YAML_BYTES of text;
 * - nesting: at most MAX_YAML_DEPTH levels (js-yaml's own depth counter stops the parser);
 * - merge keys (`<<: *defaults`): at most MAX_YAML_ALIASED_VALUES keys copied (js-yaml's own counter);
 * - aliases: js-yaml returns an alias (`*a`) as one more reference to the anchored value, so loading is
 *   cheap, but everything that then walks the value (checking, interpolating, redacting, printing) meets
 *   it once per reference: seven levels of `&a [*a, *a, ...]` in 330 bytes are millions of values, and
 *   nine exhaust the heap. The loaded value is walked once here, counting the values reached again
 *   through aliases; past MAX_YAML_ALIASED_VALUES the document is refused.
 *
 * Errors are js-yaml's own `YAMLException` (a reason and a 0-based line and column), which every caller
 * already turns into its message naming the file, line and column.
 */
import yaml from 'js-yaml';

export const MAX_YAML_BYTES = 4 * 1024 * 1024;
export const MAX_YAML_DEPTH = 64;
/** Far more than sharing settings with `<<: *defaults` or `*list` across thousands of hosts needs. */
export const MAX_YAML_ALIASED_VALUES = 100_000;

export interface LoadYamlOptions {
  /** Default: YAML 1.2's core schema (no surprise dates from `2024-01-01`). */
  schema?: yaml.Schema;
  /** How the file is named in js-yaml's own messages. */
  filename?: string;
  /** js-yaml's node listener, for callers that map values back to their positions. */
  listener?: yaml.LoadOptions['listener'];
}

/** A document past one of the bounds: a `YAMLException` (with its mark), told apart from a syntax error. */
export class YamlLimitError extends yaml.YAMLException {}

/** js-yaml's own counters (options of `yaml.load`) and how their errors are told. */
const JS_YAML_BOUNDS: Array<{ option: string; value: number; reason: string }> = [
  { option: 'maxDepth', value: MAX_YAML_DEPTH, reason: `nested deeper than ${MAX_YAML_DEPTH} levels` },
  {
    // A merge key copies each key it merges: those copies share the budget of repeated values.
    option: 'maxTotalMergeKeys',
    value: MAX_YAML_ALIASED_VALUES,
    reason: `merge keys (<<) copy more than ${MAX_YAML_ALIASED_VALUES} values into this document`,
  },
];

/**
 * The one place a YAML document is loaded. Throws `yaml.YAMLException` for a syntax error, and its
 * subclass `YamlLimitError` for a document past the bounds.
 */
export function loadYaml(text: string, options: LoadYamlOptions = {}): unknown {
  try {
    return loadBounded(text, options);
  } catch (err) {
    // js-yaml's counters throw a plain YAMLException naming the option: say it as the other bounds do.
    const bound =
      err instanceof yaml.YAMLException && !(err instanceof YamlLimitError)
        ? JS_YAML_BOUNDS.find((b) => err.reason.includes(b.option))
        : undefined;
    if (bound) throw limitError(bound.reason, options.filename, (err as yaml.YAMLException).mark);
    throw err;
  }
}

/**
 * Refuses a document of more than MAX_YAML_BYTES. `loadYaml` checks its text; a caller reading a file
 * checks the file's size first, so a huge file is not even read into memory.
 */
export function checkYamlSize(bytes: number, filename?: string): void {
  if (bytes > MAX_YAML_BYTES) {
    throw limitError(
      `the document is ${mebibytes(bytes)}; at most ${mebibytes(MAX_YAML_BYTES)} is read`,
      filename,
      { line: 0, column: 0 },
    );
  }
}

function loadBounded(text: string, options: LoadYamlOptions): unknown {
  checkYamlSize(Buffer.byteLength(text, 'utf8'), options.filename);
  let firstAlias: { line: number; column: number } | undefined;
  const value = yaml.load(text, {
    schema: options.schema ?? yaml.CORE_SCHEMA,
    filename: options.filename,
    // Not in @types/js-yaml 4.0, which predates these options.
    ...Object.fromEntries(JS_YAML_BOUNDS.map((b) => [b.option, b.value])),
    listener(eventType, state) {
      // An alias is the one node that closes with a value but no kind of its own; only an alias of a
      // mapping or list can expand.
      if (
        !firstAlias &&
        eventType === 'close' &&
        !state.kind &&
        typeof state.result === 'object' &&
        state.result !== null
      ) {
        const star = text.lastIndexOf('*', state.position);
        firstAlias = { line: state.line, column: Math.max(0, star - state.lineStart) };
      }
      options.listener?.call(state, eventType, state);
    },
  });
  checkExpansion(value, options.filename, firstAlias);
  return value;
}

/**
 * Walks the value as a reader of it would, every alias expanded, without recursion (a deep value cannot
 * overflow the stack): refuses it when the expansion passes the bounds.
 */
function checkExpansion(
  value: unknown,
  filename: string | undefined,
  firstAlias: { line: number; column: number } | undefined,
): void {
  if (value === null || typeof value !== 'object') return;
  const seen = new Set<object>();
  const stack: Array<{ value: object; depth: number; repeated: boolean }> = [
    { value, depth: 1, repeated: false },
  ];
  let aliased = 0;
  const at = firstAlias ?? { line: 0, column: 0 };
  while (stack.length > 0) {
    const node = stack.pop() as { value: object; depth: number; repeated: boolean };
    const repeated = node.repeated || seen.has(node.value);
    seen.add(node.value);
    const children = Array.isArray(node.value) ? node.value : Object.values(node.value);
    if (repeated) aliased += 1 + children.length;
    if (aliased > MAX_YAML_ALIASED_VALUES) {
      throw limitError(
        `aliases (*name) expand this document to more than ${MAX_YAML_ALIASED_VALUES} repeated values (like a YAML "alias bomb"); write the values out, or share fewer`,
        filename,
        at,
      );
    }
    if (node.depth > MAX_YAML_DEPTH) {
      throw limitError(`aliases nest this document deeper than ${MAX_YAML_DEPTH} levels`, filename, at);
    }
    for (const child of children) {
      if (child !== null && typeof child === 'object') {
        stack.push({ value: child, depth: node.depth + 1, repeated });
      }
    }
  }
}

function mebibytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function limitError(
  reason: string,
  filename: string | undefined,
  at: { line: number; column: number },
): YamlLimitError {
  // The mark is what js-yaml's own errors carry; `snippet` left out: the text may hold secrets.
  const mark = {
    name: filename ?? null,
    buffer: '',
    position: 0,
    line: at.line,
    column: at.column,
    snippet: null,
  };
  return new YamlLimitError(reason, mark as unknown as yaml.Mark);
}
