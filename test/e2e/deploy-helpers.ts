/**
 * What the deploy e2e tests share: a set-up run once on first use, a provision that must pass, git
 * repositories made by the test, single-host site inventories, a client that requests a site
 * continuously (bounded) while a deploy runs, a local webhook receiver, an HTTP GET with a timeout.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';
import { type CliResult, runCli } from '../helpers/cli.js';

const run = promisify(execFile);

/** git with a fixed identity (the machine running the tests may have none). */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(
    'git',
    ['-c', 'user.name=Verdandi test', '-c', 'user.email=test@verdandi.invalid', ...args],
    { cwd },
  );
  return stdout.trim();
}

/**
 * On a new branch `branch` made from `from`: writes `files` (null deletes), commits, returns the sha.
 * The work tree is left on `from`.
 */
export async function commitBranch(
  repo: string,
  from: string,
  branch: string,
  files: Record<string, string | null>,
): Promise<string> {
  await git(repo, 'checkout', '-q', '-B', branch, from);
  for (const [path, content] of Object.entries(files)) {
    const full = join(repo, path);
    if (content === null) await rm(full, { force: true });
    else {
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, content);
    }
  }
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '--allow-empty', '-m', `branch ${branch}`);
  const sha = await git(repo, 'rev-parse', 'HEAD');
  await git(repo, 'checkout', '-q', from);
  return sha;
}

export async function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

/**
 * One GET on a new connection (`Connection: close`), like `curl` in a loop or a new visitor. A reused
 * keep-alive connection may be closed by nginx at a graceful reload exactly as the client sends on it:
 * HTTP lets clients retry that (RFC 9112 §9.3.1), and it would say nothing about the deploy.
 */
