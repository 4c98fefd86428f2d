/**
 * Booting a benchmark's own test hosts and stopping them whatever happens: at the end, on an error, on
 * Ctrl-C or SIGTERM. Shared by the drivers that boot hosts of their own (latency.ts, bastion.ts).
 */
import { type BenchHost, bootHosts, type Log, stopHosts } from './hosts.js';

/**
 * Boots `names` (fresh), runs `work` with them and stops them afterwards, unless `keep`. `cleanUp`
 * work of the driver (closing proxies, removing files) runs before the hosts stop, also on a signal.
 */
export async function withTestHosts<T>(
  names: string[],
  opts: { keep: boolean; log: Log; cleanUp?: () => Promise<void> },
  work: (hosts: BenchHost[]) => Promise<T>,
): Promise<T> {
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await opts.cleanUp?.().catch((e) => opts.log(`cleaning up: ${e}`));
      if (!opts.keep) await stopHosts(names, opts.log).catch((e) => opts.log(`stopping the hosts: ${e}`));
    })();
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    opts.log(`${signal}: stopping the test hosts`);
    void stop().finally(() => process.exit(130));
  };
  // `on`, not `once`: a second Ctrl-C while the hosts stop must not kill the process half-way (the
  // listener is removed once they are stopped).
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    // Booting is inside the try: hosts of a batch that booted before another failed are stopped too.
    const hosts = await bootHosts(names, 10, opts.log);
    return await work(hosts);
  } finally {
    await stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
