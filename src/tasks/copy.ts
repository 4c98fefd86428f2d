/**
 * copy({ path, content? | src?, owner?, group?, mode?, validate?, force?, backup? }): a regular file at
 * `path` holds exactly this text, with these attributes.
 *
 * The probe prints the remote sha256; the content travels only when it differs from the local sha256,
 * as a `write` step (the engine writes a temporary file beside `path`, sets owner/mode, runs `validate`
 * on it, then renames it over `path`). When only owner/group/mode differ, chown/chmod run instead. The
 * content is never on a command line.
 *
 * Attributes not given are kept from the existing file when it is rewritten; a new file is 0644 and
 * owned by the connecting (or become) user. A symbolic link at `path` is replaced by a file (the link is
 * not followed); a directory at `path` is an error.
 *
 * `force: false` (Ansible's `force: no`) writes the file only when nothing is at `path`: whatever is
 * there is left as it is, attributes included. `backup: true` (Ansible's `backup: yes`) keeps the old
 * file as `<path>.<pid>.<YYYY-MM-DD@HH:MM:SS>~` when its content is replaced (see WriteStep.backup).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { FileQuery, Plan, ProbeResult, RunStep, WriteStep } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { defineTask, type Fail, type PrepareContext } from './define.js';
import {
  accountsProbe,
  attributeChanges,
  currentGroup,
  currentOwner,
  type DesiredAttributes,
  describeType,
  formatMode,
  probedPath,
} from './file-state.js';
import { absolutePath, attributes, flag, rule, shown } from './options.js';
import { joinReasons, sha256Hex } from './probe-output.js';

/** Mode of a file the task creates when no mode is given. */
export const DEFAULT_FILE_MODE = '0644';

/**
 * A local file: an absolute path or a file URL (`new URL('./files/x', import.meta.url)`), as its
 * absolute path.
 */
export const localSource = z
  .custom<string | URL>()
  .superRefine(
    rule((src: unknown) => {
      if (src instanceof URL)
        return src.protocol === 'file:' ? undefined : `src must be a file URL, got ${src.href}`;
      if (typeof src === 'string' && (src.startsWith('file:') || isAbsolute(src))) return undefined;
      return {
        problem: `src must be an absolute path or a file URL, got ${shown(src)}`,
        hint: "build it from the module's location: new URL('./files/name', import.meta.url)",
      };
    }),
  )
  .transform((src) => (src instanceof URL || src.startsWith('file:') ? fileURLToPath(src) : src));

/** Command run on the new file before it replaces the old one; `%s` is its path (`nginx -t -c %s`). */
export const validateCommand = z.custom<string>().superRefine(
  rule((validate: unknown) =>
    typeof validate === 'string' && validate.includes('%s')
      ? undefined
      : {
          problem: `validate must be a command containing %s (the new file's path), got ${shown(validate)}`,
          hint: "e.g. validate: 'nginx -t -c %s'",
        },
  ),
);

/** The options of copy and template that say when and how the file is replaced. */
export const writeOptions = {
  /** Ansible's `force`: false writes the file only when nothing is at `path` (default true). */
  force: flag('force').default(true),
  /** Ansible's `backup`: keep a timestamped copy of the old file when its content is replaced. */
  backup: flag('backup').default(false),
};

const options = z.strictObject({
  /** Absolute path of the file on the host. */
  path: absolutePath(),
  /** The text to write. Give either `content` or `src`. */
  content: z.string({ error: (issue) => `content must be a string, got ${typeof issue.input}` }).optional(),
  /** A local text file to copy. */
  src: localSource.optional(),
  /** Owner, group, and mode as an octal string ('0644' or '644'). */
  ...attributes,
  validate: validateCommand.optional(),
  ...writeOptions,
});

export type CopyOptions = z.input<typeof options>;

