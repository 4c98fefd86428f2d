/**
 * Files the controller fetches for hosts without internet access (RunStep.stdinDownload, the
 * `download` task's `from: 'controller'`): each URL is fetched once per run, whatever the number of
 * hosts and tasks that need it, streamed to a temporary file on the controller (never held in memory),
 * and refused past its size limit. Each step then reads that file as its standard input, after a
 * `<size> <sha256>` line that lets the host's script install nothing unless all of it arrived.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { shownUrl } from '../util/url.js';
import type { ControllerDownload } from './types.js';

export interface Downloaded {
  /** The temporary file on the controller. */
  path: string;
  size: number;
  sha256: string;
}

export class ControllerDownloads {
  private readonly fetched = new Map<string, Promise<Downloaded>>();
  private dir: string | undefined;

  /** The file `download.url` serves, fetched at its first request in this run; rejects with why not. */
  fetch(download: ControllerDownload): Promise<Downloaded> {
    let pending = this.fetched.get(download.url);
    if (!pending) {
      pending = this.fetchOnce(download);
      this.fetched.set(download.url, pending);
    }
    return pending;
  }

  /** The step's standard input: the `<size> <sha256>` line, then the content, streamed from disk. */
  static stdin(file: Downloaded): Readable {
    async function* chunks(): AsyncGenerator<Buffer> {
      yield Buffer.from(`${file.size} ${file.sha256}\n`);
      for await (const chunk of createReadStream(file.path)) yield chunk as Buffer;
    }
    return Readable.from(chunks());
  }

  /** Removes every file fetched in this run. */
  close(): void {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    this.fetched.clear();
  }

  private async fetchOnce({ url: fetched, maxBytes }: ControllerDownload): Promise<Downloaded> {
    const url = shownUrl(fetched);
    this.dir ??= mkdtempSync(join(tmpdir(), 'verdandi-downloads-'));
    const path = join(this.dir, String(this.fetched.size));
    let response: Response;
    try {
      // fetch refuses a URL with credentials: they become a Basic Authorization header (as curl sends them).
      const parsed = new URL(fetched);
      const headers: Record<string, string> = {};
      if (parsed.username || parsed.password) {
        const user = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
        headers.authorization = `Basic ${Buffer.from(user).toString('base64')}`;
        parsed.username = '';
        parsed.password = '';
      }
      response = await fetch(parsed, { redirect: 'follow', headers });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      const reason = (cause ?? String(err)).split(fetched).join(url);
      throw new Error(`could not fetch ${url} on the controller: ${reason}`);
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new Error(
        `could not fetch ${url} on the controller: HTTP ${response.status} ${response.statusText}`,
      );
    }
    const declared = Number(response.headers.get('content-length'));
    if (declared > maxBytes) {
      await response.body.cancel();
      throw new Error(`${url} is ${declared} bytes, more than the ${maxBytes} allowed (maxBytes)`);
    }
    const hash = createHash('sha256');
    let size = 0;
    const counted = async function* (body: AsyncIterable<Uint8Array>) {
      for await (const chunk of body) {
        size += chunk.length;
        if (size > maxBytes) throw new Error(`${url} is more than the ${maxBytes} bytes allowed (maxBytes)`);
        hash.update(chunk);
        yield chunk;
      }
    };
    await pipeline(Readable.fromWeb(response.body as never), counted, createWriteStream(path));
    return { path, size, sha256: hash.digest('hex') };
  }
}
