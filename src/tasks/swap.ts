/**
 * swap({ path, size, priority?, activate?, state? }): a swap file of `size`, root's and mode 0600
 * (anyone reading it reads memory), with its swap signature (mkswap), a line in /etc/fstab so it is
 * used at boot, and, with `activate` (default true), used now (swapon). Ansible has no module for
 * this: roles combine command, mount and a `swapon` shell.
 *
 * The file is made beside its path (fallocate, or dd where the file system cannot allocate), given its
 * mode and signature, then renamed over it. A file of another size, or without the signature, is made
 * again; a file in use is switched off first. A new `priority` switches it off and on again.
 *
 * Containers: the kernel refuses swapon in a container (it is the host's memory), and systemd's fstab
 * generator skips swap lines there. The probe asks `systemd-detect-virt --container`; in a container a
 * swap file that is not in use with `activate: true` fails the task before it changes anything, saying
 * to set `activate: false` (the file and its fstab line only, for an image that boots as a VM later).
 */
import { z } from 'zod';
import type { Plan, ProbeResult, Step } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { defineTask } from './define.js';
import { editFstab, FSTAB, type FstabEntry, fstabProbe, fstabWrite, probedFstab } from './fstab.js';
import { absolutePath, flag, integer, presence, rule, shown } from './options.js';
import { MARKER_PREFIX, markedLines } from './probe-output.js';

const MARKER = `${MARKER_PREFIX}swap`;
const UNITS = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as const;

/** `512M`, `2G`, `65536K` (binary units, as fallocate reads them) → bytes. */
export function parseSize(size: string): number | undefined {
  const match = /^([1-9][0-9]*)([KMG])$/.exec(size);
  return match ? Number(match[1]) * UNITS[match[2] as keyof typeof UNITS] : undefined;
}

const size = z.custom<string>().superRefine(
  rule((value: unknown) => {
    const bytes = typeof value === 'string' ? parseSize(value) : undefined;
    if (bytes === undefined) {
      return {
        problem: `size must be a number of K, M or G like "512M" or "2G", got ${shown(value)}`,
        hint: 'binary units: 1G is 1024M',
      };
    }
    return bytes < UNITS.M ? `size must be at least 1M, got ${shown(value)}` : undefined;
  }),
);

const options = z.strictObject({
  /** The swap file (no spaces: /proc/swaps escapes them). */
  path: absolutePath().pipe(z.string().regex(/^\S+$/, { error: 'path must not contain spaces' })),
  size: size.optional(),
  /** swapon's priority (higher is used first); the kernel's default when not given. */
  priority: integer('priority', 0).max(32767, { error: 'priority must be at most 32767' }).optional(),
  /** Use it now (swapon), not only from the next boot. */
  activate: flag('activate').default(true),
  state: presence.default('present'),
});

export type SwapOptions = z.input<typeof options>;
type Swap = z.output<typeof options>;

function probe(spec: Swap): string {
  return [
    sh`vs_p=${spec.path}`,
    `if [ -f "$vs_p" ] && [ ! -L "$vs_p" ]; then echo "${MARKER} file $(stat -c '%s %a %u %g' -- "$vs_p") $(blkid -p -o value -s TYPE -- "$vs_p" 2>/dev/null || echo none)"`,
    `elif [ -e "$vs_p" ] || [ -L "$vs_p" ]; then echo '${MARKER} not-a-file'`,
    `else echo '${MARKER} absent'; fi`,
    `awk -v p="$vs_p" 'NR > 1 && $1 == p { print "${MARKER} active " $5 }' /proc/swaps`,
    `if systemd-detect-virt --container -q 2>/dev/null; then echo "${MARKER} container $(systemd-detect-virt --container)"; fi`,
    fstabProbe(MARKER, FSTAB),
  ].join('\n');
}

/** The shell making the swap file beside `path`, then renaming it over it. */
function createScript(path: string, bytes: number): string {
  const tmp = `${path}.verdandi`;
  return [
    'set -e',
    sh`rm -f ${tmp}`,
    sh`fallocate -l ${String(bytes)} ${tmp} 2>/dev/null || dd if=/dev/zero of=${tmp} bs=1024 count=${String(bytes / 1024)} status=none`,
    sh`chown 0:0 ${tmp}`,
    sh`chmod 0600 ${tmp}`,
    sh`mkswap ${tmp} >/dev/null`,
    sh`mv -f ${tmp} ${path}`,
  ].join('\n');
}

