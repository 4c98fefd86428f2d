/** Facts: what the engine sees of a host, gathered with one command and parsed by a pure function. */
import type { Connection } from '../connection/types.js';
import { buildProbeBatch, parseProbeBatch } from './probe-batch.js';
import type { FactsSpec, HostFacts, ProbeResult } from './types.js';

export const FACTS_SCRIPT = [
  '. /etc/os-release 2>/dev/null',
  `printf 'os_id=%s\\nos_version=%s\\nos_codename=%s\\nos_pretty=%s\\n' "$ID" "$VERSION_ID" "$VERSION_CODENAME" "$PRETTY_NAME"`,
  `printf 'arch=%s\\nkernel=%s\\nhostname=%s\\n' "$(uname -m)" "$(uname -r)" "$(hostname)"`,
  `printf 'mem_kb=%s\\n' "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"`,
  `printf 'cpus=%s\\n' "$(nproc 2>/dev/null || echo 1)"`,
  `printf 'packages=%s\\n' "$(dpkg-query -f '.\\n' -W 2>/dev/null | wc -l)"`,
  `systemctl list-units --type=service --state=running --no-legend --plain 2>/dev/null | awk '{print "service=" $1}'`,
].join('\n');

export function parseFacts(output: string): HostFacts {
  const kv = new Map<string, string>();
  const services: string[] = [];
  for (const line of output.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).trim();
    if (key === 'service') services.push(value.replace(/\.service$/, ''));
    else kv.set(key, value);
  }
  const num = (k: string) => Number.parseInt(kv.get(k) ?? '0', 10) || 0;
  return {
    os: {
      id: kv.get('os_id') ?? '',
      versionId: kv.get('os_version') ?? '',
      codename: kv.get('os_codename') ?? '',
      prettyName: kv.get('os_pretty') ?? '',
    },
    arch: kv.get('arch') ?? '',
    kernel: kv.get('kernel') ?? '',
    hostname: kv.get('hostname') ?? '',
    memoryMb: Math.round(num('mem_kb') / 1024),
    cpus: num('cpus'),
    packageCount: num('packages'),
    services,
  };
}

export async function gatherFacts(conn: Connection): Promise<HostFacts> {
  const res = await conn.exec(FACTS_SCRIPT);
  return parseFacts(res.stdout);
}

/** What one host is asked before the plan: its system facts, and the declared facts of its units. */
export interface FactsRequest<U> {
  system: boolean;
  declared: Array<{ unit: U; facts: FactsSpec }>;
}

/** The answer: the system facts when asked, and what each declared fact's probe printed, per unit. */
export interface FactsAnswer<U> {
  system?: HostFacts;
  declared: Map<U, Map<string, ProbeResult>>;
}

/**
 * Every fact a host's units need in ONE round trip: the system facts and each declared fact's probe
 * framed in one batch (probe-batch.ts), so a fact printing anything cannot confuse another's.
 */
export async function gatherAll<U>(conn: Connection, request: FactsRequest<U>): Promise<FactsAnswer<U>> {
  const probes: Array<[string, string]> = request.system ? [['system', FACTS_SCRIPT]] : [];
  const owners = new Map<string, { unit: U; name: string }>();
  for (const [u, { unit, facts }] of request.declared.entries()) {
    for (const [f, [name, fact]] of Object.entries(facts).entries()) {
      // Ids are numbers: a fact's name may hold any character, a marker line may not.
      const id = `${u}.${f}`;
      owners.set(id, { unit, name });
      probes.push([id, fact.probe]);
    }
  }
  const batch = buildProbeBatch(probes);
  const results = parseProbeBatch((await conn.exec(batch.script)).stdout, batch);
  const answer: FactsAnswer<U> = { declared: new Map() };
  const system = results.get('system');
  if (system) answer.system = parseFacts(system.stdout);
  for (const [id, owner] of owners) {
    const result = results.get(id);
    if (!result) continue;
    const own = answer.declared.get(owner.unit) ?? new Map<string, ProbeResult>();
    own.set(owner.name, result);
    answer.declared.set(owner.unit, own);
  }
  return answer;
}
