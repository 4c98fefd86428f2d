/**
 * Ansible as the oracle for dockerContainer, dockerImage, dockerStack and dockerSwarmJoin
 * (test/helpers/ansible-twin.ts), against community.docker's docker_container, docker_image,
 * docker_stack and docker_swarm (`state: join`). Two twin pairs, each booted once:
 *
 * dd-dk-v / dd-dk-a: Docker from Debian (with python3-docker, python3-jsondiff and python3-yaml for
 * Ansible's modules), each host the manager of a one-node swarm of its own. No registry is reachable:
 * the images are `docker import`ed on each host from busybox-static's binary (busyboxImageScript), and
 * the builds start FROM them.
 * - ctr-new: a container with env, a published port and a restart policy (the drift removes it);
 * - ctr-image-changed: the container's tag re-imported with other content (a new image id, the drift):
 *   both recreate it on the new image;
 * - ctr-config-changed: a container made by hand with other env and ports: both recreate it (the drift
 *   stops it: both start it);
 * - ctr-by-hand: a container made by hand exactly as wanted: Verdandi recreates it once (it has no
 *   config label), Ansible compares the settings and keeps it (the README's differences table says so);
 * - ctr-stopped: a container wanted stopped (created, never started; the drift starts it);
 * - ctr-absent: a container removed (the drift runs it again);
 * - img-new: an image built from a context directory (the drift removes it);
 * - img-context-changed: a file of the context edited after the build (the drift): Verdandi rebuilds,
 *   Ansible's docker_image keeps an existing image (`force_source: false`; `true` rebuilds on every run);
 * - img-present: a tag already on the host, not built from this context: Ansible keeps it, Verdandi
 *   builds over it;
 * - stk-new: a stack deployed (the drift removes its service: both deploy it again);
 * - stk-compose-changed: a stack deployed by hand from another compose file: both deploy the new one;
 *   the drift scales its service by hand: Ansible deploys on every run and puts the replicas back,
 *   Verdandi compares the compose file it deployed and leaves the live service as it is;
 * - stk-absent: a stack removed (the drift deploys it again by hand);
 * - join-other-swarm: a node already in a swarm (its own) told to join another manager: both leave it
 *   as it is (neither checks which swarm the node is in).
 *
 * dd-sw-v / dd-sw-a, workers of dd-sw-m (a peer: a one-node swarm both twins join):
 * - join-new: a node in no swarm joins; the token read from the manager during the run (Verdandi's
 *   tokenFrom; Ansible: `docker swarm join-token` delegated to the manager, registered); the drift makes
 *   the node leave: both join again;
 * - join-again: the same node and manager, named with the port: already in the swarm, nothing to do.
 */
import test from 'ava';
import yaml from 'js-yaml';
import { busyboxImageScript } from '../fixtures/roles/e2e.js';
import { type Probe, type TwinCase, type TwinTask, useAnsibleTwin } from '../helpers/ansible-twin.js';

const INSTALL_DOCKER = [
  'apt-get update -qq',
  'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io curl python3-docker >/dev/null',
  'systemctl start docker',
  'until docker info >/dev/null 2>&1; do sleep 0.5; done',
].join(' && ');

/** The guest's network interface on every test host (the swarm advertises its address). */
const IFACE = 'eth0';

const D = '/srv/dd';

// ---------------------------------------------------------------------------------------------------
// Containers

/** What defines a running container, as Docker keeps it (image ids differ between twins: imports). */
const container = (name: string): Probe[] => [
  `sh:docker container inspect -f '{{.State.Status}} {{.Config.Image}} {{json .Config.Cmd}}' ${name}`,
  // Docker's CLI writes the policy `no` when none is given, its API leaves it empty: the same policy.
  `sh:docker container inspect -f '{{.HostConfig.RestartPolicy.Name}}' ${name} | sed 's/^$/no/'`,
  `sh:docker container inspect -f '{{range .Config.Env}}{{println .}}{{end}}' ${name} | sort`,
  // No ports: Docker's CLI sends an empty map, its API leaves it null (the same).
  `sh:docker container inspect -f '{{json .HostConfig.PortBindings}}' ${name} | sed 's/^null$/{}/'`,
  // Whether it runs the image its tag names now, and that image's page.
  `sh:[ "$(docker container inspect -f '{{.Image}}' ${name})" = "$(docker image inspect -f '{{.Id}}' "$(docker container inspect -f '{{.Config.Image}}' ${name})")" ] && echo current image || echo other image`,
];

