/* NetworkPolicy in the datapath, as Cilium enforces it: every address maps to
 * a security identity (ipcache: a pod's /32 to the identity of its label set,
 * a policy's CIDR to a CIDR identity, anything else is "world"); an endpoint a
 * policy isolates in a direction lets a new flow through only when its policy
 * map holds {endpoint, direction, identity, protocol, port} (0 = any); flows
 * it let through pass both ways (conntrack per endpoint and direction); every
 * drop is counted per endpoint, direction and reason. The agent fills the maps
 * (src/policy/cilium.ts computes them, src/datapaths/cilium/maps.ts lays them
 * out). IPv6 has its own ipcache6 and ct6, keyed by sixteen-byte addresses; a
 * pod's identity and the policy map are the same for both families. */
#ifndef CNILAB_POLICY_H
#define CNILAB_POLICY_H

#define DIR_INGRESS 0
#define DIR_EGRESS 1
#define IDENTITY_ANY 0
#define IDENTITY_WORLD 2
#define DROP_POLICY 133 /* Cilium's DROP_POLICY: "Policy denied" */
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct ipcache_value {
	__u32 identity;
};

struct policy_key {
	__u32 ifindex;  /* the endpoint: its lxc device */
	__u32 identity; /* the other end; IDENTITY_ANY for any */
	__u16 dport;    /* host order; 0 for any */
	__u8 proto;     /* 0 for any */
	__u8 dir;
};

struct policy_value {
	__u64 packets; /* new flows this entry let through */
};

/* Per endpoint: isolated for ingress, egress (some policy selects it). */
struct policy_state {
	__u8 ingress;
	__u8 egress;
	__u8 pad[2];
};

struct ct_key {
	__u32 ifindex;
	__u8 saddr[4];
	__u8 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 dir;
	__u8 pad[2];
};

struct ct_key6 {
	__u32 ifindex;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 dir;
	__u8 pad[2];
};

struct drop_key {
	__u32 ifindex;
	__u8 reason;
	__u8 dir;
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct remote_key);
	__type(value, struct ipcache_value);
} ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct remote_key6);
	__type(value, struct ipcache_value);
} ipcache6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct policy_state);
} policy_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key);
	__type(value, __u64);
} ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key6);
	__type(value, __u64);
} ct6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct drop_key);
	__type(value, __u64);
} drops SEC(".maps");

/* A packet's flow: addresses, protocol and ports (an ICMP echo's id stands in for the ports). */
struct flow {
	__be32 saddr;
	__be32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
};

static __always_inline void flow_of(struct __sk_buff *skb, struct iphdr *ip, struct flow *f)
{
	void *end = (void *)(long)skb->data_end;
	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->proto = ip->protocol;
	f->sport = 0;
	f->dport = 0;
	if (ip->ihl != 5)
		return; /* options: no ports read, only rules without ports can match */
	__u8 *l4 = (void *)(ip + 1);
	if ((void *)(l4 + 8) > end)
		return;
	if (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP) {
		f->sport = ((__u16)l4[0] << 8) | l4[1];
		f->dport = ((__u16)l4[2] << 8) | l4[3];
	} else if (f->proto == IPPROTO_ICMP) {
		__u16 id = ((__u16)l4[4] << 8) | l4[5];
		if (l4[0] == 8)
			f->sport = id; /* echo request */
		else if (l4[0] == 0)
			f->dport = id; /* echo reply: the request reversed */
	}
}

static __always_inline __u32 identity_of(__be32 addr)
{
	struct remote_key k = { .prefixlen = 32 };
	__builtin_memcpy(k.addr, &addr, 4);
	struct ipcache_value *v = bpf_map_lookup_elem(&ipcache, &k);
	return v ? v->identity : IDENTITY_WORLD;
}

