import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { renderTemplate, template } from '../../../src/tasks/template.js';
import { UserError } from '../../../src/util/errors.js';
import { convergeLocally, probed, scratchDir } from './local-host.js';

function writeTemplate(dir: string, name: string, source: string): string {
  const file = join(dir, name);
  writeFileSync(file, source);
  return file;
}

test('a template renders without HTML escaping and plans like copy', (t) => {
  const src = writeTemplate(
    scratchDir(t),
    'nginx.conf.hbs',
    'server_name {{name}};\n{{#each ports}}listen {{this}};\n{{/each}}',
  );
  const task = template({
    path: '/etc/nginx/nginx.conf',
    src,
    vars: { name: 'a&b <c>', ports: [80, 443] },
    mode: '644',
  });
  t.is(task.type, 'template');
  t.is(task.name, 'template /etc/nginx/nginx.conf');
  const rendered = 'server_name a&b <c>;\nlisten 80;\nlisten 443;\n';
  t.deepEqual(task.plan(probed(task, 'verdandi-stat absent')), {
    steps: [{ kind: 'write', path: '/etc/nginx/nginx.conf', content: rendered, mode: '0644' }],
    reason: 'file is missing',
    diff: { path: '/etc/nginx/nginx.conf', after: rendered },
  });
});

test('template takes force and backup like copy', (t) => {
  const src = writeTemplate(scratchDir(t), 'motd.hbs', 'hello {{who}}\n');
  const kept = template({ path: '/etc/motd', src, vars: { who: 'x' }, force: false });
  t.deepEqual(kept.plan(probed(kept, 'verdandi-stat file 0 root 0 root 644 0000 -')), { steps: [] });
  t.like(kept.plan(probed(kept, 'verdandi-stat absent')), { reason: 'file is missing' });
  const backedUp = template({ path: '/etc/motd', src, vars: { who: 'x' }, backup: true });
  t.like(backedUp.plan(probed(backedUp, 'verdandi-stat file 0 root 0 root 644 0000 -')), {
    steps: [{ kind: 'write', content: 'hello x\n', backup: true }],
  });
});

test('src may be a file URL', (t) => {
  const src = writeTemplate(scratchDir(t), 'x.hbs', 'v={{v}}');
  const task = template({ path: '/etc/x', src: pathToFileURL(src), vars: { v: 1 } });
  t.is(task.plan(probed(task, 'verdandi-stat absent')).diff?.after, 'v=1');
});

test('a missing var names the template file, the var and its line and column', (t) => {
  const src = writeTemplate(scratchDir(t), 'app.hbs', 'a {{x}}');
  const error = t.throws(() => template({ path: '/etc/app', src, vars: {} }), { instanceOf: UserError });
  t.is(error?.message, `template ${src}: var x is not defined (line 1, col 5)`);
  t.is(error?.hint, 'add "x" to the vars of the template, or guard it with {{#if}}');
});

test('a missing nested var is named by its whole path', (t) => {
  const src = writeTemplate(scratchDir(t), 'site.hbs', 'root /srv;\n  server_name {{server.name}};\n');
  const error = t.throws(() => template({ path: '/etc/site', src, vars: { server: {} } }), {
    instanceOf: UserError,
  });
  t.is(error?.message, `template ${src}: var server.name is not defined (line 2, col 17)`);
});

test('a var missing inside #each is reported too', (t) => {
  const src = writeTemplate(scratchDir(t), 'list.hbs', '{{#each items}}{{name}}{{/each}}');
  const error = t.throws(() => template({ path: '/etc/list', src, vars: { items: [{}] } }), {
    instanceOf: UserError,
  });
  t.is(error?.message, `template ${src}: var name is not defined (line 1, col 18)`);
});

test('a syntax error names the template file', (t) => {
  const src = writeTemplate(scratchDir(t), 'broken.hbs', '{{#if }}');
  const error = t.throws(() => template({ path: '/etc/x', src, vars: {} }), { instanceOf: UserError });
  t.true(error?.message.startsWith(`template ${src}: Parse error on line 1:`));
  t.false(error?.message.includes('\n'));
});

