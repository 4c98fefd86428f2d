/**
 * The HTML report: self-contained (nothing loaded from elsewhere), nothing recorded can become markup,
 * and with 10,000 recorded runs it lists them all and stays a reasonable size (how fast: measured by
 * bench/history-scale.ts, figures in bench/RESULTS.md, not asserted on a shared machine).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { HistoryStore } from '../../src/history/store.js';
import { buildReport } from '../../src/report/command.js';
import { reportData } from '../../src/report/data.js';
import { renderReport } from '../../src/report/html.js';
import { CLI_BIN } from '../helpers/cli.js';
import { sampleRun } from '../helpers/history.js';
import { fillHistory } from '../helpers/history-bulk.js';

test('the page is self-contained: no URL to load, every style and script inline', (t) => {
  const run = { ...sampleRun(), id: 1, hostNames: ['web1'], ok: 1, changed: 1, failed: 1 };
  const html = renderReport(reportData([run], [{ ...run }]));
  t.notRegex(html, /<script[^>]+src=|<link[^>]+href=|url\(|@import|https?:\/\//i);
  t.regex(html, /<style>/);
  t.regex(html, /<script>/);
});

test('recorded text cannot close the data script or become markup', (t) => {
  const evil = '</script><img src=x onerror=alert(1)>';
  const run = { ...sampleRun({ argv: evil }), id: 1, hostNames: ['web1'], ok: 0, changed: 0, failed: 0 };
  const html = renderReport(reportData([run], []));
  t.false(html.includes(evil));
  t.is(html.match(/<\/script>/g)?.length, 2, 'only the two script elements close');
  const json = html.match(/<script type="application\/json" id="report-data">(.*?)<\/script>/s)?.[1] ?? '';
  t.is(JSON.parse(json).runs[0][15], evil, 'the data still holds the text as it was');
});

test('10,000 recorded runs: the report lists them all, 300 in detail, and stays a few megabytes', async (t) => {
  t.timeout(5 * 60_000);
  const file = join(mkdtempSync(join(tmpdir(), 'vd-report-')), 'h.sqlite');
  await fillHistory(file, 10_000, 5);
  const store = await HistoryStore.open({ kind: 'sqlite', file });
  const started = performance.now();
  const html = await buildReport(store, { details: 300 });
  const ms = performance.now() - started;
  await store.close();
  t.log(`report of 10,005 runs: ${ms.toFixed(0)} ms, ${(html.length / 1e6).toFixed(2)} MB`);
  const data = JSON.parse(html.match(/id="report-data">(.*?)<\/script>/s)?.[1] ?? '{}');
  t.is(data.runs.length, 10_005);
  t.is(data.detailCount, 300);
  t.true(html.length < 5_000_000, `${html.length} bytes`);
  t.truthy(readFileSync(file).length);
});

test('report --serve answers on 127.0.0.1 with the page built at each load, and stops on SIGTERM', async (t) => {
  t.timeout(2 * 60_000);
  const project = mkdtempSync(join(tmpdir(), 'vd-report-serve-'));
  await fillHistory(join(project, '.verdandi', 'history.sqlite'), 3, 1);
  const child = spawn(process.execPath, [CLI_BIN, 'report', '--serve', '0'], {
    cwd: project,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /serving the report on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('close', () => reject(new Error(`report --serve ended: ${out}`)));
  });
  try {
    const page = await fetch(url);
    t.is(page.status, 200);
    t.regex(await page.text(), /"runs":\[\[4,/);
    t.is((await fetch(`${url}other`)).status, 404);
  } finally {
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.kill('SIGTERM');
    t.is(await closed, 0);
  }
});
