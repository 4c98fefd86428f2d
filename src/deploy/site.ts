/**
 * A site: one application deployed from a git repository, described as typed data in the inventory
 * (`sites: [...]` in the vars of a host or group). The `sites` role provisions what a site needs (app
 * user, directories, nginx vhost, supervisor programs); `verdandi deploy` ships releases of it.
 * Both read the vars through `sitesVarsSchema`, so they agree on every default. The options every site
 * has are in site-base.ts, those of its runtime in the runtime's file (runtimes/).
 */
import { z } from 'zod';
import { runtimeOf, runtimeSchema } from './runtimes/index.js';
import { siteBaseSchema } from './site-base.js';

export const siteSchema = siteBaseSchema.extend({
  // prefault: the default goes through the schema, so it gets the runtime's own defaults.
  runtime: runtimeSchema.prefault({ type: 'python' }),
});

export type SiteInput = z.input<typeof siteSchema>;
export type Site = z.infer<typeof siteSchema>;
export type Runtime = Site['runtime'];

/** The vars the `sites` role and the deploy read (role var names are prefixed with the role's name). */
export const sitesVarsSchema = z.object({
  sites: z
    .array(siteSchema)
    .default([])
    .superRefine((sites, ctx) => {
      const seen = new Set<string>();
      const ports = new Map<number, string>();
      for (const s of sites) {
        if (seen.has(s.name)) ctx.addIssue({ code: 'custom', message: `two sites are named "${s.name}"` });
        seen.add(s.name);
        // Each site with colors takes two ports (blue, green); a swarm site's tasks publish on the nodes.
        for (const port of runtimeOf(s).hostPorts(s)) {
          const other = ports.get(port);
          if (other)
            ctx.addIssue({
              code: 'custom',
              message: `sites "${other}" and "${s.name}" both use port ${port} (each site takes process.port and process.port + 1)`,
            });
          ports.set(port, s.name);
        }
      }
    }),
  /** Every site lives in `<sites_root>/<name>`. */
  sites_root: z.string().startsWith('/').default('/srv'),
});
export type SitesVars = z.infer<typeof sitesVarsSchema>;
