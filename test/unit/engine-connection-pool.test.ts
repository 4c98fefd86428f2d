/**
 * `--forks` bounds connections: with fake connections that take a while to open, never more than
 * `forks` are open or opening, each host's connection is closed when its work is done, the warm-up
 * opens no more than the free slots, and idle warm connections make room instead of blocking.
 */
import test from 'ava';
import type { Connection } from '../../src/connection/types.js';
import { UnreachableError } from '../../src/connection/types.js';
import { ConnectionPool } from '../../src/engine/connection-pool.js';
import { type RunEvent, RunEvents } from '../../src/engine/events.js';
import type { HostPlan } from '../../src/engine/plan.js';
import { runUnits } from '../../src/engine/run-plan.js';
import { Walker, type WalkOptions } from '../../src/engine/walker.js';
import type { InventoryHost } from '../../src/inventory/types.js';
import { mapLimited } from '../../src/util/pool.js';

/** The planned hosts walked as provision walks them; the walker is not closed (the test closes). */
async function walkPlans(plans: HostPlan[], conns: ConnectionPool, forks: number, opts: WalkOptions = {}) {
  const seen: RunEvent[] = [];
  const walker = new Walker(
    {
      command: 'provision',
      env: 't',
      check: false,
      events: new RunEvents().on((e) => seen.push(e)),
      conns,
      hostVars: new Map(),
      forks,
      onInterrupt: 'finish',
    },
    plans.map((p) => p.host.name),
  );
  await walker.walk(plans, { maxFailPercentage: 100, ...opts }, runUnits({}));
  walker.stop.dispose();
  return { failed: walker.failed, events: seen };
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fake connector: counts connections open (from the start of the handshake to close). */
function fakeConnector(opts: { unreachable?: Set<string> } = {}) {
  const stats = { open: 0, maxOpen: 0, opened: [] as string[], closed: [] as string[] };
  const connector = async (host: InventoryHost): Promise<Connection> => {
    stats.open++;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    await tick(5);
    if (opts.unreachable?.has(host.name)) {
      stats.open--;
      throw new UnreachableError(host.name, 'refused', 'connection refused');
    }
    stats.opened.push(host.name);
    return {
      host: host.name,
      roundTrips: 0,
      exec: async () => ({ stdout: '', stderr: '', code: 0 }),
      close: async () => {
        stats.open--;
        stats.closed.push(host.name);
      },
    };
  };
  return { stats, connector };
}

const hosts = (n: number) =>
  Array.from(
    { length: n },
    (_, i) => ({ name: `h${i}`, address: `h${i}`, vars: {} }) as unknown as InventoryHost,
  );

function plansFor(list: InventoryHost[]): HostPlan[] {
  return list.map((host) => ({
    host,
    info: {
      name: host.name,
      address: host.address,
      groups: [],
      vars: {},
      secrets: {},
      env: 't',
      inventory: { hosts: [] },
    },
    units: [],
  }));
}

test('a run over 40 hosts with --forks 5 never has more than 5 connections open, and closes each', async (t) => {
  const { stats, connector } = fakeConnector();
  const list = hosts(40);
  const conns = new ConnectionPool({ projectDir: '/nonexistent' }, 5, connector);
  conns.warm(list, new Map());
  t.is(conns.openCount, 5, 'the warm-up starts the first batch only');
  const { failed } = await walkPlans(plansFor(list), conns, 5);
  t.is(failed.size, 0);
  t.true(stats.maxOpen <= 5, `max open ${stats.maxOpen}`);
  t.is(stats.opened.length, 40);
  t.is(stats.closed.length, 40, 'each host is closed when its work is done');
  t.is(stats.open, 0);
  t.is(conns.openCount, 0);
});

test('warm connections of hosts that run later make room instead of blocking', async (t) => {
  const { stats, connector } = fakeConnector();
  const list = hosts(6);
  const conns = new ConnectionPool({ projectDir: '/nonexistent' }, 2, connector);
  // Warm the last two; the run starts with the first ones.
  conns.warm(list.slice(4), new Map());
  await walkPlans(plansFor(list), conns, 2);
  t.true(stats.maxOpen <= 2);
  t.is(new Set(stats.opened).size, 6);
  await conns.closeAll();
  t.is(stats.open, 0);
});

test('a host warmed for work that never came is not waited for at the end; closed once it opens', async (t) => {
  const { stats, connector } = fakeConnector();
  // The silent host's handshake ends only when the test says so (a host that drops packets).
  let answer: () => void = () => {};
  const answered = new Promise<void>((resolve) => {
    answer = resolve;
  });
  const silent = { name: 'silent', address: 'silent', vars: {} } as unknown as InventoryHost;
  const gated = async (host: InventoryHost) => {
    if (host.name === 'silent') await answered;
    return connector(host);
  };
  const conns = new ConnectionPool({ projectDir: '/nonexistent' }, 3, gated);
  conns.warm([silent], new Map());
  await walkPlans(plansFor(hosts(2)), conns, 3);
  await conns.closeAll(); // returns while the silent host is still opening
  t.is(conns.openCount, 1, 'its slot is held until its handshake ends');
  t.false(stats.opened.includes('silent'));
  answer();
  for (let i = 0; i < 100 && conns.openCount > 0; i++) await tick(5);
  t.is(conns.openCount, 0);
  t.true(stats.closed.includes('silent'), 'closed once open');
  t.is(stats.open, 0);
});

test('connections kept for a later play stay open; unreachable hosts give their slot back', async (t) => {
  const { stats, connector } = fakeConnector({ unreachable: new Set(['h1']) });
  const list = hosts(3);
  const conns = new ConnectionPool({ projectDir: '/nonexistent' }, 3, connector);
  const { events } = await walkPlans(plansFor(list), conns, 3, { keepOpen: () => true });
  t.deepEqual(stats.closed, []);
  t.is(stats.open, 2);
  t.true(conns.unreachable.has('h1'));
  t.true(events.some((e) => e.type === 'host-unreachable' && e.host === 'h1'));
  t.is(conns.openCount, 2);
  await conns.closeAll();
  t.is(stats.open, 0);
});

test('mapLimited (ping, facts, the run): at most `limit` at a time, results in the order of the items', async (t) => {
  let running = 0;
  let most = 0;
  const out = await mapLimited(
    Array.from({ length: 25 }, (_, i) => i),
    4,
    async (i) => {
      running++;
      most = Math.max(most, running);
      await tick(2);
      running--;
      return i * 2;
    },
  );
  t.is(most, 4);
  t.deepEqual(
    out,
    Array.from({ length: 25 }, (_, i) => i * 2),
  );
});
