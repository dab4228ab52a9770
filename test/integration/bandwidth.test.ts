// The bandwidth plugin on the real kernel, chained after our bridge plugin as a
// runtime chains it: what ADD puts on the node side of the pod's veth (tbf for
// traffic into the pod, ingress redirect to an ifb with a tbf for traffic out),
// CHECK, DEL (twice, and with no netns), GC; and the same against the reference
// plugin from /usr/lib/cni: the same shapers and ifb name, our CHECK
// accepting the reference's state.
import { expect } from 'chai';
import { inNetns, run } from '../../src/net/exec.js';
import { Ip } from '../../src/net/ip.js';
import { ingressFilters, qdiscs } from '../../src/net/tc.js';
import { ErrorCode } from '../../src/cni/errors.js';
import { ifbName } from '../../src/cni/plugins/bandwidth.js';
import { NETWORK, OUR_PLUGINS, REFERENCE_PLUGINS, SPEC_VERSIONS, Sandbox, buildPlugins, referencePair } from '../helpers/cni-sandbox.js';

const RATE = 100_000_000; // 100 Mbit/s
const BURST = 2 ** 32 - 1; // what containerd and CRI-O pass
const shaped = { ingressRate: RATE, ingressBurst: BURST, egressRate: 2 * RATE, egressBurst: BURST };

const bandwidthConf = (version: string, prevResult: unknown, bandwidth: Record<string, number> = shaped) => ({
  cniVersion: version,
  name: NETWORK,
  type: 'bandwidth',
  runtimeConfig: { bandwidth },
  prevResult,
});

/** The shapers on the node, by device, as tc shows them (handles and options; nothing random). */
async function shapers(box: Sandbox, hostVeth: string, ifb: string) {
  const show = async (dev: string) => ((await box.nodeIp.link(dev)) ? (await qdiscs(box.node, dev)).map((q) => ({ kind: q.kind, handle: q.handle, options: q.options })) : 'absent');
  // A set: the reference's netlink library puts the redirect in twice (the second never runs).
  const redirects = [...new Set((await ingressFilters(box.node, hostVeth)).flatMap((f) => (f.options?.actions ?? []).map((a) => `${a.kind} ${a.mirred_action} ${a.to_dev === ifb ? 'ifb' : a.to_dev}`)))];
  return { hostVeth: await show(hostVeth), ifb: await show(ifb), redirects };
}

for (const version of SPEC_VERSIONS) {
  describe(`bandwidth plugin chained after bridge on the kernel, cniVersion ${version}`, function () {
    this.timeout(60_000);
    let box: Sandbox;
    let ctr: string;
    let prev: any;
    const bw = (command: 'ADD' | 'DEL' | 'CHECK' | 'GC', conf: Record<string, unknown>, o: { netns?: string; containerId?: string } = {}) =>
      box.call({ command, conf, plugin: 'bandwidth', netns: o.netns ?? ctr, containerId: o.containerId ?? 'ctr1' });

    before(() => buildPlugins());
    beforeEach(async () => {
      box = await Sandbox.create();
      ctr = await box.addContainer();
      prev = await box.add(box.bridgeConf(version), ctr);
    });
    afterEach(() => box?.destroy());

    it(`ADD shapes both directions, CHECK agrees, DEL takes it all away (twice, and with no netns) (${version})`, async () => {
      const hostVeth = prev.interfaces[1].name;
      const ifb = ifbName(NETWORK, 'ctr1');
      const add = await bw('ADD', bandwidthConf(version, prev));
      expect(add.exitCode, add.stdout).to.equal(0);
      expect(add.json.interfaces.slice(0, 3)).to.deep.equal(prev.interfaces);
      expect(add.json.interfaces[3]).to.include({ name: ifb });
      expect(add.json.ips).to.deep.equal(prev.ips);

      const s = await shapers(box, hostVeth, ifb);
      expect(s.hostVeth).to.deep.include({ kind: 'tbf', handle: '1:', options: { rate: RATE / 8, burst: 536870900, lat: 25000 } });
      expect(s.hostVeth).to.deep.include({ kind: 'ingress', handle: 'ffff:', options: {} });
      expect(s.ifb).to.deep.equal([{ kind: 'tbf', handle: '1:', options: { rate: (2 * RATE) / 8, burst: 536870900, lat: 25000 } }]);
      expect(s.redirects).to.deep.equal(['mirred redirect ifb']);
      const link = await box.nodeIp.link(ifb);
      expect(link?.linkinfo?.info_kind).to.equal('ifb');
      expect(link?.mtu).to.equal(1400); // the host veth's
      expect(link?.flags).to.include('UP');

      const check = bandwidthConf(version, add.json);
      const ok = await bw('CHECK', check);
      expect(ok.exitCode, ok.stdout).to.equal(0);
      // A shaper someone changed is a mismatch.
      await box.nodeIp.cmd('link', 'set', ifb, 'down');
      await run(inNetns(box.node, 'tc', ['qdisc', 'change', 'dev', ifb, 'root', 'handle', '1:', 'tbf', 'rate', '1mbit', 'burst', '10kb', 'limit', '100kb']));
      const bad = await bw('CHECK', check);
      expect(bad.json).to.include({ code: ErrorCode.StateMismatch });
      expect(bad.json.msg).to.match(new RegExp(`the tbf on ${ifb} shapes at 125000 bytes/s, not 25000000`));

      for (let i = 0; i < 2; i++) expect((await bw('DEL', check)).exitCode).to.equal(0);
      expect(await shapers(box, hostVeth, ifb)).to.deep.equal({ hostVeth: [{ kind: 'noqueue', handle: '0:', options: {} }], ifb: 'absent', redirects: [] });
      expect((await bw('DEL', check, { netns: '' })).exitCode).to.equal(0);
    });

    it(`no bandwidth asked: ADD passes prevResult on and touches nothing (${version})`, async () => {
      const hostVeth = prev.interfaces[1].name;
      const add = await bw('ADD', bandwidthConf(version, prev, {}));
      expect(add.exitCode).to.equal(0);
      expect(add.json).to.deep.equal(prev);
      expect((await shapers(box, hostVeth, ifbName(NETWORK, 'ctr1'))).ifb).to.equal('absent');
    });

    it(`a rate without a burst, or no prevResult, is refused naming the field, and nothing is left (${version})`, async () => {
      const hostVeth = prev.interfaces[1].name;
      const noBurst = await bw('ADD', bandwidthConf(version, prev, { egressRate: RATE }));
      expect(noBurst.json).to.include({ code: ErrorCode.InvalidConfig });
      expect(noBurst.json.msg).to.include('runtimeConfig.bandwidth.egressBurst: is required when egressRate is set');
      const noPrev = await bw('ADD', { ...bandwidthConf(version, prev), prevResult: undefined });
      expect(noPrev.json.msg).to.include('prevResult: is required');
      expect(await shapers(box, hostVeth, ifbName(NETWORK, 'ctr1'))).to.deep.equal({ hostVeth: [{ kind: 'noqueue', handle: '0:', options: {} }], ifb: 'absent', redirects: [] });
    });

    if (version === '1.1.0') {
      it('GC removes the ifb of a container that is no longer valid, and only ours (1.1.0)', async () => {
        const ctr2 = await box.addContainer();
        const prev2 = await box.add(box.bridgeConf(version), ctr2, 'ctr2');
        expect((await bw('ADD', bandwidthConf(version, prev))).exitCode).to.equal(0);
        expect((await bw('ADD', bandwidthConf(version, prev2), { netns: ctr2, containerId: 'ctr2' })).exitCode).to.equal(0);
        await box.nodeIp.cmd('link', 'add', 'bwpforeign', 'type', 'ifb'); // not ours: no alias
        const gc = await box.call({ command: 'GC', plugin: 'bandwidth', conf: { cniVersion: version, name: NETWORK, type: 'bandwidth', 'cni.dev/valid-attachments': [{ containerID: 'ctr1', ifname: 'eth0' }] } });
        expect(gc.exitCode, gc.stdout).to.equal(0);
        const ifbs = (await box.nodeIp.links()).filter((l) => l.linkinfo?.info_kind === 'ifb').map((l) => l.ifname).sort();
        expect(ifbs).to.deep.equal([ifbName(NETWORK, 'ctr1'), 'bwpforeign'].sort());
      });
    }
  });
}