/** Reads a local text file at task build time; a missing or binary file is an option error naming it. */
export function readLocalText(file: string, fail: Fail): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return fail('src', `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : String(error)}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('src', `${file} is not UTF-8 text: copy and template handle text files only`);
  }
}

/** What copy and template share: a file with exact content and attributes. */
export interface FileContent {
  label: string;
  path: string;
  content: string;
  attributes: DesiredAttributes;
  validate?: string;
  /** False: only a missing file is written; anything at `path` is left as it is (default true). */
  force?: boolean;
  /** Keep a copy of the old file when its content is replaced. */
  backup?: boolean;
}

/**
 * Creates the missing directories above a file that a task's `create: true` makes (lineinfile,
 * blockinfile), as Ansible's modules do: owned by the connecting user, mode from the umask (root, 0755).
 */
export function parentDirectoriesStep(path: string): RunStep {
  const dir = posix.dirname(path);
  return { kind: 'run', command: sh`mkdir -p ${dir}`, description: `create ${dir}` };
}

/** A write step without the fields that are not set (so plans compare and print cleanly). */
export function writeStep(fields: Omit<WriteStep, 'kind'>): WriteStep {
  const step: WriteStep = { kind: 'write', path: fields.path, content: fields.content };
  if (fields.mode !== undefined) step.mode = fields.mode;
  if (fields.owner !== undefined) step.owner = fields.owner;
  if (fields.group !== undefined) step.group = fields.group;
  if (fields.validate !== undefined) step.validate = fields.validate;
  if (fields.backup) step.backup = true;
  return step;
}

/** Probe of copy and template: whether owner and group exist (the file's state is in `fileContentFiles`). */
export function fileContentProbe({ attributes }: FileContent): string {
  return accountsProbe(attributes);
}

/** What copy and template read of their file: its state with its sha256. */
export function fileContentFiles({ path }: FileContent): FileQuery[] {
  return [{ path, checksum: true }];
}

/** The sha256 of each task's content, hashed once however often the task is planned (re-probes). */
const contentSha = new WeakMap<FileContent, string>();

/** Plan of copy and template. */
export function fileContentPlan(spec: FileContent, probe: ProbeResult): Plan {
  const { path, content, attributes: desired, label } = spec;
  let wantedSha = contentSha.get(spec);
  if (wantedSha === undefined) {
    wantedSha = sha256Hex(content);
    contentSha.set(spec, wantedSha);
  }
  const found = probedPath(label, path, desired, probe);
  if (found.stop) return found.stop;
  const { state } = found;
  const diff = { path, after: content };
  if (spec.force === false && state.type !== 'absent') return { steps: [] };

  if (state.type === 'absent' || state.type === 'link') {
    return {
      steps: [
        writeStep({
          path,
          content,
          mode: desired.mode ?? DEFAULT_FILE_MODE,
          owner: desired.owner,
          group: desired.group,
          validate: spec.validate,
        }),
      ],
      reason:
        state.type === 'absent'
          ? 'file is missing'
          : `${path} is a symbolic link (→ ${state.linkTarget}), replaced by a file`,
      diff,
    };
  }
  if (state.type !== 'file') {
    return {
      steps: [],
      error: `${label}: ${path} is ${describeType(state.type)}; refusing to replace it with a file (remove it with absent() or change the path)`,
    };
  }

  const attributes = attributeChanges(path, state, desired);
  if (state.sha256 !== wantedSha) {
    // The write sets every attribute at once; those not asked for are kept as they are.
    return {
      steps: [
        writeStep({
          path,
          content,
          mode: desired.mode ?? formatMode(state.mode),
          owner: desired.owner ?? currentOwner(state),
          group: desired.group ?? currentGroup(state),
          validate: spec.validate,
          backup: spec.backup,
        }),
      ],
      reason: joinReasons(['content differs', ...attributes.reasons]),
      diff,
    };
  }
  return { steps: attributes.steps, reason: joinReasons(attributes.reasons) };
}

function prepare(opts: z.output<typeof options>, { fail }: PrepareContext): FileContent {
  const { path, owner, group, mode, validate, force, backup } = opts;
  if ((opts.content === undefined) === (opts.src === undefined)) {
    fail('content', 'give exactly one of content or src');
  }
  return {
    label: `copy ${path}`,
    path,
    content: opts.src !== undefined ? readLocalText(opts.src, fail) : (opts.content as string),
    attributes: { owner, group, mode },
    validate,
    force,
    backup,
  };
}

export const copy = defineTask({
  type: 'copy',
  options,
  subject: 'path',
  label: (path) => `copy ${path}`,
  prepare,
  probe: fileContentProbe,
  files: fileContentFiles,
  plan: fileContentPlan,
});
