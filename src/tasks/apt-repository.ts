/**
 * aptRepository({ repository, uris, suites, components?, types?, architectures?, key?, state?,
 * updateCache? }): an APT source in deb822 form, `/etc/apt/sources.list.d/<repository>.sources`, with
 * its signing key in `/etc/apt/keyrings/<repository>.gpg` named by `Signed-By`. Ansible's
 * `deb822_repository` (which also covers `apt_repository`, and `apt_key` for the key; `apt-key` and its
 * global keyring are never used: the key signs this repository only).
 *
 * The key comes from:
 * - `key: { src }`, a file on the controller, armored or binary: dearmored here when the task is built,
 *   so the host gets the binary keyring (apt reads a `.gpg` keyring only in binary form). Its sha256 is
 *   known: the host's copy is compared on every run and rewritten when it differs.
 * - `key: { url, checksum }`, fetched by the host with curl, checked against the sha256 of what the URL
 *   serves, and dearmored on the host with sed and base64 (no gpg needed). Which key was fetched is
 *   recorded in the .sources file (a comment with the URL and checksum): a new checksum refetches it.
 *
 * When the .sources file or the key changed, the package lists are refreshed (`apt-get update`, failing
 * on any download or signature error) in the same step list, so an `apt` task after this one installs
 * from the new repository in the same run. `state: 'absent'` removes both files (and refreshes the lists
 * so the repository's packages disappear from apt's view).
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { FileQuery, Plan, ProbeResult, RunStep, Step } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { APT_GET } from './apt.js';
import { localSource, writeStep } from './copy.js';
import { defineTask, type Fail, type PrepareContext } from './define.js';
import { attributeChanges, describeType, unreadableProbe } from './file-state.js';
import { oneOf, presence, rule, says, shown, text } from './options.js';
import { joinReasons, MARKER_PREFIX, markedLines, sha256Hex } from './probe-output.js';

export const SOURCES_DIR = '/etc/apt/sources.list.d';
export const KEYRINGS_DIR = '/etc/apt/keyrings';
/** The largest key the host fetches: a public key is a few kilobytes; anything bigger is a wrong URL. */
const MAX_KEY_BYTES = 1024 * 1024;

/** One word or a non-empty list of words (no spaces: deb822 separates them with spaces). */
function wordList(option: string, pattern: RegExp, what: string) {
  const message = says((got) => `${option} must be ${what} or a non-empty list of them, got ${got}`);
  return z
    .union([z.string(message), z.array(z.string(message), message)], message)
    .transform((value) => (typeof value === 'string' ? [value] : value))
    .pipe(
      z.array(z.string()).superRefine(
        rule((list: string[]) => {
          if (list.length === 0) return `${option} must not be empty`;
          const bad = list.find((word) => !pattern.test(word));
          return bad === undefined ? undefined : `${option}: ${shown(bad)} is not ${what}`;
        }),
      ),
    );
}

const sha256Checksum = text(
  'key.checksum',
  /^(sha256:)?[0-9a-fA-F]{64}$/,
  'a sha256 (64 hex digits)',
).transform((checksum) => checksum.replace(/^sha256:/, '').toLowerCase());

/** { url, checksum } (fetched by the host) or { src } (a key file on the controller): see prepare. */
const keyOption = z.strictObject(
  {
    url: text('key.url', /^https?:\/\/\S+$/, 'an http(s) URL').optional(),
    checksum: sha256Checksum.optional(),
    src: localSource.optional(),
  },
  says((got) => `key must be { url, checksum } or { src }, got ${got}`),
);

