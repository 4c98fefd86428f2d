/**
 * sysctl({ key, value, file?, state?, reload? }): a kernel parameter set in a sysctl.d file (so it
 * holds at boot) and, with `reload` (default true), in the running kernel. Ansible's `sysctl`
 * (`sysctl_set: yes`: the live value is compared, not only the file).
 *
 * The probe prints the file (base64; these files are small) and the live value (`sysctl -n`). The
 * plan edits the file in TypeScript: the first line setting the key gets `key = value`, later ones are
 * removed (the last one would win at boot), or the line is appended; the engine's atomic write applies
 * it. When the live value differs (whitespace aside: sysctl prints ranges with tabs), `sysctl -w` sets
 * it. `state: 'absent'` removes the key's lines from the file and leaves the running kernel as it is
 * (its default value is unknown): the key takes its default at the next boot.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, Step } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { DEFAULT_FILE_MODE, writeStep } from './copy.js';
import { defineTask } from './define.js';
import { currentGroup, currentOwner, formatMode, unreadableProbe } from './file-state.js';
import { joinLines, splitLines } from './lineinfile.js';
import { absolutePath, flag, presence, says, text } from './options.js';
import { decodeBase64, decodeBase64Text, MARKER_PREFIX, markedLines } from './probe-output.js';

/** Where the task writes when no `file` is given: read at boot by systemd-sysctl, after the defaults. */
export const DEFAULT_SYSCTL_FILE = '/etc/sysctl.d/99-verdandi.conf';

const options = z.strictObject({
  /** The parameter, dotted (`net.core.somaxconn`, `vm.swappiness`). */
  key: text('key', /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/, 'a dotted sysctl key like "vm.swappiness"'),
  /** Its value: a number, or text such as '32768 60999' (one line). */
  value: z
    .union(
      [z.string(), z.number()],
      says((got) => `value must be a string or a number, got ${got}`),
    )
    .transform((value) => String(value).trim())
    .pipe(z.string().regex(/^[^\n\r]+$/, { error: 'value must be one non-empty line' }))
    .optional(),
  file: absolutePath('file').default(DEFAULT_SYSCTL_FILE),
  state: presence.default('present'),
  /** Set the running kernel's value too (default true); false: the file only, for the next boot. */
  reload: flag('reload').default(true),
});

export type SysctlOptions = z.input<typeof options>;
type Sysctl = z.output<typeof options>;

const MARKER = `${MARKER_PREFIX}sysctl`;

/** How sysctl values compare: runs of whitespace (sysctl prints tabs) count as one space. */
export function normalizeValue(value: string): string {
  return value.trim().split(/\s+/).join(' ');
}

