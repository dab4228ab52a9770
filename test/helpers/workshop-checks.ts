// What every workshop command must show on a live lab, as one list run on each
// backend: test/lab/workshop.test.ts (netns), docker.test.ts and hosts.test.ts
// call workshopChecks() inside a suite whose `before` brought flannel-vxlan up.
// The checks read what to expect from the lab as it runs (the addresses the
// backend found, the pods' addresses), never from one backend's numbers. The
// last check kills a pod's process: the suite's `after` takes the lab down.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { LabInstance } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { ROOT } from '../../src/lab/paths.js';
import { readState } from '../../src/lab/state.js';
import { formatRoute, nsById, type NetModel } from '../../src/workshop/model.js';
import { Terminal } from './terminal.js';

/** The lab the checks run on: this lab file, up under `name` on `backend`. */
export const WORKSHOP_LAB = 'flannel-vxlan';

export interface LiveLab {
  backend: string;
  /** The running instance of WORKSHOP_LAB. */
  name: string;
}

/** The CLI as a user runs it, with this process's environment (the state directory, a private engine's DOCKER_HOST). */
export async function cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args], { reject: false, input, env: { NO_COLOR: '1' } });
  return { code: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
}

interface Check {
  title: string;
  run(lab: LiveLab, inst: LabInstance): Promise<void>;
}

const addressOf = (inst: LabInstance, node: string) => inst.lab.topology.nodes.find((n) => n.name === node)!.address;
const podIp = (inst: LabInstance, pod: string): string => inst.state.state.pods.find((p) => p.name === pod)!.ip!;
const model = async (name: string): Promise<NetModel> => {
  const r = await cli(['diagram', name, '--json']);
  expect(r.code, r.stderr).to.equal(0);
  return JSON.parse(r.stdout) as NetModel;
};