const options = z.strictObject({
  /** Names the files: `<repository>.sources` and `<repository>.gpg`. */
  repository: text(
    'repository',
    /^[a-z0-9][a-z0-9._-]*$/,
    'a file name of lowercase letters, digits, . _ - (like "docker" or "nodesource")',
  ),
  state: presence.default('present'),
  /** The repository's base URIs. */
  uris: wordList('uris', /^[a-z0-9+]+:\/\/\S+$/, 'a URI').optional(),
  /** Distributions (`bookworm`), or an exact path ending in `/` for a flat repository (`./`). */
  suites: wordList('suites', /^\S+$/, 'a suite').optional(),
  /** Components (`main`); a flat repository (suite ending in `/`) has none. */
  components: wordList('components', /^\S+$/, 'a component').optional(),
  /** `deb` (default) and/or `deb-src`. */
  types: z
    .union([oneOf('types', ['deb', 'deb-src']), z.array(oneOf('types', ['deb', 'deb-src']))])
    .transform((value) => (typeof value === 'string' ? [value] : value))
    .default(['deb']),
  architectures: wordList('architectures', /^[a-z0-9-]+$/, 'a Debian architecture (amd64, arm64)').optional(),
  /** The key that signs the repository; without one, apt's trusted keys apply. */
  key: keyOption.optional(),
  /** Refresh the package lists when the repository changed (default true). */
  updateCache: z.boolean(says((got) => `updateCache must be true or false, got ${got}`)).default(true),
});

export type AptRepositoryOptions = z.input<typeof options>;
type AptRepository = z.output<typeof options>;

export interface AptRepositorySpec {
  repository: string;
  state: 'present' | 'absent';
  sourcesPath: string;
  keyPath: string;
  /** The .sources file's content (state present). */
  sources: string;
  /** A key read on the controller, binary. */
  keyBytes?: Buffer;
  /** A key the host fetches. */
  keyUrl?: { url: string; checksum: string };
  updateCache: boolean;
}

const MARKER = `${MARKER_PREFIX}apt-repository`;

/** The key-packet tags a public keyring starts with (old format 0x98-0x9a, new format 0xc6). */
const PUBLIC_KEY_FIRST_BYTES = [0x98, 0x99, 0x9a, 0xc6];
const SECRET_KEY_FIRST_BYTES = [0x94, 0x95, 0x96, 0xc5];

/**
 * The binary form of an ASCII-armored OpenPGP block: the base64 lines between the BEGIN and END lines,
 * without the armor headers (`Key: value`), blank lines and the CRC line (`=XXXX`). Undefined when
 * `text` holds no armor.
 */
export function dearmor(armored: string): Buffer | undefined {
  const lines = armored.split(/\r?\n/);
  const begin = lines.findIndex((line) => /^-----BEGIN PGP [A-Z ]+-----\s*$/.test(line));
  if (begin < 0) return undefined;
  const end = lines.findIndex((line, index) => index > begin && /^-----END PGP [A-Z ]+-----\s*$/.test(line));
  if (end < 0) return undefined;
  const body = lines
    .slice(begin + 1, end)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.includes(':') && !line.startsWith('='));
  return Buffer.from(body.join(''), 'base64');
}

/** The binary public key of a local key file (armored or binary), or the option error saying why not. */
export function readKeyFile(file: string, fail: Fail): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return fail('key.src', `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : String(error)}`);
  }
  const binary = bytes.includes('-----BEGIN PGP') ? dearmor(bytes.toString('utf8')) : bytes;
  const first = binary?.[0];
  if (first !== undefined && SECRET_KEY_FIRST_BYTES.includes(first)) {
    return fail('key.src', `${file} holds a secret key`, 'give the public key (gpg --export --armor <id>)');
  }
  if (binary === undefined || first === undefined || !PUBLIC_KEY_FIRST_BYTES.includes(first)) {
    return fail(
      'key.src',
      `${file} is not an OpenPGP public key (armored or binary)`,
      'export it with gpg --export --armor <id>',
    );
  }
  return binary;
}

/** The comment recording which key was fetched: when it differs, the key is fetched again. */
export function keySourceComment(keyUrl: { url: string; checksum: string }): string {
  return `# Signed-By key fetched from ${keyUrl.url} (sha256 ${keyUrl.checksum})`;
}

