/**
 * Writes the figures into RESULTS.md between two markers; what is outside them (the analysis, written
 * by a person) is kept as it is.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { CheckScaleFigure } from './check-scale.js';
import type { CopiesFigure } from './copies.js';
import { machineLine } from './machine.js';
import { median } from './proc.js';
import type { Figure, Results, Scenario } from './run.js';
import { perHost, type SimFigure, type SimResult } from './simulated.js';

/** Each run writes its own block, named by `--label`: the blocks of other labels stay as they are. */
const begin = (label: string, by = 'bench/run.ts') =>
  `<!-- bench:begin ${label} (written by ${by}: do not edit by hand) -->`;
const end = (label: string) => `<!-- bench:end ${label} -->`;

const s = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '–');
const ratio = (a: number, b: number) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(1)}×` : '–';
const rt = (n: number | undefined) => (n === undefined ? '–' : String(n));

function table(figures: Figure[], scenario: Scenario): string {
  const rows = figures.filter((f) => f.scenario === scenario);
  if (rows.length === 0) return '';
  const withRaw = scenario === 'no-change';
  const head = [
    'hosts',
    'runs',
    'Verdandi s',
    'Ansible s',
    ...(withRaw ? ['raw ssh s'] : []),
    'Ansible / Verdandi',
    ...(withRaw ? ['Verdandi / raw'] : []),
    'Verdandi in-process s',
    `CPU s: Verdandi / Ansible${withRaw ? ' / raw' : ''}`,
    `round trips per host: Verdandi / Ansible${withRaw ? ' / raw' : ''}`,
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const f of rows) {
    const v = median(f.runs.verdandi);
    const a = median(f.runs.ansible);
    const raw = median(f.runs.raw);
    const cpu = [f.cpu.verdandi, f.cpu.ansible, ...(withRaw ? [f.cpu.raw] : [])].map((c) => s(median(c)));
    const trips = [
      rt(f.roundTrips.verdandi),
      `${rt(f.roundTrips.ansible)}${f.ansibleTasks !== undefined ? ` (${f.ansibleTasks} tasks)` : ''}`,
      ...(withRaw ? [rt(f.roundTrips.raw)] : []),
    ];
    lines.push(
      `| ${[
        f.hosts,
        f.runs.verdandi.length,
        s(v),
        s(a),
        ...(withRaw ? [s(raw)] : []),
        ratio(a, v),
        ...(withRaw ? [ratio(v, raw)] : []),
        s(median(f.runs.verdandiInner)),
        cpu.join(' / '),
        trips.join(' / '),
      ].join(' | ')} |`,
    );
  }
  const notes = rows.flatMap((f) => f.notes.map((n) => `- ${f.hosts} host(s): ${n}`));
  return `${lines.join('\n')}\n${notes.length ? `\n${notes.join('\n')}\n` : ''}`;
}

interface Target {
  what: string;
  value: string;
  met: boolean | undefined;
}

function targets(r: Results): Target[] {
  const nc = r.figures.filter((f) => f.scenario === 'no-change');
  const one = nc.find((f) => f.hosts === 1);
  const biggest = nc.length > 1 ? nc[nc.length - 1] : undefined;
  const out: Target[] = [];
  const speedup = (f: Figure | undefined) =>
    f?.runs.ansible.length ? median(f.runs.ansible) / median(f.runs.verdandi) : undefined;
  const sp1 = speedup(one);
  // Only a run of the comparison scenarios has this target (copies and many-hosts are Verdandi alone).
  if (nc.length > 0) {
    out.push({
      what: 'no-change, 1 host: Ansible / Verdandi ≥ 10',
      value: sp1 ? `${sp1.toFixed(1)}×` : '–',
      met: sp1 === undefined ? undefined : sp1 >= 10,
    });
  }
  if (biggest) {
    const spN = speedup(biggest);
    out.push({
      what: `no-change, ${biggest.hosts} hosts: Ansible / Verdandi ≥ 10`,
      value: spN ? `${spN.toFixed(1)}×` : '–',
      met: spN === undefined ? undefined : spN >= 10,
    });
  }
  if (one) {
    const vr = median(one.runs.verdandi) / median(one.runs.raw);
    out.push({ what: 'no-change, 1 host: Verdandi / raw ssh ≤ 2', value: `${vr.toFixed(2)}×`, met: vr <= 2 });
  }
  const rts = nc.map((f) => f.roundTrips.verdandi).filter((n): n is number => n !== undefined);
  if (rts.length) {
    out.push({
      what: 'no-change: one round trip per role per host (the work is one play = one unit)',
      value: rts.join(', '),
      met: rts.every((n) => n === 1),
    });
  }
  if (one && biggest) {
    const scale = median(biggest.runs.verdandi) / median(one.runs.verdandi);
    out.push({
      what: `no-change: ${biggest.hosts} hosts ≤ 3× the time of 1 host`,
      value: `${scale.toFixed(2)}×`,
      met: scale <= 3,
    });
  }
  out.push(...copiesTargets(r), ...simulatedTargets(r), ...checkTargets(r), ...checkScaleTargets(r));
  out.push({
    what: '`verdandi --help` < 150 ms',
    value: `${r.help.medianMs.toFixed(0)} ms`,
    met: r.help.medianMs < 150,
  });
  return out;
}

/** The change figures of the copies scenario, and its biggest no-change figure. */
function copiesFigures(r: Results) {
  const figures = r.copies?.figures ?? [];
  const find = (kind: CopiesFigure['kind']) => figures.find((f) => f.kind === kind && f.runs.length > 0);
  const noChange = figures.filter((f) => f.kind === 'no-change' && f.runs.length > 0);
  return {
    first: find('first'),
    allChanged: find('all-changed'),
    bigNoChange: noChange.sort((a, b) => b.tasks - a.tasks)[0],
  };
}

function copiesTargets(r: Results): Target[] {
  if (!r.copies) return [];
  const { first, allChanged, bigNoChange } = copiesFigures(r);
  const out: Target[] = [];
  const tasks = r.copies.figures[0]?.tasks;
  const changeRatio = first && allChanged ? median(allChanged.runs) / median(first.runs) : undefined;
  out.push({
    what: `${tasks} copy tasks: all-changed run ≤ 1.5× the first run`,
    value: changeRatio === undefined ? 'not measured (see the notes)' : `${changeRatio.toFixed(2)}×`,
    met: changeRatio === undefined ? false : changeRatio <= 1.5,
  });
  const bigTasks = r.copies.figures.at(-1)?.tasks;
  out.push({
    what: `${bigTasks} copy tasks, no-change: one round trip`,
    value: bigNoChange?.tasks === bigTasks ? rt(bigNoChange.roundTrips) : 'not measured (see the notes)',
    met: bigNoChange?.tasks === bigTasks ? bigNoChange.roundTrips === 1 : false,
  });
  const bigWall = bigNoChange?.tasks === bigTasks ? median(bigNoChange.runs) : undefined;
  out.push({
    what: `${bigTasks} copy tasks, no-change: < 2 s (the whole command)`,
    value: bigWall === undefined ? 'not measured (see the notes)' : `${s(bigWall)} s`,
    met: bigWall === undefined ? false : bigWall < 2000,
  });
  return out;
}

const mb = (kib: number) => (kib * 1024) / 1e6;

function simulatedTargets(r: Results): Target[] {
  const sim = r.simulated;
  if (!sim) return [];
  const out: Target[] = [];
  for (const f of sim.figures) {
    for (const [kind, g] of [
      ['converge', f.converge],
      ['no-change', f],
    ] as const) {
      if (!g) continue;
      const reached = g.reached.length ? Math.min(...g.reached) : 0;
      out.push({
        what: `${f.hosts} simulated hosts, --forks ${f.forks}, ${kind}: all reached (every run)`,
        value: `${reached} / ${f.hosts}`,
        met: g.reached.length > 0 && reached === f.hosts,
      });
    }
  }
  const biggest = sim.figures.at(-1);
  if (biggest) {
    const cpu = perHost(biggest.cpu, sim.baseline.cpu, biggest.hosts);
    const mem = mb(perHost(biggest.maxRssKb, sim.baseline.maxRssKb, biggest.hosts));
    out.push({
      what: `${biggest.hosts} simulated hosts: controller CPU ≤ 10 ms per host`,
      value: Number.isFinite(cpu) ? `${cpu.toFixed(1)} ms` : '–',
      met: Number.isFinite(cpu) ? cpu <= 10 : undefined,
    });
    out.push({
      what: `${biggest.hosts} simulated hosts: controller memory ≤ 1 MB per host`,
      value: Number.isFinite(mem) ? `${mem.toFixed(2)} MB` : '–',
      met: Number.isFinite(mem) ? mem <= 1 : undefined,
    });
  }
  for (const c of cpuScaling(sim)) {
    // A host not reached costs a handshake or two, not a run: the ratio compares nothing then.
    const comparable = Number.isFinite(c.ratio) && c.allReached;
    out.push({
      what: `${c.kind}: CPU per host at ${c.big} simulated hosts ≤ 2× that at ${c.small}`,
      value: Number.isFinite(c.ratio)
        ? `${c.ratio.toFixed(2)}×${c.allReached ? '' : ' (not every host reached: not comparable)'}`
        : '–',
      met: comparable ? c.ratio <= 2 : false,
    });
  }
  return out;
}

/**
 * Issue 25: controller CPU per host at the biggest size against the smallest, for the converge runs
 * and the no-change runs (each above the 1-host run of the same kind).
 */
function cpuScaling(sim: SimResult) {
  const small = sim.figures[0];
  const big = sim.figures.at(-1);
  if (!small || !big || small === big) return [];
  const pick = (f: SimFigure, kind: 'converge' | 'no-change') => (kind === 'converge' ? f.converge : f);
  return (['converge', 'no-change'] as const).flatMap((kind) => {
    const [b, sf, bf] = [pick(sim.baseline, kind), pick(small, kind), pick(big, kind)];
    if (!b || !sf || !bf) return [];
    const smallMs = perHost(sf.cpu, b.cpu, sf.hosts);
    const bigMs = perHost(bf.cpu, b.cpu, bf.hosts);
    const allReached = [sf, bf].every((f) => f.reached.length > 0 && Math.min(...f.reached) === f.hosts);
    return [{ kind, small: sf.hosts, big: bf.hosts, smallMs, bigMs, ratio: bigMs / smallMs, allReached }];
  });
}

/** Issue 14: the example inventories check in well under a second once compiled. */
function checkTargets(r: Results): Target[] {
  const figures = r.check?.figures.filter((f) => !f.password) ?? [];
  if (figures.length === 0) return [];
  const worst = Math.max(...figures.map((f) => median(f.runs)));
  return [
    {
      what: '`verdandi check` of the example inventories, compiled: < 1 s (slowest median, wall)',
      value: `${s(worst)} s`,
      met: Number.isFinite(worst) ? worst < 1000 : undefined,
    },
  ];
}

const mib = (kb: number) => (Number.isFinite(kb) ? (kb / 1024).toFixed(0) : '–');

/** `check` is linear in hosts: 10,000 hosts in under 10 s and 600 MB. */
function checkScaleTargets(r: Results): Target[] {
  const biggest = r.checkScale?.figures.at(-1);
  if (!biggest || biggest.hosts < 10_000) return [];
  const wall = median(biggest.runs);
  const rss = Math.max(...biggest.maxRssKb);
  return [
    {
      what: `\`verdandi check\` of ${biggest.hosts} hosts: < 10 s (median, wall)`,
      value: `${s(wall)} s`,
      met: Number.isFinite(wall) ? wall < 10_000 : undefined,
    },
    {
      what: `\`verdandi check\` of ${biggest.hosts} hosts: < 600 MB (peak RSS, worst run)`,
      value: `${mib(rss)} MiB`,
      met: Number.isFinite(rss) ? rss * 1024 < 600e6 : undefined,
    },
  ];
}

