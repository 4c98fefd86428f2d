import { existsSync, readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';
import test, { type ExecutionContext } from 'ava';
import { ControllerDownloads } from '../../src/engine/downloads.js';
import { sha256Hex } from '../../src/tasks/probe-output.js';
import { shownUrl } from '../../src/util/url.js';

/** A server on loopback answering every request with `answer`; counts the requests. */
async function serve(t: ExecutionContext, answer: (res: ServerResponse) => void) {
  const seen = { requests: 0 };
  const server = createServer((_req, res) => {
    seen.requests++;
    answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/file`, seen };
}

test('a URL is fetched once however many steps ask at once; the step reads a size and sha256 line first', async (t) => {
  const content = Buffer.from('binary \0\xff content');
  const { url, seen } = await serve(t, (res) => res.end(content));
  const downloads = new ControllerDownloads();
  const [a, b] = await Promise.all([
    downloads.fetch({ url, maxBytes: 100 }),
    downloads.fetch({ url, maxBytes: 100 }),
  ]);
  t.is(seen.requests, 1);
  t.is(a, b);
  t.is(a.size, content.length);
  t.is(a.sha256, sha256Hex(content));
  t.deepEqual(readFileSync(a.path), content);
  const stdin = await buffer(ControllerDownloads.stdin(a));
  t.deepEqual(stdin, Buffer.concat([Buffer.from(`${content.length} ${sha256Hex(content)}\n`), content]));
  downloads.close();
  t.false(existsSync(a.path), 'close removes the fetched files');
});

test('a file larger than maxBytes is refused, whether its length is announced or not', async (t) => {
  const announced = await serve(t, (res) => res.end('x'.repeat(50)));
  const downloads = new ControllerDownloads();
  t.teardown(() => downloads.close());
  await t.throwsAsync(downloads.fetch({ url: announced.url, maxBytes: 10 }), {
    message: `${announced.url} is 50 bytes, more than the 10 allowed (maxBytes)`,
  });
  const streamed = await serve(t, (res) => {
    res.write('x'.repeat(8));
    res.end('x'.repeat(8));
  });
  await t.throwsAsync(downloads.fetch({ url: streamed.url, maxBytes: 10 }), {
    message: `${streamed.url} is more than the 10 bytes allowed (maxBytes)`,
  });
});

test('an HTTP error and an unreachable server say what failed', async (t) => {
  const missing = await serve(t, (res) => {
    res.statusCode = 404;
    res.end('no');
  });
  const downloads = new ControllerDownloads();
  t.teardown(() => downloads.close());
  await t.throwsAsync(downloads.fetch({ url: missing.url, maxBytes: 10 }), {
    message: `could not fetch ${missing.url} on the controller: HTTP 404 Not Found`,
  });
  // A port nothing listens on any more.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  await t.throwsAsync(downloads.fetch({ url: `http://127.0.0.1:${port}/x`, maxBytes: 10 }), {
    message: new RegExp(
      `^could not fetch http://127\\.0\\.0\\.1:${port}/x on the controller: .*ECONNREFUSED`,
    ),
  });
});

test('credentials in a URL are sent as Basic authorization and never shown', async (t) => {
  const authorizations: Array<string | undefined> = [];
  const server = createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const missing = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/file` };
  const withPassword = missing.url.replace('http://', 'http://user:s3cret@');
  const downloads = new ControllerDownloads();
  t.teardown(() => downloads.close());
  const error = await t.throwsAsync(downloads.fetch({ url: withPassword, maxBytes: 10 }));
  t.false(error?.message.includes('s3cret'));
  t.is(error?.message, `could not fetch ${missing.url} on the controller: HTTP 404 Not Found`);
  t.deepEqual(authorizations, [`Basic ${Buffer.from('user:s3cret').toString('base64')}`]);
  t.is(shownUrl('https://u:p@h/x@y'), 'https://h/x@y');
});