/** The deb822 stanza of the repository (the format `man sources.list` describes). */
export function sourcesContent(opts: AptRepository, keyPath: string): string {
  const lines = ['# Managed by verdandi (aptRepository): changes made here are overwritten.'];
  if (opts.key?.url !== undefined && opts.key.checksum !== undefined) {
    lines.push(keySourceComment({ url: opts.key.url, checksum: opts.key.checksum }));
  }
  lines.push(`Types: ${opts.types.join(' ')}`, `URIs: ${(opts.uris ?? []).join(' ')}`);
  lines.push(`Suites: ${(opts.suites ?? []).join(' ')}`);
  if (opts.components) lines.push(`Components: ${opts.components.join(' ')}`);
  if (opts.architectures) lines.push(`Architectures: ${opts.architectures.join(' ')}`);
  if (opts.key) lines.push(`Signed-By: ${keyPath}`);
  return `${lines.join('\n')}\n`;
}

function prepare(opts: AptRepository, { fail }: PrepareContext): AptRepositorySpec {
  const sourcesPath = `${SOURCES_DIR}/${opts.repository}.sources`;
  const keyPath = `${KEYRINGS_DIR}/${opts.repository}.gpg`;
  if (opts.state === 'present') {
    if (!opts.uris)
      fail('uris', 'uris is required (the repository base URI, like "https://deb.example.org/debian")');
    if (!opts.suites)
      return fail('suites', 'suites is required (like "bookworm", or "./" for a flat repository)');
    const flat = opts.suites.filter((suite) => suite.endsWith('/'));
    if (flat.length > 0 && opts.components) {
      fail('components', `a flat repository (suite ${flat[0]}) has no components: remove components`);
    }
    if (flat.length === 0 && !opts.components) {
      fail(
        'components',
        'components is required unless the suite is a path ending in / (a flat repository)',
        "like components: ['main']",
      );
    }
  }
  const spec: AptRepositorySpec = {
    repository: opts.repository,
    state: opts.state,
    sourcesPath,
    keyPath,
    sources: opts.state === 'present' ? sourcesContent(opts, keyPath) : '',
    updateCache: opts.updateCache,
  };
  const key = opts.key;
  if (key && (key.url === undefined) === (key.src === undefined)) {
    fail(
      'key',
      'key must be { url, checksum } (a URL and the sha256 of what it serves) or { src } (a local key file)',
    );
  }
  if (key?.url !== undefined && key.checksum === undefined) {
    fail(
      'key.checksum',
      'key.checksum is required with key.url: the sha256 of the key the URL serves',
      'sha256sum <key file> prints it',
    );
  }
  if (key?.src !== undefined && key.checksum !== undefined) {
    fail('key.checksum', 'key.checksum goes with key.url only: a local key file is compared by its content');
  }
  if (opts.state === 'present' && key) {
    if (key.src !== undefined) spec.keyBytes = readKeyFile(key.src, fail);
    else spec.keyUrl = { url: key.url as string, checksum: key.checksum as string };
  }
  return spec;
}

function files(spec: AptRepositorySpec): FileQuery[] {
  return [
    { path: spec.sourcesPath, checksum: true },
    { path: spec.keyPath, checksum: true },
  ];
}

/** Only a key fetched by the host needs a probe: whether curl is there. */
function probe(spec: AptRepositorySpec): string {
  if (!spec.keyUrl) return '';
  return `if command -v curl >/dev/null 2>&1; then echo '${MARKER} curl 1'; else echo '${MARKER} curl 0'; fi`;
}