function swapon(path: string, priority: number | undefined): string {
  return priority === undefined ? sh`swapon ${path}` : sh`swapon -p ${String(priority)} ${path}`;
}

function plan(spec: Swap, result: ProbeResult): Plan {
  const label = `swap ${spec.path}`;
  const fstab = probedFstab(result.stdout, result.exitCode, MARKER, FSTAB, label);
  if ('error' in fstab) return { steps: [], error: fstab.error };
  const seen = markedLines(result.stdout, MARKER);
  const file = seen.find(([kind]) => kind === 'file' || kind === 'absent' || kind === 'not-a-file');
  if (!file)
    return {
      steps: [],
      error: `${label}: the probe printed nothing about ${spec.path} (exit code ${result.exitCode})`,
    };
  if (file[0] === 'not-a-file') return { steps: [], error: `${label}: ${spec.path} is not a regular file` };
  const active = seen.find(([kind]) => kind === 'active');
  const container = seen.find(([kind]) => kind === 'container');
  const swapoff = { kind: 'run' as const, command: sh`swapoff ${spec.path}` };
  const isSwapLine = (entry: FstabEntry) => entry.src === spec.path && entry.fstype === 'swap';

  const steps: Step[] = [];
  const reasons: string[] = [];
  if (spec.state === 'absent') {
    if (active) {
      steps.push(swapoff);
      reasons.push('in use');
    }
    const write = fstabWrite(fstab, FSTAB, editFstab(fstab.lines, isSwapLine, undefined));
    if (write.steps.length > 0) reasons.push(`${FSTAB} has its line`);
    steps.push(...write.steps);
    if (file[0] === 'file') {
      steps.push({ kind: 'run', command: sh`rm -f ${spec.path}` });
      reasons.push('the file exists');
    }
    return steps.length === 0 ? { steps: [] } : { steps, reason: reasons.join(', ') };
  }

  const bytes = parseSize(spec.size as string) as number;
  const [, fileSize, mode, uid, gid, type] = file;
  const recreate = file[0] === 'absent' || Number(fileSize) !== bytes || type !== 'swap';
  const activateNow =
    spec.activate &&
    (recreate || !active || (spec.priority !== undefined && Number(active[1]) !== spec.priority));
  if (activateNow && container) {
    return {
      steps: [],
      error: `${label}: the host is a container (${container[1]}): its kernel refuses swapon there; set activate: false to make the file and its ${FSTAB} line only`,
    };
  }
  if (recreate) {
    if (active) steps.push(swapoff);
    steps.push({
      kind: 'run',
      command: createScript(spec.path, bytes),
      description: `create ${spec.path} (${spec.size}), mkswap`,
    });
    reasons.push(
      file[0] === 'absent'
        ? 'the file is missing'
        : Number(fileSize) !== bytes
          ? `size is ${fileSize} bytes, not ${bytes}`
          : 'no swap signature',
    );
  } else if (mode !== '600' || uid !== '0' || gid !== '0') {
    steps.push({ kind: 'run', command: sh`chown 0:0 ${spec.path} && chmod 0600 ${spec.path}` });
    reasons.push(`mode ${mode.padStart(4, '0')} owner ${uid}:${gid}, not 0600 root`);
  }

  const wanted: FstabEntry = {
    src: spec.path,
    path: 'none',
    fstype: 'swap',
    opts: spec.priority === undefined ? ['sw'] : ['sw', `pri=${spec.priority}`],
    dump: 0,
    passno: 0,
  };
  const edit = editFstab(fstab.lines, isSwapLine, wanted);
  const write = fstabWrite(fstab, FSTAB, edit);
  if (write.steps.length > 0)
    reasons.push(edit.before ? `${FSTAB} line differs` : `${FSTAB} has no line for it`);
  steps.push(...write.steps);

  if (activateNow) {
    if (active && !recreate) {
      steps.push(swapoff);
      reasons.push(`priority is ${active[1]}`);
    } else if (!active) reasons.push('not in use');
    steps.push({ kind: 'run', command: swapon(spec.path, spec.priority) });
  }
  if (steps.length === 0) return { steps: [] };
  return { steps, reason: reasons.join(', '), ...(write.diff ? { diff: write.diff } : {}) };
}

export const swap = defineTask({
  type: 'swap',
  becomeUser: { refuse: 'only root may enable swap' },
  options,
  subject: 'path',
  label: (path) => `swap ${path}`,
  prepare: (opts, { fail }) => {
    if (opts.state === 'present' && opts.size === undefined)
      fail('size', 'size is required with state present');
    return opts;
  },
  probe,
  plan,
});
