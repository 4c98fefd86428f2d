/**
 * An edit of a text file computed on the controller, shared by replace and blockinfile: the probe
 * prints the file's state and its whole content (base64), the task's `edit` computes the new content
 * from it in TypeScript, and the plan writes it with the engine's atomic write (temporary file beside
 * the file, owner/group/mode set, `validate` run on it, rename). The file keeps its owner, group and
 * mode unless the task names others; those are applied even when the content needs no change.
 *
 * A file given as a symbolic link is edited at its resolved path, the link stays (as lineinfile does).
 * The content never travels on a command line: the write sends it on standard input.
 */
import type { Plan, ProbeResult } from '../engine/types.js';
import { quote, sh } from '../util/shell.js';
import { DEFAULT_FILE_MODE, parentDirectoriesStep, writeStep } from './copy.js';
import {
  accountsProbe,
  attributeChanges,
  currentGroup,
  currentOwner,
  type DesiredAttributes,
  fileStateProbeOf,
  formatMode,
  missingAccountError,
  parseFileState,
  unreadableProbe,
} from './file-state.js';
import { decodeBase64, decodeBase64Text, joinReasons, MARKER_PREFIX, markedLines } from './probe-output.js';

const MARKER = `${MARKER_PREFIX}text-edit`;
const REAL_PATH_MARKER = `${MARKER_PREFIX}text-edit-real`;

/** What the task wants of the file besides its content. */
export interface TextFileSpec {
  label: string;
  path: string;
  attributes: DesiredAttributes;
  validate?: string;
  /** The task's edit of the content. */
  edit: TextEdit;
}

/**
 * The new content from the current one (undefined: the file does not exist). `undefined` means no
 * change; `error` stops the task with that message.
 */
export type TextEdit = (
  before: string | undefined,
) => { after: string; reason: string } | { error: string } | undefined;

/** Shell printing the file's status, state and content (and whether owner and group exist). */
export function textFileProbe({ path, attributes }: TextFileSpec): string {
  return [
    accountsProbe(attributes),
    sh`tf_p=${path}`,
    // Edit the file a link points to, not the link.
    'if [ -L "$tf_p" ]; then',
    '  tf_p=$(readlink -f -- "$tf_p")',
    `  if [ -z "$tf_p" ]; then echo ${quote(`${MARKER} dangling`)}; exit 0; fi`,
    `  printf '%s %s\\n' ${quote(REAL_PATH_MARKER)} "$(printf '%s' "$tf_p" | base64 -w0)"`,
    'fi',
    `if [ ! -e "$tf_p" ]; then echo ${quote(`${MARKER} absent`)}`,
    `elif [ ! -f "$tf_p" ]; then echo ${quote(`${MARKER} not-a-file`)}`,
    `elif [ ! -r "$tf_p" ]; then echo ${quote(`${MARKER} unreadable`)}`,
    'else',
    fileStateProbeOf('"$tf_p"'),
    // A read that fails part way prints nothing rather than a truncated content.
    `  tf_c=$(base64 -w0 < "$tf_p") && printf '%s %s\\n' ${quote(`${MARKER} content`)} "$tf_c"`,
    'fi',
  ]
    .filter((part) => part !== '')
    .join('\n');
}

/** The steps that give the file the content `edit` computes and the attributes the task names. */
export function textFilePlan(spec: TextFileSpec, probe: ProbeResult): Plan {
  const { label, path, attributes: desired, edit } = spec;
  const accountError = missingAccountError(probe.stdout, desired);
  if (accountError) return { steps: [], error: `${label}: ${accountError}` };
  const [status, content] = markedLines(probe.stdout, MARKER).at(-1) ?? [];
  const realPath = decodeBase64(markedLines(probe.stdout, REAL_PATH_MARKER).at(-1)?.[0]) ?? path;
  switch (status) {
    case 'dangling':
      return { steps: [], error: `${label}: ${path} is a symbolic link whose target cannot be resolved` };
    case 'not-a-file':
      return { steps: [], error: `${label}: ${realPath} is not a regular file` };
    case 'unreadable':
      return { steps: [], error: `${label}: ${realPath} cannot be read (use become: true)` };
    case 'absent': {
      const created = edit(undefined);
      if (created === undefined) return { steps: [] };
      if ('error' in created) return { steps: [], error: `${label}: ${created.error}` };
      return {
        steps: [
          parentDirectoriesStep(realPath),
          writeStep({
            path: realPath,
            content: created.after,
            mode: desired.mode ?? DEFAULT_FILE_MODE,
            owner: desired.owner,
            group: desired.group,
            validate: spec.validate,
          }),
        ],
        reason: created.reason,
        diff: { path: realPath, after: created.after },
      };
    }
    case 'content':
      break;
    default:
      return { steps: [], error: unreadableProbe(path, probe.exitCode) };
  }

  const state = parseFileState(probe.stdout);
  if (state?.type !== 'file') return { steps: [], error: unreadableProbe(path, probe.exitCode) };
  const before = decodeBase64Text(content ?? '');
  if (before === undefined) return { steps: [], error: `${label}: ${realPath} is not UTF-8 text` };
  const edited = edit(before);
  if (edited !== undefined && 'error' in edited) return { steps: [], error: `${label}: ${edited.error}` };
  const attributes = attributeChanges(realPath, state, desired);
  if (edited === undefined || edited.after === before) {
    return { steps: attributes.steps, reason: joinReasons(attributes.reasons) };
  }
  return {
    steps: [
      writeStep({
        path: realPath,
        content: edited.after,
        mode: desired.mode ?? formatMode(state.mode),
        owner: desired.owner ?? currentOwner(state),
        group: desired.group ?? currentGroup(state),
        validate: spec.validate,
      }),
    ],
    reason: joinReasons([edited.reason, ...attributes.reasons]),
    diff: { path: realPath, after: edited.after },
  };
}
