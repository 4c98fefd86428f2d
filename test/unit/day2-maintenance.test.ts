import test from 'ava';
import { maintenanceOff } from '../../src/deploy/commands.js';
import {
  maintenancePage,
  offScript,
  onScript,
  PAGE_MARK,
  parseSwitch,
} from '../../src/deploy/maintenance.js';
import type { Site } from '../../src/deploy/site.js';
import { sitePaths } from '../../src/deploy/site-base.js';
import { parseState } from '../../src/deploy/state.js';
import { UserError } from '../../src/util/errors.js';

const site = { name: 'app', process: { port: 8000, workers: [] } } as unknown as Site;
const paths = sitePaths(site, '/srv');

test('the page: the message HTML-escaped, marked as written by Verdandi', (t) => {
  const page = maintenancePage('Back at <b>14:00</b> & "soon"\nThanks');
  t.true(page.startsWith(PAGE_MARK));
  t.true(page.includes('<p>Back at &#60;b&#62;14:00&#60;/b&#62; &#38; &#34;soon&#34;<br>\nThanks</p>'));
  t.false(page.includes('<b>'));
});

test('on|off parsed; anything else is a user error', (t) => {
  t.is(parseSwitch('on'), 'on');
  t.is(parseSwitch('off'), 'off');
  t.throws(() => parseSwitch('maybe'), { instanceOf: UserError, message: /on or off, got "maybe"/ });
});

test('the scripts: on records by-hand, since and by; a deploy keeps a maintenance set by hand', (t) => {
  const on = onScript(paths, 'ann@laptop');
  t.regex(
    on,
    /printf '%s\\nsince=%s\\nby=%s\\n' by-hand=yes "\$\(date -u \+%Y-%m-%dT%H:%M:%SZ\)" ann@laptop/,
  );
  t.regex(on, /grep -qsx by-hand=yes \/etc\/nginx\/maintenance\/app\.on/);
  t.regex(offScript(paths), /rm -f \/etc\/nginx\/maintenance\/app\.on/);
  const off = maintenanceOff(paths);
  t.regex(off, /if grep -qsx by-hand=yes \/etc\/nginx\/maintenance\/app\.on; then\n.*stays on/);
});

test('state: a maintenance set by hand, with since and by', (t) => {
  const st = parseState(
    paths,
    'maintenance=on\nmaintenance_by-hand=yes\nmaintenance_since=2026-01-02T03:04:05Z\nmaintenance_by=ann@laptop\n',
  );
  t.true(st.maintenance);
  t.deepEqual(st.maintenanceByHand, { since: '2026-01-02T03:04:05Z', by: 'ann@laptop' });
  t.is(parseState(paths, 'maintenance=on\n').maintenanceByHand, undefined);
});
