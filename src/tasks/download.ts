/**
 * download({ url, path, checksum?, owner?, group?, mode?, from?, maxBytes? }): the file a URL serves,
 * at `path`. Ansible's `get_url` (with its default `force: no`).
 *
 * With a `checksum` (sha256), the file is fetched when the host's copy has another sha256 (or is
 * missing), and a fetched file whose sha256 differs is refused: nothing is installed. Without one, the
 * file is fetched only when it is missing: its content is never compared (the URL is not asked).
 *
 * - `from: 'host'` (default): the host fetches it with curl; the URL goes to curl on standard input
 *   (`curl -K -`), so credentials in it never show in the host's process list.
 * - `from: 'controller'`: for hosts without internet access, the controller fetches it (once per run and
 *   URL, streamed to a temporary file, at most `maxBytes`) and sends it to each host on standard input.
 *
 * Either way the file is written like `copy` writes: into a temporary file beside `path` (created 0600),
 * complete and checked before owner, group and mode are set and it is renamed over `path`.
 */
import { z } from 'zod';
import type { FileQuery, Plan, ProbeResult, RunStep } from '../engine/types.js';
import { quote } from '../util/shell.js';
import { shownUrl } from '../util/url.js';
import { DEFAULT_FILE_MODE } from './copy.js';
import { defineTask } from './define.js';
import { accountsProbe, attributeChanges, describeType, probedPath } from './file-state.js';
import { absolutePath, attributes, integer, oneOf, text } from './options.js';
import { joinReasons, MARKER_PREFIX, markedLines } from './probe-output.js';

/** Default size limit: larger files are refused (a wrong URL must not fill the disk). */
export const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;

const options = z.strictObject({
  /** Absolute path of the file on the host. */
  path: absolutePath(),
  url: text('url', /^(https?|ftp):\/\/\S+$/, 'an http, https or ftp URL without spaces'),
  /** sha256 of the file (64 hex digits, optionally prefixed `sha256:`). */
  checksum: text('checksum', /^(sha256:)?[0-9a-fA-F]{64}$/, 'a sha256 (64 hex digits)')
    .transform((checksum) => checksum.replace(/^sha256:/, '').toLowerCase())
    .optional(),
  ...attributes,
  /** Who fetches the file: the host (default) or the controller, which sends it to the host. */
  from: oneOf('from', ['host', 'controller']).default('host'),
  /** Larger files are refused (default 1 GiB). */
  maxBytes: integer('maxBytes', 1).default(DEFAULT_MAX_BYTES),
});

export { shownUrl };

export type DownloadOptions = z.input<typeof options>;
type Download = z.output<typeof options>;

const MARKER = `${MARKER_PREFIX}download`;

/** A curl config file line holding `url` (quoted the way curl reads `-K`: \\ and " escaped). */
export function curlConfig(url: string): string {
  return `url = "${url.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\n`;
}

function probe(spec: Download): string {
  const lines = [accountsProbe(spec)];
  if (spec.from === 'host') {
    lines.push(
      `if command -v curl >/dev/null 2>&1; then echo '${MARKER} curl 1'; else echo '${MARKER} curl 0'; fi`,
    );
  }
  return lines.filter(Boolean).join('\n');
}

function files(spec: Download): FileQuery[] {
  // Without a checksum the content is never compared: no need to read a large file.
  return [{ path: spec.path, checksum: spec.checksum !== undefined }];
}

/**
 * The script that fetches (or, from the controller, receives) the file into a temporary file beside
 * `path`, checks it, sets its attributes and renames it over `path`.
 */
