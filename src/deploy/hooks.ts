/**
 * Deploy hooks: executables in the project's `hooks/` directory, run on the machine running Verdandi
 * (Kamal's `.kamal/hooks`): `pre-deploy` / `pre-rollback` before any host is contacted (a failing one
 * stops the command, exit 1, nothing changed), `post-deploy` / `post-rollback` after a run where every
 * site went live, `deploy-failed` after a deploy or rollback that failed or was interrupted.
 *
 * They get the run as VERDANDI_* environment variables and never a secret: the variables that may hold
 * one in Verdandi's own environment (the vault password, the OpenPGP key and its passphrase) are removed
 * from the hook's, and every value given is redacted. A hook has HOOK_TIMEOUT_SECONDS: then it is
 * stopped with everything it started.
 *
 * The post hooks are, like the built-in webhook (webhook.ts), a consumer of the run's events: the
 * `site-done` events say what each site became, `run-ended` starts them.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { OutputCollector } from '../connection/bounded-output.js';
import type { RunEvent, RunEvents } from '../engine/events.js';
import { PASSWORD_ENV } from '../secrets/password.js';
import { PASSPHRASE_ENV, PRIVATE_KEY_ENV } from '../secrets/pgp.js';
import { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { printable } from '../util/terminal-text.js';

export type HookName = 'pre-deploy' | 'post-deploy' | 'pre-rollback' | 'post-rollback' | 'deploy-failed';

/** A hook that runs longer is stopped (TERM, then KILL 5 s later) and counts as failed. */
export const HOOK_TIMEOUT_SECONDS = 300;

/** Variables of Verdandi's environment that may hold a secret: never passed to a hook. */
export const SECRET_ENV_NAMES = [PASSWORD_ENV, PASSPHRASE_ENV, PRIVATE_KEY_ENV];

/** What a hook is told about the run. */
export interface HookFacts {
  action: 'deploy' | 'rollback';
  env: string;
  projectDir: string;
  /** The sites and hosts the run works on. */
  sites: string[];
  hosts: string[];
  /** The ref asked for (deploy: --branch or each site's branch; rollback: --to or "previous"). */
  branch: string;
  by: string;
  /** Post hooks: how the run ended. */
  outcome?: 'ok' | 'failed' | 'interrupted';
  exitCode?: number;
  commits?: string[];
  releases?: string[];
  /** `host/site` of each site that failed. */
  failed?: string[];
}

/** The hooks that run after a deploy or rollback that ended `outcome`, in order. */
export function hooksAfter(
  action: HookFacts['action'],
  outcome: NonNullable<HookFacts['outcome']>,
): HookName[] {
  if (outcome !== 'ok') return ['deploy-failed'];
  return [action === 'deploy' ? 'post-deploy' : 'post-rollback'];
}

const unique = (list: string[]) => [...new Set(list.filter(Boolean))];

/** The hook's environment: Verdandi's own, minus what may hold a secret, plus the run's facts. */
export function hookEnv(base: NodeJS.ProcessEnv, hook: HookName, f: HookFacts): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base))
    if (v !== undefined && !SECRET_ENV_NAMES.includes(k) && !k.startsWith('VERDANDI_')) env[k] = v;
  const facts: Record<string, string | undefined> = {
    VERDANDI_HOOK: hook,
    VERDANDI_ACTION: f.action,
    VERDANDI_ENV: f.env,
    VERDANDI_PROJECT_DIR: f.projectDir,
    VERDANDI_SITES: unique(f.sites).join(','),
    VERDANDI_HOSTS: unique(f.hosts).join(','),
    VERDANDI_BRANCH: f.branch,
    VERDANDI_BY: f.by,
    VERDANDI_OUTCOME: f.outcome,
    VERDANDI_EXIT_CODE: f.exitCode === undefined ? undefined : String(f.exitCode),
    VERDANDI_COMMIT: f.commits && unique(f.commits).join(','),
    VERDANDI_RELEASE: f.releases && unique(f.releases).join(','),
    VERDANDI_FAILED: f.failed && unique(f.failed).join(','),
  };
  for (const [k, v] of Object.entries(facts)) if (v !== undefined) env[k] = redact(v);
  return env;
}

export interface HookRun {
  hook: HookName;
  path: string;
  code: number;
  timedOut: boolean;
  timeoutSeconds: number;
  /** stdout and stderr together, bounded. */
  output: string;
}

