/**
 * At a terminal: passwords asked without echo, invalid YAML offers to edit again or abort, Ctrl-C at a
 * prompt ends cleanly. Run on a pseudo-terminal (util-linux `script`).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { makeProject, runSecretsOnTerminal, script } from '../fixtures/secrets/helpers.js';

const TYPED_PASSWORD = 'Typed-Pw-8812';

/** An editor that writes invalid YAML the first time and valid YAML the next. */
function twoStepEditor(project: string): string {
  const seen = join(project, 'editor-ran');
  return script(
    project,
    'editor.sh',
    `if [ ! -f ${seen} ]; then touch ${seen}; echo 'token: "Unterminated-Secret-4' >> "$1"; ` +
      `else sed -i 's/^token: .*/token: Fixed-Secret-4/' "$1"; fi`,
  );
}

test('create asks a new password twice without echo; invalid YAML → edit again → saved', async (t) => {
  const project = makeProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  const created = await runSecretsOnTerminal(
    ['create', 'staging'],
    [
      ['New vault password for staging: ', `${TYPED_PASSWORD}\r`],
      ['Repeat the new vault password for staging: ', `${TYPED_PASSWORD}\r`],
      ['[e]dit again or [a]bort (changes lost)? ', 'e\r'],
    ],
    { cwd: project, env: { EDITOR: twoStepEditor(project) } },
  );
  t.is(created.code, 0, created.stdout);
  t.regex(created.stdout, /error: invalid YAML at line \d+, column \d+: /);
  t.regex(created.stdout, /created secrets\/staging\.yml\.asc \(encrypted to password\)/);
  for (const secret of [TYPED_PASSWORD, 'Unterminated-Secret-4', 'Fixed-Secret-4']) {
    t.false(created.stdout.includes(secret), `the terminal shows ${secret}`);
  }

  const view = await runSecretsOnTerminal(
    ['get', 'staging', 'token'],
    [['Vault password for staging: ', `${TYPED_PASSWORD}\r`]],
    {
      cwd: project,
    },
  );
  t.is(view.code, 0);
  t.regex(view.stdout, /Fixed-Secret-4/);
  t.false(view.stdout.includes(TYPED_PASSWORD));
});

test('invalid YAML → abort: the file is left byte for byte; Ctrl-C at the password prompt: exit 1', async (t) => {
  const project = makeProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  const passwordFile = join(project, 'secrets', 'staging.vault-password');
  writeFileSync(passwordFile, `${TYPED_PASSWORD}\n`, { mode: 0o600 });
  const created = await runSecretsOnTerminal(['create', 'staging'], [], {
    cwd: project,
    env: { EDITOR: 'true' },
  });
  t.is(created.code, 0, created.stdout);
  const asc = join(project, 'secrets', 'staging.yml.asc');
  const before = readFileSync(asc);

  const aborted = await runSecretsOnTerminal(
    ['edit', 'staging'],
    [['[e]dit again or [a]bort (changes lost)? ', 'a\r']],
    {
      cwd: project,
      env: { EDITOR: twoStepEditor(project) },
    },
  );
  t.is(aborted.code, 1);
  t.regex(aborted.stdout, /error: aborted: secrets\/staging\.yml\.asc was left as it was/);
  t.deepEqual(readFileSync(asc), before);

  rmSync(passwordFile);
  const interrupted = await runSecretsOnTerminal(
    ['edit', 'staging'],
    [['Vault password for staging: ', 'abc\u0003']],
    {
      cwd: project,
      env: { EDITOR: 'true' },
    },
  );
  t.is(interrupted.code, 1);
  t.regex(interrupted.stdout, /error: interrupted \(Ctrl-C\): nothing was changed/);
  t.deepEqual(readFileSync(asc), before);
});
