// What the docker backend asks the engine for, and how the node image is named:
// pure functions, checked without an engine.
import { expect } from 'chai';
import { DATAPATHS } from '../../src/datapaths/index.js';
import { ROOT } from '../../src/lab/paths.js';
import { existsSync } from 'node:fs';
import { cleanLab } from '../../src/runner/clean.js';
import { labDir, NAME_PREFIX, StateFile } from '../../src/lab/state.js';
import type { Topology } from '../../src/topologies/backend.js';
import { gatewayFor, networkSpec, nodeContainerSpec, LAB_LABEL, PREFIX_LABEL } from '../../src/topologies/docker.js';
import { debootstrapArgv, imageHash, imageRecipe, importChanges, parseAptSources } from '../../src/topologies/docker-image.js';
import { nodePackages, TOOLS } from '../../src/lab/tools.js';
import { dockerdArgv } from '../../src/topologies/docker-engine.js';

const topo: Topology = {
  lab: 'demo',
  underlay: { subnet: '192.168.10.0/24', prefix: 24 },
  nodes: [
    { name: 'master', address: '192.168.10.210' },
    { name: 'worker', address: '192.168.10.220' },
  ],
};

describe('docker backend: engine requests', () => {
  it('the underlay is an internal bridge network on the lab subnet with no address on the host side, labelled', () => {
    const n = networkSpec(topo);
    expect(n.Name).to.equal(`${NAME_PREFIX}demo-underlay`);
    expect(n.Internal).to.equal(true);
    expect(n.IPAM!.Config![0].Subnet).to.equal('192.168.10.0/24');
    expect(n.Options!['com.docker.network.bridge.inhibit_ipv4']).to.equal('true');
    expect(n.Labels).to.deep.equal({ [LAB_LABEL]: 'demo', [PREFIX_LABEL]: NAME_PREFIX });
  });

  it("Docker's gateway takes the highest address no node uses", () => {
    expect(gatewayFor('192.168.10.0/24', ['192.168.10.210'])).to.equal('192.168.10.254');
    expect(gatewayFor('192.168.10.0/24', ['192.168.10.254', '192.168.10.253'])).to.equal('192.168.10.252');
    expect(() => gatewayFor('10.0.0.0/30', ['10.0.0.1', '10.0.0.2'])).to.throw(/no address left/);
  });

  it('a node container: the lesson address, every capability but SYS_RESOURCE, no seccomp, writable /proc/sys, no --privileged', () => {
    const c = nodeContainerSpec(topo, 'worker', 'cnilab-node:abc', '/run/cnilab/demo', '/usr/bin/node');
    expect(c.name).to.equal(`${NAME_PREFIX}demo-worker`);
    expect(c.Hostname).to.equal('worker');
    expect(c.Labels).to.include({ [LAB_LABEL]: 'demo', 'cnilab.node': 'worker' });
    expect(c.NetworkingConfig!.EndpointsConfig![`${NAME_PREFIX}demo-underlay`].IPAMConfig!.IPv4Address).to.equal('192.168.10.220');
    const h = c.HostConfig!;
    expect(h.Privileged).to.equal(undefined);
    expect(h.CapAdd).to.deep.equal(['ALL']);
    expect(h.CapDrop).to.deep.equal(['SYS_RESOURCE']);
    expect(h.SecurityOpt).to.include('seccomp=unconfined');
    expect(h.MaskedPaths).to.deep.equal([]);
    expect(h.ReadonlyPaths).to.deep.equal([]);
    expect(h.Init).to.equal(true);
    // The bundle and Node.js read-only at the host's own paths; the lab's directory shared for logs and pod files.
    expect(h.Devices).to.deep.equal([{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }]);
    expect(h.Binds).to.include.members([`${ROOT}/dist:${ROOT}/dist:ro`, `${ROOT}/node_modules:${ROOT}/node_modules:ro`, '/usr/bin/node:/usr/bin/node:ro', '/usr/bin/node:/usr/local/bin/node:ro', '/run/cnilab/demo:/run/cnilab/demo']);
    expect(() => nodeContainerSpec(topo, 'nope', 'i', '/x')).to.throw(/no node nope/);
  });

  it('a private dockerd keeps to its own directory and leaves iptables, forwarding and docker0 alone', () => {
    const argv = dockerdArgv('/tmp/e');
    expect(argv).to.include.members(['--iptables=false', '--ip6tables=false', '--ip-forward=false', '--bridge=none', 'unix:///tmp/e/docker.sock']);
    expect(argv.join(' ')).to.include('--data-root /tmp/e/data --exec-root /tmp/e/exec --pidfile /tmp/e/dockerd.pid');
  });
});

