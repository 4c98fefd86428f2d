/** The engine's side: loadSecrets / hasSecrets, in process. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { hasSecrets, loadSecrets } from '../../src/secrets/index.js';
import { encryptText } from '../../src/secrets/pgp.js';
import { UserError } from '../../src/util/errors.js';
import { clearSecrets, redact } from '../../src/util/redact.js';

// The developer's own settings must not answer for the test (each test file runs in its own process).
delete process.env.VERDANDI_VAULT_PASSWORD;
delete process.env.VERDANDI_PGP_KEY;

const project = mkdtempSync(join(tmpdir(), 'verdandi-secrets-engine-'));
mkdirSync(join(project, 'secrets'));
const passwordFile = join(project, 'pw');
writeFileSync(passwordFile, 'engine-pw\n', { mode: 0o600 });

test.before(async () => {
  const text =
    'database_url: postgres://app:Engine-Secret-1@db/app\nport: 5432\nnested:\n  token: tok-Engine-2\n';
  writeFileSync(
    join(project, 'secrets', 'staging.yml.asc'),
    await encryptText(text, { passwords: ['engine-pw'], keys: [] }),
  );
});
test.after.always(() => {
  rmSync(project, { recursive: true, force: true });
  clearSecrets();
});

test.serial('an env without secrets file: hasSecrets false, loadSecrets {}', async (t) => {
  t.false(hasSecrets(project, 'production'));
  t.deepEqual(await loadSecrets({ projectDir: project, env: 'production', interactive: false }), {});
});

test.serial('loadSecrets decrypts the map and registers every value for redaction', async (t) => {
  t.true(hasSecrets(project, 'staging'));
  const secrets = await loadSecrets({
    projectDir: project,
    env: 'staging',
    vaultPasswordFile: passwordFile,
    interactive: false,
  });
  t.deepEqual(secrets, {
    database_url: 'postgres://app:Engine-Secret-1@db/app',
    port: 5432,
    nested: { token: 'tok-Engine-2' },
  });
  t.is(
    redact('url=postgres://app:Engine-Secret-1@db/app token=tok-Engine-2 pw=engine-pw'),
    'url=[secret] token=[secret] pw=[secret]',
  );
});

test.serial('the env may be given as its inventory file', async (t) => {
  const secrets = await loadSecrets({
    projectDir: project,
    env: 'inventories/staging.yml',
    vaultPasswordFile: passwordFile,
    interactive: false,
  });
  t.is(secrets.port, 5432);
});

test.serial('no password and no terminal: a UserError that says where to put it', async (t) => {
  const error = await t.throwsAsync(
    loadSecrets({ projectDir: project, env: 'staging', interactive: false }),
    {
      instanceOf: UserError,
    },
  );
  t.is(error.message, 'no vault password for staging');
  t.regex(
    error.hint ?? '',
    /secrets\/staging\.vault-password.*VERDANDI_VAULT_PASSWORD.*--vault-password-file/,
  );
});
