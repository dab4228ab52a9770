// Bad input to the built bridge plugin: each case must fail with the spec's
// error code, a message that names the field or variable at fault, and leave
// the kernel and the lease directory exactly as they were.
import { expect } from 'chai';
import type { Command } from '../../src/cni/env.js';
import { ErrorCode } from '../../src/cni/errors.js';
import { BRIDGE, NS_PREFIX, Sandbox, buildPlugins } from '../helpers/cni-sandbox.js';

interface BadCase {
  title: string;
  code: number;
  /** Words the message must contain: the field or variable, and the bad value where useful. */
  mentions: string[];
  command?: Command;
  /** The config to send; defaults to a good 1.1.0 bridge config. */
  conf?: (box: Sandbox) => Record<string, unknown> | string;
  env?: Record<string, string | undefined>;
  /** Prepare the node or other containers before the call. */
  setup?: (box: Sandbox) => Promise<void>;
}

const good = (box: Sandbox, extra: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) => box.bridgeConf('1.1.0', extra, ipam);
const ranges = (...sets: Record<string, unknown>[][]) => ({ ranges: sets });
const without = (obj: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(obj).filter(([k]) => k !== key));

const cases: BadCase[] = [
  // Decoding the config (code 6).
  { title: 'broken JSON', code: ErrorCode.DecodeFailure, mentions: ['not valid JSON'], conf: () => '{"cniVersion": "1.1.0", "name": ' },
  { title: 'a JSON list instead of an object', code: ErrorCode.DecodeFailure, mentions: ['JSON object'], conf: () => '[1, 2]' },
  { title: 'empty stdin', code: ErrorCode.DecodeFailure, mentions: ['JSON'], conf: () => '' },
  {
    title: 'a prevResult whose ips is not a list',
    code: ErrorCode.DecodeFailure,
    mentions: ['prevResult.ips'],
    command: 'CHECK',
    conf: (box) => ({ ...good(box), prevResult: { cniVersion: '1.1.0', ips: 'none' } }),
  },

  // The environment (code 4): the variable is named.
  {
    title: 'missing env vars, all named in one message',
    code: ErrorCode.InvalidEnvironment,
    mentions: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
    env: { CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined, CNI_PATH: undefined },
  },
  { title: 'no CNI_COMMAND', code: ErrorCode.InvalidEnvironment, mentions: ['CNI_COMMAND'], env: { CNI_COMMAND: undefined } },
  { title: 'an unknown CNI_COMMAND', code: ErrorCode.InvalidEnvironment, mentions: ['CNI_COMMAND', 'ATTACH'], env: { CNI_COMMAND: 'ATTACH' } },
  { title: 'an ifname over 15 characters', code: ErrorCode.InvalidEnvironment, mentions: ['CNI_IFNAME', 'eth0123456789abc', '15'], env: { CNI_IFNAME: 'eth0123456789abc' } },
  { title: 'an ifname with "/"', code: ErrorCode.InvalidEnvironment, mentions: ['CNI_IFNAME', 'eth/0'], env: { CNI_IFNAME: 'eth/0' } },
  { title: 'a container ID with "../"', code: ErrorCode.InvalidEnvironment, mentions: ['CNI_CONTAINERID', '../etc'], env: { CNI_CONTAINERID: '../etc' } },
  { title: 'a CNI_ARGS entry without "="', code: ErrorCode.InvalidEnvironment, mentions: ['CNI_ARGS', 'IgnoreUnknown'], env: { CNI_ARGS: 'IgnoreUnknown' } },
  {
    title: 'a CNI_NETNS that does not exist',
    code: ErrorCode.InvalidEnvironment,
    mentions: ['CNI_NETNS', `/run/netns/${NS_PREFIX}nosuch`],
    env: { CNI_NETNS: `/run/netns/${NS_PREFIX}nosuch` },
  },

  // Versions.
  { title: 'an unknown cniVersion', code: ErrorCode.IncompatibleVersion, mentions: ['cniVersion', '9.9.9'], conf: (box) => good(box, { cniVersion: '9.9.9' }) },
  { title: 'a cniVersion that is not a version', code: ErrorCode.InvalidConfig, mentions: ['cniVersion', 'latest'], conf: (box) => good(box, { cniVersion: 'latest' }) },

  // The fields every plugin shares.
  { title: 'a missing name', code: ErrorCode.InvalidConfig, mentions: ['name', 'required'], conf: (box) => without(good(box), 'name') },
  { title: 'a missing type', code: ErrorCode.InvalidConfig, mentions: ['type', 'required'], conf: (box) => without(good(box), 'type') },
  { title: 'CHECK without prevResult', code: ErrorCode.InvalidConfig, mentions: ['prevResult'], command: 'CHECK' },
  {
    title: 'cni.dev/valid-attachments that is not a list',
    code: ErrorCode.InvalidConfig,
    mentions: ['cni.dev/valid-attachments', 'list'],
    command: 'GC',
    conf: (box) => ({ ...good(box), 'cni.dev/valid-attachments': 'all' }),
  },

  // bridge's own fields.
  { title: 'a bridge name of the wrong type', code: ErrorCode.InvalidConfig, mentions: ['bridge', 'string', '42'], conf: (box) => good(box, { bridge: 42 }) },
  { title: 'a bridge name over 15 characters', code: ErrorCode.InvalidConfig, mentions: ['bridge', 'cnitest-a-bridge0', '15'], conf: (box) => good(box, { bridge: 'cnitest-a-bridge0' }) },
  {
    title: 'an existing non-bridge device with the bridge name',
    code: ErrorCode.InvalidConfig,
    mentions: ['bridge', BRIDGE, 'veth', 'not a bridge'],
    setup: async (box) => void (await box.nodeIp.cmd('link', 'add', BRIDGE, 'type', 'veth', 'peer', 'name', 'cnitest-a-peer')),
  },
  { title: 'an MTU below 68', code: ErrorCode.InvalidConfig, mentions: ['mtu', '10'], conf: (box) => good(box, { mtu: 10 }) },
  { title: 'isGateway as a string', code: ErrorCode.InvalidConfig, mentions: ['isGateway', 'true or false'], conf: (box) => good(box, { isGateway: 'yes' }) },

  // host-local's fields, named by their full path.
  { title: 'ipam without a type', code: ErrorCode.InvalidConfig, mentions: ['ipam.type', 'required'], conf: (box) => good(box, {}, { type: undefined }) },
  {
    title: 'an IPAM plugin that is not on CNI_PATH',
    code: ErrorCode.PluginNotAvailable,
    mentions: ['nosuchipam', 'CNI_PATH'],
    conf: (box) => good(box, {}, { type: 'nosuchipam' }),
  },
  { title: 'ipam without ranges', code: ErrorCode.InvalidConfig, mentions: ['ipam.ranges', 'required'], conf: (box) => good(box, {}, { ranges: undefined }) },
  {
    title: 'a subnet that is not a CIDR',
    code: ErrorCode.InvalidConfig,
    mentions: ['ipam.ranges[0][0].subnet', '10.250.0.0'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.0.0' }])),
  },
  {
    title: 'overlapping ranges',
    code: ErrorCode.InvalidConfig,
    mentions: ['ipam.ranges[1][0].subnet', 'overlaps', 'ipam.ranges[0][0]'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.0.0/16' }], [{ subnet: '10.250.3.0/24' }])),
  },
  {
    title: 'rangeStart outside the subnet',
    code: ErrorCode.InvalidConfig,
    mentions: ['ipam.ranges[0][0].rangeStart', '10.251.0.5', 'outside'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.0.0/24', rangeStart: '10.251.0.5' }])),
  },
  {
    title: 'rangeStart after rangeEnd',
    code: ErrorCode.InvalidConfig,
    mentions: ['ipam.ranges[0][0].rangeStart', 'rangeEnd'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.0.0/24', rangeStart: '10.250.0.50', rangeEnd: '10.250.0.20' }])),
  },
  {
    title: 'a gateway that is not an address',
    code: ErrorCode.InvalidConfig,
    mentions: ['ipam.ranges[0][0].gateway', '10.250.0.300'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.0.0/24', gateway: '10.250.0.300' }])),
  },
  {
    title: 'a gateway outside the subnet',
    code: ErrorCode.InvalidConfig,
    mentions: ['ipam.ranges[0][0].gateway', '10.9.9.1', 'outside'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.0.0/24', gateway: '10.9.9.1' }])),
  },
  {
    title: 'a route whose dst is not a CIDR',
    code: ErrorCode.InvalidConfig,
    mentions: ['ipam.routes[0].dst', 'default'],
    conf: (box) => good(box, {}, { routes: [{ dst: 'default' }] }),
  },
  {
    title: 'a bad IPv6 range',
    code: ErrorCode.InvalidConfig,
    mentions: ['ipam.ranges[1][0].subnet', 'fd00:250:::/64'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.0.0/24' }], [{ subnet: 'fd00:250:::/64' }])),
  },
  {
    title: 'IPv4 and IPv6 in one range set',
    code: ErrorCode.InvalidConfig,
    mentions: ['ipam.ranges[0][1].subnet', 'IPv6', 'one family'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.0.0/24' }, { subnet: 'fd00:250::/64' }])),
  },
  { title: 'an empty range list', code: ErrorCode.InvalidConfig, mentions: ['ipam.ranges', 'empty'], conf: (box) => good(box, {}, { ranges: [] }) },
  {
    title: 'an exhausted IPv6 range beside a free IPv4 one',
    code: ErrorCode.AddressRangeExhausted,
    mentions: ['no free address', 'fd00:250::1-fd00:250::3'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.0.0/24' }], [{ subnet: 'fd00:250::/126' }])),
    setup: async (box) => {
      for (const id of ['o1', 'o2']) await box.add(good(box, {}, ranges([{ subnet: '10.250.0.0/24' }], [{ subnet: 'fd00:250::/126' }])), await box.addContainer(), id);
    },
  },
  {
    title: 'an exhausted range',
    code: ErrorCode.AddressRangeExhausted,
    mentions: ['no free address', '10.250.9.2'],
    conf: (box) => good(box, {}, ranges([{ subnet: '10.250.9.0/30' }])),
    // A /30 holds one address besides the gateway: another container takes it.
    setup: async (box) => {
      const other = await box.addContainer();
      await box.add(good(box, {}, ranges([{ subnet: '10.250.9.0/30' }])), other, 'other');
    },
  },
];

describe(`bad input to the bridge plugin (${cases.length} cases)`, () => {
  let box: Sandbox;
  let ctr: string;
  before(buildPlugins);
  beforeEach(async () => {
    box = await Sandbox.create();
    ctr = await box.addContainer();
  });
  afterEach(async () => box.destroy());

  it('has at least 20 cases', () => expect(cases.length).to.be.at.least(20));

  for (const c of cases) {
    it(`${c.title}: code ${c.code}, names ${c.mentions.join(', ')}, leaves nothing behind`, async () => {
      await c.setup?.(box);
      const before = await box.snapshot();
      const out = await box.call({ command: c.command ?? 'ADD', conf: c.conf ? c.conf(box) : good(box), netns: ctr, env: c.env });

      expect(out.exitCode, out.stdout + out.stderr).to.not.equal(0);
      expect(out.json, `stdout: ${out.stdout}`).to.be.an('object');
      expect(out.json.code, out.json.msg).to.equal(c.code);
      expect(out.json.cniVersion).to.be.a('string');
      for (const word of c.mentions) expect(out.json.msg).to.include(word);
      expect(await box.snapshot()).to.deep.equal(before);
    });
  }
});
