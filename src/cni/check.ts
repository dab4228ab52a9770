// What every main plugin's CHECK starts with: the ADD's result, the container's
// namespace, the IPAM plugin's own CHECK, and the addresses the result promised.
import type { CmdArgs } from './env.js';
import { CniError, ErrorCode, invalidConfig } from './errors.js';
import { delegateIpam, requireNetns, type IpamDelegation } from './invoke.js';
import type { Result } from './result.js';
import { Ip, type Link } from '../net/ip.js';

export const mismatch = (what: string) => new CniError(ErrorCode.StateMismatch, `CHECK failed: ${what}`);

/** prevResult (required), the namespace (required), then IPAM's CHECK; returns prevResult. */
export async function beginCheck(args: CmdArgs, conf: IpamDelegation & { prevResult?: Result }): Promise<Result> {
  const prev = conf.prevResult;
  if (!prev) throw invalidConfig('prevResult', 'CHECK needs the result of the ADD');
  requireNetns(args);
  await delegateIpam('CHECK', conf, args);
  return prev;
}

/**
 * The container's interface is there and holds every address the result gave it
 * (those of interface `index` when given); returns the link as the kernel reports it.
 */
export async function checkContainerAddresses(args: CmdArgs, prev: Result, index?: number): Promise<Link> {
  const [link] = await new Ip(args.netns).json<Link[]>('addr', 'show', 'dev', args.ifname).catch(() => [] as Link[]);
  if (!link) throw mismatch(`${args.ifname} is missing in ${args.netns}`);
  const have = new Set((link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
  for (const ip of prev.ips ?? []) {
    if ((index === undefined || ip.interface === index) && !have.has(ip.address)) throw mismatch(`${args.ifname} lacks ${ip.address}`);
  }
  return link;
}
