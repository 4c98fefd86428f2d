/**
 * Writes the figures into RESULTS.md between two markers; what is outside them (the analysis, written
 * by a person) is kept as it is.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { median } from './proc.js';
import type { Figure, Results, Scenario } from './run.js';

/** Each run writes its own block, named by `--label`: the blocks of other labels stay as they are. */
const begin = (label: string) =>
  `<!-- bench:begin ${label} (written by bench/run.ts: do not edit by hand) -->`;
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
  out.push({
    what: 'no-change, 1 host: Ansible / Verdandi ≥ 10',
    value: sp1 ? `${sp1.toFixed(1)}×` : '–',
    met: sp1 === undefined ? undefined : sp1 >= 10,
  });
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
  out.push({
    what: '`verdandi --help` < 150 ms',
    value: `${r.help.medianMs.toFixed(0)} ms`,
    met: r.help.medianMs < 150,
  });
  return out;
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
    `Machine: ${m.nproc} cores (${m.cpu}), ${m.memory}, kernel ${m.kernel}; Node ${m.node}; ${m.ansible}; ${m.openssh}.`,
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
  let text = await readFile(file, 'utf8').catch(() => SKELETON);
  const [b, e] = [begin(label), end(label)];
  if (!text.includes(b) || !text.includes(e)) text = `${text.trimEnd()}\n\n${b}\n${e}\n`;
  const before = text.slice(0, text.indexOf(b));
  const after = text.slice(text.indexOf(e) + e.length);
  await writeFile(file, `${before}${renderResults(r, label)}${after}`);
}