/** Writes the binary key from stdin (base64) atomically, 0644. */
export function keyFromControllerStep(spec: AptRepositorySpec, key: Buffer): RunStep {
  return {
    kind: 'run',
    command: [
      'set -e',
      sh`install -d -m 0755 ${dirname(spec.keyPath)}`,
      sh`tmp=$(mktemp ${`${dirname(spec.keyPath)}/.verdandi-XXXXXX`})`,
      `trap 'rm -f "$tmp"' EXIT`,
      'base64 -d > "$tmp"',
      `[ "$(sha256sum < "$tmp" | cut -d' ' -f1)" = ${sha256Hex(key)} ] || { echo "the key did not arrive whole; nothing installed" >&2; exit 1; }`,
      'chmod 0644 "$tmp"',
      sh`mv -f "$tmp" ${spec.keyPath}`,
      'trap - EXIT',
    ].join('\n'),
    stdin: key.toString('base64'),
    description: `write ${spec.keyPath}`,
  };
}

/**
 * Fetches the key on the host, checks its sha256, dearmors it when armored (the base64 lines between
 * the armor lines, without headers and CRC), checks it is a public key and installs it atomically.
 */
export function keyFetchStep(spec: AptRepositorySpec, keyUrl: { url: string; checksum: string }): RunStep {
  return {
    kind: 'run',
    command: [
      'set -e',
      sh`install -d -m 0755 ${dirname(spec.keyPath)}`,
      sh`tmp=$(mktemp ${`${dirname(spec.keyPath)}/.verdandi-XXXXXX`})`,
      `trap 'rm -f "$tmp" "$tmp.fetched"' EXIT`,
      sh`if ! out=$(curl -fsSL --max-filesize ${MAX_KEY_BYTES} -o "$tmp.fetched" -- ${keyUrl.url} 2>&1); then echo "could not fetch the key from "${keyUrl.url}": $out" >&2; exit 1; fi`,
      `got=$(sha256sum < "$tmp.fetched" | cut -d' ' -f1)`,
      sh`if [ "$got" != ${keyUrl.checksum} ]; then echo "the key at "${keyUrl.url}" has sha256 $got, not the checksum given (${keyUrl.checksum}); nothing installed" >&2; exit 1; fi`,
      `if grep -q '^-----BEGIN PGP PUBLIC KEY BLOCK-----' "$tmp.fetched"; then`,
      `  sed -n '/^-----BEGIN PGP PUBLIC KEY BLOCK-----/,/^-----END PGP PUBLIC KEY BLOCK-----/p' "$tmp.fetched" | tr -d '\\r' | sed '1d;$d' | grep -v -e : -e '^=' -e '^[[:space:]]*$' | base64 -d > "$tmp"`,
      'else cat "$tmp.fetched" > "$tmp"; fi',
      `case "$(od -An -tx1 -N1 "$tmp" | tr -d ' ')" in ${PUBLIC_KEY_FIRST_BYTES.map((b) => b.toString(16)).join('|')}) ;;`,
      sh`  *) echo "what "${keyUrl.url}" serves is not an OpenPGP public key (armored or binary); nothing installed" >&2; exit 1 ;; esac`,
      'chmod 0644 "$tmp"',
      sh`mv -f "$tmp" ${spec.keyPath}`,
      'rm -f "$tmp.fetched"',
      'trap - EXIT',
    ].join('\n'),
    description: `fetch ${keyUrl.url} into ${spec.keyPath}`,
  };
}

/** `apt-get update` that fails on any error (a bad key only warns otherwise, and the lists stay old). */
export const STRICT_APT_UPDATE: RunStep = {
  kind: 'run',
  command: `${APT_GET} --error-on=any update && touch -c /var/lib/apt/lists/partial`,
  description: 'apt-get update',
};