export function fetchScript(spec: Download): string {
  const path = quote(spec.path);
  const url = shownUrl(spec.url);
  const lines = [
    'set -e',
    `dir=$(dirname ${path})`,
    `if [ ! -d "$dir" ]; then echo "the directory $dir does not exist: create it first (directory())" >&2; exit 1; fi`,
    `tmp=$(mktemp "$dir/.verdandi-XXXXXX")`,
    `trap 'rm -f "$tmp"' EXIT`,
    `trap 'rm -f "$tmp"; exit 129' HUP INT TERM PIPE`,
  ];
  if (spec.from === 'host') {
    lines.push(
      // The URL comes on stdin (`-K -`): it is on no command line.
      `if ! out=$(curl -fsSL --max-filesize ${spec.maxBytes} -o "$tmp" -K - 2>&1); then printf '%s\\n' ${quote(`could not fetch ${url}:`)}" $out" >&2; exit 1; fi`,
      `got=$(sha256sum < "$tmp" | cut -d' ' -f1)`,
    );
  } else {
    // `<size> <sha256>` then the content (engine/downloads.ts): nothing is installed unless all arrived.
    lines.push(
      'IFS=" " read -r size sent',
      'head -c "$size" > "$tmp"',
      `if [ "$(wc -c < "$tmp")" -ne "$size" ]; then echo "transfer incomplete: received $(wc -c < "$tmp") of $size bytes; nothing installed" >&2; exit 66; fi`,
      `got=$(sha256sum < "$tmp" | cut -d' ' -f1)`,
      `if [ "$got" != "$sent" ]; then echo "transfer incomplete: content differs from what was sent (sha256); nothing installed" >&2; exit 66; fi`,
    );
  }
  if (spec.checksum !== undefined) {
    lines.push(
      `if [ "$got" != ${spec.checksum} ]; then printf '%s\\n' ${quote(`${url} served a file whose sha256 is`)}" $got"${quote(`, not the checksum given (${spec.checksum}); nothing installed`)} >&2; exit 1; fi`,
    );
  }
  if (spec.owner !== undefined || spec.group !== undefined) {
    lines.push(
      `chown ${quote(`${spec.owner ?? ''}${spec.group !== undefined ? `:${spec.group}` : ''}`)} "$tmp"`,
    );
  } else {
    lines.push(`if [ -e ${path} ]; then chown --reference=${path} "$tmp"; fi`);
  }
  if (spec.mode !== undefined) lines.push(`chmod ${quote(spec.mode)} "$tmp"`);
  else
    lines.push(
      `if [ -f ${path} ]; then chmod --reference=${path} "$tmp"; else chmod ${DEFAULT_FILE_MODE} "$tmp"; fi`,
    );
  lines.push(`mv -f "$tmp" ${path}`, 'trap - EXIT HUP INT TERM PIPE');
  return lines.join('\n');
}

function fetchStep(spec: Download): RunStep {
  const step: RunStep = {
    kind: 'run',
    command: fetchScript(spec),
    description: `fetch ${shownUrl(spec.url)}${spec.from === 'controller' ? ' on the controller' : ''} into ${spec.path}`,
  };
  if (spec.from === 'host') step.stdin = curlConfig(spec.url);
  else step.stdinDownload = { url: spec.url, maxBytes: spec.maxBytes };
  return step;
}

function plan(spec: Download, result: ProbeResult): Plan {
  const label = `download ${spec.path}`;
  const found = probedPath(label, spec.path, spec, result);
  if (found.stop) return found.stop;
  const { state } = found;
  let reason: string;
  if (state.type === 'absent') reason = 'file is missing';
  else if (state.type === 'link')
    reason = `${spec.path} is a symbolic link (→ ${state.linkTarget}), replaced by the file`;
  else if (state.type !== 'file') {
    return {
      steps: [],
      error: `${label}: ${spec.path} is ${describeType(state.type)}; refusing to replace it with a file`,
    };
  } else if (spec.checksum !== undefined && state.sha256 !== spec.checksum) {
    reason = 'sha256 differs from the checksum';
  } else {
    const attributes = attributeChanges(spec.path, state, spec);
    if (attributes.steps.length === 0) return { steps: [] };
    return { steps: attributes.steps, reason: joinReasons(attributes.reasons) };
  }
  if (
    spec.from === 'host' &&
    markedLines(result.stdout, MARKER).some(([what, found]) => what === 'curl' && found === '0')
  ) {
    return {
      steps: [],
      error: `${label}: curl is not installed on the host: install it first (apt({ packages: 'curl' })), or fetch on the controller (from: 'controller')`,
    };
  }
  return { steps: [fetchStep(spec)], reason };
}

export const download = defineTask({
  type: 'download',
  options,
  subject: 'path',
  label: (path) => `download ${path}`,
  probe,
  files,
  plan,
});