function checkScaleSection(r: Results): string[] {
  const c = r.checkScale;
  if (!c) return [];
  const perHostMs = (values: number[], f: CheckScaleFigure) => (median(values) / f.hosts).toFixed(3);
  const notes = c.figures.flatMap((f) => f.notes.map((n) => `${f.hosts} hosts: ${n}`));
  return [
    '### `verdandi check` of thousands of hosts (generated inventories, no host)',
    '',
    'Every host in one group with one role of one `copy` task. Each size run once first (its role',
    'compiled into a fresh cache), then timed; the sizes alternate. Per host: the in-process time divided',
    "by the hosts, and the CPU time (user + system: what the machine's load changes least) divided by them.",
    `Load average (1 min): ${c.loadBefore.toFixed(2)} before, ${c.loadAfter.toFixed(2)} after.`,
    '',
    '| hosts | runs | wall s | in-process s | CPU s | peak RSS MiB | in-process ms per host | CPU ms per host |',
    '|---|---|---|---|---|---|---|---|',
    ...c.figures.map(
      (f) =>
        `| ${f.hosts} | ${f.runs.length} | ${s(median(f.runs))} | ${s(median(f.inner))} | ` +
        `${s(median(f.cpu))} | ${mib(Math.max(...f.maxRssKb))} | ${perHostMs(f.inner, f)} | ${perHostMs(f.cpu, f)} |`,
    ),
    '',
    ...notes.map((n) => `- ${n}`),
    ...(notes.length ? [''] : []),
  ];
}

