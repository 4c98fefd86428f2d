/**
 * dockerImage: an image built on the host (`docker build`), rebuilt when its inputs change.
 *
 * The inputs are a build context directory already on the host (put there by copy/git tasks) and/or an
 * inline Dockerfile. The probe hashes the context (sha256 of every file's sha256 and relative path, in
 * a stable order) and reads the label `verdandi.context-hash` of the image; the image is built when it
 * is missing or when the label differs from the hash of the current inputs. Nothing is pulled from a
 * registry by this task itself (a FROM image that is not on the host is, by docker build).
 */
import { createHash } from 'node:crypto';
import type { Plan, ProbeResult, RunStep, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { inspectFragment, readInspect } from './docker-container.js';
import { checkPath, taskOptionError } from './probes.js';

export interface DockerImageOptions {
  /** Name and tag of the image (`app:latest`). */
  tag: string;
  /** Absolute path of the build context directory on the host. */
  context?: string;
  /** Dockerfile content; without it, the context's own Dockerfile is used. Without context, the image is
   * built from this Dockerfile alone (no files to COPY). */
  dockerfile?: string;
}

export const CONTEXT_HASH_LABEL = 'verdandi.context-hash';
const MARKER = 'verdandi-image';

export function dockerImage(opts: DockerImageOptions & TaskOptions): Task {
  const { tag, dockerfile } = opts;
  if (typeof tag !== 'string' || !/^[a-z0-9][a-z0-9._/:@-]*$/i.test(tag)) {
    throw taskOptionError(
      'dockerImage',
      `tag must be an image name like app:latest, got ${JSON.stringify(tag)}`,
    );
  }
  const label = `docker image ${tag}`;
  const context = opts.context === undefined ? undefined : checkPath(label, opts.context);
  if (dockerfile !== undefined && (typeof dockerfile !== 'string' || dockerfile.trim() === '')) {
    throw taskOptionError(label, 'dockerfile must be the content of a Dockerfile');
  }
  if (context === undefined && dockerfile === undefined) {
    throw taskOptionError(label, 'give a build context directory (context) or a Dockerfile (dockerfile)');
  }

  const probe = [
    context === undefined
      ? `echo '${MARKER} context none'`
      : [
          `if [ -d ${quote(context)} ]; then`,
          // Relative paths, so the hash does not depend on where the context lives; C order: stable.
          `  echo "${MARKER} context $(cd ${quote(context)} && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -d ' ' -f 1)"`,
          'else',
          `  echo '${MARKER} context missing'`,
          'fi',
        ].join('\n'),
    inspectFragment(
      'image',
      words(
        'docker',
        'image',
        'inspect',
        '-f',
        `{{index .Config.Labels ${JSON.stringify(CONTEXT_HASH_LABEL)}}}`,
        tag,
      ),
    ),
  ].join('\n');

  function plan(result: ProbeResult): Plan {
    const contextLine = result.stdout.split('\n').find((l) => l.startsWith(`${MARKER} context `));
    const contextHash = contextLine?.slice(`${MARKER} context `.length).trim();
    if (contextHash === undefined)
      return { steps: [], error: `the image probe printed nothing (exit code ${result.exitCode})` };
    if (contextHash === 'missing') {
      return {
        steps: [],
        error: `build context ${context} is not a directory on the host: put the files there first (copy or git tasks before this one)`,
      };
    }
    const image = readInspect(result.stdout, 'image', 'No such image');
    if ('error' in image) return { steps: [], error: image.error };
    const wanted = inputsHash(contextHash, dockerfile);
    if (image.found === wanted) return { steps: [] };

    const step: RunStep = {
      kind: 'run',
      command: words(
        'docker',
        'build',
        '-t',
        tag,
        '--label',
        `${CONTEXT_HASH_LABEL}=${wanted}`,
        // `-f -` reads the Dockerfile from stdin; a lone `-` as context: no files, Dockerfile on stdin.
        ...(context === undefined ? ['-'] : dockerfile !== undefined ? ['-f', '-', context] : [context]),
      ),
      description: `docker build ${tag}`,
    };
    if (dockerfile !== undefined) step.stdin = dockerfile;
    return {
      steps: [step],
      reason: image.found === undefined ? 'image does not exist' : 'build inputs changed',
    };
  }

  return { ...taskBase('dockerImage', label, opts), probe, plan };
}

/** The label value: hash of the context's tree hash (`none` without context) and of the Dockerfile. */
export function inputsHash(contextHash: string, dockerfile: string | undefined): string {
  const dockerfileHash =
    dockerfile === undefined ? 'none' : createHash('sha256').update(dockerfile, 'utf8').digest('hex');
  return createHash('sha256').update(`context ${contextHash}\ndockerfile ${dockerfileHash}\n`).digest('hex');
}