function plan(spec: AptRepositorySpec, probe: ProbeResult): Plan {
  const label = `aptRepository ${spec.repository}`;
  const sources = probe.files?.get(spec.sourcesPath);
  const key = probe.files?.get(spec.keyPath);
  if (!sources) return { steps: [], error: unreadableProbe(spec.sourcesPath, probe.exitCode) };
  if (!key) return { steps: [], error: unreadableProbe(spec.keyPath, probe.exitCode) };
  for (const [path, state] of [
    [spec.sourcesPath, sources],
    [spec.keyPath, key],
  ] as const) {
    if (state.type !== 'absent' && state.type !== 'file') {
      return {
        steps: [],
        error: `${label}: ${path} is ${describeType(state.type)}; remove it (absent()) or name the repository differently`,
      };
    }
  }

  if (spec.state === 'absent') {
    const present = [spec.sourcesPath, spec.keyPath].filter(
      (path) => probe.files?.get(path)?.type === 'file',
    );
    if (present.length === 0) return { steps: [] };
    const steps: Step[] = [{ kind: 'run', command: sh`rm -f -- ${present}` }];
    if (spec.updateCache && sources.type === 'file') steps.push(STRICT_APT_UPDATE);
    return { steps, reason: `present: ${present.join(', ')}` };
  }

  const steps: Step[] = [];
  const reasons: string[] = [];
  const sourcesDiffer = sources.type === 'absent' || sources.sha256 !== sha256Hex(spec.sources);
  if (spec.keyBytes) {
    if (key.type === 'absent') reasons.push('key is missing');
    else if (key.sha256 !== sha256Hex(spec.keyBytes)) reasons.push('key differs');
    if (key.type === 'absent' || key.sha256 !== sha256Hex(spec.keyBytes)) {
      steps.push(keyFromControllerStep(spec, spec.keyBytes));
    }
  } else if (spec.keyUrl) {
    // The recorded checksum is in the .sources file: a new checksum changes it, and refetches the key.
    if (key.type === 'absent' || sourcesDiffer) {
      if (markedLines(probe.stdout, MARKER).some(([what, found]) => what === 'curl' && found === '0')) {
        return {
          steps: [],
          error: `${label}: curl is not installed on the host, and it fetches the key from ${spec.keyUrl.url}`,
        };
      }
      reasons.push(key.type === 'absent' ? 'key is missing' : 'key is fetched again');
      steps.push(keyFetchStep(spec, spec.keyUrl));
    }
  } else if (key.type === 'file') {
    // A key left by an earlier version of the task, which no longer names one.
    steps.push({ kind: 'run', command: sh`rm -f -- ${spec.keyPath}` });
    reasons.push('key no longer used');
  }
  if (key.type === 'file' && (spec.keyBytes || spec.keyUrl) && steps.length === 0) {
    const attributes = attributeChanges(spec.keyPath, key, { owner: 'root', group: 'root', mode: '0644' });
    steps.push(...attributes.steps);
    reasons.push(...attributes.reasons);
  }

  if (sourcesDiffer) {
    reasons.unshift(
      sources.type === 'absent' ? `${spec.sourcesPath} is missing` : `${spec.sourcesPath} differs`,
    );
    steps.push(
      writeStep({
        path: spec.sourcesPath,
        content: spec.sources,
        mode: '0644',
        owner: 'root',
        group: 'root',
      }),
    );
  } else if (sources.type === 'file') {
    const attributes = attributeChanges(spec.sourcesPath, sources, {
      owner: 'root',
      group: 'root',
      mode: '0644',
    });
    steps.push(...attributes.steps);
    reasons.push(...attributes.reasons);
  }
  const contentChanged = steps.some((step) => step.kind === 'write' || !/^(chown|chmod) /.test(step.command));
  if (contentChanged && spec.updateCache) steps.push(STRICT_APT_UPDATE);
  if (steps.length === 0) return { steps: [] };
  return {
    steps,
    reason: joinReasons(reasons),
    ...(sourcesDiffer ? { diff: { path: spec.sourcesPath, after: spec.sources } } : {}),
  };
}

export const aptRepository = defineTask({
  type: 'aptRepository',
  becomeUser: { refuse: 'only root may change the sources and keys of apt in /etc/apt' },
  options,
  subject: 'repository',
  label: (repository) => `aptRepository ${repository}`,
  prepare,
  probe,
  files,
  plan,
});
