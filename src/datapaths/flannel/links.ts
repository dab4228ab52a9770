// The node's links in one `ip -json link show`, sent through ip.batchJson: in the
// agent that is the ip kept running, so a lookup starts no process (an agent at
// start otherwise spends most of its CPU starting ip for one lookup after another).
import type { Ip, Link } from '../../net/ip.js';

export async function linksByName(ip: Ip): Promise<Map<string, Link>> {
  const [links = []] = await ip.batchJson<Link>([['link', 'show']]);
  return new Map(links.map((l) => [l.ifname, l]));
}
