import test from 'ava';
import type { FileState, ProbeResult } from '../../../src/engine/types.js';
import { sha256Hex } from '../../../src/tasks/probe-output.js';
import { timezone } from '../../../src/tasks/timezone.js';
import { UserError } from '../../../src/util/errors.js';

const present = { uid: 0, user: 'root', gid: 0, group: 'root', mode: 0o644 };
const link = (target: string): FileState => ({ type: 'link', ...present, mode: 0o777, linkTarget: target });
const file = (content: string): FileState => ({ type: 'file', ...present, sha256: sha256Hex(content) });
const ZONE = '/usr/share/zoneinfo/Europe/Paris';

function probed(
  localtime: FileState,
  timezoneFile: FileState,
  zoneFile: FileState = file('TZif'),
): ProbeResult {
  return {
    stdout: '',
    exitCode: 0,
    files: new Map([
      ['/etc/localtime', localtime],
      ['/etc/timezone', timezoneFile],
      [ZONE, zoneFile],
    ]),
  };
}

test('another zone: the link is switched atomically and /etc/timezone rewritten', (t) => {
  const task = timezone({ zone: 'Europe/Paris' });
  t.is(task.name, 'timezone Europe/Paris');
  t.deepEqual(task.files, [
    { path: '/etc/localtime' },
    { path: '/etc/timezone', checksum: true },
    { path: ZONE },
  ]);
  t.deepEqual(task.plan(probed(link('/usr/share/zoneinfo/Etc/UTC'), file('Etc/UTC\n'))), {
    steps: [
      {
        kind: 'run',
        command: `ln -sfn ${ZONE} /etc/localtime.verdandi && mv -fT /etc/localtime.verdandi /etc/localtime`,
      },
      { kind: 'write', path: '/etc/timezone', content: 'Europe/Paris\n', mode: '0644' },
    ],
    reason: '/etc/localtime → /usr/share/zoneinfo/Etc/UTC, /etc/timezone differs',
  });
});

test('converged: nothing; a copied zone file instead of a link is replaced by the link', (t) => {
  const task = timezone({ zone: 'Europe/Paris' });
  t.deepEqual(task.plan(probed(link(ZONE), file('Europe/Paris\n'))), { steps: [] });
  const copied = task.plan(probed(file('TZif'), file('Europe/Paris\n')));
  t.is(copied.steps.length, 1);
  t.is(copied.reason, '/etc/localtime → file');
});

test('an unknown zone is an error naming the missing file', (t) => {
  const task = timezone({ zone: 'Europe/Paris' });
  t.regex(
    task.plan(probed(link(ZONE), file(''), { type: 'absent' })).error ?? '',
    /timezone Europe\/Paris: the host has no \/usr\/share\/zoneinfo\/Europe\/Paris: not a known time zone, or the tzdata package is missing/,
  );
});

test('a zone name cannot leave the zoneinfo directory', (t) => {
  for (const zone of ['../etc/passwd', 'Europe/../../x', '/UTC', 'Europe Paris']) {
    t.throws(() => timezone({ zone }), { instanceOf: UserError, message: /zone must be a time zone name/ });
  }
});
