// Source NAT on a node, decided the way the kernel's nat table would: the
// POSTROUTING chain of `iptables -t nat -S`, jumps into the chains the CNI
// bridge plugin, flanneld and kube-proxy add, ACCEPT, RETURN, MASQUERADE and
// SNAT. Only the matches those rules use are understood (-s, -d, -o, -i, -p,
// comments, and the mark kube-proxy puts on what it masquerades); a rule
// with any other match is passed over and named, so nothing is guessed quietly.
import { contains, parseCidr, parseIp } from '../net/ipnet.js';

export interface NatPacket {
  src: string;
  dst: string;
  outDev: string;
  /** IP protocol: icmp for the trace's pings. */
  proto?: string;
  /** The packet's firewall mark: none on a trace's pings (only KUBE-MARK-MASQ sets one, for service traffic from outside the pod network). */
  mark?: number;
}

export interface NatVerdict {
  /** The rule that rewrote the source (as iptables -S prints it). */
  rule: string;
  /** MASQUERADE takes the address of the outgoing interface; SNAT names one. */
  masquerade: boolean;
  toSource?: string;
  /** Rules passed over because they use a match this evaluator does not know. */
  skipped: string[];
}

interface Rule {
  text: string;
  chain: string;
  matches: { opt: string; value: string; negated: boolean }[];
  target?: string;
  targetArgs: string[];
  unknown?: string;
}

/** Split an iptables -S line into words, keeping "quoted strings" whole. */
export function words(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

const KNOWN = new Set(['-s', '-d', '-o', '-i', '-p']);

export function parseRule(text: string): Rule | undefined {
  const w = words(text);
  if (w[0] !== '-A') return undefined;
  const rule: Rule = { text, chain: w[1], matches: [], targetArgs: [] };
  for (let i = 2; i < w.length; i++) {
    let negated = false;
    if (w[i] === '!') {
      negated = true;
      i++;
    }
    const opt = w[i];
    if (opt === '-j' || opt === '-g') {
      rule.target = w[++i];
      rule.targetArgs = w.slice(i + 1);
      break;
    }
    if (opt === '-m' && w[i + 1] === 'comment') {
      i += 3; // -m comment --comment "…"
      continue;
    }
    if (opt === '-m' && w[i + 1] === 'mark') {
      // -m mark [!] --mark value[/mask]
      let j = i + 2;
      const neg = w[j] === '!';
      if (neg) j++;
      if (w[j] === '--mark') {
        rule.matches.push({ opt: 'mark', value: w[j + 1], negated: neg });
        i = j + 1;
        continue;
      }
    }
    if (KNOWN.has(opt)) {
      rule.matches.push({ opt, value: w[++i], negated });
      continue;
    }
    // Anything else (another -m module and its --options): the rule is not judged.
    rule.unknown ??= opt === '-m' ? `-m ${w[i + 1]}` : opt;
    if (!opt.startsWith('--') || (w[i + 1] && !w[i + 1].startsWith('-'))) i++;
  }
  return rule;
}

function inNet(value: string, ip: string): boolean {
  const c = parseCidr(value.includes('/') ? value : `${value}/32`);
  const a = parseIp(ip);
  return c !== undefined && a !== undefined && contains(c, a);
}

function matches(r: Rule, p: NatPacket): boolean {
  return r.matches.every((m) => {
    if (m.opt === 'mark') {
      const [value, mask] = m.value.split('/').map((x) => Number(x));
      const hit = ((p.mark ?? 0) & (mask ?? 0xffffffff)) === value;
      return m.negated ? !hit : hit;
    }
    const hit =
      m.opt === '-s' ? inNet(m.value, p.src) : m.opt === '-d' ? inNet(m.value, p.dst) : m.opt === '-o' ? m.value === p.outDev || (m.value.endsWith('+') && p.outDev.startsWith(m.value.slice(0, -1))) : m.opt === '-p' ? m.value === (p.proto ?? 'icmp') || m.value === 'all' : false; // -i does not apply in POSTROUTING
    return m.negated ? !hit : hit;
  });
}

/** What POSTROUTING does to the packet's source: the rewriting rule, or undefined when it leaves as it is. */
export function sourceNat(lines: string[], p: NatPacket): NatVerdict | undefined {
  const rules = lines.map(parseRule).filter((r): r is Rule => r !== undefined);
  const skipped: string[] = [];
  const walkChain = (chain: string, depth: number): NatVerdict | 'accept' | undefined => {
    if (depth > 16) return undefined;
    for (const r of rules.filter((x) => x.chain === chain)) {
      if (!matches(r, p)) continue;
      if (r.unknown) {
        skipped.push(r.text); // its known matches fit, the rest we cannot judge
        continue;
      }
      if (r.target === 'ACCEPT') return 'accept';
      if (r.target === 'RETURN') return undefined;
      if (r.target === 'MASQUERADE') return { rule: r.text, masquerade: true, skipped };
      if (r.target === 'SNAT') {
        const to = r.targetArgs[r.targetArgs.indexOf('--to-source') + 1]?.split(':')[0];
        return { rule: r.text, masquerade: false, toSource: to, skipped };
      }
      if (r.target && rules.some((x) => x.chain === r.target)) {
        const v = walkChain(r.target, depth + 1);
        if (v) return v;
      }
    }
    return undefined;
  };
  const v = walkChain('POSTROUTING', 0);
  return v === 'accept' ? undefined : v;
}
