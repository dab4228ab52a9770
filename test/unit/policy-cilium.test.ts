// NetworkPolicy as the eBPF datapath holds it: identities per label set, CIDR
// identities, the policy entries per endpoint, and their byte layouts.
import { expect } from 'chai';
import { endianness } from 'node:os';
import { compileCilium, FIRST_CIDR_IDENTITY, IDENTITY_ANY, MAX_RANGE, type CiliumView } from '../../src/policy/cilium.js';
import { decodeDrop, decodePolicyKey, encodePolicyKey, encodePolicyState } from '../../src/datapaths/cilium/maps.js';
import { np } from '../helpers/netpol-scenarios.js';
import { hex, u32 } from '../helpers/bytes.js';


const view = (policies: CiliumView['policies']): CiliumView => ({
  namespaces: [{ name: 'x', labels: { team: 'blue' } }],
  pods: [
    { name: 'a1', namespace: 'x', labels: { pod: 'a' }, ip: '10.10.0.2' },
    { name: 'a2', namespace: 'x', labels: { pod: 'a' }, ip: '10.10.1.2' },
    { name: 'b1', namespace: 'x', labels: { pod: 'b' }, ip: '10.10.0.3' },
    { name: 'b-other-ns', namespace: 'y', labels: { pod: 'b' }, ip: '10.10.1.3' },
  ],
  policies,
});
const local = [
  { ip: '10.10.0.2', ifindex: 7 },
  { ip: '10.10.0.3', ifindex: 8 },
];

describe('cilium policy: identities and entries', () => {
  it('one identity per label set (namespace and its labels included): pods with equal labels share it', () => {
    const c = compileCilium(view([]), local);
    expect(c.identities.map((i) => i.labels)).to.deep.equal([
      'k8s:io.kubernetes.pod.namespace=x,k8s:pod=a,k8s:io.cilium.k8s.namespace.labels.team=blue',
      'k8s:io.kubernetes.pod.namespace=x,k8s:pod=b,k8s:io.cilium.k8s.namespace.labels.team=blue',
      'k8s:io.kubernetes.pod.namespace=y,k8s:pod=b',
    ]);
    const id = (ip: string) => c.ipcache.find((e) => e.cidr === `${ip}/32`)!.identity;
    expect(id('10.10.0.2')).to.equal(id('10.10.1.2')).and.equal(256);
    expect(id('10.10.0.3')).to.not.equal(id('10.10.1.3'));
    expect(c.state, 'no policy: nothing isolated, no entries').to.deep.equal([]);
    expect(c.entries).to.deep.equal([]);
  });

  it('dual-stack: a pod\'s IPv6 /128 has the identity of its IPv4 /32', () => {
    const v = view([]);
    v.pods[0].ip6 = 'fd00:10::2';
    const c = compileCilium(v, local);
    const id = (cidr: string) => c.ipcache.find((e) => e.cidr === cidr)?.identity;
    expect(id('fd00:10::2/128')).to.equal(id('10.10.0.2/32')).and.equal(256);
    expect(c.ipcache.filter((e) => e.cidr.includes(':'))).to.have.length(1);
  });

  it('allow from pod b on TCP 80-82: one entry per port for the identity of x/b only', () => {
    const c = compileCilium(view([np('x', 'allow-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }], ports: [{ port: 80, endPort: 82 }] }] })]), local);
    expect(c.state).to.deep.equal([{ ifindex: 7, pod: 'x/a1', ingress: ['x/allow-b'], egress: [] }]);
    expect(c.entries.map((e) => [e.ifindex, e.dir, e.identity, e.proto, e.dport])).to.deep.equal([
      [7, 'ingress', 257, 6, 80],
      [7, 'ingress', 257, 6, 81],
      [7, 'ingress', 257, 6, 82],
    ]);
  });

  it('rules without peers or ports become the wildcard entries (identity 0, protocol 0, port 0)', () => {
    const c = compileCilium(view([np('x', 'all', { podSelector: {}, policyTypes: ['Egress'], egress: [{}] })]), local);
    expect(c.entries.map((e) => [e.ifindex, e.dir, e.identity, e.proto, e.dport])).to.deep.equal([
      [7, 'egress', IDENTITY_ANY, 0, 0],
      [8, 'egress', IDENTITY_ANY, 0, 0],
    ]);
  });

  it('ipBlock: a CIDR identity per prefix; a block allows every known prefix inside it but those of its except', () => {
    const c = compileCilium(
      view([
        np('x', 'out', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '192.168.10.0/24', except: ['192.168.10.210/32'] } }] }] }),
        np('x', 'wide', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '192.168.0.0/16' } }] }] }),
      ]),
      local,
    );
    expect(c.ipcache.filter((e) => !e.cidr.startsWith('10.'))).to.deep.equal([
      { cidr: '192.168.0.0/16', identity: FIRST_CIDR_IDENTITY },
      { cidr: '192.168.10.0/24', identity: FIRST_CIDR_IDENTITY + 1 },
      { cidr: '192.168.10.210/32', identity: FIRST_CIDR_IDENTITY + 2 },
    ]);
    const allowed = (ifindex: number) => c.entries.filter((e) => e.ifindex === ifindex).map((e) => e.identity);
    expect(allowed(7), 'the /24 but not its except').to.deep.equal([FIRST_CIDR_IDENTITY + 1]);
    expect(allowed(8), 'the /16 covers the /24 and the /32 inside it').to.deep.equal([FIRST_CIDR_IDENTITY, FIRST_CIDR_IDENTITY + 1, FIRST_CIDR_IDENTITY + 2]);
  });

  it('refuses a port range wider than the policy map should hold', () => {
    const p = np('x', 'wide', { podSelector: {}, ingress: [{ ports: [{ port: 1, endPort: MAX_RANGE + 1 }] }] });
    expect(() => compileCilium(view([p]), local)).to.throw(`x/wide: port range 1-${MAX_RANGE + 1} is wider than ${MAX_RANGE} ports`);
  });
});

describe('cilium policy: map layouts', () => {
  it('policy_key: ifindex, identity, port (host order), protocol, direction (12 bytes)', () => {
    const k = { ifindex: 7, identity: 257, dport: 80, proto: 6, dir: 'egress' as const };
    const b = encodePolicyKey(k);
    expect(b.length).to.equal(12);
    expect(hex(b)).to.equal(u32(7) + u32(257) + u32(80).slice(0, 4) + '06' + '01');
    expect(decodePolicyKey(b)).to.deep.equal(k);
  });
  it('policy_state: one byte per direction', () => {
    expect(hex(encodePolicyState({ ingress: true, egress: false }))).to.equal('01000000');
  });
  it('drop_key and its count', () => {
    const key = Buffer.from(u32(9) + '8500' + '0000', 'hex');
    const value = Buffer.alloc(8);
    if (endianness() === 'LE') value.writeBigUInt64LE(3n);
    else value.writeBigUInt64BE(3n);
    expect(decodeDrop(key, value)).to.deep.equal({ ifindex: 9, reason: 133, dir: 'ingress', packets: 3 });
  });
});
