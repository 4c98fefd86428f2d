/**
 * The work of every simulated host in the `many-hosts` scenario (bench/simulated.ts): many inventory
 * hosts share a few real test hosts, so each one keeps its own file, named after it, and nothing two
 * simulated hosts could fight over. Three tasks, three kinds of probe: a directory, a file's content,
 * a service.
 */
import { copy, definePlaybook, directory, service } from 'verdandi';
import { SIM_DIR } from './spec.js';

export default definePlaybook({
  plays: [
    {
      name: 'simulated host',
      hosts: 'all',
      tasks: (host) => [
        directory({ path: SIM_DIR, mode: '0755' }),
        copy({
          path: `${SIM_DIR}/${host.name}.conf`,
          content: `simulated host ${host.name}\n`,
          mode: '0644',
        }),
        service({ unit: 'ssh', state: 'started', enabled: true }),
      ],
    },
  ],
});