function checkSection(r: Results): string[] {
  const c = r.check;
  if (!c) return [];
  const notes = c.figures.flatMap((f) =>
    f.notes.map((n) => `${f.env}${f.password ? ' + password' : ''}: ${n}`),
  );
  return [
    '### `verdandi check` of the example inventories (no host)',
    '',
    'Each case run once first (its roles compiled into a fresh cache), then timed; the cases alternate.',
    'Without the password the secrets file is read as an OpenPGP message, not decrypted (the CI case);',
    `with it, decrypted. Load average (1 min): ${c.loadBefore.toFixed(2)} before, ${c.loadAfter.toFixed(2)} after.`,
    '',
    '| inventory | password | hosts | tasks | runs | wall s | in-process s | CPU s |',
    '|---|---|---|---|---|---|---|---|',
    ...c.figures.map(
      (f) =>
        `| ${f.env} | ${f.password ? 'yes' : 'no'} | ${f.hosts} | ${f.tasks} | ${f.runs.length} | ` +
        `${s(median(f.runs))} | ${s(median(f.inner))} | ${s(median(f.cpu))} |`,
    ),
    '',
    ...notes.map((n) => `- ${n}`),
    ...(notes.length ? [''] : []),
  ];
}

function copiesSection(r: Results): string[] {
  const c = r.copies;
  if (!c) return [];
  const { first, allChanged } = copiesFigures(r);
  const lines = [
    `### One role of many \`copy\` tasks on one host (${c.host}), Verdandi alone`,
    '',
    'Each file about 1 KiB; a first run starts from an empty directory; all-changed gives every file new',
    'content; no-change finds every file as it should be.',
    '',
    '| run | tasks | runs | wall s | in-process s | CPU s | round trips |',
    '|---|---|---|---|---|---|---|',
    ...c.figures.map(
      (f) =>
        `| ${f.kind} | ${f.tasks} | ${f.runs.length} | ${s(median(f.runs))} | ${s(median(f.inner))} | ` +
        `${s(median(f.cpu))} | ${rt(f.roundTrips)} |`,
    ),
    '',
  ];
  if (first && allChanged)
    lines.push(`All-changed / first: ${ratio(median(allChanged.runs), median(first.runs))}.`, '');
  const notes = [
    ...c.notes,
    ...c.figures.flatMap((f) => f.notes.map((n) => `${f.kind}, ${f.tasks} tasks: ${n}`)),
  ];
  return [...lines, ...notes.map((n) => `- ${n}`), ...(notes.length ? [''] : [])];
}

