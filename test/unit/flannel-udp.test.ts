// The pure parts of flannel's UDP datapath: which node a packet goes to, the
// checksum the kernel leaves for us to finish, and splitting what UDP GRO coalesced.
import { expect } from 'chai';
import { parseCidr } from '../../src/net/ipnet.js';
import { finishChecksum, forEachPacket, RouteTable } from '../../src/datapaths/flannel/udp-datapath.js';
import { VNET_HDR_LEN } from '../../src/net/tun.js';

/** RFC 1071, written the slow and obvious way as the reference. */
function onesComplementSum(bytes: number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) + (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** An IPv4 packet: 20-byte header, then `l4` (whose checksum field is left to the caller). */
function ipv4(proto: number, src: number[], dst: number[], l4: number[]): Buffer {
  const total = 20 + l4.length;
  const p = Buffer.from([0x45, 0, total >> 8, total & 0xff, 0, 1, 0x40, 0, 64, proto, 0, 0, ...src, ...dst, ...l4]);
  return p;
}

function pseudoHeader(p: Buffer): number[] {
  const l4len = p.length - 20;
  return [...p.subarray(12, 20), 0, p[9], l4len >> 8, l4len & 0xff];
}

/** What the kernel hands over with VIRTIO_NET_HDR_F_NEEDS_CSUM: the pseudo-header sum in the field. */
function leavePartial(p: Buffer, offset: number): void {
  p.writeUInt16BE(onesComplementSum(pseudoHeader(p)), 20 + offset);
}

function fullChecksum(p: Buffer, offset: number): number {
  const copy = Buffer.from(p);
  copy.writeUInt16BE(0, 20 + offset);
  return ~onesComplementSum([...pseudoHeader(copy), ...copy.subarray(20)]) & 0xffff;
}

describe('flannel udp datapath', () => {
  it('sends a packet to the node that leased its destination subnet, and nowhere for others', () => {
    const t = new RouteTable();
    t.replace([
      { subnet: parseCidr('10.10.1.0/24')!, publicIp: '192.168.10.220' },
      { subnet: parseCidr('10.10.2.0/24')!, publicIp: '192.168.10.230' },
    ]);
    const to = t.lookup(0x0a0a0207)!; // 10.10.2.7
    expect([...to.subarray(0, 8)]).to.deep.equal([2, 0, 0x20, 0x5d, 192, 168, 10, 230]); // AF_INET, port 8285
    expect(t.lookup(0x0a0a0305)).to.equal(undefined);
    t.replace([]);
    expect(t.lookup(0x0a0a0207), 'a removed lease routes nowhere').to.equal(undefined);
  });

  for (const [name, proto, offset, payload] of [
    ['TCP, even length', 6, 16, 20 + 1000],
    ['TCP, odd length', 6, 16, 20 + 777],
    ['UDP', 17, 6, 8 + 100],
  ] as const) {
    it(`finishes a partial ${name} checksum as the full computation would`, () => {
      const l4 = Array.from({ length: payload }, (_, i) => (i * 37 + 11) & 0xff);
      const p = ipv4(proto, [10, 10, 0, 2], [10, 10, 1, 2], l4);
      const want = fullChecksum(p, offset);
      leavePartial(p, offset);
      finishChecksum(p, p.length, 20, offset);
      expect(p.readUInt16BE(20 + offset).toString(16)).to.equal(want.toString(16));
    });
  }

  it('splits coalesced datagrams by their IP lengths: plain packets and a super-packet with its header', () => {
    const a = ipv4(1, [10, 10, 0, 2], [10, 10, 1, 2], new Array(64).fill(1));
    const b = ipv4(1, [10, 10, 0, 2], [10, 10, 1, 2], new Array(30).fill(2));
    const big = Buffer.concat([Buffer.from([1, 1, 52, 0, 0xa0, 5, 34, 0, 16, 0]), ipv4(6, [10, 10, 0, 2], [10, 10, 1, 2], new Array(3000).fill(3))]);
    const datagram = Buffer.concat([a, b, big, Buffer.from([0x45, 0, 0])]); // and a torn tail
    const seen: [number, number, boolean][] = [];
    const end = forEachPacket(datagram, datagram.length, (at, len, plain) => seen.push([at, len, plain]));
    expect(seen).to.deep.equal([
      [0, VNET_HDR_LEN + a.length, true],
      [a.length, VNET_HDR_LEN + b.length, true],
      [a.length + b.length, big.length, false],
    ]);
    expect(end, 'the torn tail is not delivered').to.equal(datagram.length - 3);
  });
});

describe('flannel backends', () => {
  it('the lab schema accepts exactly the backends the agent has', async () => {
    const { FLANNEL_BACKENDS } = await import('../../src/datapaths/flannel/backends.js');
    const { flannelNetwork } = await import('../../src/datapaths/flannel/schema.js');
    expect(flannelNetwork.shape.backend.unwrap().options.slice().sort()).to.deep.equal(Object.keys(FLANNEL_BACKENDS).sort());
  });
});
