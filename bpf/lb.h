/* Services in the datapath, as Cilium's kube-proxy replacement keeps them
 * (bpf/lib/lb.h there): a service map keyed by frontend address, port,
 * protocol and a backend slot (slot 0 holds the backend count and the flags,
 * slots 1..count each one backend ID), a backend map (ID -> pod address and
 * port) and a reverse-NAT map (index -> frontend). A pod's packet to a
 * frontend is translated on its lxc device (DNAT); the reply is translated
 * back (source becomes the frontend again) just before it reaches the pod. A
 * connection stays on its backend through a conntrack-like LRU map, and a
 * ClientIP service keeps a client on one backend through the affinity map.
 * NodePort frontends (the node's own address) are translated on the node's
 * underlay device, with the source rewritten to the node (externalTrafficPolicy
 * Cluster), so replies come back through the node that translated them.
 * Ports are kept in host order in every map, so `bpftool map dump` shows 80 as
 * 80. src/services/ebpf-maps.ts lays the entries out; the kube-proxy agent in
 * ebpf mode writes them. */
#ifndef CNILAB_LB_H
#define CNILAB_LB_H

#define SVC_FLAG_NODEPORT 1
#define SVC_FLAG_AFFINITY 2
#define LB_CT_SERVICE 0 /* client -> frontend: the backend this connection uses */
#define LB_CT_REPLY 1   /* backend -> client (or node): what to restore on replies */
#define LB_CT_SNAT 1    /* the reply's destination is the node: restore the client too */

struct lb4_key {
	__u8 address[4];   /* the frontend: a ClusterIP, or a node's address for a NodePort */
	__u16 dport;
	__u16 backend_slot; /* 0: the service itself; 1..count: its backends */
	__u8 proto;
	__u8 scope;
	__u8 pad[2];
};

struct lb4_service {
	__u32 backend_id;     /* slot > 0: the backend; slot 0: the affinity timeout in seconds */
	__u16 count;          /* slot 0: how many backend slots follow */
	__u16 rev_nat_index;  /* the frontend, in lb4_reverse_nat */
	__u8 flags;           /* SVC_FLAG_* */
	__u8 flags2;
	__u16 pad;
};

struct lb4_backend {
	__u8 address[4];
	__u16 port;
	__u8 proto;
	__u8 flags;
};

struct lb4_reverse_nat {
	__u8 address[4];
	__u16 port;
	__u16 pad;
};

struct lb4_affinity_key {
	__u8 client[4];
	__u16 rev_nat_index;
	__u16 pad;
};

struct lb4_affinity_val {
	__u64 last_used; /* ns since boot */
	__u32 backend_id;
	__u32 pad;
};

struct lb4_ct_key {
	__u8 saddr[4];
	__u8 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 dir; /* LB_CT_SERVICE or LB_CT_REPLY */
	__u8 pad[2];
};

struct lb4_ct_entry {
	__u32 backend_id;
	__u16 rev_nat_index;
	__u16 flags;       /* LB_CT_SNAT */
	__u8 client[4];    /* with LB_CT_SNAT: the client the node stood in for */
	__u16 client_port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
} lb4_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct lb4_backend);
} lb4_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u16);
	__type(value, struct lb4_reverse_nat);
} lb4_reverse_nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb4_affinity_key);
	__type(value, struct lb4_affinity_val);
} lb4_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb4_ct_key);
	__type(value, struct lb4_ct_entry);
} lb4_ct SEC(".maps");

/* A TCP or UDP packet without IP options: its ports (network order), or NULL. */
static __always_inline __be16 *lb4_ports(struct __sk_buff *skb, struct iphdr *ip)
{
	void *end = (void *)(long)skb->data_end;
	if (ip->ihl != 5 || (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
		return NULL;
	__be16 *ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > end)
		return NULL;
	return ports;
}

#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define L4_OFF (ETH_HLEN + sizeof(struct iphdr))

static __always_inline __u32 l4_csum_off(__u8 proto)
{
	return L4_OFF + (proto == IPPROTO_TCP ? 16 : 6);
}

static __always_inline __u64 l4_csum_flags(__u8 proto, __u64 size)
{
	/* A UDP checksum of 0 means none: keep it so. */
	return size | (proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0);
}

/* Rewrite the source (dst = 0) or destination (dst = 1) address, with both checksums. */
static __always_inline int nat_addr(struct __sk_buff *skb, __u8 proto, int dst, __be32 from, __be32 to)
{
	if (from == to)
		return 0;
	__u32 off = ETH_HLEN + (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr));
	if (bpf_l4_csum_replace(skb, l4_csum_off(proto), from, to, l4_csum_flags(proto, 4) | BPF_F_PSEUDO_HDR) < 0)
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, 4) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, 4, 0);
}

