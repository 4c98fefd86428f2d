/**
 * `--json` prints one document whatever happens: a command stopped by an error before its run (a role
 * that does not load, an unknown environment) prints the exit code and the errors, with no host and
 * no event, and stderr says the same as without `--json`.
 */
import test from 'ava';
import { tempProject } from '../fixtures/inventory/temp-project.js';
import { runCli } from '../helpers/cli.js';

const inventory =
  'roles: [broken]\nhosts:\n  web1: { address: 10.231.250.1 }\n  web2: { address: 10.231.250.2 }\n';
const role =
  "import { copy, defineRole } from 'verdandi';\nexport default defineRole({ name: 'broken', tasks: () => [copy({ path: 'relative', content: 'x' })] });\n";

interface ErrorDocument {
  command: string;
  env?: string;
  exitCode: number;
  errors: Array<{ message: string; hint?: string }>;
  hosts: Record<string, unknown>;
  events: unknown[];
}

test('a plan error: one JSON document with the exit code and each error once', async (t) => {
  const dir = await tempProject(t, { 'inventories/staging.yml': inventory, 'roles/broken/index.ts': role });
  const res = await runCli(['provision', 'staging', '--json'], { cwd: dir });
  t.is(res.code, 1, res.stderr);
  const doc = JSON.parse(res.stdout) as ErrorDocument;
  t.is(doc.command, 'provision');
  t.is(doc.env, 'staging');
  t.is(doc.exitCode, 1);
  t.deepEqual(doc.hosts, {});
  t.deepEqual(doc.events, []);
  t.is(doc.errors.length, 2, 'one per host: the message names the host');
  t.regex(doc.errors[0].message, /role broken, host web1: copy relative: path must be an absolute path/);
  t.regex(res.stderr, /role broken, host web1: copy relative: path must be an absolute path/);
});

test('an unknown environment: the error and its hint in the document', async (t) => {
  const dir = await tempProject(t, { 'inventories/staging.yml': inventory, 'roles/broken/index.ts': role });
  const res = await runCli(['deploy', 'prod', '--json'], { cwd: dir });
  t.is(res.code, 1, res.stderr);
  const doc = JSON.parse(res.stdout) as ErrorDocument;
  t.is(doc.command, 'deploy');
  t.is(doc.env, 'prod');
  t.regex(doc.errors[0].message, /unknown environment "prod"/);
  t.truthy(doc.errors[0].hint);
});

test('a subcommand is named with its parent', async (t) => {
  const dir = await tempProject(t, { 'inventories/staging.yml': inventory, 'roles/broken/index.ts': role });
  const res = await runCli(['lock', 'status', 'prod', '--json'], { cwd: dir });
  t.is(res.code, 1, res.stderr);
  const doc = JSON.parse(res.stdout) as ErrorDocument;
  t.is(doc.command, 'lock status');
  t.regex(doc.errors[0].message, /unknown environment "prod"/);
});

test('without --json, stdout stays empty', async (t) => {
  const dir = await tempProject(t, { 'inventories/staging.yml': inventory, 'roles/broken/index.ts': role });
  const res = await runCli(['provision', 'staging'], { cwd: dir });
  t.is(res.code, 1);
  t.is(res.stdout, '');
});
