/**
 * The report in a real browser: Debian's chromium, headless, driven by puppeteer-core, opens the file
 * written by `verdandi report` (file://, no server) for a history of 10,000 runs plus recorded failures,
 * and finds the runs list, the host × task grid, the failure's command and stderr, the timeline and
 * each host's tasks with their round trips, and a site's deploy history. A
 * screenshot is saved under test/artifacts/ (git-ignored) for a human to look at.
 */
import { existsSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { HistoryStore } from '../../src/history/store.js';
import { PROJECT_ROOT, runCli } from '../helpers/cli.js';
import { sampleRun } from '../helpers/history.js';
import { fillHistory } from '../helpers/history-bulk.js';

const CHROMIUM = '/usr/bin/chromium';
const RELEASE = '20251231-235930-abc1234';
const ARTIFACTS = join(PROJECT_ROOT, 'test', 'artifacts');

test('chromium shows the runs, the grid, the failure detail and the timeline of 10,000 runs', async (t) => {
  t.timeout(10 * 60_000);
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing: apt-get install -y chromium`);
    return;
  }
  const project = mkdtempSync(join(tmpdir(), 'vd-report-browser-'));
  const history = join(project, '.verdandi', 'history.sqlite');
  await fillHistory(history, 10_000, 3);
  // A deploy, older than every other run: the site's deploy history has its release.
  const store = await HistoryStore.open({ kind: 'sqlite', file: history });
  await store.record(
    sampleRun({
      command: 'deploy',
      startedAt: '2025-12-31T23:59:00.000Z',
      deploys: [
        {
          host: 'web1',
          site: 'shop',
          action: 'deploy',
          release: RELEASE,
          time: '2025-12-31T23:59:30.000Z',
          by: 'ann@laptop',
          outcome: 'deployed',
          commit: 'abc1234abc1234abc1234abc1234abc1234abc12',
          branch: 'main',
          step: null,
          from: null,
        },
      ],
    }),
  );
  await store.close();
  const written = await runCli(['report'], { cwd: project });
  t.is(written.code, 0, written.stderr);
  const file = join(project, '.verdandi', 'report.html');
  t.regex(written.stdout, /report written: .*report\.html/);

  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container: chromium's sandbox needs user namespaces it does not get here.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1500, height: 1000 });
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file://')) requests.push(r.url());
    });
    const started = Date.now();
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    await page.waitForSelector('#grid');
    const loadMs = Date.now() - started;
    t.log(`10,004 runs: page drawn in ${loadMs} ms (${(statSync(file).size / 1e6).toFixed(1)} MB)`);
    t.deepEqual(requests, [], 'the page loads nothing from anywhere');
    t.true(loadMs < 30_000, `drawn in ${loadMs} ms`);

    // The list: the newest 200 drawn, all counted.
    t.is(await page.$$eval('#runs tr', (rows) => rows.length), 200);
    t.regex(await page.$eval('#count', (e) => e.textContent ?? ''), /^10004 of 10004 runs$/);
    // The newest run is shown: a failed provision of web1 (3 tasks) and an unreachable db1.
    t.regex(await page.$eval('#run-title', (e) => e.textContent ?? ''), /run \d+: failed/);
    const grid = await page.$$eval('#grid tr[data-host]', (rows) =>
      rows.map((r) => [
        r.getAttribute('data-host'),
        [...r.querySelectorAll('td.cell')].map((c) => c.className),
      ]),
    );
    t.deepEqual(grid, [
      ['web1', ['cell s-ok', 'cell s-changed', 'cell s-failed']],
      ['db1', ['cell', 'cell', 'cell']],
    ]);
    const failures = await page.$eval('#failures', (e) => e.textContent ?? '');
    t.regex(failures, /web1 nginx › service nginx/);
    t.regex(failures, /command: systemctl start nginx/);
    t.regex(failures, /Job for nginx\.service failed/);
    t.regex(failures, /db1 unreachable timeout: no answer/);
    const bars = await page.$$eval('#timeline .bar', (b) => b.map((x) => (x as HTMLElement).style.width));
    t.is(bars.length, 3);
    t.true(
      bars.every((w) => Number.parseFloat(w) > 0),
      `${bars}`,
    );
    // Each host's tasks with their time and round trips.
    t.is(
      await page.$eval('#tasks details[data-host="web1"] summary', (e) => e.textContent ?? ''),
      'web1: 3 tasks, 0.9 s, 3 round trips',
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: false });

    // The site's deploy history: the release, who, where it is recorded, its run.
    t.is(await page.$eval('#deploys tr.site', (e) => e.textContent), 'shop');
    t.regex(
      await page.$eval(`#deploys tr[data-release="${RELEASE}"]`, (e) => e.textContent ?? ''),
      /^web1.*abc1234abc12 \(main\)ann@laptop2025-12-31 23:59:30Zok deployedhererun \d+$/,
    );
    t.regex(
      await page.$eval('#deploy-notes', (e) => e.textContent ?? ''),
      /verdandi report --env <env> --hosts/,
    );
    await page.click('#to-deploys');
    await page.screenshot({ path: join(ARTIFACTS, 'report-deploys.png') });

    // Filtering the list, then an older run without details.
    await page.select('#status', 'interrupted');
    t.regex(await page.$eval('#count', (e) => e.textContent ?? ''), /^2000 of 10004 runs$/);
    await page.evaluate(() => {
      location.hash = 'run-5';
    });
    await page.waitForFunction(() => document.querySelector('#run-title')?.textContent?.startsWith('run 5:'));
    t.regex(await page.$eval('#detail', (e) => e.textContent ?? ''), /verdandi history show 5/);
    await page.screenshot({ path: join(ARTIFACTS, 'report-filtered.png') });
  } finally {
    await browser.close();
  }
  t.true(existsSync(join(ARTIFACTS, 'report.png')));
});
