/**
 * Runs task probes and steps on this machine, the way the engine runs them on a host: the probe in a
 * batch (engine/probe-batch.ts, its `files` read by the batch's one `stat`) run by `sh` (dash on Debian), `run` steps with `sh -c`, `write` steps emulated with node:fs
 * (temporary file beside the target, chown/chmod, validate, rename). It proves that probes and plans
 * agree with the output of real coreutils, without any test host.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { buildProbeBatch, parseProbeBatch } from '../../../src/engine/probe-batch.js';
import type { Plan, ProbeResult, Step, Task, WriteStep } from '../../../src/engine/types.js';
import { parseFileState } from '../../../src/tasks/file-state.js';
import { quote } from '../../../src/util/shell.js';

/** True when the tests run as root: chown to other users needs it. */
export const isRoot = process.getuid?.() === 0;

/** The task's probe and its `files`, as the engine batches them (one task in the batch). */
export function runProbe(task: Task): ProbeResult {
  const batch = buildProbeBatch([['0', task.probe, task.files]]);
  const result = spawnSync('sh', ['-c', batch.script], { encoding: 'utf8' });
  const probed = parseProbeBatch(result.stdout, batch).get('0');
  if (!probed) throw new Error(`the probe batch did not complete (exit ${result.status}): ${result.stderr}`);
  return probed;
}

export function planLocally(task: Task): Plan {
  return task.plan(runProbe(task));
}

function runShell(command: string, stdin = ''): { code: number; stderr: string } {
  const result = spawnSync('sh', ['-c', command], { input: stdin, encoding: 'utf8' });
  return { code: result.status ?? -1, stderr: result.stderr };
}

function writeLikeTheEngine(step: WriteStep): void {
  const temporary = join(dirname(step.path), `.${basename(step.path)}.verdandi-test-tmp`);
  writeFileSync(temporary, step.content, { mode: 0o600 });
  const commands: string[] = [];
  if (step.owner !== undefined || step.group !== undefined) {
    commands.push(
      `chown ${quote(`${step.owner ?? ''}${step.group !== undefined ? `:${step.group}` : ''}`)} ${quote(temporary)}`,
    );
  }
  if (step.mode !== undefined) commands.push(`chmod ${quote(step.mode)} ${quote(temporary)}`);
  if (step.validate !== undefined) commands.push(step.validate.replaceAll('%s', quote(temporary)));
  for (const command of commands) {
    const { code, stderr } = runShell(command);
    if (code !== 0) {
      rmSync(temporary, { force: true });
      throw new Error(`write ${step.path}: ${command} failed (${code}): ${stderr}`);
    }
  }
  renameSync(temporary, step.path);
}

export function applyLocally(steps: Step[]): void {
  for (const step of steps) {
    if (step.kind === 'write') {
      writeLikeTheEngine(step);
      continue;
    }
    const { code, stderr } = runShell(step.command, step.stdin);
    if (!(step.okCodes ?? [0]).includes(code)) throw new Error(`${step.command} failed (${code}): ${stderr}`);
  }
}

/** Probe, apply the plan, probe again: the second plan must be empty for a converging task. */
export function convergeLocally(task: Task): { first: Plan; second: Plan } {
  const first = planLocally(task);
  if (first.error) throw new Error(`plan failed: ${first.error}`);
  applyLocally(first.steps);
  return { first, second: planLocally(task) };
}

/** A fresh directory whose name holds a space and a quote, removed after the test. */
export function scratchDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "verdandi it's "));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every command line of the plan's run steps, to assert that content never appears on one. */
export function runCommands(plan: Plan): string[] {
  return plan.steps.flatMap((s) => (s.kind === 'run' ? [s.command] : []));
}

/**
 * What the engine hands `task.plan`, written by hand: probe output lines, where a `verdandi-stat ...`
 * line (the format of `fileStateProbeOf`) stands for the state of each path of the task's `files`.
 */
export function probed(task: Task, ...lines: string[]): ProbeResult {
  const stdout = `${lines.join('\n')}\n`;
  const state = parseFileState(stdout);
  const files = new Map((task.files ?? []).flatMap(({ path }) => (state ? [[path, state] as const] : [])));
  return { stdout, exitCode: 0, files };
}
