/**
 * `verdandi exec <env> -- <command…>`: one ad-hoc shell command on the selected hosts, in parallel
 * (Ansible's `ansible all -m shell -a`). Walked by the walker like every command that works on hosts:
 * each host's exit code is its outcome (non-zero → failed → exit 2, unreachable → 3), the output is
 * bounded and shown escaped, Ctrl-C stops the command on the hosts (remote-process.ts), and the run goes
 * into the history as one task per host.
 *
 * The command travels inside the step's script (on the channel's stdin) as a here-document read by a
 * fixed `sh -c`: a secret typed into it is never on a host's process list.
 */
import { Writable } from 'node:stream';
import { DEFAULT_TAIL_BYTES, OutputCollector } from '../connection/bounded-output.js';
import { type ContextOptions, loadRunContext } from '../engine/context.js';
import { runOutputs } from '../engine/outputs.js';
import { execStoppable } from '../engine/remote-process.js';
import { contextWalker } from '../engine/walker.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import { hereDocument, words } from '../util/shell.js';
import { printable } from '../util/terminal-text.js';

export interface ExecOptions extends ContextOptions {
  forks?: number;
  /** Lines prefixed with the host as they come, instead of one block per host at its end. */
  stream?: boolean;
  json?: boolean;
  verbose?: boolean;
}

/** What one host's command gave: its exit code and the kept ends of its output. */
export interface ExecOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Stopped by Ctrl-C / SIGTERM. */
  stopped: boolean;
}

/** The words after `--` as one command: a single word is a whole script, several are joined by spaces. */
export function commandText(argv: string[]): string {
  const text = argv.join(' ').trim();
  if (!text)
    throw new UserError('exec needs a command', 1, 'give it after `--`: verdandi exec <env> -- uptime');
  return text;
}

/**
 * The script sent to the host: `command` read by a fixed `sh -c` from a here-document on fd 3 (its
 * text never becomes an argument of a process); with `merged`, stderr joins stdout (--stream).
 */
export function execScript(command: string, merged = false): string {
  return `${words('sh', '-c', 'vd_s=$(cat <&3); exec 3<&-; eval "$vd_s"')}${merged ? ' 2>&1' : ''} ${hereDocument(3, command)}`;
}

/** One host's block: its header with the exit code, then its output (stderr marked), escaped. */
export function formatBlock(host: string, o: ExecOutcome): string {
  const head = `── ${host}: ${o.stopped ? 'stopped' : `exit ${o.exitCode}`}`;
  const parts = [head];
  const out = o.stdout.replace(/\n$/, '');
  const err = o.stderr.replace(/\n$/, '');
  if (out) parts.push(printable(out));
  if (err) parts.push(printable(err).replace(/^/gm, 'stderr| '));
  return parts.join('\n');
}

/** A writable that hands each complete line to `line` (and the last, unterminated one at `end`). */
class LineSplitter extends Writable {
  private rest = '';
  constructor(private readonly line: (text: string) => void) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    const lines = (this.rest + chunk.toString('utf8')).split('\n');
    this.rest = lines.pop() ?? '';
    for (const l of lines) this.line(l);
    cb();
  }
  flushRest(): void {
    if (this.rest) this.line(this.rest);
    this.rest = '';
  }
}

export async function execCommand(env: string, argv: string[], o: ExecOptions): Promise<number> {
  const command = commandText(argv);
  const ctx = await loadRunContext(env, o);
  if (ctx.hosts.length === 0)
    throw new UserError(
      `no host of ${ctx.env}${o.limit ? ` matches --limit ${o.limit}` : ''}`,
      1,
      'check the host names with the inventory',
    );
  const forks = o.forks ?? DEFAULT_FORKS;
  const events = await runOutputs({
    json: !!o.json,
    verbose: !!o.verbose,
    check: false,
    recap: true,
    warnsToStderr: true,
  });
  const walker = contextWalker(
    ctx,
    { command: 'exec', events, forks: forks },
    ctx.hosts.map((h) => h.name),
  );
  const label = `exec: ${command}`;
  try {
    const runs = await walker.walk(
      ctx.hosts.map((host) => ({ host })),
      { maxFailPercentage: 100 },
      async ({ host }, { conn, signal }) => {
        let outcome: ExecOutcome;
        if (o.stream) {
          const kept = new OutputCollector({ tailBytes: DEFAULT_TAIL_BYTES });
          const lines = new LineSplitter((text) => {
            kept.push(Buffer.from(`${text}\n`));
            if (!o.json)
              events.emit({
                type: 'message',
                level: 'info',
                host: host.name,
                text: `${host.name} | ${printable(text)}`,
              });
          });
          const res = await execStoppable(conn, execScript(command, true), { stdout: lines }, signal);
          lines.flushRest();
          outcome = { exitCode: res.code, stdout: kept.text(), stderr: '', stopped: res.stopped };
        } else {
          const res = await execStoppable(conn, execScript(command), { bound: {} }, signal);
          outcome = { exitCode: res.code, stdout: res.stdout, stderr: res.stderr, stopped: res.stopped };
          if (!o.json)
            events.emit({
              type: 'message',
              level: 'info',
              host: host.name,
              text: formatBlock(host.name, outcome),
            });
        }
        const ok = outcome.exitCode === 0 && !outcome.stopped;
        events.emit({
          type: 'task',
          host: host.name,
          label,
          status: ok ? 'ok' : 'failed',
          detail: outcome.stopped ? 'stopped' : `exit ${outcome.exitCode}`,
          roundTrips: 0,
        });
        events.emit({
          type: 'result',
          host: host.name,
          data: {
            exitCode: outcome.exitCode,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            ...(outcome.stopped ? { stopped: true } : {}),
          },
        });
        return { ok, result: outcome };
      },
    );
    const codes = runs.map((r) =>
      r.result ? `${r.host} ${r.result.stopped ? 'stopped' : r.result.exitCode}` : `${r.host} ${r.status}`,
    );
    if (!o.json) events.emit({ type: 'message', level: 'info', text: `\nexit codes: ${codes.join(', ')}` });
    return await walker.finish();
  } finally {
    await walker.close();
    events.close();
  }
}
