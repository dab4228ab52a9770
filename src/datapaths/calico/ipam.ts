// Calico-style IPAM: a pool is cut into blocks (/26 by default); a node claims
// whole blocks (affinity), and its pods get addresses from its own blocks, so
// each node announces a few block routes instead of one route per pod.
//
// The block math is pure; BlockAllocator does the read-modify-write against a
// store. A block is claimed with create-if-absent and updated with
// compare-and-swap, so parallel ADDs on any node never hand out one address twice.
import { CniError, ErrorCode } from '../../cni/errors.js';
import { contains, formatCidr, formatIp, network, parseCidr, parseIp, subnet, type Cidr } from '../../net/ipnet.js';
import { affinityOf, type Allocation, type Block, type IpamStore, type IpPool, type Versioned } from './store.js';

/** Every block of a pool, in address order. */
export function poolBlocks(pool: IpPool): string[] {
  const cidr = parseCidr(pool.cidr)!;
  const count = 2 ** (pool.blockSize - cidr.prefix);
  return Array.from({ length: count }, (_, i) => formatCidr(subnet(cidr, pool.blockSize, i)));
}

/** The first block of the pool nobody has claimed yet. */
export function nextFreeBlock(pool: IpPool, claimed: Set<string>): string | undefined {
  return poolBlocks(pool).find((b) => !claimed.has(b));
}

const blockCidr = (b: Block): Cidr => parseCidr(b.cidr)!;
const blockSizeOf = (b: Block) => 2 ** (32 - blockCidr(b).prefix);

/** The lowest free ordinal: deterministic, so a lab's addresses are the same on every run. */
export function freeOrdinal(b: Block): number | undefined {
  for (let i = 0; i < blockSizeOf(b); i++) if (!b.allocations[i]) return i;
  return undefined;
}

export function addressAt(b: Block, ordinal: number): string {
  return formatIp(network(blockCidr(b)) + ordinal);
}

/** The block with one more address held by `handle`, or undefined when it is full. */
export function assignIn(b: Block, alloc: Allocation): { block: Block; ip: string } | undefined {
  const ordinal = freeOrdinal(b);
  if (ordinal === undefined) return undefined;
  return { block: { ...b, allocations: { ...b.allocations, [ordinal]: alloc } }, ip: addressAt(b, ordinal) };
}

/** Addresses `handle` holds in a block. */
export function addressesOf(b: Block, handle: string): string[] {
  return Object.entries(b.allocations)
    .filter(([, a]) => a.handle === handle)
    .map(([ordinal]) => addressAt(b, Number(ordinal)));
}

/** The block without `handle`'s addresses, or undefined when it held none. */
export function releaseFrom(b: Block, handle: string): Block | undefined {
  const kept = Object.entries(b.allocations).filter(([, a]) => a.handle !== handle);
  if (kept.length === Object.keys(b.allocations).length) return undefined;
  return { ...b, allocations: Object.fromEntries(kept) };
}

function inPool(pool: IpPool, b: Block): boolean {
  const p = parseCidr(pool.cidr)!;
  const c = blockCidr(b);
  return c.prefix >= p.prefix && contains(p, network(c));
}

export interface AssignRequest {
  node: string;
  handle: string;
  attrs?: Record<string, string>;
  /** Pool names or CIDRs to take from; all pools when empty. */
  pools?: string[];
}

export class BlockAllocator {
  constructor(
    readonly store: IpamStore,
    /** Conflicts (another writer won a race) before giving up with "try again later". */
    readonly maxAttempts = 100,
  ) {}

  private async choosePools(wanted: string[] = []): Promise<IpPool[]> {
    const all = await this.store.pools();
    if (all.length === 0) throw new CniError(ErrorCode.TryAgainLater, 'no IP pool in the datastore yet (is calico-node installed?)');
    if (wanted.length === 0) return all;
    const chosen = all.filter((p) => wanted.includes(p.name) || wanted.includes(p.cidr));
    if (chosen.length === 0) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ipam.ipv4_pools: none of ${wanted.join(', ')} is a pool (pools: ${all.map((p) => `${p.name} ${p.cidr}`).join(', ')})`);
    return chosen;
  }

  /** The node's blocks, claiming the pool's next free one when it has none. */
  async ensureBlock(node: string, pools?: string[]): Promise<Block[]> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const chosen = await this.choosePools(pools);
      const blocks = await this.store.blocks();
      const mine = blocks.filter((b) => b.value.affinity === affinityOf(node)).map((b) => b.value);
      if (mine.length) return mine;
      const claimed = await this.claim(node, chosen, blocks, {});
      if (claimed) return [claimed];
    }
    throw new CniError(ErrorCode.TryAgainLater, `could not claim a block for ${node}: ${this.maxAttempts} conflicting writers`);
  }

  /** Try to claim the first free block of the first pool with one; undefined when someone else got it first. */
  private async claim(node: string, pools: IpPool[], blocks: Versioned<Block>[], allocations: Block['allocations']): Promise<Block | undefined> {
    const taken = new Set(blocks.map((b) => b.value.cidr));
    for (const pool of pools) {
      const cidr = nextFreeBlock(pool, taken);
      if (!cidr) continue;
      const block: Block = { cidr, affinity: affinityOf(node), allocations };
      return (await this.store.createBlock(block)) ? block : undefined;
    }
    throw new CniError(ErrorCode.AddressRangeExhausted, `every block of ${pools.map((p) => p.cidr).join(', ')} is claimed and ${node}'s blocks are full`);
  }

  /**
   * An address for `handle` from one of the node's blocks (claiming a block if
   * they are all full). A handle that already holds an address gets it again.
   */
  async assign(req: AssignRequest): Promise<string> {
    const alloc: Allocation = { handle: req.handle, ...(req.attrs ? { attrs: req.attrs } : {}) };
    attempts: for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const pools = await this.choosePools(req.pools);
      const blocks = await this.store.blocks();
      const held = blocks.flatMap((b) => addressesOf(b.value, req.handle));
      if (held.length) return held[0];
      const mine = blocks
        .filter((b) => b.value.affinity === affinityOf(req.node) && pools.some((p) => inPool(p, b.value)))
        .sort((a, b) => parseIp(a.value.cidr.split('/')[0])! - parseIp(b.value.cidr.split('/')[0])!);
      for (const b of mine) {
        const next = assignIn(b.value, alloc);
        if (!next) continue;
        if (await this.store.updateBlock(next.block, b.revision)) return next.ip;
        continue attempts; // someone changed the block meanwhile: read again
      }
      const claimed = await this.claim(req.node, pools, blocks, { 0: alloc });
      if (claimed) return addressAt(claimed, 0);
    }
    throw new CniError(ErrorCode.TryAgainLater, `could not assign an address to ${req.handle}: ${this.maxAttempts} conflicting writers`);
  }

  /** Free every address `handle` holds; returns them (none is fine: DEL may come twice). */
  async release(handle: string): Promise<string[]> {
    const released: string[] = [];
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      let conflict = false;
      for (const b of await this.store.blocks()) {
        const next = releaseFrom(b.value, handle);
        if (!next) continue;
        if (!(await this.store.updateBlock(next, b.revision))) {
          conflict = true;
          break;
        }
        released.push(...addressesOf(b.value, handle));
      }
      if (!conflict) return released;
    }
    throw new CniError(ErrorCode.TryAgainLater, `could not release ${handle}: ${this.maxAttempts} conflicting writers`);
  }

  async addresses(handle: string): Promise<string[]> {
    return (await this.store.blocks()).flatMap((b) => addressesOf(b.value, handle));
  }
}
