/**
 * Declared facts and onlyIfChanged through the built CLI (`npm run build` first) on a host that is this
 * machine (`connection: local`): a role whose facts depend on its vars and a typed play (definePlay)
 * converge, a rerun costs the facts' round trip and the probes' one and skips the follow-up; a
 * declaration that is not a fact and an onlyIfChanged naming a later task stop the run before any change.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { cliProjects } from '../helpers/cli.js';

const { project, cli } = cliProjects('facts-cli');

const inventory = (out: string) =>
  [`vars: { out: ${JSON.stringify(out)} }`, 'hosts:', '  one: { connection: local }', ''].join('\n');

const SITE = `
import { commandFact, copy, definePlay, definePlaybook, defineRole, shell, stat, z } from 'verdandi';

const role = defineRole({
  name: 'seen',
  vars: z.object({ out: z.string() }),
  facts: (vars) => ({ marker: stat(vars.out + '/marker') }),
  tasks: (vars, _host, facts) => [
    copy({ path: vars.out + '/seen', content: facts.marker.exists ? facts.marker.type + '\\n' : 'none\\n' }),
  ],
});

export default definePlaybook({
  plays: [
    { hosts: 'one', roles: [{ role, vars: {} }] },
    definePlay({
      hosts: 'one',
      facts: { words: commandFact(['echo', 'a', 'b'], ({ stdout }) => stdout.trim().split(' ')) },
      tasks: (host, facts) => {
        const out = String(host.vars.out);
        const words = copy({ path: out + '/words', content: facts.words.join(',') + '\\n' });
        return [words, shell({ script: 'echo ran >> ' + out + '/ran', onlyIfChanged: words })];
      },
    }),
  ],
});
`;

test('facts of a role (from its vars) and of a typed play steer their tasks; onlyIfChanged follows a change', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-facts-out-'));
  writeFileSync(join(out, 'marker'), 'x');
  const dir = project({ 'site.ts': SITE, 'inventories/staging.yml': inventory(out) });
  const first = await cli(dir, ['run', 'staging', 'site.ts']);
  t.is(first.code, 0, first.stdout + first.stderr);
  t.is(readFileSync(join(out, 'seen'), 'utf8'), 'file\n');
  t.is(readFileSync(join(out, 'words'), 'utf8'), 'a,b\n');
  t.is(readFileSync(join(out, 'ran'), 'utf8'), 'ran\n');

  const again = await cli(dir, ['run', 'staging', 'site.ts', '--json']);
  t.is(again.code, 0, again.stderr);
  const report = JSON.parse(again.stdout);
  t.like(report.hosts.one, { changed: 0, skipped: 1 });
  t.is(readFileSync(join(out, 'ran'), 'utf8'), 'ran\n', 'the follow-up was skipped');
  const skipped = report.events.find((e: { status?: string }) => e.status === 'skipped');
  t.regex(skipped.detail, /^onlyIfChanged: "copy .*\/words" changed$/);
});

test('facts() that throws, a declaration that is not a fact, and onlyIfChanged naming a later task stop the run before any change', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vd-facts-out-'));
  const dir = project({
    'bad.ts': `
import { copy, definePlaybook, defineRole } from 'verdandi';

const role = defineRole({
  name: 'notfact',
  facts: { x: 'nope' } as never,
  tasks: () => [copy({ path: ${JSON.stringify(join(out, 'a'))}, content: 'a' })],
});

export default definePlaybook({ plays: [{ hosts: 'one', roles: [role] }] });
`,
    'later.ts': `
import { copy, definePlaybook } from 'verdandi';

export default definePlaybook({
  plays: [{
    hosts: 'one',
    tasks: () => {
      const b = copy({ path: ${JSON.stringify(join(out, 'b'))}, content: 'b' });
      return [copy({ path: ${JSON.stringify(join(out, 'c'))}, content: 'c', onlyIfChanged: b }), b];
    },
  }],
});
`,
    'throws.ts': `
import { copy, definePlaybook, defineRole } from 'verdandi';

const role = defineRole({
  name: 'thrower',
  facts: () => {
    throw new Error('no facts today');
  },
  tasks: () => [copy({ path: ${JSON.stringify(join(out, 'a'))}, content: 'a' })],
});

export default definePlaybook({ plays: [{ hosts: 'one', roles: [role] }] });
`,
    'inventories/staging.yml': inventory(out),
  });
  const throws = await cli(dir, ['run', 'staging', 'throws.ts']);
  t.is(throws.code, 1, throws.stderr);
  t.regex(throws.stderr, /role thrower \(throws\.ts:7:\d+\), host one: facts\(\) threw: no facts today/);
  const bad = await cli(dir, ['run', 'staging', 'bad.ts']);
  t.is(bad.code, 1, bad.stderr);
  t.regex(bad.stderr, /role notfact.*host one: facts\.x is not a fact/);
  const later = await cli(dir, ['run', 'staging', 'later.ts']);
  t.is(later.code, 1, later.stderr);
  t.regex(
    later.stderr,
    /host one: play 1: task "copy .*\/c" has onlyIfChanged "copy .*\/b", which comes after it/,
  );
  t.false(existsSync(join(out, 'a')) || existsSync(join(out, 'b')) || existsSync(join(out, 'c')));
});
