// Differential test for portmap on a dual-stack container: the reference
// portmap (Debian's containernetworking-plugins) and ours, chained after the
// same bridge + host-local configuration with an IPv4 and an IPv6 range, must
// write the same DNAT rules in iptables and ip6tables, and a hostPort on the
// node's IPv6 address (as on its IPv4 one) must reach the container's server.
import { expect } from 'chai';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNetns, run, startDetached } from '../../src/net/exec.js';
import { natRules } from '../../src/net/iptables.js';
import { stopPid } from '../../src/lab/processes.js';
import { NETWORK, OUR_PLUGINS, REFERENCE_PLUGINS, Sandbox, referencePair } from '../helpers/cni-sandbox.js';

const V6 = 'fd00:250::/64';
const NODE_V6 = 'fd00:250::1'; // the bridge's gateway address: one of the node's own
const NODE_V4 = '10.250.0.1';
const mappings = [
  { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
  { hostPort: 8443, containerPort: 80, protocol: 'tcp', hostIP: NODE_V6 },
  { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: NODE_V4 },
];

const portmapConf = (prevResult: unknown) => ({ cniVersion: '1.0.0', name: NETWORK, type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { portMappings: mappings }, prevResult });

/** The per-container DNAT rules and the entry jumps, chain names (hashes of different inputs) made alike. */
async function dnat(box: Sandbox, family: 4 | 6) {
  return (await natRules(box.node, family))
    .filter((r) => r.includes(' -j DNAT ') || r.endsWith('-j CNI-HOSTPORT-DNAT'))
    .map((r) => r.replace(/CNI-DN-[0-9a-f]+/g, 'CNI-DN-*'))
    .sort();
}

/** An HTTP server on [::]:80 in the container (both families), stopped by its PID. */
async function serve(box: Sandbox, ctr: string, ip: string): Promise<{ pid: number; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'cnitest-a-www-'));
  writeFileSync(join(dir, 'index.html'), 'hello from the container\n');
  const devnull = openSync('/dev/null', 'w');
  const pid = startDetached(inNetns(ctr, '/usr/bin/python3', ['-m', 'http.server', '--bind', '::', '--directory', dir, '80']), { stdout: devnull, stderr: devnull });
  closeSync(devnull);
  for (let i = 0; ; i++) {
    const r = await run(inNetns(box.node, 'curl', ['-s', '--max-time', '1', `http://[${ip}]/`]), { allowFailure: true });
    if (r.stdout.includes('hello')) return { pid, dir };
    if (i > 100) throw new Error('the server in the container did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** curl from the node; asked again a few times, as the node's gateway address may still be tentative (DAD) at first. */
async function fetchFromNode(box: Sandbox, url: string): Promise<string> {
  let out = '';
  for (let i = 0; i < 10 && !out.includes('hello'); i++) out = (await run(inNetns(box.node, 'curl', ['-s', '--max-time', '1', url]), { allowFailure: true })).stdout;
  return out;
}

describe('reference portmap against ours, dual-stack container, cniVersion 1.0.0', function () {
  this.timeout(60_000);
  const pair = referencePair('portmap');

  it('the same DNAT rules in iptables and ip6tables; hostPorts on the node\'s IPv6 and IPv4 addresses reach the container; DEL removes both', async () => {
    const boxes = [
      { box: pair.ref(), bin: REFERENCE_PLUGINS },
      { box: pair.ours(), bin: OUR_PLUGINS },
    ];
    const servers: { pid: number; dir: string }[] = [];
    const prevs: unknown[] = [];
    const ctrs: string[] = [];
    try {
      for (const b of boxes) {
        const ctr = await b.box.addContainer();
        const conf = b.box.bridgeConf('1.0.0', { isDefaultGateway: true }, { ranges: [[{ subnet: '10.250.0.0/24' }], [{ subnet: V6 }]] });
        const prev = await b.box.add(conf, ctr, 'ctr1', b.bin);
        prevs.push(prev);
        ctrs.push(ctr);
        const ip6 = prev.ips.find((i: { address: string }) => i.address.includes(':')).address.split('/')[0];
        const add = await b.box.call({ command: 'ADD', conf: portmapConf(prev), netns: ctr, plugin: 'portmap', binDir: b.bin });
        expect(add.exitCode, `${b.bin}: ${add.stdout}${add.stderr}`).to.equal(0);
        servers.push(await serve(b.box, ctr, ip6));
        // From the node's own processes (OUTPUT), to each of its addresses.
        for (const url of [`http://[${NODE_V6}]:8080/`, `http://[${NODE_V6}]:8443/`, `http://${NODE_V4}:8080/`]) {
          expect(await fetchFromNode(b.box, url), `${b.bin}: ${url}`).to.include('hello from the container');
        }
        // 8443 is published on the IPv6 address only.
        const v4 = await run(inNetns(b.box.node, 'curl', ['-s', '--max-time', '1', `http://${NODE_V4}:8443/`]), { allowFailure: true });
        expect(v4.stdout, b.bin).to.not.include('hello');
      }
      const [ref, ours] = boxes.map((b) => b.box);
      expect(await dnat(ours, 6)).to.deep.equal(await dnat(ref, 6));
      expect(await dnat(ours, 4)).to.deep.equal(await dnat(ref, 4));
      expect(await dnat(ours, 6)).to.include('-A CNI-DN-* -d fd00:250::1/128 -p tcp -m tcp --dport 8443 -j DNAT --to-destination [fd00:250::2]:80');

      // Our CHECK reads both tables: it passes, and names the IPv6 rule once that is gone.
      const check = () => ours.call({ command: 'CHECK', conf: portmapConf(prevs[1]), netns: ctrs[1], plugin: 'portmap' });
      expect((await check()).exitCode, (await check()).stdout).to.equal(0);
      const rule = (await natRules(ours.node, 6)).find((r) => r.includes('--dport 8443 -j DNAT'))!;
      await run(inNetns(ours.node, 'ip6tables', ['-w', '-t', 'nat', ...rule.replace(/^-A /, '-D ').split(' ')]));
      expect((await check()).json.msg).to.match(/lacks the rule "-A CNI-DN-[0-9a-f]+ -d fd00:250::1\/128 -p tcp -m tcp --dport 8443 -j DNAT --to-destination \[fd00:250::2\]:80" in ip6tables/);

      for (const b of boxes) {
        const del = await b.box.call({ command: 'DEL', conf: portmapConf(undefined), netns: '', plugin: 'portmap', binDir: b.bin });
        expect(del.exitCode, `${b.bin}: ${del.stdout}`).to.equal(0);
        expect((await dnat(b.box, 6)).filter((r) => r.includes('DNAT --to'))).to.deep.equal([]);
        expect((await dnat(b.box, 4)).filter((r) => r.includes('DNAT --to'))).to.deep.equal([]);
      }
    } finally {
      for (const s of servers) {
        await stopPid(s.pid);
        rmSync(s.dir, { recursive: true, force: true });
      }
    }
  });
});
