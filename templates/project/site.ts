/**
 * A playbook: plays in order, each on the hosts its pattern names, with roles and tasks of its own.
 * Inventories already say which roles each group gets (`verdandi provision <env>`); a playbook is for
 * what needs an order across groups or one-off work:
 *
 *   verdandi run staging site.ts
 *   verdandi run staging site.ts --limit web1 --check
 */
import { definePlaybook, lineinfile } from 'verdandi';

export default definePlaybook({
  plays: [
    {
      name: 'every server',
      hosts: 'all',
      roles: ['example'],
      // A play's own tasks run after its roles; they are built per host, in plain TypeScript.
      tasks: (host) => [
        // sudo warns on every call when the server cannot resolve its own name.
        lineinfile({
          name: 'the server resolves its own name',
          path: '/etc/hosts',
          regexp: '^127\\.0\\.1\\.1\\s',
          line: `127.0.1.1 ${host.name}`,
        }),
      ],
    },
  ],
});
