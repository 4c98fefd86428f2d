import { createHash } from 'node:crypto';
import test from 'ava';
import type { ProbeResult, RunStep, WriteStep } from '../../../src/engine/types.js';
import { acceptsTcp, type FirewallOptions, firewall, RULES_FILE } from '../../../src/tasks/firewall.js';
import { UserError } from '../../../src/util/errors.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const LIVE = 'b'.repeat(64);

function probed(lines: string[], file: object = { type: 'absent' }): ProbeResult {
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0, files: new Map([[RULES_FILE, file as never]]) };
}

/** The probe output of a host where `content` is written, loaded as recorded, included and enabled. */
function converged(content: string, extra: string[] = []): ProbeResult {
  return probed(
    [
      'verdandi-firewall connection 10.231.5.1 40000 10.231.5.2 22',
      `verdandi-firewall live ${LIVE}`,
      `verdandi-firewall record ${sha(content)} ${LIVE} `,
      'verdandi-firewall included',
      'verdandi-firewall service enabled',
      ...extra,
    ],
    { type: 'file', uid: 0, user: 'root', gid: 0, group: 'root', mode: 0o644, sha256: sha(content) },
  );
}

const contentOf = (options: FirewallOptions) => {
  const plan = firewall(options).plan(
    probed(['verdandi-firewall live -', 'verdandi-firewall service disabled']),
  );
  return (plan.steps.find((step) => step.kind === 'write') as WriteStep).content;
};

