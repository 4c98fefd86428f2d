/**
 * The latency benchmark provisions the twin roles (bench/roles/twinpkg, twin, twinsvc) and compares
 * them with Ansible's play, which spells out bench/work.ts: the three roles must be work.ts's tasks,
 * in its order, with its handler, or the comparison would not be of the same work.
 */
import test from 'ava';
import twin from '../../bench/roles/twin/index.js';
import twinpkg from '../../bench/roles/twinpkg/index.js';
import twinsvc from '../../bench/roles/twinsvc/index.js';
import work from '../../bench/work.js';
import type { Task, TaskList } from '../../src/engine/types.js';
import { hostInfo } from '../fixtures/roles/host-info.js';

const flat = (list: TaskList): Task[] => list.flat().filter((t): t is Task => Boolean(t));
const shape = (t: Task) => ({ type: t.type, name: t.name, probe: t.probe, files: t.files, notify: t.notify });

test('the three twin roles are the tasks of work.ts, in order, with the same handler', async (t) => {
  const host = hostInfo('hl-lat1');
  const play = work.plays[0];
  if (typeof play.tasks !== 'function') throw new Error('work.ts builds its tasks per host');
  const fromPlay = flat(await play.tasks({ ...host, vars: { bench_message: 'bench change 7' } }, {}));
  const fromRoles = [
    ...flat(await twinpkg.tasks(twinpkg.vars.parse({}), host)),
    ...flat(await twin.tasks(twin.vars.parse({ twin_message: 'bench change 7' }), host)),
    ...flat(await twinsvc.tasks(twinsvc.vars.parse({}), host)),
  ];
  t.is(fromRoles.length, fromPlay.length);
  t.deepEqual(fromRoles.map(shape), fromPlay.map(shape));
  t.deepEqual(Object.keys(twin.handlers ?? {}), Object.keys(play.handlers ?? {}));
});