function simRow(kind: string, f: SimFigure, baseline: SimFigure): string {
  const cpuPer = perHost(f.cpu, baseline.cpu, f.hosts);
  const memPer = mb(perHost(f.maxRssKb, baseline.maxRssKb, f.hosts));
  const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
  return `| ${[
    f.hosts,
    kind,
    f.perBackend.join(' + '),
    f.runs.length,
    f.reached.length ? `${Math.min(...f.reached)} / ${f.hosts}` : '–',
    s(median(f.runs)),
    s(median(f.cpu)),
    fixed(median(f.maxRssKb) / 1024, 0),
    f.hosts > 1 ? fixed(cpuPer, 1) : '–',
    f.hosts > 1 ? fixed(memPer, 2) : '–',
    rt(f.roundTrips),
  ].join(' | ')} |`;
}

function simulatedSection(r: Results): string[] {
  const sim = r.simulated;
  if (!sim) return [];
  const all = [sim.baseline, ...sim.figures];
  const notes = [
    ...sim.notes,
    ...all.flatMap((f) => [...(f.converge?.notes ?? []), ...f.notes].map((n) => `${f.hosts} host(s): ${n}`)),
  ];
  const rows = all.flatMap((f) => [
    ...(f.converge && sim.baseline.converge ? [simRow('converge', f.converge, sim.baseline.converge)] : []),
    simRow('no-change', f, sim.baseline),
  ]);
  const scaling = cpuScaling(sim);
  const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
  return [
    `### Many simulated hosts, \`--forks ${sim.forks}\`${sim.connectTimeout ? `, \`--connect-timeout ${sim.connectTimeout}\`` : ''}, Verdandi alone`,
    '',
    `Every inventory host is a port of one of ${sim.backends.length} test hosts (${sim.backends.join(', ')}),`,
    "redirected to its sshd; 3 tasks per host (a directory, the host's own file, a service). Converge: the",
    "size's first run, every host's file removed and the known_hosts emptied before it (a first contact",
    'with one file to write per host); no-change: the runs after it. Host keys checked (`accept-new`): the',
    `project's known_hosts ended with ${sim.knownHostsLines} \`[address]:port\` lines. CPU and peak memory`,
    '(maximum RSS) of the verdandi process; per host: above the 1-host run of the same kind, divided by',
    'the hosts past the first.',
    '',
    '| hosts | run | hosts per backend | runs | reached (worst run) | wall s | CPU s | peak RSS MiB | CPU per host ms | memory per host MB | round trips per host |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    ...(scaling.length
      ? [
          `CPU per host, ${scaling[0].small} against ${scaling[0].big} simulated hosts (target: at most 2×):`,
          '',
          `| run | ${scaling[0].small} hosts, ms | ${scaling[0].big} hosts, ms | ratio |`,
          '|---|---|---|---|',
          ...scaling.map(
            (c) =>
              `| ${c.kind} | ${ms(c.smallMs)} | ${ms(c.bigMs)} | ${Number.isFinite(c.ratio) ? `${c.ratio.toFixed(2)}×` : '–'} |`,
          ),
          '',
        ]
      : []),
    ...notes.map((n) => `- ${n}`),
    ...(notes.length ? [''] : []),
  ];
}

