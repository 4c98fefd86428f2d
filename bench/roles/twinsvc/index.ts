/** twinsvc: the services of the benchmark's work (../../work.ts) as a role, started and enabled. */
import { defineRole, service } from 'verdandi';
import { BENCH_SERVICES } from '../../spec.js';

export default defineRole({
  name: 'twinsvc',
  tasks: () => BENCH_SERVICES.map((name) => service({ unit: name, state: 'started', enabled: true })),
});
