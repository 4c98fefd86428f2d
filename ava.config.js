// The VM tier (test/vm/) boots a whole VM under emulation and takes tens of minutes: it runs only through
// `npm run test:vm`, which sets VERDANDI_TEST_TIER=vm; `npm test` (and a bare `ava`) leave it out.
const vmTier = process.env.VERDANDI_TEST_TIER === 'vm';

export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  files: vmTier ? ['test/vm/**/*.test.ts'] : ['test/**/*.test.ts', '!test/vm/**'],
  timeout: vmTier ? '90m' : '10m',
  workerThreads: false,
};
