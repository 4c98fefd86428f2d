import test from 'ava';
import { quote, raw, sh, words } from '../../src/util/shell.js';

test('quote leaves safe words bare and single-quotes the rest', (t) => {
  t.is(quote('nginx'), 'nginx');
  t.is(quote('/etc/nginx/nginx.conf'), '/etc/nginx/nginx.conf');
  t.is(quote(''), "''");
  t.is(quote('a b'), "'a b'");
  t.is(quote("it's"), "'it'\\''s'");
  t.is(quote('$(rm -rf /)'), "'$(rm -rf /)'");
});

test('sh quotes every interpolated value and expands arrays into words', (t) => {
  const path = 'my file; rm -rf /';
  t.is(sh`test -f ${path}`, "test -f 'my file; rm -rf /'");
  t.is(sh`apt-get install -y ${['nginx', 'curl']}`, 'apt-get install -y nginx curl');
  t.is(sh`echo ${raw('$HOME')}`, 'echo $HOME');
});

test('words skips absent parts', (t) => {
  t.is(words('useradd', false, undefined, '-m', 'bob smith'), "useradd -m 'bob smith'");
});

test('a quoted value survives a real shell unchanged', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const nasty = `a'b"c $x \`y\` \\ ; | & \n end`;
  t.is(execFileSync('sh', ['-c', sh`printf %s ${nasty}`]).toString(), nasty);
});
