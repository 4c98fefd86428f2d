import { createHash } from 'node:crypto';

/**
 * Shell quoting helpers. Every command Verdandi sends to a host is built from these, never by pasting
 * strings: a value is always one shell word, whatever characters it holds.
 */

/** Text that is inserted into a command as is (an operator, a redirection, a trusted fragment). */
export class RawShell {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Marks trusted shell syntax that `sh` must not quote. */
export function raw(text: string): RawShell {
  return new RawShell(text);
}

/** POSIX single-quote a word: `it's` → `'it'\''s'`. Plain safe words are left bare for readability. */
export function quote(word: string | number | boolean): string {
  const s = String(word);
  if (s === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Joins words into one command line, quoting each (RawShell words are kept as they are). */
export function words(
  ...parts: Array<string | number | boolean | RawShell | undefined | null | false>
): string {
  return parts
    .filter((p): p is string | number | boolean | RawShell => p !== undefined && p !== null && p !== false)
    .map((p) => (p instanceof RawShell ? p.text : quote(p)))
    .join(' ');
}

type ShellValue = string | number | boolean | RawShell | ReadonlyArray<string | number | RawShell>;

/**
 * Tagged template for shell commands: every interpolated value is quoted as one word (arrays become
 * several words). `sh\`test -f ${path}\`` is safe whatever `path` holds.
 */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): string {
  let out = strings[0];
  values.forEach((v, i) => {
    if (Array.isArray(v)) out += (v as Array<string | number | RawShell>).map((w) => words(w)).join(' ');
    else out += words(v as string | number | boolean | RawShell);
    out += strings[i + 1];
  });
  return out;
}

/** `a && b && c`, skipping empty parts. */
export function and(...commands: Array<string | undefined | false>): string {
  return commands.filter((c): c is string => !!c).join(' && ');
}

/**
 * A here-document giving `text` to a command on file descriptor `fd` (`3<<'VD_…'`, the text, the
 * delimiter): the text is part of the script, not an argument of any process. The quoted delimiter
 * means no expansion; it is derived from the text's hash, so it cannot be one of its lines. Append it
 * to the command: it ends the command's line (what follows starts on a new line).
 */
export function hereDocument(fd: number, text: string): string {
  const end = `VD_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
  return `${fd}<<'${end}'\n${text.endsWith('\n') ? text : `${text}\n`}${end}`;
}

/**
 * A command that runs `script` with `sh` as `user`, through `runuser -u user --`: runuser sets HOME,
 * USER and LOGNAME to the user's (no login shell: system users often have `nologin`). It starts in the
 * user's home (`/` when there is none), since the working directory it inherits (root's home) is
 * usually closed to other users. The script is a here-document on fd 3, read and evaluated by the
 * user's shell: it is part of the caller's script, never an argument, so `ps` shows only the fixed
 * `runuser ... sh -c 'cd "$HOME" ...'`. Standard input stays the caller's (a write step's content goes
 * through). The here-document ends the command's line: anything after it starts on a new line.
 */
export function scriptAsUser(user: string, script: string): string {
  const reader = 'cd "$HOME" 2>/dev/null || cd /; vd_s=$(cat <&3); exec 3<&-; eval "$vd_s"';
  return `${words('runuser', '-u', user, '--', 'sh', '-c', reader)} ${hereDocument(3, script)}`;
}
