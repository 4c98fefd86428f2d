// verdandi run hosts.ini site.ts
import { definePlaybook } from 'verdandi';

export default definePlaybook({
  plays: [
    {
      name: 'web servers',
      hosts: 'web',
      roles: [
        {
          role: 'web',
          vars: {
            // This example serves its repository from the host itself (see ../README.md); a real one
            // is https://apt.example.org/debian.
            web_repo_uri: 'file:///srv/tools-repo',
            // The example's hosts are containers, where the kernel refuses swapon.
            web_swap_activate: false,
          },
        },
      ],
    },
  ],
});