export function getFresh(url: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { agent: false, headers: { connection: 'close' }, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface LoadResult {
  requests: number;
  failures: string[];
  /** Each distinct body seen, in the order first seen. */
  seen: string[];
}

/**
 * Requests `url` (each time on a new connection) one request after another until `stop()` says so, at most `maxRequests` times and
 * `maxMs` long: a bounded loop. A failure is a network error or a status other than 200. `pauseMs`
 * between requests caps the rate (so the count lasts longer).
 */
export async function requestContinuously(
  url: string,
  stop: () => boolean,
  { maxRequests = 20_000, maxMs = 300_000, pauseMs = 0 } = {},
): Promise<LoadResult> {
  const result: LoadResult = { requests: 0, failures: [], seen: [] };
  const deadline = Date.now() + maxMs;
  while (!stop() && result.requests < maxRequests && Date.now() < deadline) {
    if (pauseMs > 0 && result.requests > 0) await new Promise((r) => setTimeout(r, pauseMs));
    result.requests++;
    try {
      const { status, body } = await getFresh(url);
      if (status !== 200) result.failures.push(`${status}: ${body.slice(0, 200)}`);
      else if (!result.seen.includes(body.trim())) result.seen.push(body.trim());
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      result.failures.push(`${String(err)}${cause ? ` (${String(cause)})` : ''}`);
    }
  }
  return result;
}

export interface WebhookReceiver {
  url: string;
  messages: Array<{ text: string }>;
  close(): Promise<void>;
}

/** A Slack-like incoming webhook on loopback (the deploy posts from the machine running Verdandi). */
export async function webhookReceiver(): Promise<WebhookReceiver> {
  const messages: Array<{ text: string }> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      try {
        messages.push(JSON.parse(body));
      } catch {
        messages.push({ text: `(not JSON) ${body}` });
      }
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Polls `check` until it returns true (bounded); for states reached by another process. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * Makes the image `verdandi-test/busybox:1` on a host with Docker, from busybox-static (`docker import`):
 * no registry is reachable, so it stands in for a real base image.
 */
export const BASE_IMAGE_SCRIPT = [
  'set -e',
  'command -v busybox >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }',
  'd=$(mktemp -d)',
  'mkdir -p "$d/bin"',
  'cp "$(command -v busybox)" "$d/bin/busybox"',
  'for a in sh httpd cat; do ln -s busybox "$d/bin/$a"; done',
  'tar -C "$d" -c . | docker import - verdandi-test/busybox:1 >/dev/null',
  'rm -rf "$d"',
].join('\n');

/**
 * A node site's files: a `package.json` with a start script and a `package-lock.json`, no dependencies
 * (`npm ci` needs no registry), and `server.js`, an HTTP server on `$PORT` answering `/health`,
 * `/commit` (the release's REVISION) and `/greeting` (an env value). On SIGTERM it finishes the requests
 * it has before it exits, as a real app does under a blue/green switch.
 */
export const NODE_APP_FILES: Record<string, string> = {
  'package.json': `${JSON.stringify(
    { name: 'node-sample', version: '1.0.0', private: true, scripts: { start: 'node server.js' } },
    null,
    2,
  )}\n`,
  'package-lock.json': `${JSON.stringify(
    {
      name: 'node-sample',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: { '': { name: 'node-sample', version: '1.0.0' } },
    },
    null,
    2,
  )}\n`,
  'server.js': `'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

let commit = 'unknown';
try {
  commit = fs.readFileSync(path.join(__dirname, 'REVISION'), 'utf8').trim();
} catch {}

const server = http.createServer((req, res) => {
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(body + '\\n');
  };
  if (req.url === '/health') return reply(200, 'ok');
  if (req.url === '/commit') return reply(200, commit);
  if (req.url === '/greeting') return reply(200, process.env.GREETING || '');
  reply(200, 'node sample site, commit ' + commit);
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('node-sample listening on', process.env.PORT));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
  // A tool the build puts in node_modules/.bin (as a dependency's "bin" would be): `--once` for a check.
  'tools/vd-tick': `#!/bin/sh
echo "tick from $(pwd)"
[ "$1" = --once ] && exit 0
while :; do sleep 5; echo "tick from $(pwd)"; done
`,
};

/**
 * Makes a git repository with `files` committed on `main`; returns the commit. A file is its text, or
 * a function that writes it at the path it is given (a large file, streamed).
 */
export async function makeRepo(
  dest: string,
  files: Record<string, string | ((path: string) => Promise<void>)>,
): Promise<string> {
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    const full = join(dest, path);
    await mkdir(dirname(full), { recursive: true });
    if (typeof content === 'string') await writeFile(full, content);
    else await content(full);
  }
  await git(dest, 'init', '--quiet', '--initial-branch=main');
  await git(dest, 'add', '-A');
  await git(dest, 'commit', '--quiet', '-m', 'first commit');
  return git(dest, 'rev-parse', 'HEAD');
}

/**
 * A set-up run once, on first use: ava runs `before` hooks concurrently, so this cannot be one (the
 * hosts boot in useTestHosts' hook). Every test awaits `ready(t)`, which gives it `minutes` to run;
 * a failure fails them all with its message. The set-up's `log` goes to the first test's log.
 */
export function onFirstUse(
  setUp: (log: (m: string) => void) => Promise<void>,
  minutes = 20,
): (t: ExecutionContext) => Promise<void> {
  let setup: Promise<void> | undefined;
  return (t) => {
    t.timeout(minutes * 60_000);
    setup ??= setUp((m) => t.log(m));
    return setup;
  };
}

/**
 * `verdandi provision <inventory> [args]` that must pass: its time goes to `log`, a failure throws with
 * its output.
 */
export async function provisionOrThrow(
  inventory: string,
  o: { log?: (m: string) => void; args?: string[]; cwd?: string; timeoutMs?: number } = {},
): Promise<void> {
  const started = Date.now();
  const res = await runCli(['provision', inventory, ...(o.args ?? [])], {
    cwd: o.cwd,
    timeoutMs: o.timeoutMs ?? 15 * 60_000,
  });
  o.log?.(`provision: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (res.code !== 0) throw new Error(`provision failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
}

/**
 * Runs `deploy` while a client requests `url` continuously (requestContinuously), and half a second
 * more after it ended (requests after the switch), bounded: the deploy's result and the client's.
 */
export async function deployUnderLoad(
  url: string,
  deploy: () => Promise<CliResult>,
): Promise<{ res: CliResult; load: LoadResult }> {
  let done = false;
  const load = requestContinuously(url, () => done);
  const res = await deploy();
  await new Promise((r) => setTimeout(r, 500));
  done = true;
  return { res, load: await load };
}

/**
 * An inventory of one test host (root, the harness's key) alone in group `web`, with `roles` and
 * `vars`; `host` adds to the host's entry, `others` are more hosts outside the group.
 */
export function webInventory(
  web: { name: string; address: string; key: string },
  roles: string[],
  vars: Record<string, unknown>,
  more: { host?: Record<string, unknown>; others?: Record<string, Record<string, unknown>> } = {},
) {
  return {
    hosts: {
      ...more.others,
      [web.name]: { address: web.address, user: 'root', key: web.key, ...more.host },
    },
    groups: { web: { hosts: [web.name], roles, vars } },
  };
}

/**
 * A static site served by `python3 -m http.server` under supervisor (Debian's python, no virtualenv):
 * its health is the release's REVISION file. Roles: nginx, supervisor, sites.
 */
export function staticPythonSite(repo: string) {
  return {
    name: 'web',
    repo,
    runtime: { type: 'python', virtualenv: false },
    process: {
      command: 'exec python3 -m http.server "$PORT" --bind 127.0.0.1',
      port: 8100,
      stopTimeout: 5,
    },
    health: { path: '/REVISION', status: 200, timeout: 30 },
  };
}

/**
 * A docker site `web` whose image is built from `repo` on the host (its Dockerfile serves port 8080,
 * `health.txt` answers its health check), published on 127.0.0.1:9000/9001, behind nginx on
 * `address`; `extra` adds or overrides keys. Roles: nginx, docker, sites.
 */
export function dockerSite(repo: string, address: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'web',
    repo,
    runtime: { type: 'docker', containerPort: 8080 },
    process: { port: 9000, stopTimeout: 3 },
    nginx: { serverNames: [address] },
    health: { path: '/health.txt', status: 200, timeout: 15 },
    ...extra,
  };
}
