/**
 * Step 8: tell a Slack-compatible incoming webhook how the deploy went (`POST {"text": "..."}`), from
 * the machine running Verdandi. A webhook that does not answer never fails a deploy: it is a warning.
 */
import { redact } from '../util/redact.js';

export interface DeployNotice {
  action: 'deploy' | 'rollback';
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
    n.action === 'deploy' ? `${n.ref}${n.commit ? ` (${n.commit.slice(0, 7)})` : ''}` : `release ${n.ref}`;
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
