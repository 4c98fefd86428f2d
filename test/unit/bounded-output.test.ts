import test from 'ava';
import { humanBytes, OutputCollector } from '../../src/connection/bounded-output.js';
import { printable } from '../../src/util/terminal-text.js';

test('small output is kept whole, bounded or not', (t) => {
  const out = new OutputCollector({ tailBytes: 100 });
  out.push(Buffer.from('one\ntwo\n'));
  t.is(out.text(), 'one\ntwo\n');
  const all = new OutputCollector();
  all.push(Buffer.alloc(1_000_000, 'a'));
  t.is(all.text().length, 1_000_000);
});

test('a bounded stream keeps its last bytes from a line start, and says how much it left out', (t) => {
  const out = new OutputCollector({ tailBytes: 20 });
  for (let i = 0; i < 1000; i++) out.push(Buffer.from(`line ${i}\n`));
  const text = out.text();
  const [first, ...rest] = text.split('\n');
  // The last 20 bytes start inside `line 997`: the tail starts at the next line.
  t.is(rest.join('\n'), 'line 998\nline 999\n');
  t.is(out.total, 8890);
  t.is(first, `[… ${humanBytes(8890 - 18)} not shown]`);
});

test('humanBytes: decimal units', (t) => {
  t.is(humanBytes(999), '999 bytes');
  t.is(humanBytes(999_983_616), '1.0 GB');
  t.is(humanBytes(199_800_000), '199.8 MB');
  t.is(humanBytes(1_073_741_824), '1.1 GB');
});

test('with `until`, only what comes before the marker is bounded, even when the marker is cut in two', (t) => {
  const marker = '\n@@vd-abc-step ';
  const probe = `${'p'.repeat(5000)}\nend\n`;
  const stream = `${'x'.repeat(100_000)}${marker}0\n${probe}`;
  for (const size of [1, 7, 13, 4096, 65536]) {
    const out = new OutputCollector({ tailBytes: 64, until: marker });
    for (let i = 0; i < stream.length; i += size) out.push(Buffer.from(stream.slice(i, i + size)));
    const text = out.text();
    t.true(text.endsWith(`${marker}0\n${probe}`), `chunks of ${size}`);
    t.true(
      text.startsWith('[… 99.9 KB not shown]\n') || text.startsWith('[… 100.0 KB not shown]\n'),
      text.slice(0, 40),
    );
    t.true(text.length < 64 + 40 + marker.length + probe.length + 3, `chunks of ${size}: ${text.length}`);
  }
});

test('what is kept stays bounded however much is pushed, in chunks larger than the bound too', (t) => {
  const out = new OutputCollector({ tailBytes: 16 * 1024 });
  const chunk = Buffer.alloc(64 * 1024, 'y');
  for (let i = 0; i < 4096; i++) out.push(chunk); // 256 MiB
  t.is(out.total, 4096 * 64 * 1024);
  const text = out.text();
  t.regex(text, /^\[… 268\.4 MB not shown\]\n/);
  t.true(text.length <= 16 * 1024 + 30, `${text.length} characters kept`);
});

test('control characters from a host are shown escaped; newlines, tabs and text stay', (t) => {
  t.is(
    printable('\u001b]0;pwned\u0007\u001b[2Jok\r\n\tné €\u009b31m'),
    '\\x1b]0;pwned\\x07\\x1b[2Jok\\x0d\n\tné €\\x9b31m',
  );
});