test('a missing template file or a relative src is a UserError', (t) => {
  const dir = scratchDir(t);
  t.throws(() => template({ path: '/etc/x', src: join(dir, 'nope.hbs'), vars: {} }), {
    instanceOf: UserError,
    message: /cannot read .*nope\.hbs: no such file/,
  });
  t.throws(() => template({ path: '/etc/x', src: 'templates/x.hbs', vars: {} }), {
    instanceOf: UserError,
    message: /src must be an absolute path or a file URL/,
  });
});

test('a sensitive template still gives its diff and never puts content on a command line', (t) => {
  const src = writeTemplate(scratchDir(t), 'env.hbs', 'PASSWORD={{password}}\n');
  const task = template({
    path: '/etc/app.env',
    src,
    vars: { password: 'hunter22' },
    sensitive: true,
    mode: '0600',
  });
  t.true(task.sensitive);
  t.is(task.plan(probed(task, 'verdandi-stat absent')).diff?.after, 'PASSWORD=hunter22\n');
  t.false(task.probe.includes('hunter22'));
});

test('locally: a rendered template converges with a validate command', (t) => {
  const dir = scratchDir(t);
  const src = writeTemplate(dir, 'conf.hbs', 'port = {{port}}\n');
  const path = join(dir, 'app conf');
  const task = template({ path, src, vars: { port: 8080 }, validate: "grep -q '^port = ' %s" });
  const { first, second } = convergeLocally(task);
  t.is(first.reason, 'file is missing');
  t.deepEqual(second.steps, []);
  t.is(readFileSync(path, 'utf8'), 'port = 8080\n');
  t.regex(
    convergeLocally(template({ path, src, vars: { port: 9090 } })).first.reason ?? '',
    /content differs/,
  );
});

test('one template rendered for several hosts: each gets its own vars, and each an error of its own', (t) => {
  const dir = scratchDir(t);
  const src = writeTemplate(dir, 'motd.hbs', '{{host}} in {{team}}\n');
  const render = (vars: object) => renderTemplate(src, readFileSync(src, 'utf8'), vars);
  t.is(render({ host: 'web1', team: 'ops' }), 'web1 in ops\n');
  t.is(render({ host: 'web2', team: 'dev' }), 'web2 in dev\n');
  for (const vars of [{ host: 'web3' }, { host: 'web4' }]) {
    const err = t.throws(() => render(vars), { instanceOf: UserError });
    t.regex(err.message, /var team is not defined \(line 1, col 15\)/);
  }
  const broken = writeTemplate(dir, 'broken.hbs', '{{#if x}}open\n');
  for (let i = 0; i < 2; i++) {
    t.throws(() => renderTemplate(broken, readFileSync(broken, 'utf8'), { x: true }), {
      instanceOf: UserError,
      message: /template .*broken\.hbs: Parse error/,
    });
  }
});

test("{{log}} reads a var named log (not Handlebars' log helper, which printed an empty line)", (t) => {
  const dir = scratchDir(t);
  const src = writeTemplate(
    dir,
    'program.conf.hbs',
    '{{#each programs}}stdout_logfile=/srv/log/{{log}}.log\n{{/each}}',
  );
  const source = readFileSync(src, 'utf8');
  const written: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stdout.write;
  try {
    t.is(
      renderTemplate(src, source, { programs: [{ log: 'blue' }, { log: 'green' }] }),
      'stdout_logfile=/srv/log/blue.log\nstdout_logfile=/srv/log/green.log\n',
    );
    t.throws(() => renderTemplate(src, source, { programs: [{}] }), {
      instanceOf: UserError,
      message: /var log is not defined \(line 1/,
    });
  } finally {
    process.stdout.write = write;
  }
  t.deepEqual(written, [], 'nothing printed');
});