/** A titled section, or nothing when the run did not measure it. */
const section = (title: string, body: string) => (body ? [`### ${title}`, '', body] : []);

function stagingSection(r: Results): string[] {
  const st = r.staging;
  if (!st) return [];
  return [
    `### Staging provision, Verdandi alone (roles ${st.roles.join(', ')} on 1 host)`,
    '',
    '| converge s | converge round trips | no-change s (median of ' +
      `${st.noChange.length}) | in-process s | CPU s | no-change round trips | roles |`,
    '|---|---|---|---|---|---|---|',
    `| ${s(st.convergeMs)} | ${st.convergeRoundTrips} | ${s(median(st.noChange))} | ${s(median(st.noChangeInner))} | ` +
      `${s(median(st.noChangeCpu))} | ${st.roundTrips} | ${st.roles.length} |`,
    '',
    ...st.notes.map((n) => `- ${n}`),
    ...(st.notes.length ? [''] : []),
  ];
}

export function renderResults(r: Results, label: string): string {
  const m = r.machine;
  const parts = [
    begin(label),
    '',
    `Produced by \`${r.command}\` (started ${r.startedAt}, ${r.totalSeconds.toFixed(0)} s in all).`,
    '',
    `Machine: ${machineLine(m)}`,
    `Load average (1 min) at the start: ${r.loadBefore.toFixed(2)}, at the end: ${r.loadAfter.toFixed(2)}.`,
    '',
    'Times are wall-clock seconds of the whole command, medians of the runs; "in-process" is Verdandi\'s own',
    '`durationMs` (after Node started and the playbook was loaded). CPU: user + system time of the command',
    "and the processes it waited for, on this machine (GNU time; the test hosts' side is not counted, nor",
    "are Ansible's detached ControlPersist masters). Round trips per host: Verdandi's `roundTrips` from",
    "`--json`; Ansible's ssh invocations (counted by a wrapper around `ssh`); raw: 1.",
    '',
    '### Targets (no-change run)',
    '',
    '| target | measured | met |',
    '|---|---|---|',
    ...targets(r).map(
      (t) => `| ${t.what} | ${t.value} | ${t.met === undefined ? '–' : t.met ? 'yes' : '**no**'} |`,
    ),
    '',
    ...section('No-change run', table(r.figures, 'no-change')),
    ...section(
      'One-change run (one template var: one file written, nginx restarted by the handler)',
      table(r.figures, 'one-change'),
    ),
    ...section('First run (converge from a fresh host)', table(r.figures, 'converge')),
    ...stagingSection(r),
    ...copiesSection(r),
    ...simulatedSection(r),
    ...checkSection(r),
    ...checkScaleSection(r),
    '### `verdandi --help`',
    '',
    `Median of ${r.help.runs} spawns: ${r.help.medianMs.toFixed(1)} ms${r.help.hyperfine ? `; ${r.help.hyperfine}` : ''}.`,
    '',
    ...(r.notes.length ? ['### Notes', '', ...r.notes.map((n) => `- ${n}`), ''] : []),
    '<details><summary>Every run (seconds)</summary>',
    '',
    ...r.figures.map(
      (f) =>
        `- ${f.scenario}, ${f.hosts} host(s): Verdandi ${f.runs.verdandi.map(s).join(' ')}` +
        (f.runs.ansible.length ? `; Ansible ${f.runs.ansible.map(s).join(' ')}` : '') +
        (f.runs.raw.length ? `; raw ${f.runs.raw.map(s).join(' ')}` : ''),
    ),
    ...(r.staging ? [`- staging no-change: Verdandi ${r.staging.noChange.map(s).join(' ')}`] : []),
    ...(r.copies?.figures ?? []).map(
      (f) => `- copies ${f.kind}, ${f.tasks} tasks: ${f.runs.map(s).join(' ')}`,
    ),
    ...(r.check?.figures ?? []).map(
      (f) => `- check ${f.env}${f.password ? ' + password' : ''}: ${f.runs.map(s).join(' ')}`,
    ),
    ...(r.checkScale?.figures ?? []).map(
      (f) => `- check-scale, ${f.hosts} hosts: ${f.runs.map(s).join(' ')}`,
    ),
    ...(r.simulated ? [r.simulated.baseline, ...r.simulated.figures] : []).map(
      (f) =>
        `- many-hosts, ${f.hosts} host(s): ${f.converge ? `converge ${f.converge.runs.map(s).join(' ')} (exit ${f.converge.codes.join(' ')}); no-change ` : ''}` +
        `${f.runs.map(s).join(' ')} (exit ${f.codes.join(' ')})`,
    ),
    '',
    '</details>',
    '',
    end(label),
  ];
  return parts.join('\n');
}

const SKELETON = `# Benchmark: Verdandi, Ansible and the raw-ssh limit

How it is run and what it measures: see bench/run.ts. The blocks below are rewritten by the runs.
`;

export async function writeReport(file: string, r: Results, label: string): Promise<void> {
  await writeBlock(file, label, renderResults(r, label));
}

/**
 * Replaces the block `label` of `file` (markers included) with `block`, which starts and ends with
 * its markers (`blockMarkers`); a new label's block goes at the end.
 */
export async function writeBlock(file: string, label: string, block: string, by = 'bench/run.ts') {
  let text = await readFile(file, 'utf8').catch(() => SKELETON);
  const [b, e] = [begin(label, by), end(label)];
  if (!text.includes(b) || !text.includes(e)) text = `${text.trimEnd()}\n\n${b}\n${e}\n`;
  const before = text.slice(0, text.indexOf(b));
  const after = text.slice(text.indexOf(e) + e.length);
  await writeFile(file, `${before}${block}${after}`);
}

/** The markers of a block written by another driver than run.ts. */
export const blockMarkers = (label: string, by: string) => [begin(label, by), end(label)] as const;
