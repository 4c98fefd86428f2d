/**
 * The ssh config read as OpenSSH reads it, with OpenSSH itself as the oracle: for each case of the
 * table, `ssh -G -F <file> [-l user] <host>` prints the configuration ssh resolved, and Verdandi's
 * lookup must give the same host name, user, port and ProxyJump. The cases cover the patterns (`?` is
 * exactly one character, `*`, `!`, case), `Match` (host, originalhost, user, localuser, all, canonical,
 * final and its second pass, negations, several criteria) and `Include` under a block. `Match exec` is
 * kept out of the table (ssh would run it): Verdandi skips it with a warning, tested below.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { SshRouting } from '../../src/connection/route.js';
import { loadSshConfig } from '../../src/connection/ssh-config.js';
import { UserError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vd-sshmatch-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const me = os.userInfo().username;

let files = 0;
function configFile(text: string): string {
  const file = join(dir, `config-${++files}`);
  writeFileSync(file, text);
  return file;
}

interface Resolved {
  hostname: string;
  user: string;
  port: string;
  proxyjump?: string;
}

/** What `ssh -G` resolves (it reads the file only: no connection, no DNS without canonicalization). */
function openssh(file: string, host: string, user?: string): Resolved {
  const out = execFileSync('ssh', ['-G', '-F', file, ...(user ? ['-l', user] : []), host], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const get = (key: string) => new RegExp(`^${key} (.*)$`, 'm').exec(out)?.[1];
  return { hostname: get('hostname')!, user: get('user')!, port: get('port')!, proxyjump: get('proxyjump') };
}

/** What Verdandi's lookup gives, with ssh's defaults where the config says nothing. */
function verdandi(file: string, host: string, user?: string): Resolved {
  const { settings } = loadSshConfig(file).lookup(host, { user });
  return {
    hostname: (settings.hostname ? settings.hostname.value.replace(/%h/g, host) : host).toLowerCase(),
    user: user ?? settings.user?.value ?? me,
    port: settings.port?.value ?? '22',
    proxyjump: settings.proxyjump?.value,
  };
}

const include = join(dir, 'included');
writeFileSync(include, 'Port 1111\nHost app\n  User included\n');

/** [what it shows, config lines, host, user given like the inventory's (`ssh -l`)] */
const CASES: Array<[string, string[], string, string?]> = [
  ['? is exactly one character (none)', ['Host web?', '  Port 2201'], 'web'],
  ['? is exactly one character (one)', ['Host web?', '  Port 2201'], 'web1'],
  ['? is exactly one character (two)', ['Host web?', '  Port 2201'], 'web12'],
  ['* and several patterns', ['Host db* web*', '  User app'], 'web-2'],
  [
    'Host patterns are compared as written',
    ['Host WEB1', '  User upper', 'Host web?', '  Port 2201'],
    'WEB1',
  ],
  ['a negated pattern excludes', ['Host * !db*', '  User app'], 'db1'],
  ['negations alone match nothing', ['Host !db', '  Port 3'], 'web'],
  ['dots are literal', ['Host 10.0.0.1', '  Port 4'], '10a0b0c1'],
  ['HostName with %h', ['Host app', '  HostName %h.internal.example'], 'app'],
  ['the first value obtained wins', ['Host app', '  Port 5', 'Host *', '  Port 6', '  User late'], 'app'],
  [
    'Match host compares the HostName obtained so far',
    ['Host app', '  HostName 10.1.1.1', 'Match host 10.1.*', '  User bymatch'],
    'app',
  ],
  [
    'Match host before any HostName compares the host',
    ['Match host 10.1.*', '  User bymatch', 'Host app', '  HostName 10.1.1.1'],
    'app',
  ],
  [
    'Match originalhost compares the host as given',
    ['Host app', '  HostName 10.1.1.1', 'Match originalhost app', '  Port 4444'],
    'app',
  ],
  ['Match originalhost ignores case', ['Match originalhost APP', '  Port 4445'], 'app'],
  ['Match host lists: a negation wins', ['Match host x*,!xy*', '  Port 7'], 'xyz'],
  ['Match host lists: a positive match', ['Match host x*,!xy*', '  Port 7'], 'xa'],
  ['Match !host', ['Match !host x*', '  Port 8'], 'abc'],
  ['Match user: the given user', ['Match user deploy', '  Port 9'], 'app', 'deploy'],
  ['Match user: another user', ['Match user deploy', '  Port 9'], 'app', 'ops'],
  [
    'Match user: the User obtained so far',
    ['Host *', '  User deploy', 'Match user deploy', '  Port 10'],
    'app',
  ],
  ['Match user: ? is one character', ['Match user d?ploy', '  Port 11'], 'app', 'deploy'],
  ['Match localuser', ['Match localuser ' + me, '  Port 12'], 'app'],
  ['Match !localuser', ['Match !localuser ' + me, '  Port 12'], 'app'],
  ['several criteria: all must hold', ['Match host app user deploy', '  Port 13'], 'app', 'ops'],
  ['several criteria, holding', ['Match host app user deploy', '  Port 13'], 'app', 'deploy'],
  ['negations among criteria', ['Match !host x*,!y user ops', '  Port 14'], 'abc', 'ops'],
  ['Match all', ['Match all', '  User everyone', 'Host app', '  User never'], 'app'],
  [
    'Match final: a second pass, Host against the HostName found, HostName fixed',
    ['Host app', '  HostName 10.2.2.2', 'Match final', 'Host 10.2.2.2', '  User final', '  HostName ignored'],
    'app',
  ],
  ['Match canonical without final: never', ['Match canonical', '  Port 15'], 'app'],
  ['Match canonical with a final pass', ['Match canonical', '  Port 15', 'Match final', '  User z'], 'app'],
  ['Match !final holds on the first pass', ['Match !final', '  Port 16', 'Match final', '  Port 17'], 'app'],
  [
    'Match final host: ProxyJump for the final name',
    ['Host app', '  HostName 10.3.0.1', 'Match final host 10.3.*', '  ProxyJump gate'],
    'app',
  ],
  ['Match final all', ['Match final all', '  Port 18'], 'app'],
  [
    'an Include under a block that does not apply: nothing of it applies',
    ['Host other', `  Include ${include}`, 'Host *', '  User rest'],
    'app',
  ],
  ['an Include under a block that applies', ['Host app', `  Include ${include}`, '  User after'], 'app'],
  ['an Include at the top', [`Include ${include}`, 'Host app', '  Port 19'], 'app'],
];

for (const [what, lines, host, user] of CASES) {
  test(`as ssh -G: ${what}`, (t) => {
    const file = configFile(`${lines.join('\n')}\n`);
    t.deepEqual(verdandi(file, host, user), openssh(file, host, user), lines.join(' / '));
  });
}

test('Match exec is not run: its block is skipped with a warning naming the file and line, once reached', (t) => {
  const file = configFile(
    [
      'Host *',
      '  ConnectTimeout 3',
      'Match host web* exec "touch never-run"',
      '  Port 6',
      'Match all',
      '  Port 7',
      '',
    ].join('\n'),
  );
  const config = loadSshConfig(file);
  t.is(config.lookup('db1').settings.port?.value, '7');
  t.deepEqual([...config.warnings], [], 'host web* did not hold: ssh would not have run it either');
  t.is(config.lookup('web1').settings.port?.value, '7');
  t.deepEqual(
    [...config.warnings],
    [
      `${file}:3: Match exec is not evaluated (Verdandi does not run local commands from the ssh config): the block under it is skipped`,
    ],
  );
  // Negated, it is not run either.
  const negated = loadSshConfig(configFile('Match !exec "false"\n  Port 8\n'));
  t.is(negated.lookup('web1').settings.port, undefined);
  t.is(negated.warnings.size, 1);
});

test('the routing of a host gives ssh config warnings to its commands', (t) => {
  const file = configFile('Match localnetwork 10.0.0.0/8\n  User inside\n');
  const config = loadSshConfig(file);
  const e = new SshRouting(config, new Map()).endpointOf({
    name: 'web1',
    address: 'web1',
    port: 22,
    user: 'root',
    become: false,
    groups: [],
    vars: {},
    varOrigins: {},
    roles: [],
    origin: { file: 'inventories/prod.yml', line: 3 },
  });
  t.is(e.user, 'root');
  t.regex([...config.warnings][0], new RegExp(`^${file}:1: Match localnetwork is not evaluated`));
});

test('a Match OpenSSH refuses is a user error naming the line', (t) => {
  const unknown = configFile('Host a\n  Port 1\nMatch bogus x\n  Port 6\n');
  t.throws(() => loadSshConfig(unknown), {
    instanceOf: UserError,
    message: `${unknown}:3: unknown Match criterion "bogus"`,
  });
  const missing = configFile('Match host\n  Port 6\n');
  t.throws(() => loadSshConfig(missing), {
    instanceOf: UserError,
    message: `${missing}:1: Match host needs a pattern list after it`,
  });
  // ssh refuses both files too.
  for (const file of [unknown, missing]) {
    t.throws(() => execFileSync('ssh', ['-G', '-F', file, 'a'], { stdio: 'pipe' }));
  }
});
