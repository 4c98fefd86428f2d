/**
 * unarchive({ src | remoteSrc, dest, creates?, owner?, group? }): a tar (.tar, .tar.gz/.tgz,
 * .tar.xz/.txz, .tar.bz2/.tbz2) or zip archive extracted into `dest` (Ansible's
 * ansible.builtin.unarchive).
 *
 * `src` is a file of the controller (sent with the step, base64 on standard input, checked by sha256
 * before anything is extracted), `remoteSrc` a file already on the host. `dest` is created when missing.
 *
 * Once: with `creates`, the archive is extracted only while that path does not exist. Without it, a
 * marker file `dest/.verdandi-unarchive-<archive name>` records the sha256 of the archive last extracted
 * there, and the archive is extracted again only when its sha256 differs (a new release of the archive)
 * or the marker is gone (`dest` was emptied). Ansible compares every file of the archive with `dest`
 * instead; Verdandi does not read the archive on each run, so a file deleted from `dest` by hand is not
 * noticed. Files of an earlier extraction that the new archive lacks stay.
 *
 * Extracted files belong to the connecting (or become) user, never to the owners recorded in a tar
 * (`--no-same-owner`); `owner` / `group` are then applied to every extracted entry (recursively),
 * not to `dest` itself. Zip needs `unzip` on the host, .tar.xz `xz` and .tar.bz2 `bzip2`: a missing one
 * fails the task with the package to install.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { z } from 'zod';
import type { FileQuery, Plan, ProbeResult } from '../engine/types.js';
import { quote, sh } from '../util/shell.js';
import { localSource } from './copy.js';
import { defineTask, type PrepareContext } from './define.js';
import {
  accountsProbe,
  chownSpec,
  describeType,
  missingAccountError,
  unreadableProbe,
} from './file-state.js';
import { absolutePath, account } from './options.js';
import { MARKER_PREFIX, markedLines, sha256Hex } from './probe-output.js';

const MARKER = `${MARKER_PREFIX}unarchive`;

const options = z.strictObject({
  /** A local archive (absolute path or file URL), sent to the host. */
  src: localSource.optional(),
  /** An archive already on the host. */
  remoteSrc: absolutePath('remoteSrc').optional(),
  /** The directory the archive is extracted into (created when missing). */
  dest: absolutePath('dest'),
  /** Skip extraction while this path exists. */
  creates: absolutePath('creates').optional(),
  /** Owner and group of the extracted entries. */
  owner: account('owner').optional(),
  group: account('group').optional(),
});

export type UnarchiveOptions = z.input<typeof options>;

/** An archive format, from the file's name: how it is listed and extracted, and the tool it needs. */
interface ArchiveFormat {
  kind: 'tar' | 'zip';
  /** A program the host must have, and the Debian package that holds it. */
  tool?: { program: string; package: string };
}

const FORMATS: Array<[RegExp, ArchiveFormat]> = [
  [/\.zip$/i, { kind: 'zip', tool: { program: 'unzip', package: 'unzip' } }],
  [/\.(tar\.gz|tgz)$/i, { kind: 'tar', tool: { program: 'gzip', package: 'gzip' } }],
  [/\.(tar\.xz|txz)$/i, { kind: 'tar', tool: { program: 'xz', package: 'xz-utils' } }],
  [/\.(tar\.bz2|tbz2?)$/i, { kind: 'tar', tool: { program: 'bzip2', package: 'bzip2' } }],
  [/\.tar$/i, { kind: 'tar' }],
];

export function archiveFormat(name: string): ArchiveFormat | undefined {
  return FORMATS.find(([pattern]) => pattern.test(name))?.[1];
}

interface UnarchiveSpec {
  label: string;
  dest: string;
  creates?: string;
  owner?: string;
  group?: string;
  format: ArchiveFormat;
  /** The marker file in dest recording the sha256 of the archive extracted there. */
  marker: string;
  /** The archive on the host (remoteSrc), or the local archive's content and sha256 (src). */
  source: { remote: string } | { local: string; content: Buffer; sha256: string };
}

function prepare(opts: z.output<typeof options>, { fail, label }: PrepareContext): UnarchiveSpec {
  if ((opts.src === undefined) === (opts.remoteSrc === undefined)) {
    fail('src', 'give exactly one of src (a file of the controller) or remoteSrc (a file on the host)');
  }
  const archive = (opts.src ?? opts.remoteSrc) as string;
  const name = posix.basename(archive);
  const format = archiveFormat(name);
  if (format === undefined) {
    return fail(
      opts.src !== undefined ? 'src' : 'remoteSrc',
      `cannot tell the format of ${name} from its name`,
      'name it .tar, .tar.gz, .tgz, .tar.xz, .txz, .tar.bz2, .tbz2 or .zip',
    );
  }
  let source: UnarchiveSpec['source'];
  if (opts.src !== undefined) {
    let content: Buffer;
    try {
      content = readFileSync(opts.src);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return fail('src', `cannot read ${opts.src}: ${code === 'ENOENT' ? 'no such file' : String(error)}`);
    }
    source = { local: opts.src, content, sha256: sha256Hex(content) };
  } else {
    source = { remote: opts.remoteSrc as string };
  }
  return {
    label,
    dest: opts.dest,
    creates: opts.creates,
    owner: opts.owner,
    group: opts.group,
    format,
    marker: posix.join(opts.dest, `.verdandi-unarchive-${name}`),
    source,
  };
}