static __always_inline struct ct_key ct_key_of(__u32 ifindex, __u8 dir, const struct flow *f, int reverse)
{
	struct ct_key k = { .ifindex = ifindex, .proto = f->proto, .dir = dir };
	if (reverse) {
		__builtin_memcpy(k.saddr, &f->daddr, 4);
		__builtin_memcpy(k.daddr, &f->saddr, 4);
		k.sport = f->dport;
		k.dport = f->sport;
	} else {
		__builtin_memcpy(k.saddr, &f->saddr, 4);
		__builtin_memcpy(k.daddr, &f->daddr, 4);
		k.sport = f->sport;
		k.dport = f->dport;
	}
	return k;
}

/* A flow this endpoint let through before, in this direction, or a reply to one it let through the other way. */
static __always_inline int ct_established(__u32 ifindex, __u8 dir, const struct flow *f)
{
	struct ct_key fwd = ct_key_of(ifindex, dir, f, 0);
	if (bpf_map_lookup_elem(&ct, &fwd))
		return 1;
	struct ct_key rev = ct_key_of(ifindex, dir == DIR_INGRESS ? DIR_EGRESS : DIR_INGRESS, f, 1);
	return bpf_map_lookup_elem(&ct, &rev) != NULL;
}

static __always_inline int policy_hit(__u32 ifindex, __u8 dir, __u32 identity, __u8 proto, __u16 dport)
{
	struct policy_key k = { .ifindex = ifindex, .identity = identity, .dport = dport, .proto = proto, .dir = dir };
	struct policy_value *v = bpf_map_lookup_elem(&policy, &k);
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->packets, 1);
	return 1;
}

/* The policy map, from the most specific entry to the least. */
static __always_inline int policy_allows(__u32 ifindex, __u8 dir, __u32 identity, const struct flow *f)
{
	__u16 port = f->proto == IPPROTO_ICMP ? 0 : f->dport; /* a rule with ports never matches ICMP */
	return policy_hit(ifindex, dir, identity, f->proto, port) || policy_hit(ifindex, dir, identity, f->proto, 0) ||
	       policy_hit(ifindex, dir, identity, 0, 0) || policy_hit(ifindex, dir, IDENTITY_ANY, f->proto, port) ||
	       policy_hit(ifindex, dir, IDENTITY_ANY, f->proto, 0) || policy_hit(ifindex, dir, IDENTITY_ANY, 0, 0);
}

static __always_inline void count_drop(__u32 ifindex, __u8 dir, __u8 reason)
{
	struct drop_key k = { .ifindex = ifindex, .reason = reason, .dir = dir };
	__u64 *n = bpf_map_lookup_elem(&drops, &k);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	__u64 one = 1;
	bpf_map_update_elem(&drops, &k, &one, BPF_NOEXIST);
}

/* Whether the endpoint behind `ifindex` lets this packet through in `dir`; the remote end is the other address. */
static __always_inline int policy_verdict(__u32 ifindex, __u8 dir, const struct flow *f)
{
	__u32 key = ifindex;
	struct policy_state *st = bpf_map_lookup_elem(&policy_state, &key);
	if (!st)
		return 1; /* no policy selects the pod: nothing to check, nothing to remember */
	int isolated = dir == DIR_INGRESS ? st->ingress : st->egress;
	if (isolated && !ct_established(ifindex, dir, f)) {
		__u32 remote = identity_of(dir == DIR_INGRESS ? f->saddr : f->daddr);
		if (!policy_allows(ifindex, dir, remote, f)) {
			count_drop(ifindex, dir, DROP_POLICY);
			return 0;
		}
	}
	/* Remember the flow either way: its replies pass even where the other direction is isolated. */
	struct ct_key k = ct_key_of(ifindex, dir, f, 0);
	__u64 seen = 1;
	if (!bpf_map_lookup_elem(&ct, &k))
		bpf_map_update_elem(&ct, &k, &seen, BPF_ANY);
	return 1;
}