export const WORKSHOP_CHECKS: Check[] = [
  {
    title: 'status --json: healthy on its backend, etcd and flanneld alive by PID, every pod\'s nginx alive',
    async run({ backend, name }) {
      const r = await cli(['status', name, '--json']);
      expect(r.code, r.stderr).to.equal(0);
      const s = JSON.parse(r.stdout);
      expect(s).to.include({ healthy: true, backend });
      expect(s.services.map((p: { name: string; node: string }) => `${p.name}@${p.node}`)).to.include.members(['etcd@master', 'flanneld@master', 'flanneld@worker']);
      expect(s.services.every((p: { alive: boolean }) => p.alive)).to.equal(true);
      expect(s.pods.map((p: { name: string; processes: { name: string; alive: boolean }[] }) => `${p.name} ${p.processes.map((x) => `${x.name}:${x.alive}`)}`)).to.deep.equal(['nginx-0 nginx:true', 'nginx-1 nginx:true', 'nginx-2 nginx:true']);
    },
  },
  {
    title: 'diagram in the terminal: the underlay, each node on its address, each pod on its own, the VXLAN route to the other node',
    async run({ backend, name }, inst) {
      const r = await cli(['diagram', name]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(new RegExp(`^${name} · ${backend} backend · read from the kernel`)).and.include(`underlay ${inst.lab.topology.underlay}\n`);
      for (const node of ['master', 'worker']) expect(r.stdout).to.match(new RegExp(`node ${node} .* ${addressOf(inst, node)}/`));
      for (const pod of ['nginx-0', 'nginx-1', 'nginx-2']) expect(r.stdout).to.match(new RegExp(`═ pod ${pod} eth0@if\\d+ · ${podIp(inst, pod)}/24`));
      expect(r.stdout).to.include(`⇒ worker: VXLAN VNI 1 via flannel.1 → ${addressOf(inst, 'worker')}:8472`);
    },
  },
  {
    title: 'diagram -o file.svg and --json: 2 nodes and 3 pods, a cni0 bridge and the flannel.1 VXLAN device on each node',
    async run({ name }) {
      const dir = mkdtempSync(join(tmpdir(), 'cnilab-diagram-'));
      try {
        const svg = await cli(['diagram', name, '-o', join(dir, 'd.svg')]);
        expect(svg.stdout, svg.stderr).to.match(/wrote .*d\.svg \(svg: 2 nodes, 3 pods\)/);
        expect(readFileSync(join(dir, 'd.svg'), 'utf8')).to.include('<g id="pod-nginx-2">').and.include('<g id="tunnel-master-worker">');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const m = await model(name);
      expect(m.namespaces.map((n) => n.id)).to.deep.equal(['master', 'worker', 'pod/nginx-0', 'pod/nginx-1', 'pod/nginx-2']);
      for (const node of ['master', 'worker']) expect(nsById(m, node)!.links.map((l) => `${l.name}:${l.kind}`)).to.include.members(['cni0:bridge', 'flannel.1:vxlan']);
    },
  },
  {
    title: 'the diagram\'s model is ip\'s own answer: a pod\'s eth0@ifN is its node\'s vethXXXX with index N, a port of cni0',
    async run({ name }, inst) {
      const m = await model(name);
      for (const pod of inst.state.state.pods) {
        const podLine = (await inst.backend.pod(pod.node, pod.name).run(['ip', '-o', 'link', 'show', 'eth0'])).stdout;
        const [, own, peer] = /^(\d+): eth0@if(\d+):/.exec(podLine)!;
        const nodeLine = (await inst.backend.node(pod.node).run(['ip', '-o', 'link', 'show'])).stdout.split('\n').find((l) => l.startsWith(`${peer}: `))!;
        const [, vethName, back] = /^\d+: (veth[0-9a-f]{8})@if(\d+):.* master cni0 /.exec(nodeLine)!;
        expect(back).to.equal(own);
        const eth0 = nsById(m, `pod/${pod.name}`)!.links.find((l) => l.name === 'eth0')!;
        expect(eth0.label).to.equal(`eth0@if${peer}`);
        expect(eth0.peer).to.deep.equal({ ns: pod.node, ifname: vethName, ifindex: Number(peer) });
        expect(eth0.addresses).to.deep.equal([`${pod.ip}/24`]);
      }
    },
  },
  {
    title: 'the diagram\'s model is ip\'s own answer: ip route, ip -d link show flannel.1 and bridge fdb on each node',
    async run({ name }, inst) {
      const m = await model(name);
      for (const node of ['master', 'worker']) {
        const on = (...argv: string[]) => inst.backend.node(node).run(argv).then((r) => r.stdout);
        const n = nsById(m, node)!;
        expect(n.routes.map(formatRoute)).to.deep.equal((await on('ip', 'route')).trim().split('\n').map((l) => l.trim()));
        const [, id, dstport] = /vxlan id (\d+) .*dstport (\d+)/.exec(await on('ip', '-d', 'link', 'show', 'flannel.1'))!;
        expect(n.links.find((l) => l.name === 'flannel.1')!.vxlan).to.include({ vni: Number(id), port: Number(dstport) });
        const other = node === 'master' ? 'worker' : 'master';
        expect(/dst (\S+) self permanent/.exec(await on('bridge', 'fdb', 'show', 'dev', 'flannel.1'))![1]).to.equal(addressOf(inst, other));
        expect(m.nodeRoutes.find((r) => r.node === node)).to.include({ toNode: other, how: `VXLAN VNI 1 via flannel.1 → ${addressOf(inst, other)}:8472` });
      }
      expect(m.underlay).to.equal(inst.lab.topology.underlay);
    },
  },
  {
    title: 'trace --json in a node: through cni0 alone; an unknown pod is a usage error that lists the pods',
    async run({ name }) {
      const r = await cli(['trace', '--lab', name, 'nginx-0', 'nginx-2', '--json']);
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(r.stdout).hops.map((h: { kind: string }) => h.kind)).to.deep.equal(['route', 'neighbour', 'veth', 'bridge', 'veth', 'deliver']);
      const bad = await cli(['trace', '--lab', name, 'nginx-0', 'nginx-9']);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.match(/no pod or node named "nginx-9".*pods: nginx-0, nginx-1, nginx-2.*`cnilab get pods`/);
    },
  },
  {
    title: 'trace --capture across the nodes: hop by hop through VXLAN between the underlay addresses, every interface sees every ping, the captures stopped by PID',
    async run({ name }, inst) {
      const recorded = readState(name)!.processes.length;
      const r = await cli(['trace', '--lab', name, 'nginx-0', 'nginx-1', '--capture', '--count', '3', '--json']);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      const t = JSON.parse(r.stdout) as { delivered: boolean; hops: { kind: string; at: string; device?: string; packets?: number }[]; tunnels: unknown[]; capture: unknown };
      expect(t.delivered).to.equal(true);
      expect(t.hops.map((h) => h.kind)).to.deep.equal(['route', 'neighbour', 'veth', 'bridge', 'route', 'neighbour', 'fdb', 'encap', 'route', 'neighbour', 'wire', 'decap', 'route', 'neighbour', 'fdb', 'veth', 'deliver']);
      expect(t.tunnels).to.deep.equal([{ via: 'vxlan', src: addressOf(inst, 'master'), dst: addressOf(inst, 'worker'), port: 8472, vni: 1 }]);
      const counted = t.hops.filter((h) => h.packets !== undefined);
      expect(counted.length).to.equal(10);
      // At least the three pings at every hop, as the trace judges (a late echo of its first probe may pass too).
      expect(counted.filter((h) => (h.packets ?? 0) < 3).map((h) => `${h.at} ${h.device} ${h.packets}`)).to.deep.equal([]);
      expect(t.capture).to.deep.equal({ sent: 3, received: 3, allSeen: true });
      expect(readState(name)!.processes.length).to.equal(recorded);
    },
  },
  {
    title: 'exec: a command on a node and in a pod, their output and exit code',
    async run({ name }, inst) {
      const node = await cli(['exec', '--lab', name, 'worker', '--', 'sh', '-c', 'ip -o -4 addr; exit 3']);
      expect(node.code, node.stderr).to.equal(3);
      expect(node.stdout).to.include(`inet ${addressOf(inst, 'worker')}/`);
      const pod = await cli(['exec', '--lab', name, 'nginx-0', '--', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
      expect(pod.code, pod.stderr).to.equal(0);
      expect(pod.stdout).to.include(`inet ${podIp(inst, 'nginx-0')}/24`);
    },
  },
  {
    title: 'shell with commands on its input: they run in the pod, the prompt names the lab and the pod, the exit code comes back',
    async run({ name }, inst) {
      const r = await cli(['shell', '--lab', name, 'nginx-1'], 'hostname; ip -4 -o addr show eth0\nexit 7\n');
      expect(r.code).to.equal(7);
      expect(r.stdout).to.match(new RegExp(`^nginx-1\\n\\d+: eth0 +inet ${podIp(inst, 'nginx-1').replaceAll('.', '\\.')}/24`));
      expect(r.stderr).to.include(`[${name} pod nginx-1@worker]`);
    },
  },
  {
    title: 'shell in a terminal (tmux): the prompt names the lab and the pod, typed commands run there, exit leaves with its code',
    async run({ name }, inst) {
      const term = new Terminal(`shell-${name}`);
      try {
        await term.start(`node dist/cli.js shell --lab ${name} nginx-1; echo SHELL-EXIT $?; sleep 600`);
        await term.waitFor(new RegExp(`\\[${name} pod nginx-1@worker\\]`), 'the shell prompt');
        await term.line('hostname; ip -4 -o addr show eth0');
        const screen = await term.waitFor(new RegExp(`eth0\\s+inet ${podIp(inst, 'nginx-1').replaceAll('.', '\\.')}/24`), "the pod's address");
        expect(screen).to.match(/^nginx-1$/m);
        await term.line('exit 4');
        await term.waitFor(/SHELL-EXIT 4/, 'the shell to end with its code');
      } finally {
        await term.stop();
      }
    },
  },
  {
    title: 'lesson on the running lab, in a terminal (tmux): every exercise runs on Enter, the capture counts every ping, the lab is left up',
    async run({ name }) {
      const term = new Terminal(`lesson-${name}`);
      try {
        await term.start(`node dist/cli.js lesson ${WORKSHOP_LAB} --name ${name}; echo LESSON-EXIT $?; sleep 600`);
        let screen = '';
        for (let i = 1; ; i++) {
          screen = await term.waitFor(new RegExp(`Exercise ${i}/\\d+ ·[\\s\\S]*\\[q\\] quit|LESSON-EXIT \\d+`), `exercise ${i}`);
          if (/LESSON-EXIT/.test(screen)) break;
          // Each exercise: Enter runs what it tries (when it tries something), Enter again goes on.
          if (/\[Enter\] run/.test(screen)) {
            await term.keys('Enter');
            screen = await term.waitFor(/\[Enter\] (next exercise|finish)/, `exercise ${i} run`);
            if (/Follow a packet/.test(screen)) expect(screen).to.include('✔ capture: all 3 pings seen at every interface of the path');
          }
          await term.keys('Enter');
        }
        expect(screen).to.match(/✔ all \d+ exercises of flannel-vxlan done/);
        expect(screen).to.include('LESSON-EXIT 0');
        // It took the running lab (the screen was cleared since it said so) and left it up.
        expect(screen).to.not.include('tearing');
        expect(readState(name)?.status).to.equal('up');
      } finally {
        await term.stop();
      }
    },
  },
  {
    title: 'status after a pod\'s process died: names it and exits 1',
    async run({ name }, inst) {
      const nginx = readState(name)!.processes.find((p) => p.name === 'nginx-2-nginx')!;
      await inst.backend.stop(nginx);
      inst.state.update((s) => s.processes.push(nginx)); // still recorded, as after a crash
      const s = await cli(['status', name]);
      expect(s.code).to.equal(1);
      expect(s.stdout).to.match(/nginx-2 +master .* nginx \d+ ✘/);
      expect(s.stdout).to.include('✘ something the lab recorded is gone');
    },
  },
];

/** One `it` per check, in order, on the lab `live()` names once the suite's `before` has brought it up. */
export function workshopChecks(live: () => LiveLab): void {
  let inst: LabInstance | undefined;
  for (const check of WORKSHOP_CHECKS) {
    it(check.title, async function () {
      this.timeout(180_000);
      const lab = live();
      inst ??= LabInstance.attach(readState(lab.name)!, new QuietReporter());
      await check.run(lab, inst);
    });
  }
}