/** Runs `hooks/<hook>` when the project has it (undefined otherwise). Never throws for its outcome. */
export async function runHook(
  f: HookFacts,
  hook: HookName,
  timeoutSeconds = HOOK_TIMEOUT_SECONDS,
): Promise<HookRun | undefined> {
  const path = join(f.projectDir, 'hooks', hook);
  if (!existsSync(path)) return undefined;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new UserError(`hooks/${hook} is not executable`, 1, `chmod +x ${path} (or remove it)`);
  }
  const out = new OutputCollector({});
  return new Promise((resolve) => {
    // A process group of its own: the timeout stops the hook with everything it started.
    const child = spawn(path, [], {
      cwd: f.projectDir,
      env: hookEnv(process.env, hook, f),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let timedOut = false;
    const group = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      group('SIGTERM');
      setTimeout(() => group('SIGKILL'), 5000).unref();
    }, timeoutSeconds * 1000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => out.push(d));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ hook, path, code: 127, timedOut, timeoutSeconds, output: err.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        hook,
        path,
        code: code ?? (signal ? 128 + 15 : 1),
        timedOut,
        timeoutSeconds,
        output: out.text(),
      });
    });
  });
}

/** The hook's output for the terminal: each line after the hook's name, escaped and redacted. */
export function hookOutput(run: HookRun): string {
  const lines = run.output
    .replace(/\n$/, '')
    .split('\n')
    .filter((l, i, all) => l || i < all.length - 1);
  return lines.map((l) => `hooks/${run.hook}| ${printable(redact(l))}`).join('\n');
}

function failure(run: HookRun): string {
  return run.timedOut
    ? `hooks/${run.hook} timed out after ${run.timeoutSeconds} s and was stopped`
    : `hooks/${run.hook} failed (exit ${run.code})`;
}

/**
 * A pre hook: nothing is contacted before it ends; when it fails the command stops (exit 1) with its
 * output shown.
 */
export async function runPreHook(events: RunEvents, f: HookFacts, hook: HookName): Promise<void> {
  events.emit({ type: 'message', level: 'activity', text: `hooks/${hook}` });
  const run = await runHook(f, hook);
  if (!run) return;
  if (run.output.trim()) events.emit({ type: 'message', level: 'info', text: hookOutput(run) });
  if (run.code !== 0 || run.timedOut)
    throw new UserError(
      `${failure(run)}: the ${f.action} did not start, no host was contacted`,
      1,
      `fix what hooks/${hook} checks (its output is above), then run the ${f.action} again`,
    );
  events.emit({ type: 'message', level: 'info', text: `hooks/${hook} ok` });
}

/**
 * The post hooks of a run: a consumer of its events. `site-done` gives each site's commit, release and
 * outcome; `run-ended` starts `post-deploy` / `post-rollback` or `deploy-failed`. A failing post hook is
 * a warning: the sites are already what they are.
 */
export class PostHooks {
  private readonly commits: string[] = [];
  private readonly releases: string[] = [];
  private readonly failed: string[] = [];
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly events: RunEvents,
    private readonly facts: HookFacts,
  ) {}

  readonly handle = (e: RunEvent): void => {
    if (e.type === 'site-done') {
      if (e.commit) this.commits.push(e.commit);
      if (e.release) this.releases.push(e.release);
      if (!e.ok) this.failed.push(`${e.host}/${e.site}`);
    } else if (e.type === 'run-ended') {
      const outcome = e.interruptedBy ? 'interrupted' : e.exitCode === 0 ? 'ok' : 'failed';
      const facts: HookFacts = {
        ...this.facts,
        outcome,
        exitCode: e.exitCode,
        commits: this.commits,
        releases: this.releases,
        failed: this.failed,
      };
      this.pending = this.run(facts, hooksAfter(facts.action, outcome));
    }
  };

  private async run(facts: HookFacts, hooks: HookName[]): Promise<void> {
    for (const hook of hooks) {
      let run: HookRun | undefined;
      try {
        run = await runHook(facts, hook);
      } catch (err) {
        this.events.emit({ type: 'message', level: 'warn', text: `warning: ${(err as Error).message}` });
        continue;
      }
      if (!run) continue;
      if (run.output.trim()) this.events.emit({ type: 'message', level: 'info', text: hookOutput(run) });
      if (run.code !== 0 || run.timedOut)
        this.events.emit({
          type: 'message',
          level: 'warn',
          text: `warning: ${failure(run)} (the ${facts.action} itself is done: its exit code is unchanged)`,
        });
      else this.events.emit({ type: 'message', level: 'info', text: `hooks/${hook} ok` });
    }
  }

  /** Every post hook ended. */
  settled(): Promise<void> {
    return this.pending;
  }
}