/** The container's page, read inside it (running containers only). */
const page = (name: string): Probe => `sh:docker exec ${name} cat /www/index.html`;

interface ContainerWanted {
  image: string;
  env?: Record<string, string>;
  ports?: string[];
  restart?: string;
  state?: 'started' | 'stopped' | 'absent';
}

/** The same container in both tools. */
function dockerContainer(task: string, name: string, wanted: ContainerWanted): TwinTask {
  const { image, env, ports, restart, state } = wanted;
  return {
    name: task,
    verdandi: ['dockerContainer', { container: name, ...wanted }],
    ansible: {
      'community.docker.docker_container': {
        name,
        image,
        ...(env ? { env } : {}),
        ...(ports ? { published_ports: ports } : {}),
        ...(restart ? { restart_policy: restart } : {}),
        ...(state ? { state } : {}),
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Images

/** A build context: a Dockerfile FROM the imported base, and a file it copies. */
const context = (dir: string, text: string) =>
  [
    `mkdir -p ${dir}`,
    `printf '%s\\n' 'FROM ddbb:1' 'COPY hello.txt /hello.txt' 'CMD ["/bin/cat", "/hello.txt"]' > ${dir}/Dockerfile`,
    `printf '%s\\n' '${text}' > ${dir}/hello.txt`,
  ].join(' && ');

const image = (tag: string): Probe[] => [
  `sh:docker image inspect -f '{{json .RepoTags}} {{json .Config.Cmd}}' ${tag}`,
  `sh:docker run --rm --entrypoint /bin/cat ${tag} /hello.txt 2>&1 | sed 's/^docker: //'`,
];

function dockerImage(task: string, tag: string, dir: string): TwinTask {
  return {
    name: task,
    verdandi: ['dockerImage', { tag, context: dir }],
    ansible: { 'community.docker.docker_image': { name: tag, source: 'build', build: { path: dir } } },
  };
}

// ---------------------------------------------------------------------------------------------------
// Stacks

const compose = (greeting: string, replicas: number) =>
  [
    // Double quotes only: deployByHand writes it through a single-quoted shell word.
    'version: "3.8"',
    'services:',
    '  web:',
    '    image: ddbb:1',
    '    environment:',
    `      GREETING: ${greeting}`,
    '    deploy:',
    `      replicas: ${replicas}`,
    '',
  ].join('\n');

/** The stack's services as the swarm keeps them (not their tasks: those converge on their own time). */
const stack = (name: string): Probe =>
  `sh:docker service ls --filter label=com.docker.stack.namespace=${name} -q | xargs -r docker service inspect -f '{{.Spec.Name}} {{.Spec.TaskTemplate.ContainerSpec.Image}} {{json .Spec.TaskTemplate.ContainerSpec.Env}} {{json .Spec.Mode}}'`;

function dockerStack(task: string, name: string, wanted: { compose?: string; state?: 'absent' }): TwinTask {
  return {
    name: task,
    verdandi: ['dockerStack', { stack: name, ...wanted }],
    ansible: {
      'community.docker.docker_stack': {
        name,
        // A string there is a compose file's path: the content goes as a mapping.
        ...(wanted.compose !== undefined ? { compose: [yaml.load(wanted.compose)] } : {}),
        ...(wanted.state ? { state: wanted.state } : {}),
        prune: true,
      },
    },
  };
}

/** A stack deployed by hand from a compose file written for it. */
const deployByHand = (name: string, content: string) =>
  `mkdir -p ${D} && printf '%s' '${content}' > ${D}/${name}.yml && docker stack deploy -c ${D}/${name}.yml ${name} >/dev/null`;

// ---------------------------------------------------------------------------------------------------
// Swarm

const swarmState: Probe = `sh:docker info --format '{{.Swarm.LocalNodeState}} manager: {{.Swarm.ControlAvailable}}'`;

// ---------------------------------------------------------------------------------------------------

const WHY_BY_HAND =
  "Verdandi recognises its containers by the hash of their settings in a label, which a container made another way lacks: it is recreated once; Ansible's docker_container compares each setting with the container's";
const WHY_PORTS =
  "Verdandi's ports are `docker run -p` values, given to Docker as they are: without an address Docker listens on every address, IPv6 too; Ansible's published_ports binds 0.0.0.0 (IPv4) then";
const WHY_IMAGE =
  "Ansible's docker_image builds only when the tag is missing (`force_source: true` rebuilds on every run); Verdandi rebuilds when the context or Dockerfile changed, which a label on the image records";
const WHY_STACK =
  "Ansible's docker_stack deploys on every run and compares the services before and after; Verdandi deploys when the compose file differs from the one it deployed or the stack has no services, and leaves a service changed by hand as it is";

const twin = useAnsibleTwin(test, 'dd-dk', (): TwinCase[] => [
  {
    name: 'ctr-new',
    setup: [
      `${INSTALL_DOCKER} && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-jsondiff python3-yaml busybox-static >/dev/null`,
      `docker swarm init --advertise-addr ${IFACE} >/dev/null`,
      busyboxImageScript('ddbb:1', 'one'),
      busyboxImageScript('ddbb:2', 'two'),
    ].join('\n'),
    tasks: [
      dockerContainer('ctr-new: dockerContainer', 'ddc-new', {
        image: 'ddbb:1',
        env: { GREETING: 'hello' },
        ports: ['18081:80'],
        restart: 'unless-stopped',
      }),
    ],
    drift: 'docker rm -f ddc-new >/dev/null',
    probes: [...container('ddc-new'), page('ddc-new')],
    differences: {
      state: [
        {
          probe: container('ddc-new')[3],
          verdandi: '{"80/tcp":[{"HostIp":"","HostPort":"18081"}]}',
          ansible: '{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"18081"}]}',
          why: WHY_PORTS,
        },
      ],
    },
  },
  {
    name: 'ctr-image-changed',
    tasks: [dockerContainer('ctr-image-changed: dockerContainer', 'ddc-img', { image: 'ddbb:2' })],
    drift: busyboxImageScript('ddbb:2', 'two again'),
    probes: [...container('ddc-img'), page('ddc-img')],
  },
  {
    name: 'ctr-config-changed',
    setup: 'docker run -d --name ddc-cfg -e GREETING=old -p 18083:80 ddbb:1 >/dev/null',
    tasks: [
      dockerContainer('ctr-config-changed: dockerContainer', 'ddc-cfg', {
        image: 'ddbb:1',
        env: { GREETING: 'new' },
        ports: ['127.0.0.1:18084:80'],
      }),
    ],
    drift: 'docker stop -t 1 ddc-cfg >/dev/null',
    probes: container('ddc-cfg'),
  },
  {
    name: 'ctr-by-hand',
    setup: 'docker run -d --name ddc-hand -e GREETING=same ddbb:1 >/dev/null',
    tasks: [
      dockerContainer('ctr-by-hand: dockerContainer', 'ddc-hand', {
        image: 'ddbb:1',
        env: { GREETING: 'same' },
      }),
    ],
    probes: [...container('ddc-hand'), `sh:docker container inspect -f '{{.Name}}' ddc-hand`],
    differences: {
      verdicts: [
        {
          task: 'ctr-by-hand: dockerContainer',
          phase: 'first',
          verdandi: 'changed',
          ansible: 'ok',
          why: WHY_BY_HAND,
        },
      ],
    },
  },
  {
    name: 'ctr-stopped',
    tasks: [
      dockerContainer('ctr-stopped: dockerContainer', 'ddc-stop', { image: 'ddbb:1', state: 'stopped' }),
    ],
    drift: 'docker start ddc-stop >/dev/null',
    probes: container('ddc-stop'),
  },
  {
    name: 'ctr-absent',
    setup: 'docker run -d --name ddc-gone ddbb:1 >/dev/null',
    tasks: [dockerContainer('ctr-absent: dockerContainer', 'ddc-gone', { image: 'ddbb:1', state: 'absent' })],
    drift: 'docker run -d --name ddc-gone ddbb:1 >/dev/null',
    probes: ['sh:docker ps -a --filter name=^ddc-gone$ --format {{.Names}}'],
  },
  {
    name: 'img-new',
    setup: context(`${D}/img-new`, 'new'),
    tasks: [dockerImage('img-new: dockerImage', 'ddimg-new:1', `${D}/img-new`)],
    drift: 'docker rmi ddimg-new:1 >/dev/null',
    probes: image('ddimg-new:1'),
  },
  {
    name: 'img-context-changed',
    setup: context(`${D}/img-chg`, 'before'),
    tasks: [dockerImage('img-context-changed: dockerImage', 'ddimg-chg:1', `${D}/img-chg`)],
    drift: `echo after > ${D}/img-chg/hello.txt`,
    probes: image('ddimg-chg:1'),
    differences: {
      state: [
        {
          probe: image('ddimg-chg:1')[1],
          after: 'drift',
          verdandi: 'after',
          ansible: 'before',
          why: WHY_IMAGE,
        },
      ],
      verdicts: [
        {
          task: 'img-context-changed: dockerImage',
          phase: 'drift',
          verdandi: 'changed',
          ansible: 'ok',
          why: WHY_IMAGE,
        },
      ],
    },
  },
  {
    name: 'img-present',
    setup: `${context(`${D}/img-pre`, 'built')} && docker tag ddbb:1 ddimg-pre:1`,
    tasks: [dockerImage('img-present: dockerImage', 'ddimg-pre:1', `${D}/img-pre`)],
    probes: image('ddimg-pre:1'),
    differences: {
      state: image('ddimg-pre:1').map((probe, i) => ({
        probe,
        verdandi: ['["ddimg-pre:1"] ["/bin/cat","/hello.txt"]', 'built'][i],
        ansible: [
          '["ddbb:1","ddimg-pre:1"] ["/bin/httpd","-f","-p","80","-h","/www"]',
          "cat: can't open '/hello.txt': No such file or directory",
        ][i],
        why: WHY_IMAGE,
      })),
      verdicts: [
        {
          task: 'img-present: dockerImage',
          phase: 'first',
          verdandi: 'changed',
          ansible: 'ok',
          why: WHY_IMAGE,
        },
      ],
    },
  },
  {
    name: 'stk-new',
    tasks: [dockerStack('stk-new: dockerStack', 'ddstk-new', { compose: compose('hello', 1) })],
    drift: 'docker service rm ddstk-new_web >/dev/null',
    probes: [stack('ddstk-new')],
  },
  {
    name: 'stk-compose-changed',
    setup: deployByHand('ddstk-chg', compose('old', 1)),
    tasks: [dockerStack('stk-compose-changed: dockerStack', 'ddstk-chg', { compose: compose('new', 2) })],
    drift: 'docker service update --detach --replicas 3 ddstk-chg_web >/dev/null',
    probes: [stack('ddstk-chg')],
    differences: {
      state: [
        {
          probe: stack('ddstk-chg'),
          after: 'drift',
          verdandi: 'ddstk-chg_web ddbb:1 ["GREETING=new"] {"Replicated":{"Replicas":3}}',
          ansible: 'ddstk-chg_web ddbb:1 ["GREETING=new"] {"Replicated":{"Replicas":2}}',
          why: WHY_STACK,
        },
      ],
      verdicts: [
        {
          task: 'stk-compose-changed: dockerStack',
          phase: 'drift',
          verdandi: 'ok',
          ansible: 'changed',
          why: WHY_STACK,
        },
      ],
    },
  },
  {
    name: 'stk-absent',
    setup: deployByHand('ddstk-gone', compose('gone', 1)),
    tasks: [dockerStack('stk-absent: dockerStack', 'ddstk-gone', { state: 'absent' })],
    drift: deployByHand('ddstk-gone', compose('gone', 1)),
    probes: [stack('ddstk-gone'), 'path:/etc/verdandi/stacks/ddstk-gone.yml'],
  },
  {
    name: 'join-other-swarm',
    tasks: [
      {
        name: 'join-other-swarm: dockerSwarmJoin',
        verdandi: [
          'dockerSwarmJoin',
          // Never contacted: the node is already in a swarm.
          { manager: '10.231.255.254', advertiseAddr: IFACE, token: 'SWMTKN-1-ddnotused-ddnotused' },
        ],
        ansible: {
          'community.docker.docker_swarm': {
            state: 'join',
            remote_addrs: ['10.231.255.254:2377'],
            advertise_addr: IFACE,
            join_token: 'SWMTKN-1-ddnotused-ddnotused',
          },
        },
      },
    ],
    probes: [swarmState],
  },
]);

test('containers, images, stacks: both tools exit 0 in every phase', (t) => twin.assertRuns(t));

for (const c of twin.cases) {
  test(c.name, (t) => twin.assertCase(t, c));
}

// ---------------------------------------------------------------------------------------------------

const MANAGER = 'dd-sw-m';

/** The join in both tools; the token read on the manager during the run. */
function join(task: string, manager: string): TwinTask {
  return {
    name: task,
    verdandi: ['dockerSwarmJoin', { manager, advertiseAddr: IFACE, tokenFrom: MANAGER }],
    ansible: [
      {
        command: 'docker swarm join-token -q worker',
        delegate_to: MANAGER,
        register: 'dd_join_token',
        changed_when: false,
      },
      {
        'community.docker.docker_swarm': {
          state: 'join',
          remote_addrs: [manager.includes(':') ? manager : `${manager}:2377`],
          advertise_addr: IFACE,
          join_token: '{{ dd_join_token.stdout }}',
        },
        no_log: true,
      },
    ],
  };
}

/** The managers the node knows (the same one on both twins). */
const remoteManagers: Probe = `sh:docker info --format '{{range .Swarm.RemoteManagers}}{{println .Addr}}{{end}}'`;

const swarm = useAnsibleTwin(
  test,
  'dd-sw',
  (): TwinCase[] => [
    {
      name: 'join-new',
      setup: INSTALL_DOCKER,
      tasks: [join('join-new: dockerSwarmJoin', MANAGER)],
      drift: 'docker swarm leave >/dev/null',
      probes: [swarmState, remoteManagers],
    },
    {
      name: 'join-again',
      tasks: [join('join-again: dockerSwarmJoin', `${MANAGER}:2377`)],
      probes: [swarmState],
    },
  ],
  undefined,
  { names: [MANAGER], setup: `${INSTALL_DOCKER}\ndocker swarm init --advertise-addr ${IFACE} >/dev/null` },
);

test('swarm join: both tools exit 0 in every phase', (t) => swarm.assertRuns(t));

for (const c of swarm.cases) {
  test(c.name, (t) => swarm.assertCase(t, c));
}

/**
 * The twins agreeing is not enough: both could be wrong the same way. What Verdandi's hosts hold after
 * the first run and after repairing the drift, as the cases want it.
 */
const CONVERGED: Array<{ of: typeof twin; name: string; probe: Probe; matches: RegExp }> = [
  { of: twin, name: 'ctr-new', probe: container('ddc-new')[0], matches: /^running ddbb:1 / },
  { of: twin, name: 'ctr-new', probe: container('ddc-new')[1], matches: /^unless-stopped$/ },
  { of: twin, name: 'ctr-new', probe: container('ddc-new')[2], matches: /^GREETING=hello$/m },
  { of: twin, name: 'ctr-new', probe: page('ddc-new'), matches: /^one$/ },
  { of: twin, name: 'ctr-image-changed', probe: container('ddc-img')[4], matches: /^current image$/ },
  { of: twin, name: 'ctr-config-changed', probe: container('ddc-cfg')[0], matches: /^running / },
  { of: twin, name: 'ctr-config-changed', probe: container('ddc-cfg')[2], matches: /^GREETING=new$/m },
  {
    of: twin,
    name: 'ctr-config-changed',
    probe: container('ddc-cfg')[3],
    matches: /"HostIp":"127\.0\.0\.1","HostPort":"18084"/,
  },
  { of: twin, name: 'ctr-stopped', probe: container('ddc-stop')[0], matches: /^(created|exited) / },
  {
    of: twin,
    name: 'ctr-absent',
    probe: 'sh:docker ps -a --filter name=^ddc-gone$ --format {{.Names}}',
    matches: /^$/,
  },
  { of: twin, name: 'img-new', probe: image('ddimg-new:1')[1], matches: /^new$/ },
  {
    of: twin,
    name: 'stk-new',
    probe: stack('ddstk-new'),
    matches: /^ddstk-new_web ddbb:1 \["GREETING=hello"\]/,
  },
  { of: twin, name: 'stk-absent', probe: stack('ddstk-gone'), matches: /^$/ },
  { of: twin, name: 'join-other-swarm', probe: swarmState, matches: /^active manager: true$/ },
  { of: swarm, name: 'join-new', probe: swarmState, matches: /^active manager: false$/ },
  { of: swarm, name: 'join-new', probe: remoteManagers, matches: /^10\.231\.\d+\.\d+:2377$/ },
];

test('the converged states are the wanted ones', (t) => {
  for (const { of, name, probe, matches } of CONVERGED) {
    const { verdandi } = of.get();
    for (const when of ['first', 'drift'] as const) {
      t.regex(
        verdandi.state[when][`${name} ${probe.replaceAll("'", '')}`] ?? '',
        matches,
        `${name} ${probe} (${when})`,
      );
    }
  }
});
