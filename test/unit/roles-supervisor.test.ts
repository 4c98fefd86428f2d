/** supervisor role without a host: program files from typed data, stale-file removal, update handler. */
import { readFileSync } from 'node:fs';
import test from 'ava';
import Handlebars from 'handlebars';
import role, { programFile, programLines, vars } from '../../roles/supervisor/index.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

function render(view: object): string {
  const src = readFileSync(
    new URL('../../roles/supervisor/templates/program.conf.hbs', import.meta.url),
    'utf8',
  );
  return Handlebars.compile(src, { noEscape: true, strict: true })(view);
}

test('a uvicorn program as a Python site runs it', (t) => {
  const v = vars.parse({
    supervisor_programs: [
      {
        name: 'server',
        command: '/home/app/.pyenv/versions/3.11.9/bin/uvicorn server.main:app --port 3579',
        directory: '/srv/catalogage/current',
        user: 'app',
        environment: { DATABASE_URL: 'postgresql://u:p"w%d@db/x', APP_ENV: 'staging' },
        stopsignal: 'INT',
        stopwaitsecs: 30,
      },
    ],
  });
  const p = v.supervisor_programs[0];
  const conf = render({ name: p.name, lines: programLines(p) });
  t.regex(conf, /^\[program:server\]$/m);
  t.regex(
    conf,
    /^command=\/home\/app\/\.pyenv\/versions\/3\.11\.9\/bin\/uvicorn server\.main:app --port 3579$/m,
  );
  t.regex(conf, /^directory=\/srv\/catalogage\/current$/m);
  t.regex(conf, /^user=app$/m);
  // Quotes escaped and % doubled, as supervisor's parser wants.
  t.regex(conf, /^environment=DATABASE_URL="postgresql:\/\/u:p\\"w%%d@db\/x",APP_ENV="staging"$/m);
  t.regex(conf, /^process_name=%\(program_name\)s$/m);
  t.regex(conf, /^autorestart=true$/m);
  t.regex(conf, /^stopsignal=INT$/m);
  t.regex(conf, /^stopwaitsecs=30$/m);
  t.regex(conf, /^stdout_logfile=\/var\/log\/supervisor\/server\.out\.log$/m);
  t.regex(conf, /^stderr_logfile=\/var\/log\/supervisor\/server\.err\.log$/m);
  t.is(programFile('server'), '/etc/supervisor/conf.d/verdandi-server.conf');
});

test('numprocs > 1 numbers the processes; redirect_stderr drops the stderr log', (t) => {
  const p = vars.parse({
    supervisor_programs: [
      { name: 'worker', command: 'run', numprocs: 3, redirect_stderr: true, autorestart: 'unexpected' },
    ],
  }).supervisor_programs[0];
  const lines = programLines(p);
  t.true(lines.includes('process_name=%(program_name)s_%(process_num)02d'));
  t.true(lines.includes('numprocs=3'));
  t.true(lines.includes('autorestart=unexpected'));
  t.false(lines.some((l) => l.startsWith('stderr_logfile')));
});

test('vars refuse newlines and bad names', (t) => {
  t.throws(() => vars.parse({ supervisor_programs: [{ name: 'a', command: 'x\n[program:evil]' }] }));
  t.throws(() => vars.parse({ supervisor_programs: [{ name: 'a b', command: 'x' }] }));
  t.throws(() => vars.parse({ supervisor_programs: [{ name: 'a', command: 'x', stopsignal: 'STOP' }] }));
});

test('tasks: program files notify the update handler; their environment makes them sensitive', async (t) => {
  const v = vars.parse({
    supervisor_programs: [
      { name: 'server', command: 'x', environment: { SECRET: 's' } },
      { name: 'plain', command: 'y' },
    ],
  });
  const tasks = (await role.tasks(v, hostInfo('web1'))) as Array<{
    name: string;
    notify: string[];
    sensitive: boolean;
  }>;
  const server = tasks.find((x) => x.name === 'program server')!;
  const plain = tasks.find((x) => x.name === 'program plain')!;
  t.deepEqual(server.notify, ['update supervisor programs']);
  t.true(server.sensitive);
  t.false(plain.sensitive);
  const prune = tasks.find((x) => x.name === 'remove programs no longer listed')!;
  t.deepEqual(prune.notify, ['update supervisor programs']);
  t.truthy(role.handlers!['update supervisor programs']);
});

test('two programs with one name are refused', async (t) => {
  const v = vars.parse({
    supervisor_programs: [
      { name: 'a', command: 'x' },
      { name: 'a', command: 'y' },
    ],
  });
  await t.throwsAsync(async () => role.tasks(v, hostInfo('web1')), { message: /listed twice/ });
});
