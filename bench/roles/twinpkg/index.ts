/**
 * twinpkg: the first third of the benchmark's work (../../work.ts) as a role, for `verdandi provision`
 * (bench/latency.ts): the packages, the user and its directory. With `twin` and `twinsvc`, the same
 * desired state as ../../ansible/work.yml, task for task.
 */
import { apt, defineRole, directory, user } from 'verdandi';
import { BENCH_DIR, BENCH_HOME, BENCH_PACKAGES, BENCH_USER } from '../../spec.js';

export default defineRole({
  name: 'twinpkg',
  tasks: () => [
    apt({ packages: BENCH_PACKAGES, cacheValidTime: 3600 }),
    user({ user: BENCH_USER, shell: '/bin/bash', home: BENCH_HOME, createHome: true }),
    directory({ path: BENCH_DIR, owner: BENCH_USER, group: BENCH_USER, mode: '0755' }),
  ],
});
