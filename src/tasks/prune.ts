/**
 * prune({ dir, match, keep }): the files of `dir` whose names match `match` are only those in `keep`;
 * the others are removed. For files a role wrote earlier and no longer lists (vhosts, program confs).
 *
 * `match` is a shell pattern on file names (`*` and `?`; no `/`), e.g. `verdandi-*.conf`; like the
 * shell, `*` does not match a leading dot. `keep` holds file names, not paths. The probe lists the
 * matching regular files and symbolic links of `dir` (a directory that matches is never touched; a
 * missing `dir` holds nothing to prune); the plan removes the ones `keep` does not name, with one
 * `rm -f`, and says which: check mode shows what would go.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import type { Plan, ProbeResult } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { defineTask } from './define.js';
import { absolutePath, says } from './options.js';
import { decodeBase64, MARKER_PREFIX, markedLines } from './probe-output.js';

/** A file name: no `/`, no NUL, no line break, not `.` or `..`. */
const fileName = /^(?!\.{1,2}$)[^/\0\n]+$/;

const options = z.strictObject({
  /** Absolute path of the directory to prune. */
  dir: absolutePath('dir').refine((dir) => dir !== '/', { error: 'refusing to prune /' }),
  /** Shell pattern of the file names concerned (`*` and `?`). */
  match: z
    .string(says((got) => `match must be a file name pattern such as 'verdandi-*.conf' (no /), got ${got}`))
    .regex(
      fileName,
      says((got) => `match must be a file name pattern such as 'verdandi-*.conf' (no /), got ${got}`),
    ),
  /** Names of the matching files to keep. */
  keep: z
    .array(
      z.string(says((got) => `keep: ${got} is not a file name`)).regex(
        fileName,
        says((got) => `keep: ${got} is not a file name`),
      ),
      { error: 'keep must be a list of file names' },
    )
    .default([]),
});

export type PruneOptions = z.input<typeof options>;
type Prune = z.output<typeof options>;

const MARKER = `${MARKER_PREFIX}prune`;

/**
 * The pattern as a shell word: literal parts quoted, `*` and `?` left bare so the shell expands them.
 * `verdandi-*.conf` → `'verdandi-'*'.conf'` (quote() leaves safe words as they are).
 */
export function globWord(pattern: string): string {
  return pattern
    .split(/([*?])/)
    .filter((part) => part !== '')
    .map((part) => (part === '*' || part === '?' ? part : quote(part)))
    .join('');
}

function probe({ dir, match }: Prune): string {
  return [
    `pr_d=${quote(dir)}`,
    'if [ -d "$pr_d" ]; then',
    `  echo '${MARKER} dir'`,
    `  for f in "$pr_d"/${globWord(match)}; do`,
    // No match leaves the pattern itself; a real directory is never pruned.
    '    [ -e "$f" ] || [ -L "$f" ] || continue',
    '    [ -d "$f" ] && [ ! -L "$f" ] && continue',
    `    printf '%s %s\\n' '${MARKER} file' "$(printf '%s' "\${f##*/}" | base64 -w0)"`,
    '  done',
    `else echo '${MARKER} no-dir'; fi`,
  ].join('\n');
}

function plan({ dir, keep }: Prune, result: ProbeResult): Plan {
  const lines = markedLines(result.stdout, MARKER);
  if (!lines.some(([kind]) => kind === 'dir' || kind === 'no-dir')) {
    return {
      steps: [],
      error: `could not list ${dir} (the probe printed no state line, exit code ${result.exitCode})`,
    };
  }
  const kept = new Set(keep);
  const stale = lines
    .filter(([kind]) => kind === 'file')
    .map(([, name]) => decodeBase64(name) ?? '')
    .filter((name) => name !== '' && !kept.has(name))
    .sort();
  if (stale.length === 0) return { steps: [] };
  return {
    steps: [{ kind: 'run', command: words('rm', '-f', '--', ...stale.map((name) => posix.join(dir, name))) }],
    reason: `removes ${stale.join(', ')}`,
  };
}

export const prune = defineTask({
  type: 'prune',
  options,
  subject: 'dir',
  label: (dir) => `prune ${dir}`,
  describe: ({ dir, match }) => `prune ${posix.join(dir, match)}`,
  probe,
  plan,
});
