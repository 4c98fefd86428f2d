/**
 * Step 8: tell a Slack-compatible incoming webhook how the deploy went (`POST {"text": "..."}`), from
 * the machine running Verdandi. A webhook that does not answer never fails a deploy: it is a warning.
 */
import type { RunEvent, RunEvents } from '../engine/events.js';
import { redact } from '../util/redact.js';

export interface DeployNotice {
  /** `restore`: a database of the host restored (only its refused lock is posted). */
  action: 'deploy' | 'rollback' | 'restore';
  env: string;
  host: string;
  site: string;
  ok: boolean;
  /** Branch/tag/sha asked for (deploy) or the release gone back to (rollback). */
  ref: string;
  commit?: string;
  release?: string;
  by: string;
  durationMs: number;
  /** For a failure: the step and what happened. */
  failedStep?: string;
  detail?: string;
  /** The migrations ran before the failure. */
  migrated?: boolean;
}

/** The message: one line, then the failure's detail (redacted: it goes to a chat). */
export function noticeText(n: DeployNotice): string {
  const what =
    n.action === 'deploy'
      ? `${n.ref}${n.commit ? ` (${n.commit.slice(0, 7)})` : ''}`
      : n.action === 'rollback'
        ? `release ${n.ref}`
        : `database ${n.ref}`;
  const secs = (n.durationMs / 1000).toFixed(1);
  if (n.ok) {
    const verb = n.action === 'deploy' ? 'deployed' : 'rolled back to';
    return redact(
      `:white_check_mark: ${n.site} ${verb} ${what} on ${n.host} (${n.env}) by ${n.by} in ${secs} s`,
    );
  }
  const lines = [
    `:x: ${n.action} of ${n.site} ${what} on ${n.host} (${n.env}) by ${n.by} FAILED at "${n.failedStep ?? '?'}"`,
    n.migrated
      ? 'The migrations had run: the database has the new schema.'
      : n.action === 'restore'
        ? 'The database is unchanged.'
        : 'The previous release is still serving.',
  ];
  if (n.detail) lines.push('```', n.detail.slice(-1500), '```');
  return redact(lines.join('\n'));
}

/** Posts the notice; returns an error message instead of throwing. */
export async function notify(url: string, n: DeployNotice, timeoutMs = 5000): Promise<string | undefined> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: noticeText(n) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) return `webhook answered ${res.status}`;
    return undefined;
  } catch (err) {
    return `webhook unreachable: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** A site of a host that has a webhook, and what its notices name (the ref asked for). */
export interface NoticeTarget {
  site: string;
  url: string;
  ref: string;
}

/**
 * The webhook notices of a run: a consumer of its events (engine/events.ts). A site's deploy or
 * rollback that ends (`site-done`) and a host's lock that is refused (for every site of the host) are
 * posted to the site's webhook; the answer is a step (`webhook notified`) or a warning.
 */
export class WebhookNotices {
  private readonly pending: Promise<void>[] = [];

  constructor(
    private readonly events: RunEvents,
    private readonly o: {
      action: DeployNotice['action'];
      env: string;
      by: string;
      /** The sites of a host that have a webhook. */
      targets: (host: string) => NoticeTarget[];
    },
  ) {}

  readonly handle = (e: RunEvent): void => {
    if (e.type === 'site-done') {
      const target = this.o.targets(e.host).find((t) => t.site === e.site);
      if (!target) return;
      const { type: _type, at: _at, ...fact } = e;
      this.send(target.url, { ...fact, env: this.o.env, by: this.o.by });
    } else if (e.type === 'lock' && e.state === 'refused') {
      for (const t of this.o.targets(e.host))
        this.send(t.url, {
          action: this.o.action,
          env: this.o.env,
          host: e.host,
          site: t.site,
          ok: false,
          ref: t.ref,
          by: this.o.by,
          durationMs: 0,
          failedStep: 'lock',
          detail: e.message,
        });
    }
  };

  private send(url: string, n: DeployNotice): void {
    this.pending.push(
      notify(url, n).then((warning) => {
        if (warning)
          this.events.emit({
            type: 'message',
            level: 'warn',
            text: `${n.host}  ${n.site}  webhook: ${warning}`,
          });
        else
          this.events.emit({
            type: 'step',
            host: n.host,
            site: n.site,
            step: 'webhook',
            status: 'ok',
            detail: 'notified',
            roundTrips: 0,
          });
      }),
    );
  }

  /** Every notice posted (or given up on). */
  async settled(): Promise<void> {
    await Promise.all(this.pending);
  }
}
