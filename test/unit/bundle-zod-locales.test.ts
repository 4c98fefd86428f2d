/**
 * The build keeps zod's non-English locales out of the bundle a run loads (scripts/bundle.js, issue 25):
 * `z.locales.<lang>` of the public API is a stub that loads dist/bundle/zod-locales.cjs on first use.
 * This proves the public API's `z.locales` still has every language zod has, that each one gives the
 * very messages zod's own gives, and that no module of the bundle but that file carries them.
 * Needs `npm run build` after a change in scripts/bundle.js.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { z as zod } from 'zod';

type Api = typeof import('../../src/index.js');
const BUNDLE = new URL('../../dist/bundle/', import.meta.url);

/** The same failing input through a schema of each kind of issue zod words differently. */
function messages(z: Api['z']): string[] {
  const schema = z.object({
    name: z.string().min(3),
    port: z.number().max(10),
    kind: z.enum(['a', 'b']),
    mail: z.email(),
    list: z.array(z.string()).nonempty(),
  });
  const result = schema
    .strict()
    .safeParse({ name: 'x', port: 99, kind: 'c', mail: 'no', list: [], extra: 1 });
  return result.error?.issues.map((issue) => issue.message) ?? [];
}

test('z.locales of the built API has every zod locale, each wording issues as zod does', async (t) => {
  const { z } = (await import(new URL('index.js', BUNDLE).href)) as Api;
  t.deepEqual(Object.keys(z.locales), Object.keys(zod.locales));
  t.is(z.core.locales, z.locales, 'z.core.locales is the same namespace');
  try {
    for (const name of Object.keys(zod.locales) as Array<keyof typeof zod.locales>) {
      z.config(z.locales[name]());
      zod.config(zod.locales[name]());
      const built = messages(z);
      t.is(built.length, 6, name);
      t.deepEqual(built, messages(zod), name);
    }
  } finally {
    z.config(z.locales.en());
    zod.config(zod.locales.en());
  }
  t.deepEqual(messages(z)[0], 'Too small: expected string to have >=3 characters');
});

test('only zod-locales.cjs carries the other languages', (t) => {
  const carriers = readdirSync(BUNDLE).filter((file) =>
    // words of zod's German locale (`de`), in no other locale (and ASCII: esbuild escapes the rest)
    readFileSync(fileURLToPath(new URL(file, BUNDLE)), 'utf8').includes('"zu haben"'),
  );
  t.deepEqual(carriers, ['zod-locales.cjs']);
});
