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
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { defineTask } from './define.js';
import { inspectFragment, readInspect } from './docker-container.js';
import { absolutePath, text } from './options.js';

const options = z
  .strictObject({
    /** Name and tag of the image (`app:latest`). */
    tag: text('tag', /^[a-z0-9][a-z0-9._/:@-]*$/i, 'an image name like app:latest'),
    /** Absolute path of the build context directory on the host. */
    context: absolutePath('context').optional(),
    /** Dockerfile content; without it, the context's own Dockerfile is used. Without context, the image
     * is built from this Dockerfile alone (no files to COPY). */
    dockerfile: z
      .string({ error: 'dockerfile must be the content of a Dockerfile' })
      .refine((content) => content.trim() !== '', { error: 'dockerfile must be the content of a Dockerfile' })
      .optional(),
  })
  .refine((image) => image.context !== undefined || image.dockerfile !== undefined, {
    error: 'give a build context directory (context) or a Dockerfile (dockerfile)',
  });

export type DockerImageOptions = z.input<typeof options>;
type Image = z.output<typeof options>;

export const CONTEXT_HASH_LABEL = 'verdandi.context-hash';
const MARKER = 'verdandi-image';

function probe({ tag, context }: Image): string {
  return [
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
}

function plan({ tag, context, dockerfile }: Image, result: ProbeResult): Plan {
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

export const dockerImage = defineTask({
  type: 'dockerImage',
  options,
  subject: 'tag',
  label: (tag) => `docker image ${tag}`,
  probe,
  plan,
});

/** The label value: hash of the context's tree hash (`none` without context) and of the Dockerfile. */
export function inputsHash(contextHash: string, dockerfile: string | undefined): string {
  const dockerfileHash =
    dockerfile === undefined ? 'none' : createHash('sha256').update(dockerfile, 'utf8').digest('hex');
  return createHash('sha256').update(`context ${contextHash}\ndockerfile ${dockerfileHash}\n`).digest('hex');
}