function probe(spec: UnarchiveSpec): string {
  const lines = [accountsProbe(spec)];
  if (spec.creates !== undefined) {
    lines.push(sh`if [ -e ${spec.creates} ] || [ -L ${spec.creates} ]; then echo ${`${MARKER} creates`}; fi`);
  }
  lines.push(
    sh`if [ -f ${spec.marker} ]; then printf '%s %s\\n' ${`${MARKER} extracted`} "$(head -c 64 ${spec.marker})"; fi`,
  );
  if (spec.format.tool !== undefined) {
    lines.push(sh`command -v ${spec.format.tool.program} >/dev/null 2>&1 || echo ${`${MARKER} no-tool`}`);
  }
  return lines.filter((line) => line !== '').join('\n');
}

function files(spec: UnarchiveSpec): FileQuery[] {
  const queries: FileQuery[] = [{ path: spec.dest }];
  if ('remote' in spec.source) queries.push({ path: spec.source.remote, checksum: true });
  return queries;
}

/** Shell listing the top-level entries of archive "$a", one per line. */
function topLevelEntries(format: ArchiveFormat): string {
  const list = format.kind === 'zip' ? 'unzip -Z1 "$a"' : 'tar -t -f "$a"';
  return `${list} | sed -e 's#^\\(\\./\\)*##' | cut -d/ -f1 | sort -u`;
}

/** The script extracting archive "$a" into dest, applying owner/group, then writing the marker. */
function extractScript(spec: UnarchiveSpec, sha256: string): string[] {
  const extract =
    spec.format.kind === 'zip' ? 'unzip -o -q "$a" -d "$d"' : 'tar --no-same-owner -x -f "$a" -C "$d"';
  const lines = [sh`d=${spec.dest}`, 'mkdir -p "$d"', extract];
  if (spec.owner !== undefined || spec.group !== undefined) {
    lines.push(
      `${topLevelEntries(spec.format)} | while IFS= read -r e; do [ -z "$e" ] || [ "$e" = . ] || chown -R ${quote(chownSpec(spec.owner, spec.group))} -- "$d/$e"; done`,
    );
  }
  lines.push(sh`printf '%s\\n' ${sha256} > ${spec.marker}`);
  return lines;
}

function plan(spec: UnarchiveSpec, result: ProbeResult): Plan {
  const { label, dest } = spec;
  const accountError = missingAccountError(result.stdout, spec);
  if (accountError) return { steps: [], error: `${label}: ${accountError}` };
  const fields = markedLines(result.stdout, MARKER);
  const has = (status: string) => fields.some(([field]) => field === status);
  const destState = result.files?.get(dest);
  if (!destState) return { steps: [], error: unreadableProbe(dest, result.exitCode) };
  if (destState.type !== 'absent' && destState.type !== 'dir') {
    return { steps: [], error: `${label}: ${dest} is ${describeType(destState.type)}, not a directory` };
  }
  if (has('creates')) return { steps: [] };

  let sha256: string;
  if ('remote' in spec.source) {
    const archive = result.files?.get(spec.source.remote);
    if (!archive) return { steps: [], error: unreadableProbe(spec.source.remote, result.exitCode) };
    if (archive.type !== 'file' || archive.sha256 === undefined) {
      return {
        steps: [],
        error: `${label}: remoteSrc ${spec.source.remote} ${archive.type === 'absent' ? 'does not exist on the host' : `is ${describeType(archive.type)}`}`,
      };
    }
    sha256 = archive.sha256;
  } else {
    sha256 = spec.source.sha256;
  }
  // With creates, that path alone decides (as in Ansible); otherwise the recorded sha256.
  const extracted = fields.find(([field]) => field === 'extracted')?.[1];
  if (spec.creates === undefined && extracted === sha256) return { steps: [] };
  const { tool } = spec.format;
  if (tool !== undefined && has('no-tool')) {
    return {
      steps: [],
      error: `${label}: ${tool.program} is not installed on the host: install it first with apt({ packages: '${tool.package}' })`,
    };
  }
  const reason =
    spec.creates !== undefined
      ? `${spec.creates} does not exist`
      : extracted === undefined
        ? 'not extracted yet'
        : 'the archive changed';

  if ('remote' in spec.source) {
    return {
      steps: [
        {
          kind: 'run',
          command: ['set -e', sh`a=${spec.source.remote}`, ...extractScript(spec, sha256)].join('\n'),
          description: `extract ${spec.source.remote} into ${dest}`,
        },
      ],
      reason,
    };
  }
  const encoded = spec.source.content.toString('base64');
  return {
    steps: [
      {
        kind: 'run',
        command: [
          'set -e',
          'a=$(mktemp -t .verdandi-archive-XXXXXX)',
          `trap 'rm -f "$a"' EXIT`,
          `trap 'rm -f "$a"; exit 129' HUP INT TERM PIPE`,
          // Exactly the bytes sent: a connection lost part way never looks like a whole archive.
          `head -c ${encoded.length} | base64 -d > "$a"`,
          `if [ "$(sha256sum < "$a" | cut -d' ' -f1)" != ${sha256} ]; then echo "transfer incomplete: the archive differs from what was sent (sha256); nothing extracted" >&2; exit 66; fi`,
          ...extractScript(spec, sha256),
        ].join('\n'),
        stdin: encoded,
        description: `extract ${posix.basename(spec.source.local)} into ${dest}`,
      },
    ],
    reason,
  };
}

export const unarchive = defineTask({
  type: 'unarchive',
  options,
  subject: 'dest',
  label: (dest) => `unarchive ${dest}`,
  prepare,
  probe,
  files,
  plan,
});
