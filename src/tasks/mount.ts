/**
 * mount({ path, src, fstype, opts?, dump?, passno?, state?, fstab? }): a file system's line in
 * /etc/fstab and whether it is mounted now. Ansible's `ansible.posix.mount`, with the same states:
 *
 * - `mounted` (default): the line, and mounted (the mount point created when missing). When the line
 *   changed while mounted, it is remounted: `mount -o remount` for new options, unmounted and mounted
 *   again when the source or type changed.
 * - `present`: the line only; nothing is mounted or unmounted.
 * - `unmounted`: unmounted if mounted; the line is left as it is.
 * - `absent`: unmounted and the line removed (the mount point directory stays).
 * - `remounted`: an action, on every run (`mount -o remount`): use it in a handler.
 *
 * The line is the one whose mount point is `path` (see ./fstab.ts: options compared as a set, the rest
 * of the file untouched, written atomically). Whether `path` is mounted is `findmnt --mountpoint`; the
 * live mount's source and options are not compared with the line: a changed line remounts.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, Step } from '../engine/types.js';
import { sh, words } from '../util/shell.js';
import { defineTask } from './define.js';
import { editFstab, FSTAB, type FstabEntry, fstabProbe, fstabWrite, probedFstab } from './fstab.js';
import { absolutePath, integer, oneOf, rule, says, shown, text } from './options.js';
import { MARKER_PREFIX, markedLines } from './probe-output.js';

const MARKER = `${MARKER_PREFIX}mount`;

/** Mount options: a list or a comma-separated string, each a word without spaces or commas. */
const mountOptions = z
  .union(
    [z.string(), z.array(z.string())],
    says((got) => `opts must be a string or a list of strings, got ${got}`),
  )
  .transform((opts) => (Array.isArray(opts) ? opts : opts.split(',')))
  .superRefine(
    rule((opts: string[]) =>
      opts.length > 0 && opts.every((opt) => /^[^\s,#]+$/.test(opt))
        ? undefined
        : `opts must be mount options without spaces (like "rw,noatime" or ["bind", "ro"]), got ${shown(opts.join(','))}`,
    ),
  );

const options = z.strictObject({
  /** The mount point. */
  path: absolutePath(),
  /** What to mount: a device (`/dev/sdb1`, `UUID=…`, `LABEL=…`), a directory to bind, `tmpfs`, a share. */
  src: text('src', /^[^\n\0]+$/, 'a device, a directory or a file system source on one line').optional(),
  /** File system type: `ext4`, `tmpfs`, `nfs`, `none` for a bind mount. */
  fstype: text('fstype', /^[A-Za-z0-9_.+-]+$/, 'a file system type like "ext4" or "tmpfs"').optional(),
  opts: mountOptions.default(['defaults']),
  dump: integer('dump', 0).default(0),
  passno: integer('passno', 0).default(0),
  state: oneOf('state', ['mounted', 'present', 'unmounted', 'absent', 'remounted']).default('mounted'),
  /** The fstab file (another one for a chroot, say). */
  fstab: absolutePath('fstab').default(FSTAB),
});

export type MountOptions = z.input<typeof options>;
type Mount = z.output<typeof options>;

function probe(spec: Mount): string {
  return [
    fstabProbe(MARKER, spec.fstab),
    sh`if findmnt -rn --mountpoint ${spec.path} >/dev/null 2>&1; then echo '${MARKER} mounted yes'; else echo '${MARKER} mounted no'; fi`,
    sh`if [ -d ${spec.path} ]; then echo '${MARKER} dir yes'; else echo '${MARKER} dir no'; fi`,
  ].join('\n');
}

function plan(spec: Mount, result: ProbeResult): Plan {
  const label = `mount ${spec.path}`;
  const fstab = probedFstab(result.stdout, result.exitCode, MARKER, spec.fstab, label);
  if ('error' in fstab) return { steps: [], error: fstab.error };
  const seen = markedLines(result.stdout, MARKER);
  const mounted = seen.find(([kind]) => kind === 'mounted')?.[1] === 'yes';
  const hasDir = seen.find(([kind]) => kind === 'dir')?.[1] === 'yes';
  // Another fstab than the system's must be named to mount(8).
  const mount = (...args: string[]) =>
    spec.fstab === FSTAB
      ? words('mount', ...args, spec.path)
      : words('mount', '-T', spec.fstab, ...args, spec.path);
  const umount = { kind: 'run' as const, command: words('umount', spec.path) };

  if (spec.state === 'remounted') {
    if (!mounted) return { steps: [], error: `${label}: ${spec.path} is not mounted: nothing to remount` };
    return { steps: [{ kind: 'run', command: mount('-o', 'remount') }], reason: 'remount requested' };
  }
  if (spec.state === 'unmounted') {
    return mounted ? { steps: [umount], reason: 'mounted → unmounted' } : { steps: [] };
  }

  const steps: Step[] = [];
  const reasons: string[] = [];
  const atPath = (entry: FstabEntry) => entry.path === spec.path;
  if (spec.state === 'absent') {
    if (mounted) {
      steps.push(umount);
      reasons.push('mounted → unmounted');
    }
    const edit = editFstab(fstab.lines, atPath, undefined);
    const write = fstabWrite(fstab, spec.fstab, edit);
    if (write.steps.length > 0) reasons.push(`${spec.fstab} has a line for ${spec.path}`);
    steps.push(...write.steps);
    return steps.length === 0
      ? { steps: [] }
      : { steps, reason: reasons.join(', '), ...(write.diff ? { diff: write.diff } : {}) };
  }

  const wanted: FstabEntry = {
    src: spec.src as string,
    path: spec.path,
    fstype: spec.fstype as string,
    opts: spec.opts,
    dump: spec.dump,
    passno: spec.passno,
  };
  const edit = editFstab(fstab.lines, atPath, wanted);
  const write = fstabWrite(fstab, spec.fstab, edit);
  if (write.steps.length > 0) {
    reasons.push(edit.before ? `${spec.fstab} line differs` : `${spec.fstab} has no line for ${spec.path}`);
    steps.push(...write.steps);
  }
  if (spec.state === 'mounted') {
    if (!mounted) {
      if (!hasDir) steps.push({ kind: 'run', command: sh`mkdir -p ${spec.path}` });
      steps.push({ kind: 'run', command: mount() });
      reasons.push('not mounted');
    } else if (edit.changed && edit.before) {
      const moved = edit.before.src !== wanted.src || edit.before.fstype !== wanted.fstype;
      steps.push(
        moved
          ? { kind: 'run', command: `${umount.command} && ${mount()}` }
          : { kind: 'run', command: mount('-o', 'remount') },
      );
      reasons.push(moved ? 'source or type changed: mounted again' : 'options changed: remounted');
    }
  }
  if (steps.length === 0) return { steps: [] };
  return { steps, reason: reasons.join(', '), ...(write.diff ? { diff: write.diff } : {}) };
}

export const mount = defineTask({
  type: 'mount',
  becomeUser: { refuse: 'only root may mount filesystems and change /etc/fstab' },
  options,
  subject: 'path',
  label: (path) => `mount ${path}`,
  prepare: (opts, { fail }) => {
    if (opts.state === 'mounted' || opts.state === 'present') {
      if (opts.src === undefined) fail('src', `src is required with state ${opts.state}`);
      if (opts.fstype === undefined) fail('fstype', `fstype is required with state ${opts.state}`);
    }
    if (opts.path === '/' && (opts.state === 'absent' || opts.state === 'unmounted'))
      fail('path', `refusing to unmount / (state ${opts.state})`);
    return opts;
  },
  probe,
  plan,
  alwaysRuns: (spec) => spec.state === 'remounted',
});
