/**
 * copies: one role of `copies_count` `copy` tasks, the benchmark of a big role (bench/copies.ts).
 *
 * Task i keeps `<copies_dir>/file-<i>.conf` holding about 1 KiB of text that names `copies_round`: a
 * new round changes every file's content (the all-changed run), the same round changes nothing (the
 * no-change run). The driver creates `copies_dir` itself, so the role is exactly `copies_count` tasks.
 *
 * Vars:
 *   copies_count  number of copy tasks (default 300)
 *   copies_round  any text; it goes into every file (default "1")
 *   copies_dir    absolute path of an existing directory (default /srv/bench-copies)
 */
import { copy, defineRole, z } from 'verdandi';
import { COPIES_DIR } from '../../spec.js';

/** A header and 15 lines of 64 characters, about 1 KiB: the size of a typical small config file. */
export function copyContent(index: number, count: number, round: string): string {
  const head = `# bench copy ${index} of ${count}, round ${round}\n`;
  const line = `setting_${String(index).padStart(4, '0')} = ${round}`.padEnd(63, '.');
  return head + `${line}\n`.repeat(15);
}

export const vars = z.object({
  copies_count: z.number().int().positive().default(300),
  copies_round: z.coerce.string().default('1'),
  copies_dir: z.string().startsWith('/').default(COPIES_DIR),
});

export default defineRole({
  name: 'copies',
  vars,
  tasks: (v) =>
    Array.from({ length: v.copies_count }, (_, i) =>
      copy({
        path: `${v.copies_dir}/file-${i + 1}.conf`,
        content: copyContent(i + 1, v.copies_count, v.copies_round),
        mode: '0644',
      }),
    ),
});
