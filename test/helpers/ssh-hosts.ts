// Machines for the hosts backend, made of containers of cnilab's node image on a
// private engine: each runs Debian's sshd, started per connection by the ssh
// client's ProxyCommand (`docker exec -i … sshd -i`), on an underlay network of
// its own. Nothing of cnilab is mounted into them. Used by test/lab/hosts.test.ts
// and by scripts/bench-backends.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { execa } from 'execa';
import { NAME_PREFIX } from '../../src/lab/state.js';
import { dockerExec, machineHostConfig } from '../../src/topologies/docker.js';
import type { TestEngine } from './private-engine.js';

export interface SshHostsSpec {
  /** The machines' network, e.g. 172.31.7.0/24, and its gateway address (never on this machine: the network is internal). */
  subnet: string;
  gateway: string;
  /** Per lab node: its machine's name, address and underlay device (renamed from eth0 when another). */
  nodes: Record<string, { host: string; address: string; iface: string }>;
}

export interface SshHosts {
  /** The inventory file the hosts backend reads. */
  inventory: string;
  sshConfig: string;
  /** The machines by host name. */
  machines: Record<string, Docker.Container>;
}

const NETWORK = `${NAME_PREFIX}hosts-test-underlay`;
const container = (host: string) => `${NAME_PREFIX}hosts-test-${host}`;

/** A machine as a node-image container: every capability a kernel-level lab needs, its own address, nothing of cnilab mounted. */
function machineSpec(image: string, host: string, address: string): Docker.ContainerCreateOptions {
  return {
    name: container(host),
    Hostname: host,
    Image: image,
    Cmd: ['sleep', 'infinity'],
    HostConfig: machineHostConfig(NETWORK),
    NetworkingConfig: { EndpointsConfig: { [NETWORK]: { IPAMConfig: { IPv4Address: address } } } },
  };
}

/** The machines, their ssh config (keys under t.dir) and the inventory; a first login is made to each. */
export async function startSshHosts(t: TestEngine, spec: SshHostsSpec): Promise<SshHosts> {
  const { docker } = t.engine;
  const dir = t.dir;
  await docker.createNetwork({
    Name: NETWORK,
    Driver: 'bridge',
    Internal: true,
    IPAM: { Driver: 'default', Config: [{ Subnet: spec.subnet, Gateway: spec.gateway }] },
    Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true', 'com.docker.network.driver.mtu': '1500' },
  });
  // A client key, and one host key every machine presents (known_hosts names every machine).
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]);
  const hostKey = readFileSync(join(dir, 'hostkey'), 'utf8');
  const hostPub = readFileSync(join(dir, 'hostkey.pub'), 'utf8').trim();
  const hosts = Object.values(spec.nodes);
  writeFileSync(join(dir, 'known_hosts'), hosts.map((h) => `${h.host} ${hostPub}\n`).join(''));
  const machines: Record<string, Docker.Container> = {};
  for (const { host, address, iface } of hosts) {
    const c = await docker.createContainer(machineSpec(t.image, host, address));
    await c.start();
    machines[host] = c;
    await dockerExec(c, ['sh', '-c', 'umask 077 && mkdir -p /root/.ssh /run/sshd && cat > /etc/ssh/test_host_key'], { input: hostKey });
    await dockerExec(c, ['sh', '-c', 'cat > /root/.ssh/authorized_keys'], { input: readFileSync(join(dir, 'id.pub'), 'utf8') });
    if (iface !== 'eth0') await dockerExec(c, ['sh', '-c', `ip link set eth0 down && ip link set eth0 name ${iface} && ip link set ${iface} up`]);
  }
  const proxy = `docker -H ${t.engine.host} exec -i ${container('%n')} /usr/sbin/sshd -i -e -h /etc/ssh/test_host_key -o LogLevel=ERROR -o UsePAM=no`;
  const sshConfig = join(dir, 'ssh_config');
  writeFileSync(
    sshConfig,
    [`Host ${hosts.map((h) => h.host).join(' ')}`, '  User root', `  IdentityFile ${join(dir, 'id')}`, '  IdentitiesOnly yes', `  UserKnownHostsFile ${join(dir, 'known_hosts')}`, '  StrictHostKeyChecking yes', `  ProxyCommand ${proxy}`, ''].join('\n'),
  );
  const inventory = join(dir, 'hosts.yaml');
  writeFileSync(inventory, ['sshConfig: ./ssh_config', 'nodes:', ...Object.entries(spec.nodes).map(([n, h]) => `  ${n}: { host: ${h.host}, interface: ${h.iface} }`), ''].join('\n'));
  // A first login writes the login records; a machine's "before" is after it.
  for (const { host } of hosts) await execa('ssh', ['-F', sshConfig, host, 'true']);
  return { inventory, sshConfig, machines };
}
