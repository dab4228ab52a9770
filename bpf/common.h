/* Maps and helpers shared by the programs on pod devices (lxc.c) and on node
 * devices (node.c). The layouts are mirrored in src/datapaths/cilium/maps.ts,
 * which is the only code that writes these maps. */
#ifndef CNILAB_COMMON_H
#define CNILAB_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IPV6_BE bpf_htons(0x86DD)
#define IPPROTO_ICMPV6 58
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2
#define MODE_NATIVE 0
#define MODE_VXLAN 1

/* An IPv4 address as four bytes, so that bpftool prints it as [10,10,0,2]. */
struct ipv4 {
	__u8 addr[4];
};

/* A pod on this node: the host side of its veth pair and both MACs. */
struct endpoint_info {
	__u32 ifindex;     /* the lxc device */
	__u8 mac[6];       /* the pod's eth0 */
	__u8 node_mac[6];  /* the lxc device's own MAC, the pod's gateway */
};

struct remote_key {
	__u32 prefixlen;   /* LPM trie keys start with the prefix length */
	__u8 addr[4];
};

/* An IPv6 address as sixteen bytes, the key of the IPv6 maps. */
struct ipv6 {
	__u8 addr[16];
};

struct remote_key6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Where another node's IPv6 pods are: routed natively to its IPv6 underlay
 * address, or tunnelled to its IPv4 one (the underlay may stay IPv4). */
struct remote_node6 {
	__u8 addr6[16];
	__u8 addr4[4];
};

/* The IPv6 header (linux/ipv6.h would pull in libc headers). */
struct ipv6hdr_ {
	__u8 ver_tc;       /* version 6 in the upper nibble */
	__u8 tc_flow[3];
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Packets a pod received (rx) and sent (tx), IPv4 only. */
struct endpoint_counters {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
};

/* The IPv6 twin of endpoints: a pod's IPv6 address -> its lxc device and MACs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ipv6);
	__type(value, struct endpoint_info);
} endpoints6 SEC(".maps");

/* Pod IPv6 CIDR of every other node -> that node's addresses. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct remote_key6);
	__type(value, struct remote_node6);
} remote_nodes6 SEC(".maps");

/* lxc device ifindex -> its pod: NDP answers come from the device's MAC,
 * and a neighbour solicitation carries no address of the pod's to look up. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct endpoint_info);
} lxc_ifindex SEC(".maps");

struct node_config {
	__u32 mode;            /* MODE_NATIVE or MODE_VXLAN */
	__u32 tunnel_ifindex;  /* the metadata-mode VXLAN device */
	__u32 vni;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ipv4);
	__type(value, struct endpoint_info);
} endpoints SEC(".maps");

/* Pod CIDR of every other node -> that node's underlay address. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct remote_key);
	__type(value, struct ipv4);
} remote_nodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ipv4);
	__type(value, struct endpoint_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_config);
} config SEC(".maps");

#include "policy.h"

static __always_inline struct ipv4 as_key(__be32 addr)
{
	struct ipv4 k;
	__builtin_memcpy(k.addr, &addr, 4);
	return k;
}

static __always_inline void count(__be32 addr, __u64 bytes, int rx)
{
	struct ipv4 k = as_key(addr);
	struct endpoint_counters *c = bpf_map_lookup_elem(&counters, &k);
	if (!c)
		return;
	if (rx) {
		__sync_fetch_and_add(&c->rx_packets, 1);
		__sync_fetch_and_add(&c->rx_bytes, bytes);
	} else {
		__sync_fetch_and_add(&c->tx_packets, 1);
		__sync_fetch_and_add(&c->tx_bytes, bytes);
	}
}

/* The IPv4 header after the Ethernet header, or NULL when the packet is not IPv4. */
static __always_inline struct iphdr *ipv4_header(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	return ip;
}

/* The IPv6 header after the Ethernet header, or NULL when the packet is not IPv6. */
static __always_inline struct ipv6hdr_ *ipv6_header(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr_ *ip6 = data + sizeof(*eth);
	if ((void *)(ip6 + 1) > end || eth->h_proto != ETH_P_IPV6_BE)
		return NULL;
	return ip6;
}

static __always_inline struct ipv6 as_key6(const __u8 *addr)
{
	struct ipv6 k;
	__builtin_memcpy(k.addr, addr, 16);
	return k;
}

/* The IPv6 router's part: the hop limit is in no checksum. */
static __always_inline int decrement_hop_limit(struct __sk_buff *skb)
{
	struct ipv6hdr_ *ip6 = ipv6_header(skb);
	if (!ip6 || ip6->hop_limit <= 1)
		return 0;
	ip6->hop_limit--;
	return 1;
}

/* A router's part: one hop less. Returns 0 when the packet has no hops left. */
static __always_inline int decrement_ttl(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_header(skb);
	if (!ip || ip->ttl <= 1)
		return 0;
	__u16 *word = (__u16 *)&ip->ttl; /* ttl and protocol share one checksummed word */
	__u16 before = *word;
	ip->ttl--;
	__u16 after = *word;
	bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), before, after, 2);
	return 1;
}

#include "lb.h"

/*
 * Hand the packet straight to a pod on this node: Ethernet addresses as the
 * pod expects them, then into the pod's own namespace through the peer of its
 * lxc device, without a pass through the node's stack.
 */