test('the rules file: one table replaced as a whole, SSH first, sources split by family', (t) => {
  const content = contentOf({
    allow: [
      { port: [80, 443] },
      { port: '60000-61000', protocol: 'udp' },
      { port: 5432, from: ['10.0.0.0/8', '2001:db8::/32'] },
    ],
  });
  t.is(
    content,
    [
      '#!/usr/sbin/nft -f',
      '# Written by Verdandi (the firewall task): changes made here are replaced on the next run.',
      'table inet verdandi',
      'delete table inet verdandi',
      'table inet verdandi {',
      '  chain input {',
      '    type filter hook input priority filter; policy drop;',
      '    ct state established,related accept',
      '    ct state invalid drop',
      '    iif "lo" accept',
      '    meta l4proto { icmp, ipv6-icmp } accept',
      '    tcp dport 22 accept',
      '    tcp dport { 80, 443 } accept',
      '    udp dport 60000-61000 accept',
      '    ip saddr 10.0.0.0/8 tcp dport 5432 accept',
      '    ip6 saddr 2001:db8::/32 tcp dport 5432 accept',
      '  }',
      '  chain forward {',
      '    type filter hook forward priority filter; policy accept;',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
});

test('a fresh host: directory, validated write, load with its record, include, enable', (t) => {
  const plan = firewall({ allow: [{ port: 443 }] }).plan(
    probed(['verdandi-firewall live -', 'verdandi-firewall service disabled']),
  );
  t.is(
    plan.reason,
    `${RULES_FILE} is missing, /etc/nftables.conf does not include it, nftables is not enabled at boot`,
  );
  t.like(plan.steps[1], { kind: 'write', path: RULES_FILE, mode: '0644', validate: 'nft -c -f %s' });
  const commands = plan.steps.map((step) => (step.kind === 'run' ? step.command : `write ${step.path}`));
  t.is(commands[0], 'mkdir -p /etc/nftables.d');
  t.regex(
    commands[2],
    /^nft -f \/etc\/nftables\.d\/verdandi\.nft && .*> \/var\/lib\/verdandi\/firewall\.loaded$/,
  );
  t.regex(commands[3], /include "\/etc\/nftables\.d\/verdandi\.nft"/);
  t.is(commands[4], 'systemctl enable nftables');
});

test('converged: nothing; a table changed or deleted by hand is loaded again', (t) => {
  const options = { allow: [{ port: 443 }] };
  const content = contentOf(options);
  t.deepEqual(firewall(options).plan(converged(content)), { steps: [] });

  const edited = converged(content);
  edited.stdout = edited.stdout.replace(`live ${LIVE}`, `live ${'c'.repeat(64)}`);
  const reload = firewall(options).plan(edited);
  t.is(reload.reason, 'the loaded table differs');
  t.is(reload.steps.length, 1);
  t.regex((reload.steps[0] as RunStep).command, /^nft -f /);

  const deleted = converged(content);
  deleted.stdout = deleted.stdout.replace(`live ${LIVE}`, 'live -');
  t.is(firewall(options).plan(deleted).reason, 'the table is not loaded');
});

test('refused at plan time: rules that drop the SSH connection of this run', (t) => {
  const task = firewall({ allowSsh: false, allow: [{ port: 22, from: '192.0.2.0/24' }] });
  const plan = task.plan(
    probed([
      'verdandi-firewall connection 10.231.5.1 40000 10.231.5.2 22',
      'verdandi-firewall live -',
      'verdandi-firewall service enabled',
    ]),
  );
  t.deepEqual(plan.steps, []);
  t.regex(
    plan.error ?? '',
    /^firewall inet verdandi: refusing rules that would drop this run's own SSH connection \(from 10\.231\.5\.1 to port 22\)/,
  );
  // The same rules are fine for a controller inside the allowed network.
  const inside = task.plan(
    probed([
      'verdandi-firewall connection 192.0.2.9 40000 10.231.5.2 22',
      'verdandi-firewall live -',
      'verdandi-firewall service enabled',
    ]),
  );
  t.is(inside.error, undefined);
});

test('acceptsTcp: ports, ranges, networks and families', (t) => {
  const allows = [
    { ports: ['22'], protocol: 'tcp' as const, from: ['10.0.0.0/8', '2001:db8::/32'] },
    { ports: ['8000-8100'], protocol: 'tcp' as const, from: [] },
    { ports: ['53'], protocol: 'udp' as const, from: [] },
  ];
  t.true(acceptsTcp(allows, 'drop', '10.1.2.3', 22));
  t.true(acceptsTcp(allows, 'drop', '2001:db8::1', 22));
  t.false(acceptsTcp(allows, 'drop', '192.0.2.1', 22));
  t.true(acceptsTcp(allows, 'drop', '192.0.2.1', 8050));
  t.false(acceptsTcp(allows, 'drop', '192.0.2.1', 53));
  t.true(acceptsTcp(allows, 'accept', '192.0.2.1', 53));
});

test('absent: the table deleted, the file and record removed, the include dropped', (t) => {
  const task = firewall({ state: 'absent' });
  const plan = task.plan(converged('x'));
  t.deepEqual(
    plan.steps.map((step) => (step as RunStep).command),
    [
      'nft delete table inet verdandi',
      'rm -f /etc/nftables.d/verdandi.nft /var/lib/verdandi/firewall.loaded',
      `sed -i '\\#^include "/etc/nftables.d/verdandi.nft"$#d' /etc/nftables.conf`,
    ],
  );
  t.deepEqual(task.plan(probed(['verdandi-firewall live -', 'verdandi-firewall service enabled'])), {
    steps: [],
  });
});

test('errors: no nft names the package; an unreadable probe', (t) => {
  t.deepEqual(firewall({}).plan(probed(['verdandi-firewall no-nft'])), {
    steps: [],
    error:
      "firewall inet verdandi: nft is not installed on the host: install it first with apt({ packages: 'nftables' })",
  });
  t.regex(firewall({}).plan(probed([])).error ?? '', /could not read the firewall's state/);
});

test('options are checked when the task is built, and rules without SSH under drop are refused', (t) => {
  const build = (opts: FirewallOptions) => () => firewall(opts);
  t.throws(build({ allowSsh: false }), {
    instanceOf: UserError,
    message: /these rules drop SSH \(port 22\): Verdandi could not reach the host again/,
  });
  t.notThrows(build({ allowSsh: false, allow: [{ port: 22, from: '10.0.0.0/8' }] }));
  t.notThrows(build({ allowSsh: false, inputPolicy: 'accept' }));
  t.throws(build({ allow: [{ port: 70000 }] }), {
    instanceOf: UserError,
    message: /port must be a port number/,
  });
  t.throws(build({ allow: [{ port: '9000-8000' }] }), {
    instanceOf: UserError,
    message: /lower to a higher port/,
  });
  t.throws(build({ allow: [{ port: 80, from: '10.0.0.0/33' }] }), {
    instanceOf: UserError,
    message: /from must hold IPv4\/IPv6/,
  });
  t.throws(build({ allow: [{ port: 80, protocol: 'icmp' as 'tcp' }] }), {
    instanceOf: UserError,
    message: /protocol must be tcp or udp/,
  });
  t.throws(build({ inputPolicy: 'reject' as 'drop' }), {
    instanceOf: UserError,
    message: /inputPolicy must be drop or accept/,
  });
});