// Debian's reference plugins speak cniVersion up to 1.0.0.
describe('reference bandwidth plugin against ours, cniVersion 1.0.0', function () {
  this.timeout(60_000);
  const pair = referencePair('bandwidth');

  it('the same shapers on the same devices, the same ifb name and result; our CHECK accepts the reference\'s state', async () => {
    const setUp = async (box: Sandbox, binDir: string) => {
      const ctr = await box.addContainer();
      const prev = await box.add(box.bridgeConf('1.0.0'), ctr); // our bridge in both: only bandwidth differs
      const add = await box.call({ command: 'ADD', plugin: 'bandwidth', binDir, conf: bandwidthConf('1.0.0', prev), netns: ctr, containerId: 'ctr1' });
      expect(add.exitCode, add.stdout).to.equal(0);
      return { ctr, prev, result: add.json, state: await shapers(box, prev.interfaces[1].name, ifbName(NETWORK, 'ctr1')) };
    };
    const r = await setUp(pair.ref(), REFERENCE_PLUGINS);
    const o = await setUp(pair.ours(), OUR_PLUGINS);
    // The bucket is kept as a time: tc (ours) and netlink (the reference) round it differently, by less than a microsecond of tokens.
    const bucket = (s: typeof r.state) => JSON.parse(JSON.stringify(s), (k, v) => (k === 'options' && v?.burst ? { ...v, burst: Math.round(v.burst / (v.rate / 1e5)), lat: Math.round(v.lat / 10) } : v));
    expect(bucket(o.state)).to.deep.equal(bucket(r.state));
    expect(o.state.hostVeth).to.have.length(2);
    expect(o.result.interfaces.map((i: { name: string }) => i.name).slice(3)).to.deep.equal(r.result.interfaces.map((i: { name: string }) => i.name).slice(3));
    expect(o.result.interfaces).to.have.length(r.result.interfaces.length);

    const check = async (box: Sandbox, binDir: string, x: typeof r) =>
      box.call({ command: 'CHECK', plugin: 'bandwidth', binDir, conf: bandwidthConf('1.0.0', x.result), netns: x.ctr, containerId: 'ctr1' });
    const ourCheck = await check(pair.ref(), OUR_PLUGINS, r);
    expect(ourCheck.exitCode, ourCheck.stdout).to.equal(0);
    // The reference's CHECK wants the bucket to the tick, which tc's rounding misses at this rate.
    expect((await check(pair.ours(), REFERENCE_PLUGINS, o)).stdout).to.include('Buffer doesn');

    for (const [box, binDir, x] of [[pair.ref(), REFERENCE_PLUGINS, r], [pair.ours(), OUR_PLUGINS, o]] as const) {
      const del = await box.call({ command: 'DEL', plugin: 'bandwidth', binDir, conf: bandwidthConf('1.0.0', x.result), netns: x.ctr, containerId: 'ctr1' });
      expect(del.exitCode, del.stdout).to.equal(0);
      expect(await new Ip(box.node).link(ifbName(NETWORK, 'ctr1'))).to.equal(undefined);
    }
  });
});
