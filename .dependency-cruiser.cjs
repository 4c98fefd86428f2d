/**
 * The import graph's rules (`npm run lint:imports`, part of `npm test`): the layers of README's
 * Development section, and no import cycle, type-only imports included.
 *
 *   cli → commands → deploy, backup → engine → tasks, connection → inventory, secrets → util
 *
 * src/engine/types.ts (Task, Plan, Role) is the vocabulary tasks are written in: tasks may import it,
 * and it imports nothing of Verdandi. history/, project/ and testhost/ are tools of their own that the
 * command line loads, beside the commands; report/ is a command (it reads the deploy logs). Nothing
 * below the commands imports them. roles/ are user-level code:
 * they import Verdandi's public API (src/index.ts, the package `verdandi`) only.
 */
const below = (...dirs) => `^src/(?!(${dirs.join('|')})/)`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment:
        'An import cycle (type-only ones too): a bundled build may evaluate a module before what it needs.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'util-imports-only-util',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/', pathNot: '^src/util/' },
    },
    {
      name: 'inventory-imports-only-util',
      severity: 'error',
      from: { path: '^src/inventory/' },
      to: { path: below('inventory', 'util') },
    },
    {
      name: 'secrets-import-only-util',
      severity: 'error',
      from: { path: '^src/secrets/' },
      to: { path: below('secrets', 'util') },
    },
    {
      name: 'tasks-import-only-lower-layers',
      comment:
        'Tasks are written in the words of src/engine/types.ts, and import nothing else of the engine.',
      severity: 'error',
      from: { path: '^src/tasks/' },
      to: { path: below('tasks', 'inventory', 'secrets', 'util'), pathNot: '^src/engine/types\\.ts$' },
    },
    {
      name: 'connection-imports-only-lower-layers',
      severity: 'error',
      from: { path: '^src/connection/' },
      to: { path: below('connection', 'inventory', 'secrets', 'util') },
    },
    {
      name: 'engine-types-import-nothing-of-verdandi',
      severity: 'error',
      from: { path: '^src/engine/types\\.ts$' },
      to: { path: '^src/' },
    },
    {
      name: 'engine-imports-no-upper-layer',
      severity: 'error',
      from: { path: '^src/engine/' },
      to: { path: '^src/(cli|commands|deploy|backup|history|report|project|testhost)/' },
    },
    {
      name: 'deploy-and-backup-import-no-command',
      comment: 'deploy/ and backup/ are what commands run: the command line and src/commands/ import them.',
      severity: 'error',
      from: { path: '^src/(deploy|backup)/' },
      to: { path: '^src/(cli|commands|history|report|project|testhost)/' },
    },
    {
      name: 'deploy-imports-no-backup',
      severity: 'error',
      from: { path: '^src/deploy/' },
      to: { path: '^src/backup/' },
    },
    {
      name: 'commands-import-no-cli',
      severity: 'error',
      from: { path: '^src/(commands|deploy|backup|history|report|project|testhost)/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'tools-import-no-commands',
      comment: 'history, project and testhost are loaded by the command line, beside the commands.',
      severity: 'error',
      from: { path: '^src/(history|project|testhost)/' },
      to: { path: '^src/(commands|deploy|backup)/' },
    },
    {
      name: 'roles-import-the-public-api-only',
      severity: 'error',
      from: { path: '^roles/' },
      to: { path: '^src/', pathNot: '^src/index\\.ts$' },
    },
    {
      name: 'src-imports-no-role',
      comment: 'Roles are found by folder name at run time; nothing imports them.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^roles/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are edges too: a cycle through types still ties the modules together.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
