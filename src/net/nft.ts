// nftables through Debian's `nft`: a script applied as one transaction, and a table read back.
import { inNetns, run, type Netns } from './exec.js';

/** Apply an nft script (`nft -f -`): every line of it or none. */
export async function nftApply(netns: Netns, script: string): Promise<void> {
  await run(inNetns(netns, 'nft', ['-f', '-']), { input: script });
}

/** A table as `nft list table` prints it, or undefined when there is none. */
export async function nftListTable(netns: Netns, family: string, table: string): Promise<string | undefined> {
  const r = await run(inNetns(netns, 'nft', ['list', 'table', family, table]), { allowFailure: true });
  return r.exitCode === 0 ? r.stdout : undefined;
}
