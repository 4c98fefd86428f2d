/**
 * /etc/fstab, as the `mount` and `swap` task types edit it: one line per mount point (swap files are
 * keyed by their path, the first field), compared field by field with the options as a set, the rest of
 * the file left exactly as it was. Fields are escaped as fstab(5) says (`\040` for a space).
 *
 * The probe prints the file (base64) with its owner and mode; the plan edits it in TypeScript and the
 * engine's atomic write applies it (a temporary file beside it renamed over it: a reboot in the middle
 * never finds half a file). When systemd runs, `systemctl daemon-reload` follows, so the mount and swap
 * units its fstab generator makes match the file (else `mount` warns that systemd uses the old one).
 */
import type { Plan, RunStep, WriteStep } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { writeStep } from './copy.js';
import { currentGroup, currentOwner, formatMode, unreadableProbe } from './file-state.js';
import { joinLines, splitLines } from './lineinfile.js';
import { decodeBase64Text, markedLines } from './probe-output.js';

export const FSTAB = '/etc/fstab';

export interface FstabEntry {
  /** What is mounted: a device, `UUID=…`, a directory to bind, `tmpfs`, a swap file. */
  src: string;
  /** Where (`none` for swap). */
  path: string;
  fstype: string;
  opts: string[];
  dump: number;
  passno: number;
}

/** fstab(5) escaping of a field: space, tab, newline and backslash as octal. */
export function escapeField(field: string): string {
  return field.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function formatEntry(entry: FstabEntry): string {
  return [
    escapeField(entry.src),
    escapeField(entry.path),
    entry.fstype,
    entry.opts.join(','),
    String(entry.dump),
    String(entry.passno),
  ].join(' ');
}

/** The entry a line holds, or undefined for a comment, a blank line or a line with too few fields. */
export function parseEntry(line: string): FstabEntry | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const fields = trimmed.split(/\s+/);
  if (fields.length < 3) return undefined;
  return {
    src: unescapeField(fields[0]),
    path: unescapeField(fields[1]),
    fstype: fields[2],
    opts: (fields[3] ?? 'defaults').split(','),
    dump: Number(fields[4] ?? '0'),
    passno: Number(fields[5] ?? '0'),
  };
}

/** Same entry: every field equal, the options as sets (`rw,noatime` is `noatime,rw`). */
export function sameEntry(a: FstabEntry, b: FstabEntry): boolean {
  const optsA = new Set(a.opts);
  const optsB = new Set(b.opts);
  return (
    a.src === b.src &&
    a.path === b.path &&
    a.fstype === b.fstype &&
    a.dump === b.dump &&
    a.passno === b.passno &&
    optsA.size === optsB.size &&
    [...optsA].every((opt) => optsB.has(opt))
  );
}

/**
 * The file's lines with the entry keyed by `key` (a line matches when `key` returns true for its entry)
 * set to `wanted` (the first matching line replaced unless it is already the same entry, later ones
 * removed, or appended) or removed (`wanted` undefined). `before` is the first matching entry.
 */
export function editFstab(
  lines: string[],
  matches: (entry: FstabEntry) => boolean,
  wanted: FstabEntry | undefined,
): { lines: string[]; changed: boolean; before?: FstabEntry } {
  const out: string[] = [];
  let before: FstabEntry | undefined;
  for (const line of lines) {
    const entry = parseEntry(line);
    if (!entry || !matches(entry)) out.push(line);
    else if (before === undefined) {
      before = entry;
      if (wanted !== undefined) out.push(sameEntry(entry, wanted) ? line : formatEntry(wanted));
    }
  }
  if (wanted !== undefined && before === undefined) out.push(formatEntry(wanted));
  const changed = out.length !== lines.length || out.some((line, index) => line !== lines[index]);
  return { lines: out, changed, before };
}

/** Probe lines printing `<marker> fstab <uid> <user> <gid> <group> <mode> <base64>` or `<marker> fstab-absent`. */
export function fstabProbe(marker: string, file: string): string {
  return [
    sh`vf_f=${file}`,
    `if [ -f "$vf_f" ]; then printf '%s fstab %s ' ${marker} "$(stat -c '%u %U %g %G %a' -- "$vf_f")"; base64 -w0 < "$vf_f"; echo`,
    `else echo '${marker} fstab-absent'; fi`,
  ].join('\n');
}

export interface ProbedFstab {
  lines: string[];
  /** How to write it back: its owner, group and mode kept (a new file is root's, 0644). */
  write(content: string): WriteStep;
}

/** The fstab the probe printed, or the plan's error. */
export function probedFstab(
  stdout: string,
  exitCode: number,
  marker: string,
  file: string,
  label: string,
): ProbedFstab | { error: string } {
  const seen = markedLines(stdout, marker);
  const found = seen.find(([kind]) => kind === 'fstab' || kind === 'fstab-absent');
  if (!found) return { error: unreadableProbe(file, exitCode) };
  const exists = found[0] === 'fstab';
  const text = exists ? decodeBase64Text(found[6] ?? '') : '';
  if (text === undefined) return { error: `${label}: ${file} is not UTF-8 text` };
  const [, uid, user, gid, group, mode] = found;
  const state = { type: 'file' as const, uid: Number(uid), user, gid: Number(gid), group, mode: 0 };
  return {
    lines: splitLines(text),
    write: (content) =>
      writeStep({
        path: file,
        content,
        mode: exists ? formatMode(Number.parseInt(mode, 8)) : '0644',
        owner: exists ? currentOwner(state) : undefined,
        group: exists ? currentGroup(state) : undefined,
      }),
  };
}

/** systemd regenerates its mount and swap units from fstab (nothing to do where systemd does not run). */
export const RELOAD_FSTAB_UNITS: RunStep = {
  kind: 'run',
  command: '[ ! -d /run/systemd/system ] || systemctl daemon-reload',
  description: 'systemctl daemon-reload (fstab changed)',
};

/** The steps writing the edited fstab, its diff, or nothing when it did not change. */
export function fstabWrite(
  fstab: ProbedFstab,
  file: string,
  edited: { lines: string[]; changed: boolean },
): { steps: Array<WriteStep | RunStep>; diff?: Plan['diff'] } {
  if (!edited.changed) return { steps: [] };
  const after = joinLines(edited.lines);
  return { steps: [fstab.write(after), RELOAD_FSTAB_UNITS], diff: { path: file, after } };
}
