/**
 * example: a small role to copy from. It shows the three parts of every role:
 *   - typed vars: a zod schema whose `.default()`s are the defaults and whose `.describe()` texts are
 *     what your editor shows when you write the var in an inventory (`verdandi schema`);
 *   - tasks: desired states, in order; conditions are plain TypeScript;
 *   - a template (templates/motd.hbs), rendered with exactly the values it needs.
 */
import { apt, defineRole, template, z } from 'verdandi';

export default defineRole({
  name: 'example',
  description: 'A login message naming the server, its environment and who runs it; optional tools.',
  vars: z.object({
    example_team: z.string().min(1).default('ops').describe('Who runs this server, shown at login.'),
    example_contact: z
      .string()
      .regex(/^[^\s@]+@[^\s@]+$/, 'an e-mail address')
      .optional()
      .describe('Where to write about this server (an e-mail address), shown at login.'),
    example_packages: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/, 'a Debian package name'))
      .default([])
      .describe('Debian packages every server of this environment gets (htop, curl...).'),
  }),
  tasks: (vars, host) => [
    template({
      path: '/etc/motd',
      src: new URL('./templates/motd.hbs', import.meta.url),
      // Templates are strict: every value they use is given, none is left to chance.
      vars: { host: host.name, env: host.env, team: vars.example_team, contact: vars.example_contact ?? '' },
      mode: '0644',
    }),
    vars.example_packages.length > 0 && apt({ packages: vars.example_packages }),
  ],
});
