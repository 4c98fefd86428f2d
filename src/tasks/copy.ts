/**
 * copy({ path, content? | src?, owner?, group?, mode?, validate? }): a regular file at `path` holds
 * exactly this text, with these attributes.
 *
 * The probe prints the remote sha256; the content travels only when it differs from the local sha256,
 * as a `write` step (the engine writes a temporary file beside `path`, sets owner/mode, runs `validate`
 * on it, then renames it over `path`). When only owner/group/mode differ, chown/chmod run instead. The
 * content is never on a command line.
 *
 * Attributes not given are kept from the existing file when it is rewritten; a new file is 0644 and
 * owned by the connecting (or become) user. A symbolic link at `path` is replaced by a file (the link is
 * not followed); a directory at `path` is an error.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plan, ProbeResult, Task, TaskOptions, WriteStep } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import {
  accountsProbe,
  attributeChanges,
  checkAttributes,
  checkPath,
  currentGroup,
  currentOwner,
  type DesiredAttributes,
  describeType,
  fileStateProbe,
  formatMode,
  joinReasons,
  missingAccountError,
  parseFileState,
  sha256Hex,
  taskOptionError,
  unreadableProbe,
} from './probes.js';

/** Mode of a file the task creates when no mode is given. */
export const DEFAULT_FILE_MODE = '0644';

export interface CopyOptions extends TaskOptions {
  /** Absolute path of the file on the host. */
  path: string;
  /** The text to write. Give either `content` or `src`. */
  content?: string;
  /** A local text file to copy: an absolute path or a file URL (`new URL('./files/x', import.meta.url)`). */
  src?: string | URL;
  owner?: string;
  group?: string;
  /** Octal string: '0644' or '644'. */
  mode?: string;
  /** Command run on the new file before it replaces the old one; `%s` is its path (`nginx -t -c %s`). */
  validate?: string;
}

/** Absolute path of a local source given as an absolute path or a file URL. */
export function localSourcePath(label: string, src: string | URL): string {
  if (src instanceof URL) {
    if (src.protocol !== 'file:') throw taskOptionError(label, `src must be a file URL, got ${src.href}`);
    return fileURLToPath(src);
  }
  if (typeof src === 'string' && src.startsWith('file:')) return fileURLToPath(src);
  if (typeof src !== 'string' || !isAbsolute(src)) {
    throw taskOptionError(
      label,
      `src must be an absolute path or a file URL, got ${JSON.stringify(src)}`,
      "build it from the module's location: new URL('./files/name', import.meta.url)",
    );
  }
  return src;
}

/** Reads a local text file at task build time; a missing or binary file is a UserError naming it. */
export function readLocalText(label: string, file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw taskOptionError(
      label,
      `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : String(error)}`,
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw taskOptionError(label, `${file} is not UTF-8 text: copy and template handle text files only`);
  }
}

/** What copy and template share: a file with exact content and attributes. */
export interface FileContentSpec {
  type: string;
  label: string;
  path: string;
  content: string;
  attributes: DesiredAttributes;
  validate?: string;
}

export function checkValidate(label: string, validate: unknown): string | undefined {
  if (validate === undefined) return undefined;
  if (typeof validate !== 'string' || !validate.includes('%s')) {
    throw taskOptionError(
      label,
      `validate must be a command containing %s (the new file's path), got ${JSON.stringify(validate)}`,
      "e.g. validate: 'nginx -t -c %s'",
    );
  }
  return validate;
}

/** A write step without the fields that are not set (so plans compare and print cleanly). */
export function writeStep(fields: Omit<WriteStep, 'kind'>): WriteStep {
  const step: WriteStep = { kind: 'write', path: fields.path, content: fields.content };
  if (fields.mode !== undefined) step.mode = fields.mode;
  if (fields.owner !== undefined) step.owner = fields.owner;
  if (fields.group !== undefined) step.group = fields.group;
  if (fields.validate !== undefined) step.validate = fields.validate;
  return step;
}

/** Builds the Task of a copy-like type (copy, template) once the content is known. */
export function fileContentTask(spec: FileContentSpec, opts: TaskOptions): Task {
  const { path, content, attributes: desired, label } = spec;
  const wantedSha = sha256Hex(content);

  return {
    ...taskBase(spec.type, label, opts),
    probe: [fileStateProbe(path, { checksum: true }), accountsProbe(desired)].filter(Boolean).join('\n'),
    plan(probe: ProbeResult): Plan {
      const accountError = missingAccountError(probe.stdout, desired);
      if (accountError) return { steps: [], error: `${label}: ${accountError}` };
      const state = parseFileState(probe.stdout);
      if (!state) return { steps: [], error: unreadableProbe(path, probe.exitCode) };
      const diff = { path, after: content };

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
            }),
          ],
          reason: joinReasons(['content differs', ...attributes.reasons]),
          diff,
        };
      }
      return { steps: attributes.steps, reason: joinReasons(attributes.reasons) };
    },
  };
}

export function copy(opts: CopyOptions): Task {
  const path = checkPath(`copy ${opts.path}`, opts.path);
  const label = `copy ${path}`;
  const hasContent = opts.content !== undefined;
  const hasSrc = opts.src !== undefined;
  if (hasContent === hasSrc) throw taskOptionError(label, 'give exactly one of content or src');
  if (hasContent && typeof opts.content !== 'string') {
    throw taskOptionError(label, `content must be a string, got ${typeof opts.content}`);
  }
  const content = hasSrc
    ? readLocalText(label, localSourcePath(label, opts.src as string | URL))
    : (opts.content as string);

  return fileContentTask(
    {
      type: 'copy',
      label,
      path,
      content,
      attributes: checkAttributes(label, opts),
      validate: checkValidate(label, opts.validate),
    },
    opts,
  );
}
