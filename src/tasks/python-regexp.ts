/**
 * Regular expressions of the tasks ported from Ansible modules that take Python regexps (replace,
 * blockinfile). They are evaluated on the controller, by JavaScript's RegExp, on the content the probe
 * read: a role written for Ansible mostly keeps its patterns, since the two syntaxes share everything
 * but a few spellings, which are translated here:
 *
 *   (?P<name>...)  →  (?<name>...)        (?P=name)  →  \k<name>
 *   \A             →  start of the text     \Z         →  end of the text
 *   (?i) (?s) (?m) at the start  →  the flags i, s, m
 *
 * Replacement templates follow Python's `re.sub`: `\1`, `\g<1>`, `\g<name>` insert a group (an unmatched
 * group inserts nothing), `\n`, `\t`, `\\` are a newline, a tab, a backslash, and `$` is an ordinary
 * character (JavaScript's `$1` is not a backreference here).
 */

/** A pattern that is not a valid regexp, with the reason. */
export class PatternError extends Error {}

/** JavaScript flags for Python's leading inline flags; `x` (verbose) has no JavaScript counterpart. */
const INLINE_FLAGS: Record<string, string> = { i: 'i', s: 's', m: 'm' };

/**
 * The JavaScript source and extra flags of a Python pattern. Escapes and character classes are copied
 * as they are, so `\(?P<` or `[(?P<]` stay literal.
 */
export function translatePattern(pattern: string): { source: string; flags: string } {
  let flags = '';
  let rest = pattern;
  const inline = /^\(\?([a-zA-Z]+)\)/.exec(rest);
  if (inline) {
    for (const letter of inline[1]) {
      const flag = INLINE_FLAGS[letter];
      if (flag === undefined) {
        throw new PatternError(`the inline flag (?${letter}) is not supported (only i, s and m are)`);
      }
      if (!flags.includes(flag)) flags += flag;
    }
    rest = rest.slice(inline[0].length);
  }
  let source = '';
  let inClass = false;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === '\\') {
      const next = rest[i + 1];
      if (!inClass && next === 'A') source += '(?<![\\s\\S])';
      else if (!inClass && next === 'Z') source += '(?![\\s\\S])';
      else source += c + (next ?? '');
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      source += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      source += c;
      // A `]` right after `[` or `[^` is a literal in both syntaxes.
      if (rest[i + 1] === '^') source += rest[++i];
      if (rest[i + 1] === ']') source += rest[++i];
      continue;
    }
    if (rest.startsWith('(?P<', i)) {
      source += '(?<';
      i += 3;
      continue;
    }
    const backreference = /^\(\?P=(\w+)\)/.exec(rest.slice(i));
    if (backreference) {
      source += `\\k<${backreference[1]}>`;
      i += backreference[0].length - 1;
      continue;
    }
    source += c;
  }
  return { source, flags };
}

/** A RegExp from a Python pattern with `flags` added, or a PatternError saying why it is invalid. */
export function compilePattern(pattern: string, flags: string): RegExp {
  const translated = translatePattern(pattern);
  const all = [...new Set(flags + translated.flags)].join('');
  try {
    return new RegExp(translated.source, all);
  } catch (error) {
    throw new PatternError((error as Error).message.replace(/^Invalid regular expression: /, ''));
  }
}

/** The escapes a Python replacement template knows besides group references. */
const TEMPLATE_ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  f: '\f',
  v: '\v',
  a: '\x07',
  b: '\b',
  '\\': '\\',
};

type TemplatePart = string | { group: number | string };

/** A Python replacement template as literal text and group references, checked against `regexp`. */
export function parseTemplate(template: string, regexp: RegExp): TemplatePart[] {
  // An empty alternative makes any regexp match '': the match then lists every group of the regexp.
  const empty = new RegExp(`${regexp.source}|`, regexp.flags.replace(/[gy]/g, '')).exec(
    '',
  ) as RegExpExecArray;
  const groupCount = empty.length - 1;
  const names = new Set(Object.keys(empty.groups ?? {}));
  const parts: TemplatePart[] = [];
  let literal = '';
  const group = (ref: number | string) => {
    if (typeof ref === 'number' && ref > groupCount) {
      throw new PatternError(`the replacement refers to group ${ref}, the regexp has ${groupCount}`);
    }
    if (typeof ref === 'string' && !names.has(ref)) {
      throw new PatternError(
        `the replacement refers to group "${ref}", the regexp has no group of that name`,
      );
    }
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push({ group: ref });
  };
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== '\\') {
      literal += c;
      continue;
    }
    const rest = template.slice(i + 1);
    const numbered = /^\d{1,2}/.exec(rest);
    const named = /^g<([^>]*)>/.exec(rest);
    if (numbered) {
      group(Number(numbered[0]));
      i += numbered[0].length;
    } else if (named) {
      const ref = named[1];
      if (/^\d+$/.test(ref)) group(Number(ref));
      else if (/^[A-Za-z_]\w*$/.test(ref)) group(ref);
      else throw new PatternError(`bad group name in the replacement: \\g<${ref}>`);
      i += named[0].length;
    } else if (rest[0] !== undefined && TEMPLATE_ESCAPES[rest[0]] !== undefined) {
      literal += TEMPLATE_ESCAPES[rest[0]];
      i++;
    } else if (rest[0] !== undefined && /[A-Za-z]/.test(rest[0])) {
      throw new PatternError(`bad escape \\${rest[0]} in the replacement (write \\\\ for a backslash)`);
    } else {
      // Python keeps the backslash of an escape it does not know (`\&` is two characters).
      literal += c;
    }
  }
  if (literal !== '') parts.push(literal);
  return parts;
}

/** The text a template gives for one match. */
export function expandTemplate(parts: TemplatePart[], match: RegExpExecArray): string {
  return parts
    .map((part) =>
      typeof part === 'string'
        ? part
        : ((typeof part.group === 'number' ? match[part.group] : match.groups?.[part.group]) ?? ''),
    )
    .join('');
}

/** Every match of a global `regexp` in `text` replaced through `parts`, and how many there were. */
export function substitute(
  text: string,
  regexp: RegExp,
  parts: TemplatePart[],
): { text: string; count: number } {
  let count = 0;
  const result = text.replace(regexp, (...args) => {
    count++;
    // The last argument is the groups object when the regexp has named groups, else the input text.
    const hasGroups = typeof args[args.length - 1] === 'object';
    const end = hasGroups ? args.length - 3 : args.length - 2;
    const match = args.slice(0, end) as unknown as RegExpExecArray;
    if (hasGroups) match.groups = args[args.length - 1];
    return expandTemplate(parts, match);
  });
  return { text: result, count };
}