/** A line that sets `key` (`key = value`, `key=value`, with an optional leading `-`). */
function setsKey(line: string, key: string): boolean {
  const match = /^\s*-?\s*([^=#;\s]+)\s*=/.exec(line);
  return match !== null && match[1].replace(/\//g, '.') === key;
}

/** The file's new lines and whether they changed: the key set once, to `value`, or removed (undefined). */
export function editSysctlFile(
  lines: string[],
  key: string,
  value: string | undefined,
): { lines: string[]; changed: boolean } {
  const wanted = value === undefined ? undefined : `${key} = ${value}`;
  const out: string[] = [];
  let placed = false;
  for (const line of lines) {
    if (!setsKey(line, key)) out.push(line);
    else if (wanted !== undefined && !placed) {
      // A line that already sets this value, however it is spaced, stays as written.
      const current = normalizeValue(line.slice(line.indexOf('=') + 1));
      out.push(current === normalizeValue(value as string) ? line : wanted);
      placed = true;
    }
  }
  if (wanted !== undefined && !placed) out.push(wanted);
  const changed = out.length !== lines.length || out.some((line, index) => line !== lines[index]);
  return { lines: out, changed };
}

function probe(spec: Sysctl): string {
  const lines = [
    sh`vc_f=${spec.file}`,
    'if [ -f "$vc_f" ]; then',
    `  printf '%s %s %s ' ${MARKER} file "$(stat -c '%u %U %g %G %a' -- "$vc_f")"; base64 -w0 < "$vc_f"; echo`,
    `elif [ -e "$vc_f" ] || [ -L "$vc_f" ]; then echo '${MARKER} not-a-file'`,
    `else echo '${MARKER} absent'; fi`,
  ];
  if (spec.state === 'present' && spec.reload) {
    lines.push(
      sh`if vc_v=$(sysctl -n -- ${spec.key} 2>&1); then printf '%s live %s\\n' ${MARKER} "$(printf '%s' "$vc_v" | base64 -w0)";`,
      `else printf '%s unknown %s\\n' ${MARKER} "$(printf '%s' "$vc_v" | base64 -w0)"; fi`,
    );
  }
  return lines.join('\n');
}

function plan(spec: Sysctl, result: ProbeResult): Plan {
  const label = `sysctl ${spec.key}`;
  const seen = markedLines(result.stdout, MARKER);
  const fileLine = seen.find(([kind]) => kind === 'file' || kind === 'absent' || kind === 'not-a-file');
  if (!fileLine) return { steps: [], error: unreadableProbe(spec.file, result.exitCode) };
  if (fileLine[0] === 'not-a-file') {
    return { steps: [], error: `${label}: ${spec.file} is not a regular file` };
  }
  const unknown = seen.find(([kind]) => kind === 'unknown');
  if (unknown) {
    return {
      steps: [],
      error: `${label}: the host's kernel has no parameter ${spec.key} (${(decodeBase64(unknown[1]) ?? '').trim() || 'sysctl -n failed'})`,
    };
  }

  const steps: Step[] = [];
  const reasons: string[] = [];
  let diff: Plan['diff'];
  const exists = fileLine[0] === 'file';
  const before = exists ? decodeBase64Text(fileLine[6] ?? '') : '';
  if (before === undefined) return { steps: [], error: `${label}: ${spec.file} is not UTF-8 text` };
  const edit = editSysctlFile(
    splitLines(before),
    spec.key,
    spec.state === 'present' ? spec.value : undefined,
  );
  if (edit.changed && (exists || spec.state === 'present')) {
    const after = joinLines(edit.lines);
    const [, uid, user, gid, group, mode] = fileLine;
    steps.push(
      writeStep({
        path: spec.file,
        content: after,
        mode: exists ? formatMode(Number.parseInt(mode, 8)) : DEFAULT_FILE_MODE,
        owner: exists
          ? currentOwner({ type: 'file', uid: Number(uid), user, gid: Number(gid), group, mode: 0 })
          : undefined,
        group: exists
          ? currentGroup({ type: 'file', uid: Number(uid), user, gid: Number(gid), group, mode: 0 })
          : undefined,
      }),
    );
    reasons.push(
      !exists
        ? `${spec.file} is missing`
        : spec.state === 'absent'
          ? `${spec.file} sets ${spec.key}`
          : `${spec.file} does not set ${spec.key} = ${spec.value}`,
    );
    diff = { path: spec.file, after };
  }

  const live = seen.find(([kind]) => kind === 'live');
  if (spec.state === 'present' && spec.reload && live) {
    const current = normalizeValue(decodeBase64(live[1]) ?? '');
    if (current !== normalizeValue(spec.value as string)) {
      steps.push({ kind: 'run', command: sh`sysctl -q -w ${`${spec.key}=${spec.value}`}` });
      reasons.push(`live value is ${current}`);
    }
  }
  if (steps.length === 0) return { steps: [] };
  return { steps, reason: reasons.join(', '), ...(diff ? { diff } : {}) };
}

export const sysctl = defineTask({
  type: 'sysctl',
  becomeUser: { refuse: 'only root may change kernel parameters' },
  options,
  subject: 'key',
  label: (key) => `sysctl ${key}`,
  prepare: (opts, { fail }) => {
    if (opts.state === 'present' && opts.value === undefined)
      fail('value', 'value is required with state present');
    return opts;
  },
  probe,
  plan,
});