describe('docker backend: clean', () => {
  it('a lab whose engine is gone: its state goes, and the warning says what may remain where', async () => {
    const lab = 'dkr-engine-gone';
    new StateFile(lab, { backend: 'docker', docker: { host: 'unix:///nonexistent/docker.sock', containers: [`${NAME_PREFIX}${lab}-master`] } }).save();
    const warning = await cleanLab(lab);
    expect(warning).to.include('unix:///nonexistent/docker.sock does not answer').and.include(`${LAB_LABEL}=${lab}`);
    expect(existsSync(labDir(lab))).to.equal(false);
  });
});

describe('docker backend: node image', () => {
  it('holds the package of every node tool a lab or datapath names, and no compiler (programs are compiled on the host)', () => {
    const pkgs = nodePackages();
    const nodeTools = Object.values(DATAPATHS).flatMap((d) => d.tools).filter((t) => TOOLS[t].on.includes('node'));
    for (const t of nodeTools) expect(pkgs).to.include(TOOLS[t].package);
    expect(pkgs).to.not.include.members(['clang', 'llvm', 'libbpf-dev']);
    expect(pkgs).to.deep.equal([...new Set(pkgs)].sort());
  });

  it('names every tool a datapath uses in the one tool table', () => {
    for (const d of Object.values(DATAPATHS)) for (const t of d.tools) expect(TOOLS, `${d.name} uses ${t}`).to.have.property(t);
  });

  it('is named by a hash of what goes into it: same recipe, same name; another package, another name', () => {
    const r = imageRecipe('bookworm', 'amd64');
    expect(imageHash(r)).to.equal(imageHash(imageRecipe('bookworm', 'amd64')));
    expect(imageHash({ ...r, packages: [...r.packages, 'bird2'] })).to.not.equal(imageHash(r));
    expect(imageHash({ ...r, suite: 'trixie' })).to.not.equal(imageHash(r));
    expect(imageHash(r)).to.match(/^[0-9a-f]{16}$/);
  });

  it('is bootstrapped from the given mirror with every package, and imported with PATH and its labels', () => {
    const r = { suite: 'bookworm', arch: 'amd64', packages: ['curl', 'iproute2'], recipe: 1 };
    expect(debootstrapArgv(r, 'http://mirror.example/debian', '/t')).to.deep.equal([
      'debootstrap', '--variant=minbase', '--arch=amd64', '--include=curl,iproute2', 'bookworm', '/t', 'http://mirror.example/debian',
    ]);
    expect(importChanges('abc')).to.deep.equal(['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LABEL cnilab.image=node cnilab.image-hash=abc']);
  });

  it("finds the host's main archive in deb822 and one-line apt sources", () => {
    const deb822 = [
      'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n',
      'Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n',
    ].join('\n');
    expect(parseAptSources([{ name: 'debian.sources', text: deb822 }], 'bookworm')).to.deep.equal({ mirror: 'http://mirror.example/debian', suite: 'bookworm' });
    const disabled = 'Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n';
    const oneLine = '# comment\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64] http://one.example/debian bookworm main contrib\n';
    expect(parseAptSources([{ name: 'x.sources', text: disabled }, { name: 'sources.list', text: oneLine }], 'bookworm')).to.deep.equal({
      mirror: 'http://one.example/debian',
      suite: 'bookworm',
    });
    expect(parseAptSources([{ name: 'sources.list', text: oneLine }], 'trixie')).to.equal(undefined);
  });
});
