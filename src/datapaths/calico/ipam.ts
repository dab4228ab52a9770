// Calico-style IPAM: a pool is cut into blocks (/26 by default, /122 for an
// IPv6 pool); a node claims
// whole blocks (affinity), one of each family, and its pods get one address
// per family from its own blocks, so each node announces a few block routes instead of one route per pod.
//
// The block math is pure; BlockAllocator does the read-modify-write against a
// store. A block is claimed with create-if-absent and updated with
// compare-and-swap, so parallel ADDs on any node never hand out one address twice.
import { CniError, ErrorCode } from '../../cni/errors.js';
import { firstAddr, formatAddr, formatPrefix, nthAddr, parsePrefix, prefixContains, prefixSize, subprefix, type Family, type Prefix } from '../../net/ipnet.js';
import { affinityOf, type Allocation, type Block, type IpamStore, type IpPool, type Versioned } from './store.js';

const prefixOf = (cidr: string): Prefix => parsePrefix(cidr)!;
/** The family of a pool's or a block's CIDR: 4 or 6. */
export const familyOfCidr = (cidr: string): Family => prefixOf(cidr).family;

/** The pool's blocks in address order, lazily: an IPv6 pool holds far too many to list. */
export function* poolBlocks(pool: IpPool): Generator<string> {
  const cidr = prefixOf(pool.cidr);
  const count = 1n << BigInt(pool.blockSize - cidr.prefix);
  for (let i = 0n; i < count; i++) yield formatPrefix(subprefix(cidr, pool.blockSize, i));
}

/** The first block of the pool nobody has claimed yet. */
export function nextFreeBlock(pool: IpPool, claimed: Set<string>): string | undefined {
  for (const b of poolBlocks(pool)) if (!claimed.has(b)) return b;
  return undefined;
}

const blockCidr = (b: Block): Prefix => prefixOf(b.cidr);
const blockSizeOf = (b: Block) => Number(prefixSize(blockCidr(b)));

/** The lowest free ordinal: deterministic, so a lab's addresses are the same on every run. */
export function freeOrdinal(b: Block): number | undefined {
  for (let i = 0; i < blockSizeOf(b); i++) if (!b.allocations[i]) return i;
  return undefined;
}

export function addressAt(b: Block, ordinal: number): string {
  return formatAddr(nthAddr(blockCidr(b), ordinal));
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
  const p = prefixOf(pool.cidr);
  const c = blockCidr(b);
  return c.family === p.family && c.prefix >= p.prefix && prefixContains(p, { family: c.family, value: firstAddr(c) });
}

const byAddress = (a: Versioned<Block>, b: Versioned<Block>) => {
  const [x, y] = [firstAddr(blockCidr(a.value)), firstAddr(blockCidr(b.value))];
  return x < y ? -1 : x > y ? 1 : 0;
};

export interface AssignRequest {
  node: string;
  handle: string;
  attrs?: Record<string, string>;
  /** Pool names or CIDRs to take from; all pools of the family when empty. */
  pools?: string[];
  /** IPv4 (the default) or IPv6: one address of the family per request. */
  family?: Family;
}

export class BlockAllocator {
  constructor(
    readonly store: IpamStore,
    /** Conflicts (another writer won a race) before giving up with "try again later". */
    readonly maxAttempts = 100,
  ) {}

  /** The pools of `family` to take from: those named in `wanted`, or all of the family. */
  private async choosePools(family: Family, wanted: string[] = []): Promise<IpPool[]> {
    const all = await this.store.pools();
    if (all.length === 0) throw new CniError(ErrorCode.TryAgainLater, 'no IP pool in the datastore yet (is calico-node installed?)');
    const field = `ipam.ipv${family}_pools`;
    const ofFamily = all.filter((p) => familyOfCidr(p.cidr) === family);
    if (wanted.length === 0) {
      if (ofFamily.length === 0) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ipam.assign_ipv${family}: no IPv${family} pool in the datastore (pools: ${all.map((p) => `${p.name} ${p.cidr}`).join(', ')})`);
      return ofFamily;
    }
    const chosen = ofFamily.filter((p) => wanted.includes(p.name) || wanted.includes(p.cidr));
    if (chosen.length === 0) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ${field}: none of ${wanted.join(', ')} is an IPv${family} pool (pools: ${all.map((p) => `${p.name} ${p.cidr}`).join(', ')})`);
    return chosen;
  }

  /** The node's blocks, claiming a free one of each family that has a pool and no block of the node yet. */
  async ensureBlock(node: string): Promise<Block[]> {
    const families = [...new Set((await this.store.pools()).map((p) => familyOfCidr(p.cidr)))].sort();
    if (families.length === 0) throw new CniError(ErrorCode.TryAgainLater, 'no IP pool in the datastore yet (is calico-node installed?)');
    for (const family of families) {
      for (let attempt = 0; ; attempt++) {
        if (attempt === this.maxAttempts) throw new CniError(ErrorCode.TryAgainLater, `could not claim an IPv${family} block for ${node}: ${this.maxAttempts} conflicting writers`);
        const chosen = await this.choosePools(family);
        const blocks = await this.store.blocks();
        if (blocks.some((b) => b.value.affinity === affinityOf(node) && familyOfCidr(b.value.cidr) === family)) break;
        if (await this.claim(node, chosen, blocks, {})) break;
      }
    }
    return (await this.store.blocks()).filter((b) => b.value.affinity === affinityOf(node)).sort(byAddress).map((b) => b.value);
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
   * An address of the family for `handle` from one of the node's blocks (claiming
   * a block if they are all full). A handle that already holds one gets it again.
   */
  async assign(req: AssignRequest): Promise<string> {
    const family = req.family ?? 4;
    const alloc: Allocation = { handle: req.handle, ...(req.attrs ? { attrs: req.attrs } : {}) };
    attempts: for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const pools = await this.choosePools(family, req.pools);
      const blocks = (await this.store.blocks()).filter((b) => familyOfCidr(b.value.cidr) === family);
      const held = blocks.flatMap((b) => addressesOf(b.value, req.handle));
      if (held.length) return held[0];
      const mine = blocks.filter((b) => b.value.affinity === affinityOf(req.node) && pools.some((p) => inPool(p, b.value))).sort(byAddress);
      for (const b of mine) {
        const next = assignIn(b.value, alloc);
        if (!next) continue;
        if (await this.store.updateBlock(next.block, b.revision)) return next.ip;
        continue attempts; // someone changed the block meanwhile: read again
      }
      const claimed = await this.claim(req.node, pools, blocks, { 0: alloc });
      if (claimed) return addressAt(claimed, 0);
    }
    throw new CniError(ErrorCode.TryAgainLater, `could not assign an IPv${family} address to ${req.handle}: ${this.maxAttempts} conflicting writers`);
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