static __always_inline int redirect_to_pod(struct __sk_buff *skb, const struct endpoint_info *ep)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, ep->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ep->node_mac, ETH_ALEN);
	return bpf_redirect_peer(ep->ifindex, 0);
}

static __always_inline int deliver_local6(struct __sk_buff *skb, const struct endpoint_info *ep)
{
	if (!decrement_hop_limit(skb))
		return TC_ACT_SHOT;
	return redirect_to_pod(skb, ep);
}

static __always_inline int deliver_local(struct __sk_buff *skb, const struct endpoint_info *ep, __be32 daddr)
{
	/* A reply from a service's backend: the pod sees it come from the frontend it connected to. */
	if (lb4_reverse(skb) < 0)
		return TC_ACT_SHOT;
	if (!decrement_ttl(skb))
		return TC_ACT_SHOT;
	count(daddr, skb->len, 1);
	return redirect_to_pod(skb, ep);
}

static __always_inline int from_outside6(struct __sk_buff *skb)
{
	struct ipv6hdr_ *ip6 = ipv6_header(skb);
	if (!ip6)
		return TC_ACT_OK;
	struct ipv6 k = as_key6(ip6->daddr);
	struct endpoint_info *ep = bpf_map_lookup_elem(&endpoints6, &k);
	if (!ep)
		return TC_ACT_OK;
	struct flow6 f;
	flow6_of(skb, ip6, &f);
	if (!policy_verdict6(ep->ifindex, DIR_INGRESS, &f))
		return TC_ACT_SHOT;
	return deliver_local6(skb, ep);
}

/* Routed on the underlay: the next hop is the other node, its MAC from the kernel's neighbour table. */
static __always_inline int to_node_native(struct __sk_buff *skb, __be32 node_ip)
{
	struct iphdr *ip = ipv4_header(skb);
	if (!ip)
		return TC_ACT_SHOT;
	/* No tot_len: the kernel then checks the packet itself against the MTU,
	 * knowing that a GSO packet leaves as segments that fit. */
	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.ipv4_src = ip->saddr,
		.ipv4_dst = node_ip,
		.ifindex = skb->ingress_ifindex,
	};
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (!decrement_ttl(skb))
			return TC_ACT_SHOT;
		void *data = (void *)(long)skb->data;
		void *end = (void *)(long)skb->data_end;
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > end)
			return TC_ACT_SHOT;
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* Not resolved yet: the kernel resolves the next hop (ARP) and sends the packet on. */
		if (!decrement_ttl(skb))
			return TC_ACT_SHOT;
		struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = node_ip };
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	return TC_ACT_SHOT;
}

/* Overlay: one metadata-mode VXLAN device; the tunnel key names the other node. */
static __always_inline int to_node_vxlan(struct __sk_buff *skb, __be32 node_ip, const struct node_config *cfg)
{
	if (!decrement_ttl(skb))
		return TC_ACT_SHOT;
	struct bpf_tunnel_key key = {
		.tunnel_id = cfg->vni,
		.remote_ipv4 = bpf_ntohl(node_ip),
		.tunnel_ttl = 64,
	};
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(cfg->tunnel_ifindex, 0);
}

/* To a pod on another node: routed on the underlay or in the tunnel; TC_ACT_OK when the address is no pod's. */
static __always_inline int to_remote_pod(struct __sk_buff *skb, __be32 daddr)
{
	struct remote_key rk = { .prefixlen = 32 };
	__builtin_memcpy(rk.addr, &daddr, 4);
	struct ipv4 *node = bpf_map_lookup_elem(&remote_nodes, &rk);
	if (!node)
		return TC_ACT_OK;
	__be32 node_ip;
	__builtin_memcpy(&node_ip, node->addr, 4);
	__u32 zero = 0;
	struct node_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg && cfg->mode == MODE_VXLAN)
		return to_node_vxlan(skb, node_ip, cfg);
	return to_node_native(skb, node_ip);
}

/*
 * Delivery for what arrives from the underlay or the tunnel: a NodePort
 * frontend translated to its backend, a local pod, a NodePort reply on its way
 * back to the client, or else up the node's stack.
 */
static __always_inline int from_outside(struct __sk_buff *skb)
{
	if (skb->protocol == ETH_P_IPV6_BE)
		return from_outside6(skb);
	int lb = lb4_translate(skb, 1);
	if (lb < 0)
		return TC_ACT_SHOT;
	struct iphdr *ip = ipv4_header(skb);
	if (!ip)
		return TC_ACT_OK;
	__be32 daddr = ip->daddr;
	struct ipv4 k = as_key(daddr);
	struct endpoint_info *ep = bpf_map_lookup_elem(&endpoints, &k);
	if (!ep) {
		if (lb)
			return to_remote_pod(skb, daddr);
		int rev = lb4_reverse(skb);
		if (rev < 0)
			return TC_ACT_SHOT;
		return rev == 2 ? lb4_route_out(skb) : TC_ACT_OK;
	}
	struct flow f;
	flow_of(skb, ip, &f);
	if (!policy_verdict(ep->ifindex, DIR_INGRESS, &f))
		return TC_ACT_SHOT;
	return deliver_local(skb, ep, daddr);
}

#endif
