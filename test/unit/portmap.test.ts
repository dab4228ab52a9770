// The pure parts of the docker-bridge lab: portmap's rules, the runtime's port
// mappings, and what the lab file may not say.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dnatChainName, dnatRules, loadPortmapConf, portmapRestoreLines } from '../../src/cni/plugins/portmap.js';
import { parseNetConf } from '../../src/cni/config.js';
import { capabilityArgs } from '../../src/runner/pods.js';
import { loadLab } from '../../src/datapaths/index.js';
import type { PodRecord } from '../../src/lab/state.js';
import { labErrorMessage, cniError } from '../helpers/errors.js';

describe('portmap: rules from port mappings', () => {
  const mappings = [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' as const },
    { hostPort: 5353, containerPort: 53, protocol: 'udp' as const, hostIP: '192.168.10.220' },
  ];

  it('writes one DNAT rule per mapping, exactly as iptables -S prints it', () => {
    expect(dnatRules('CNI-DN-x', '172.17.0.2', mappings)).to.deep.equal([
      '-A CNI-DN-x -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80',
      '-A CNI-DN-x -d 192.168.10.220/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.17.0.2:53',
    ]);
  });

  it('writes the IPv6 rules for ip6tables: [address]:port, /128, a hostIP of the other family left out, as the reference', () => {
    const dual = [...mappings, { hostPort: 8443, containerPort: 443, protocol: 'tcp' as const, hostIP: 'fd00:192:168:10:0::220' }, { hostPort: 9090, containerPort: 90, protocol: 'tcp' as const, hostIP: '::' }];
    expect(dnatRules('CNI-DN-x', 'fd00:250::2', dual)).to.deep.equal([
      '-A CNI-DN-x -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:250::2]:80',
      '-A CNI-DN-x -d fd00:192:168:10::220/128 -p tcp -m tcp --dport 8443 -j DNAT --to-destination [fd00:250::2]:443',
      '-A CNI-DN-x -p tcp -m tcp --dport 9090 -j DNAT --to-destination [fd00:250::2]:90',
    ]);
    expect(dnatRules('CNI-DN-x', '172.17.0.2', dual).map((r) => r.split(' --dport ')[1].split(' ')[0])).to.deep.equal(['8080', '5353']);
  });

  it("declares the container's own chain and jumps to it from the shared chain", () => {
    const chain = dnatChainName('bridge', 'abc');
    const lines = portmapRestoreLines('bridge', 'abc', '172.17.0.2', mappings.slice(0, 1));
    expect(lines[0]).to.equal(`:${chain} - [0:0]`);
    expect(lines.at(-1)).to.equal(`-A CNI-HOSTPORT-DNAT -m comment --comment "name: bridge id: abc" -j ${chain}`);
    // The shared chain itself is never declared: iptables-restore would flush every other container's jump.
    expect(lines.some((l) => l.startsWith(':CNI-HOSTPORT-DNAT'))).to.equal(false);
  });

  it('names chains per network and container, within 28 characters', () => {
    const a = dnatChainName('bridge', 'c1');
    expect(a).to.match(/^CNI-DN-[0-9a-f]{21}$/);
    expect(a.length).to.be.at.most(28);
    expect(dnatChainName('bridge', 'c2')).to.not.equal(a);
    expect(dnatChainName('other', 'c1')).to.not.equal(a);
  });

  it('reads runtimeConfig.portMappings and names a bad entry', () => {
    const load = (pm: unknown) => loadPortmapConf(parseNetConf({ cniVersion: '1.0.0', name: 'bridge', type: 'portmap', runtimeConfig: { portMappings: pm } }));
    expect(load([{ hostPort: 8080, containerPort: 80, protocol: 'TCP' }]).mappings).to.deep.equal([{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    expect(load(undefined).mappings).to.deep.equal([]);
    expect(cniError(() => load([{ hostPort: 70000, containerPort: 80 }])).message).to.match(/runtimeConfig\.portMappings\[0\]\.hostPort: 70000 is above the maximum 65535/);
    expect(cniError(() => load([{ hostPort: 8080 }])).message).to.match(/portMappings\[0\]\.containerPort: is required/);
    expect(cniError(() => load([{ hostPort: 8080, containerPort: 80, hostIP: 'node' }])).message).to.match(/hostIP: "node" is not an IPv4 or IPv6 address/);
    expect(cniError(() => load([{ hostPort: 8080, containerPort: 80 }, { hostPort: 8080, containerPort: 81 }])).message).to.match(/portMappings\[1\]: tcp port 8080 is already mapped by runtimeConfig\.portMappings\[0\]/);
  });

  it('gets the mappings from the runtime only when the plugin declares the capability (as libcni does)', () => {
    const pod = { ports: [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }] } as PodRecord;
    expect(capabilityArgs({ type: 'portmap', capabilities: { portMappings: true } }, pod)).to.deep.equal({ portMappings: pod.ports });
    expect(capabilityArgs({ type: 'bridge' }, pod)).to.equal(undefined);
    expect(capabilityArgs({ type: 'portmap', capabilities: { portMappings: true } }, { ...pod, ports: undefined })).to.equal(undefined);
  });
});

describe('lab file: docker-bridge', () => {
  it('declares which properties of the Kubernetes model it breaks', () => {
    const step = loadLab('docker-bridge').lab.steps.find((s) => s.check === 'kubernetes-model')!;
    expect(step.expect?.violates).to.deep.equal(['unique-ip', 'no-nat']);
  });

  it('names file, line and field for two replicas on one node holding a host port', () => {
    const docker = readFileSync('labs/docker-bridge.yaml', 'utf8');
    expect(labErrorMessage(docker.replace('replicas: 2 #', 'replicas: 3 #'))).to.match(/bad\.yaml:\d+: workloads\[0\]\.replicas: 3 replicas publish host ports on 2 node\(s\)/);
  });
});