static __always_inline int nat_port(struct __sk_buff *skb, __u8 proto, int dst, __be16 from, __be16 to)
{
	if (from == to)
		return 0;
	if (bpf_l4_csum_replace(skb, l4_csum_off(proto), from, to, l4_csum_flags(proto, 2)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, L4_OFF + (dst ? 2 : 0), &to, 2, 0);
}

/*
 * A new connection (TCP SYN, or any UDP datagram) straight to an address that
 * is no frontend: a reply entry left from an earlier service connection on the
 * same ports must not rewrite this one's replies.
 */
static __always_inline void lb4_forget_reply(struct __sk_buff *skb, const struct iphdr *ip, const __be16 *ports)
{
	if (ip->protocol == IPPROTO_TCP) {
		void *end = (void *)(long)skb->data_end;
		__u8 *flags = (__u8 *)ports + 13;
		if ((void *)(flags + 1) > end || (*flags & 0x12) != 0x02) /* SYN without ACK */
			return;
	}
	struct lb4_ct_key rk = { .sport = bpf_ntohs(ports[1]), .dport = bpf_ntohs(ports[0]), .proto = ip->protocol, .dir = LB_CT_REPLY };
	__builtin_memcpy(rk.saddr, &ip->daddr, 4);
	__builtin_memcpy(rk.daddr, &ip->saddr, 4);
	bpf_map_delete_elem(&lb4_ct, &rk);
}

/* One backend of the service in slot 0 (key points at it): the client's affine one while it lasts, else a random slot. */
static __always_inline __u32 lb4_select(struct lb4_key *key, const struct lb4_service *svc, __be32 client)
{
	struct lb4_affinity_key ak = { .rev_nat_index = svc->rev_nat_index };
	__builtin_memcpy(ak.client, &client, 4);
	__u64 now = bpf_ktime_get_ns();
	int affine = svc->flags & SVC_FLAG_AFFINITY;
	if (affine) {
		struct lb4_affinity_val *a = bpf_map_lookup_elem(&lb4_affinity, &ak);
		if (a && now - a->last_used <= (__u64)svc->backend_id * 1000000000ULL) {
			__u32 id = a->backend_id;
			if (bpf_map_lookup_elem(&lb4_backends, &id)) {
				a->last_used = now;
				return id;
			}
		}
	}
	if (!svc->count)
		return 0;
	key->backend_slot = (bpf_get_prandom_u32() % svc->count) + 1;
	struct lb4_service *slot = bpf_map_lookup_elem(&lb4_services, key);
	if (!slot)
		return 0;
	__u32 id = slot->backend_id;
	if (affine) {
		struct lb4_affinity_val a = { .last_used = now, .backend_id = id };
		bpf_map_update_elem(&lb4_affinity, &ak, &a, BPF_ANY);
	}
	return id;
}

/*
 * A packet to a service frontend goes to one of its backends (DNAT; with snat
 * the source becomes the frontend, the node's own address). Returns 0 when the
 * destination is no frontend (or, with nodeport_only, no NodePort one), 1 when
 * translated, -1 when the packet is to be dropped (a service without
 * endpoints, or the rewrite failed).
 */
static __always_inline int lb4_translate(struct __sk_buff *skb, int nodeport_only)
{
	struct iphdr *ip = ipv4_header(skb);
	if (!ip)
		return 0;
	__be16 *ports = lb4_ports(skb, ip);
	if (!ports)
		return 0;
	__u8 proto = ip->protocol;
	__be32 saddr = ip->saddr, daddr = ip->daddr;
	__be16 sport = ports[0], dport = ports[1];

	struct lb4_key key = { .dport = bpf_ntohs(dport), .proto = proto };
	__builtin_memcpy(key.address, &daddr, 4);
	struct lb4_service *svc = bpf_map_lookup_elem(&lb4_services, &key);
	if (!svc) {
		if (!nodeport_only)
			lb4_forget_reply(skb, ip, ports);
		return 0;
	}
	int snat = svc->flags & SVC_FLAG_NODEPORT && nodeport_only;
	if (nodeport_only && !snat)
		return 0;
	__u16 rev = svc->rev_nat_index;

	struct lb4_ct_key ck = { .sport = bpf_ntohs(sport), .dport = bpf_ntohs(dport), .proto = proto, .dir = LB_CT_SERVICE };
	__builtin_memcpy(ck.saddr, &saddr, 4);
	__builtin_memcpy(ck.daddr, &daddr, 4);
	struct lb4_backend *be = NULL;
	__u32 id = 0;
	struct lb4_ct_entry *ct = bpf_map_lookup_elem(&lb4_ct, &ck);
	if (ct) {
		id = ct->backend_id;
		be = bpf_map_lookup_elem(&lb4_backends, &id);
	}
	if (!be) {
		/* A new connection, or its backend is gone: pick one. */
		id = lb4_select(&key, svc, saddr);
		be = id ? bpf_map_lookup_elem(&lb4_backends, &id) : NULL;
		if (!be)
			return -1;
		struct lb4_ct_entry fwd = { .backend_id = id, .rev_nat_index = rev };
		bpf_map_update_elem(&lb4_ct, &ck, &fwd, BPF_ANY);
	}
	__be32 baddr;
	__builtin_memcpy(&baddr, be->address, 4);
	__be16 bport = bpf_htons(be->port);
	__be32 new_saddr = snat ? daddr : saddr;

	struct lb4_ct_key rk = { .sport = be->port, .dport = bpf_ntohs(sport), .proto = proto, .dir = LB_CT_REPLY };
	__builtin_memcpy(rk.saddr, &baddr, 4);
	__builtin_memcpy(rk.daddr, &new_saddr, 4);
	struct lb4_ct_entry back = { .backend_id = id, .rev_nat_index = rev, .flags = snat ? LB_CT_SNAT : 0, .client_port = bpf_ntohs(sport) };
	__builtin_memcpy(back.client, &saddr, 4);
	bpf_map_update_elem(&lb4_ct, &rk, &back, BPF_ANY);

	if (nat_addr(skb, proto, 1, daddr, baddr) < 0 || nat_port(skb, proto, 1, dport, bport) < 0)
		return -1;
	if (snat && nat_addr(skb, proto, 0, saddr, new_saddr) < 0)
		return -1;
	return 1;
}

/*
 * A reply from a backend: the source becomes the frontend again, and where the
 * node stood in for the client (NodePort), the destination the client. Returns
 * 0 when the packet is no such reply, 1 when the source was restored, 2 when
 * the destination was too (the caller routes it on), -1 on a failed rewrite.
 */
static __always_inline int lb4_reverse(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_header(skb);
	if (!ip)
		return 0;
	__be16 *ports = lb4_ports(skb, ip);
	if (!ports)
		return 0;
	__u8 proto = ip->protocol;
	__be32 saddr = ip->saddr, daddr = ip->daddr;
	__be16 sport = ports[0], dport = ports[1];
	struct lb4_ct_key rk = { .sport = bpf_ntohs(sport), .dport = bpf_ntohs(dport), .proto = proto, .dir = LB_CT_REPLY };
	__builtin_memcpy(rk.saddr, &saddr, 4);
	__builtin_memcpy(rk.daddr, &daddr, 4);
	struct lb4_ct_entry *e = bpf_map_lookup_elem(&lb4_ct, &rk);
	if (!e)
		return 0;
	__u16 rev = e->rev_nat_index;
	struct lb4_reverse_nat *fe = bpf_map_lookup_elem(&lb4_reverse_nat, &rev);
	if (!fe)
		return 0;
	__be32 faddr, client;
	__builtin_memcpy(&faddr, fe->address, 4);
	__builtin_memcpy(&client, e->client, 4);
	__be16 fport = bpf_htons(fe->port);
	int snat = e->flags & LB_CT_SNAT;
	if (nat_addr(skb, proto, 0, saddr, faddr) < 0 || nat_port(skb, proto, 0, sport, fport) < 0)
		return -1;
	if (!snat)
		return 1;
	if (nat_addr(skb, proto, 1, daddr, client) < 0)
		return -1;
	return 2;
}

/* A restored NodePort reply leaves for the client through whatever device the node routes it on. */
static __always_inline int lb4_route_out(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_header(skb);
	if (!ip)
		return TC_ACT_SHOT;
	struct bpf_fib_lookup fib = { .family = AF_INET, .ipv4_src = ip->saddr, .ipv4_dst = ip->daddr, .ifindex = skb->ingress_ifindex };
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return TC_ACT_SHOT;
	return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
}

#endif
