/** CLI argument handling: help for every command of the contract, usage errors exit 1 without a stack. */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const BIN = fileURLToPath(new URL('../../bin/verdandi.js', import.meta.url));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [BIN, ...args], { env: { ...process.env, CI: 'true' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const COMMANDS = [
  'ping',
  'provision',
  'deploy',
  'rollback',
  'status',
  'run',
  'check',
  'facts',
  'secrets',
  'testhost',
  'backup',
  'restore',
];

test('verdandi --help lists every command of the contract', async (t) => {
  const res = await cli(['--help']);
  t.is(res.code, 0);
  for (const c of COMMANDS) t.regex(res.stdout, new RegExp(`\\n  ${c}\\b`), `missing ${c}`);
});

for (const c of COMMANDS) {
  test(`verdandi ${c} --help answers`, async (t) => {
    const res = await cli([c, '--help']);
    t.is(res.code, 0, res.stderr);
    t.regex(res.stdout, new RegExp(`Usage: verdandi ${c}`));
  });
}

test('provision, run and deploy share the run options', async (t) => {
  for (const c of ['provision', 'run']) {
    const res = await cli([c, '--help']);
    for (const opt of [
      '--check',
      '--diff',
      '--limit',
      '--tags',
      '--forks',
      '--json',
      '--var',
      '--vault-password-file',
      '--host-key-checking',
    ]) {
      t.true(res.stdout.includes(opt), `${c} lacks ${opt}`);
    }
  }
});

test('a missing argument is a usage error: exit 1, no stack trace', async (t) => {
  const res = await cli(['provision']);
  t.is(res.code, 1);
  t.regex(res.stderr, /missing required argument 'env'/);
  t.notRegex(res.stderr, /at .*\.js:\d+:\d+/);
});

test('an unknown command is a usage error', async (t) => {
  const res = await cli(['provison', 'staging']);
  t.is(res.code, 1);
  t.regex(res.stderr, /unknown command 'provison'/);
});

test('a bad --connect-timeout value names the option', async (t) => {
  const res = await cli(['ping', 'x', '--connect-timeout', 'soon']);
  t.is(res.code, 1);
  t.regex(res.stderr, /error: --connect-timeout must be a positive whole number, got "soon"/);
});

test('an unknown env lists the known ones and exits 1', async (t) => {
  const res = await cli(['provision', 'no-such-env']);
  t.is(res.code, 1);
  t.regex(res.stderr, /no-such-env/);
  t.notRegex(res.stderr, /at .*\.js:\d+:\d+/);
});

/** A project on disk with one inventory; its only host does not exist: these errors come before any connection. */
function project(inventory: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vd-cli-'));
  mkdirSync(join(dir, 'inventories'));
  writeFileSync(join(dir, 'inventories', 'staging.yml'), inventory);
  return dir;
}

function cliIn(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [BIN, ...args], { cwd, env: { ...process.env, CI: 'true' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('a var of the wrong type names the var, the host and where it was set; nothing runs', async (t) => {
  const dir = project(
    [
      'hosts:',
      '  web1: { address: 10.231.254.2 }',
      'groups:',
      '  web:',
      '    hosts: [web1]',
      '    roles: [nginx]',
      '    vars:',
      '      nginx_worker_processes: many',
      '',
    ].join('\n'),
  );
  const res = await cliIn(dir, ['provision', 'staging']);
  t.is(res.code, 1);
  t.regex(
    res.stderr,
    /role nginx, host web1: var nginx_worker_processes .*"many".*inventories\/staging\.yml:8:/,
  );
  t.is(res.stdout, '');
});

test('an unknown role lists the known ones, with where it was named', async (t) => {
  const dir = project(
    [
      'hosts:',
      '  web1: { address: 10.231.254.2 }',
      'groups:',
      '  web:',
      '    hosts: [web1]',
      '    roles: [ngnix]',
      '',
    ].join('\n'),
  );
  const res = await cliIn(dir, ['provision', 'staging']);
  t.is(res.code, 1);
  t.regex(res.stderr, /inventories\/staging\.yml:6:\d+: unknown role "ngnix"/);
  t.regex(res.stderr, /known roles: .*docker.*nginx.*postgres.*pyenv.*sites.*supervisor/);
});

test('a YAML syntax error names the file, line and column', async (t) => {
  const dir = project(['hosts:', '  web1: { address: 10.231.254.2', 'groups: {}', ''].join('\n'));
  const res = await cliIn(dir, ['ping', 'staging']);
  t.is(res.code, 1);
  t.regex(res.stderr, /inventories\/staging\.yml:\d+:\d+/);
  t.notRegex(res.stderr, /at .*\.js:\d+:\d+/);
});

// A misspelled key used to vanish: `provision --check` passed with exit 0 and the real run then went on
// without it. Each is now exit 1 before any host is contacted (10.231.254.2 answers nobody: a connection
// attempt would end as exit 3, unreachable).
const misspellings: Array<{ key: string; meant: string; role: string; vars: string[]; at: string }> = [
  {
    key: 'healthcheck',
    meant: 'health',
    role: 'sites',
    vars: ['sites:', '  - name: shop', '    repo: /srv/git/shop.git', '    healthcheck: { path: /health }'],
    at: '11:11',
  },
  {
    key: 'brnach',
    meant: 'branch',
    role: 'sites',
    vars: ['sites:', '  - name: shop', '    repo: /srv/git/shop.git', '    brnach: release'],
    at: '11:11',
  },
  {
    key: 'procss',
    meant: 'process',
    role: 'sites',
    vars: ['sites:', '  - name: shop', '    repo: /srv/git/shop.git', '    procss:', '      port: 9000'],
    at: '11:11',
  },
  {
    key: 'pasword',
    meant: 'password',
    role: 'postgres',
    vars: ['postgres_users:', '  - name: shop', '    pasword: s3cr3t-pw'],
    at: '10:11',
  },
  {
    key: 'ownr',
    meant: 'owner',
    role: 'postgres',
    vars: ['postgres_databases:', '  - { name: shop, ownr: shop }'],
    at: '9:25',
  },
];

for (const { key, meant, role, vars, at } of misspellings) {
  test(`provision --check: "${key}" (for "${meant}") is refused with exit 1, before any connection`, async (t) => {
    const dir = project(
      [
        'hosts:',
        '  web1: { address: 10.231.254.2 }',
        'groups:',
        '  g:',
        '    hosts: [web1]',
        `    roles: [${role}]`,
        '    vars:',
        ...vars.map((l) => `      ${l}`),
        '',
      ].join('\n'),
    );
    const res = await cliIn(dir, ['provision', 'inventories/staging.yml', '--check']);
    t.is(res.code, 1, res.stderr);
    t.true(
      res.stderr.includes(
        `role ${role}, host web1: unknown key "${key}" in ${vars[0].replace(':', '')}[0] (did you mean "${meant}"?) (set in inventories/staging.yml:${at})`,
      ),
      res.stderr,
    );
    t.notRegex(res.stderr, /s3cr3t-pw/, 'the value of an unknown key is not shown');
    t.is(res.stdout, '', 'no host was reported on: none was contacted');
  });
}