/* An IPv6 packet's flow. Ports are read when the next header is TCP, UDP or
 * ICMPv6 itself; behind extension headers only rules without ports match. */
struct flow6 {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
};

#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

static __always_inline void flow6_of(struct __sk_buff *skb, struct ipv6hdr_ *ip6, struct flow6 *f)
{
	void *end = (void *)(long)skb->data_end;
	__builtin_memcpy(f->saddr, ip6->saddr, 16);
	__builtin_memcpy(f->daddr, ip6->daddr, 16);
	f->proto = ip6->nexthdr;
	f->sport = 0;
	f->dport = 0;
	__u8 *l4 = (void *)(ip6 + 1);
	if ((void *)(l4 + 8) > end)
		return;
	if (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP) {
		f->sport = ((__u16)l4[0] << 8) | l4[1];
		f->dport = ((__u16)l4[2] << 8) | l4[3];
	} else if (f->proto == IPPROTO_ICMPV6) {
		__u16 id = ((__u16)l4[4] << 8) | l4[5];
		if (l4[0] == ICMPV6_ECHO_REQUEST)
			f->sport = id;
		else if (l4[0] == ICMPV6_ECHO_REPLY)
			f->dport = id;
	}
}

static __always_inline __u32 identity_of6(const __u8 *addr)
{
	struct remote_key6 k = { .prefixlen = 128 };
	__builtin_memcpy(k.addr, addr, 16);
	struct ipcache_value *v = bpf_map_lookup_elem(&ipcache6, &k);
	return v ? v->identity : IDENTITY_WORLD;
}

static __always_inline struct ct_key6 ct_key6_of(__u32 ifindex, __u8 dir, const struct flow6 *f, int reverse)
{
	struct ct_key6 k = { .ifindex = ifindex, .proto = f->proto, .dir = dir };
	__builtin_memcpy(k.saddr, reverse ? f->daddr : f->saddr, 16);
	__builtin_memcpy(k.daddr, reverse ? f->saddr : f->daddr, 16);
	k.sport = reverse ? f->dport : f->sport;
	k.dport = reverse ? f->sport : f->dport;
	return k;
}

static __always_inline int ct6_established(__u32 ifindex, __u8 dir, const struct flow6 *f)
{
	struct ct_key6 fwd = ct_key6_of(ifindex, dir, f, 0);
	if (bpf_map_lookup_elem(&ct6, &fwd))
		return 1;
	struct ct_key6 rev = ct_key6_of(ifindex, dir == DIR_INGRESS ? DIR_EGRESS : DIR_INGRESS, f, 1);
	return bpf_map_lookup_elem(&ct6, &rev) != NULL;
}

/* policy_verdict for IPv6: the same identities and policy map, IPv6's own ipcache and conntrack. */
static __always_inline int policy_verdict6(__u32 ifindex, __u8 dir, const struct flow6 *f)
{
	__u32 key = ifindex;
	struct policy_state *st = bpf_map_lookup_elem(&policy_state, &key);
	if (!st)
		return 1;
	int isolated = dir == DIR_INGRESS ? st->ingress : st->egress;
	if (isolated && !ct6_established(ifindex, dir, f)) {
		__u32 remote = identity_of6(dir == DIR_INGRESS ? f->saddr : f->daddr);
		/* A rule with ports never matches ICMPv6, as for ICMP. */
		struct flow pf = { .proto = f->proto, .dport = f->proto == IPPROTO_ICMPV6 ? 0 : f->dport };
		if (!policy_allows(ifindex, dir, remote, &pf)) {
			count_drop(ifindex, dir, DROP_POLICY);
			return 0;
		}
	}
	struct ct_key6 k = ct_key6_of(ifindex, dir, f, 0);
	__u64 seen = 1;
	if (!bpf_map_lookup_elem(&ct6, &k))
		bpf_map_update_elem(&ct6, &k, &seen, BPF_ANY);
	return 1;
}

#endif
