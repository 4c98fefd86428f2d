/**
 * timezone({ zone }): the host's time zone: `/etc/localtime` a link to the zone's file under
 * /usr/share/zoneinfo, and `/etc/timezone` naming it (what Debian's tzdata reads back). Ansible's
 * `community.general.timezone`. The files are written directly (timedatectl needs D-Bus, which
 * minimal hosts and containers may lack); programs started afterwards use the new zone.
 */
import { z } from 'zod';
import type { FileQuery, Plan, ProbeResult, Step } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { writeStep } from './copy.js';
import { defineTask } from './define.js';
import { unreadableProbe } from './file-state.js';
import { text } from './options.js';
import { sha256Hex } from './probe-output.js';

const ZONEINFO = '/usr/share/zoneinfo';
const LOCALTIME = '/etc/localtime';
const TIMEZONE = '/etc/timezone';

const options = z.strictObject({
  /** An IANA zone name: `Europe/Paris`, `UTC`, `America/Argentina/Buenos_Aires`. */
  zone: text('zone', /^(?!\.)[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, 'a time zone name like "Europe/Paris"'),
});

type Timezone = z.output<typeof options>;

function files({ zone }: Timezone): FileQuery[] {
  return [{ path: LOCALTIME }, { path: TIMEZONE, checksum: true }, { path: `${ZONEINFO}/${zone}` }];
}

function plan({ zone }: Timezone, result: ProbeResult): Plan {
  const target = `${ZONEINFO}/${zone}`;
  const zoneFile = result.files?.get(target);
  const localtime = result.files?.get(LOCALTIME);
  const timezone = result.files?.get(TIMEZONE);
  if (!zoneFile || !localtime || !timezone)
    return { steps: [], error: unreadableProbe(LOCALTIME, result.exitCode) };
  if (zoneFile.type !== 'file' && zoneFile.type !== 'link') {
    return {
      steps: [],
      error: `timezone ${zone}: the host has no ${target}: not a known time zone, or the tzdata package is missing`,
    };
  }
  const steps: Step[] = [];
  const reasons: string[] = [];
  if (localtime.type !== 'link' || localtime.linkTarget !== target) {
    // A new link renamed over the old one: /etc/localtime never goes missing.
    steps.push({
      kind: 'run',
      command: sh`ln -sfn ${target} ${`${LOCALTIME}.verdandi`} && mv -fT ${`${LOCALTIME}.verdandi`} ${LOCALTIME}`,
    });
    reasons.push(`${LOCALTIME} → ${localtime.type === 'link' ? localtime.linkTarget : localtime.type}`);
  }
  const content = `${zone}\n`;
  if (timezone.type !== 'file' || timezone.sha256 !== sha256Hex(content)) {
    steps.push(writeStep({ path: TIMEZONE, content, mode: '0644' }));
    reasons.push(`${TIMEZONE} differs`);
  }
  return steps.length === 0 ? { steps: [] } : { steps, reason: reasons.join(', ') };
}

export const timezone = defineTask({
  type: 'timezone',
  becomeUser: { refuse: 'only root may change the time zone' },
  options,
  subject: 'zone',
  label: (zone) => `timezone ${zone}`,
  probe: () => '',
  files,
  plan,
});
