import { expect } from 'chai';
import { parseEnv } from '../../src/cni/env.js';
import { convertResult, parseResult } from '../../src/cni/result.js';
import { checkVersion } from '../../src/cni/version.js';
import { dispatch } from '../../src/cni/skel.js';
import { hostLocal } from '../../src/cni/plugins/host-local.js';
import { parseCidr, subnet, formatCidr, overlaps } from '../../src/net/ipnet.js';
import { cniError } from '../helpers/errors.js';

describe('CNI environment', () => {
  it('names every missing variable in one error with code 4', () => {
    const e = cniError(() => parseEnv({ CNI_COMMAND: 'ADD' }));
    expect(e.code).to.equal(4);
    for (const v of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH']) expect(e.message).to.include(v);
  });
  it('lets DEL go without CNI_NETNS (containerd sends it empty)', () => {
    const a = parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_PATH: '/x' });
    expect(a.netns).to.equal('');
  });
  it('parses CNI_ARGS and rejects entries without "="', () => {
    const ok = parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_IFNAME: 'e', CNI_PATH: '/x', CNI_ARGS: 'A=1;K8S_POD_NAME=web' });
    expect(ok.args).to.deep.equal({ A: '1', K8S_POD_NAME: 'web' });
    expect(cniError(() => parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_IFNAME: 'e', CNI_PATH: '/x', CNI_ARGS: 'oops' })).message).to.include('oops');
  });
  it('rejects an unknown command', () => {
    expect(cniError(() => parseEnv({ CNI_COMMAND: 'ATTACH' })).message).to.include('ATTACH');
  });
});

describe('CNI versions and results', () => {
  it('answers code 1 for an unsupported version and 7 for a malformed one', () => {
    expect(cniError(() => checkVersion('0.2.0')).code).to.equal(1);
    expect(cniError(() => checkVersion('latest')).code).to.equal(7);
  });
  for (const v of ['0.4.0', '1.0.0', '1.1.0']) {
    it(`round-trips a result through ${v}`, () => {
      const r = { cniVersion: '1.1.0', interfaces: [{ name: 'eth0', mtu: 1450, sandbox: '/x' }], ips: [{ address: '10.0.0.2/24', interface: 0 }], routes: [{ dst: '0.0.0.0/0', mtu: 1400 }] };
      const wire = convertResult(r, v) as any;
      expect(wire.cniVersion).to.equal(v);
      expect('version' in wire.ips[0]).to.equal(v === '0.4.0');
      expect('mtu' in wire.routes[0]).to.equal(v === '1.1.0');
      expect(parseResult(wire).ips).to.deep.equal(r.ips);
    });
  }
  it('leaves empty lists out of the wire format, as the reference plugins do', () => {
    const wire = convertResult({ cniVersion: '1.1.0', interfaces: [], ips: [{ address: '10.0.0.2/24' }], routes: [] }, '1.0.0');
    expect(Object.keys(wire).sort()).to.deep.equal(['cniVersion', 'dns', 'ips']);
  });
});

describe('IPv4 arithmetic', () => {
  it('finds the nth subnet and overlaps', () => {
    expect(formatCidr(subnet(parseCidr('10.10.0.0/16')!, 24, 1))).to.equal('10.10.1.0/24');
    expect(overlaps(parseCidr('10.10.0.0/16')!, parseCidr('10.10.7.0/24')!)).to.equal(true);
    expect(overlaps(parseCidr('10.10.0.0/24')!, parseCidr('10.10.1.0/24')!)).to.equal(false);
    expect(parseCidr('10.10.0.0/33')).to.equal(undefined);
    expect(parseCidr('300.1.1.1/8')).to.equal(undefined);
  });
});

describe('plugin dispatch', () => {
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/x', CNI_IFNAME: 'eth0', CNI_PATH: '/x' };
  async function call(stdin: string, extra: Record<string, string> = {}) {
    let out = '';
    const code = await dispatch(hostLocal, { env: { ...env, ...extra }, stdin, write: (t) => (out += t) });
    return { code, out: JSON.parse(out) };
  }
  it('answers VERSION with every supported version', async () => {
    const r = await call('', { CNI_COMMAND: 'VERSION' });
    expect(r.code).to.equal(0);
    expect(r.out.supportedVersions).to.include.members(['0.4.0', '1.0.0', '1.1.0']);
  });
  it('reports broken JSON as code 6', async () => {
    const r = await call('{"cniVersion":');
    expect(r.out.code).to.equal(6);
    expect(r.code).to.not.equal(0);
  });
  it('names the overlapping range (code 7)', async () => {
    const conf = { cniVersion: '1.0.0', name: 'n', type: 'host-local', ipam: { type: 'host-local', ranges: [[{ subnet: '10.1.0.0/16' }], [{ subnet: '10.1.2.0/24' }]] } };
    const r = await call(JSON.stringify(conf));
    expect(r.out.code).to.equal(7);
    expect(r.out.msg).to.include('ipam.ranges[1][0].subnet');
  });
  it('refuses GC before 1.1.0', async () => {
    const conf = { cniVersion: '1.0.0', name: 'n', type: 'host-local', ipam: { type: 'host-local', subnet: '10.1.0.0/24' } };
    const r = await call(JSON.stringify(conf), { CNI_COMMAND: 'GC' });
    expect(r.out.code).to.equal(1);
  });
});
