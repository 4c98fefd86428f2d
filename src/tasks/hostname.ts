/**
 * hostname({ hostname }): the host's name in `/etc/hostname` (read at boot), in the running kernel
 * (`hostname`), and on the `127.0.1.1` line of `/etc/hosts`, so the name resolves without DNS (Debian's
 * installer writes that line). Ansible's `hostname` (with the `debian` strategy, plus the hosts line,
 * which Ansible leaves to a lineinfile). Files are written directly: hostnamectl needs D-Bus.
 *
 * A name with dots is a fully qualified name: /etc/hostname and the kernel get its first label, and
 * the hosts line names both (`127.0.1.1 web1.example.org web1`).
 */
import { z } from 'zod';
import type { FileQuery, Plan, ProbeResult, Step } from '../engine/types.js';
import { sh } from '../util/shell.js';
import { writeStep } from './copy.js';
import { defineTask } from './define.js';
import { currentGroup, currentOwner, formatMode, unreadableProbe } from './file-state.js';
import { joinLines, splitLines } from './lineinfile.js';
import { text } from './options.js';
import { decodeBase64, decodeBase64Text, MARKER_PREFIX, markedLines, sha256Hex } from './probe-output.js';

const HOSTNAME_FILE = '/etc/hostname';
const HOSTS = '/etc/hosts';
const MARKER = `${MARKER_PREFIX}hostname`;

const options = z.strictObject({
  /** A host name (`web1`) or a fully qualified one (`web1.example.org`): RFC 1123 labels. */
  hostname: text(
    'hostname',
    /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    'a host name of letters, digits and - (labels separated by dots)',
  ),
});

type Hostname = z.output<typeof options>;

/** `/etc/hosts` with its 127.0.1.1 line naming the host (replaced, or added after the 127.0.0.1 line). */
export function hostsWithName(lines: string[], hostname: string): string[] {
  const short = hostname.split('.')[0];
  const wanted = short === hostname ? `127.0.1.1\t${hostname}` : `127.0.1.1\t${hostname} ${short}`;
  const index = lines.findIndex((line) => /^\s*127\.0\.1\.1\s/.test(line));
  const current = index >= 0 ? lines[index].trim().split(/\s+/).slice(1).join(' ') : undefined;
  if (current === wanted.split('\t')[1]) return lines;
  const out = [...lines];
  if (index >= 0) out[index] = wanted;
  else {
    const localhost = out.findIndex((line) => /^\s*127\.0\.0\.1\s/.test(line));
    out.splice(localhost + 1, 0, wanted);
  }
  return out;
}

function probe(): string {
  return [
    `printf '%s live %s\\n' ${MARKER} "$(hostname | base64 -w0)"`,
    `if [ -f ${HOSTS} ]; then printf '%s hosts %s ' ${MARKER} "$(stat -c '%u %U %g %G %a' ${HOSTS})"; base64 -w0 < ${HOSTS}; echo; fi`,
  ].join('\n');
}

function files(): FileQuery[] {
  return [{ path: HOSTNAME_FILE, checksum: true }];
}

function plan({ hostname }: Hostname, result: ProbeResult): Plan {
  const short = hostname.split('.')[0];
  const seen = markedLines(result.stdout, MARKER);
  const live = seen.find(([kind]) => kind === 'live');
  const file = result.files?.get(HOSTNAME_FILE);
  if (!live || !file) return { steps: [], error: unreadableProbe(HOSTNAME_FILE, result.exitCode) };
  const steps: Step[] = [];
  const reasons: string[] = [];
  const content = `${short}\n`;
  if (file.type !== 'file' || file.sha256 !== sha256Hex(content)) {
    steps.push(writeStep({ path: HOSTNAME_FILE, content, mode: '0644' }));
    reasons.push(`${HOSTNAME_FILE} differs`);
  }
  const current = (decodeBase64(live[1]) ?? '').trim();
  if (current !== short) {
    steps.push({ kind: 'run', command: sh`hostname ${short}` });
    reasons.push(`running name is ${current || '(empty)'}`);
  }
  const hosts = seen.find(([kind]) => kind === 'hosts');
  const before = hosts ? decodeBase64Text(hosts[6] ?? '') : '';
  if (before === undefined) return { steps: [], error: `hostname ${hostname}: ${HOSTS} is not UTF-8 text` };
  const lines = splitLines(before);
  const edited = hostsWithName(lines, hostname);
  let diff: Plan['diff'];
  if (edited !== lines) {
    const after = joinLines(edited);
    const [, uid, user, gid, group, mode] = hosts ?? [];
    const state = { type: 'file' as const, uid: Number(uid), user, gid: Number(gid), group, mode: 0 };
    steps.push(
      writeStep({
        path: HOSTS,
        content: after,
        mode: hosts ? formatMode(Number.parseInt(mode, 8)) : '0644',
        owner: hosts ? currentOwner(state) : undefined,
        group: hosts ? currentGroup(state) : undefined,
      }),
    );
    reasons.push(`${HOSTS} does not map 127.0.1.1 to ${hostname}`);
    diff = { path: HOSTS, after };
  }
  if (steps.length === 0) return { steps: [] };
  return { steps, reason: reasons.join(', '), ...(diff ? { diff } : {}) };
}

export const hostname = defineTask({
  type: 'hostname',
  becomeUser: { refuse: 'only root may change the host name' },
  options,
  subject: 'hostname',
  label: (name) => `hostname ${name}`,
  probe,
  files,
  plan,
});
