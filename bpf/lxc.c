/* On the host side of every pod's veth pair (lxc…), tc ingress: what the pod
 * sends. ARP and IPv6 neighbour solicitations for the gateway are answered
 * here; IPv4 and IPv6 go straight to a pod on this node, to the node that owns
 * the destination's pod CIDR (routed on the underlay, or in the VXLAN tunnel),
 * or else up the node's stack. */
#include "common.h"

/* An ARP packet for IPv4 over Ethernet (linux/if_arp.h would pull in libc headers). */
struct arp_ipv4 {
	__be16 ar_hrd;
	__be16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__be16 ar_op;
	__u8 sha[ETH_ALEN];
	__u8 sip[4];
	__u8 tha[ETH_ALEN];
	__u8 tip[4];
} __attribute__((packed));

/* Answer every ARP request from a pod with its lxc device's MAC: the node is the pod's only neighbour. */
static __always_inline int answer_arp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arp_ipv4 *arp = data + sizeof(*eth);
	if ((void *)(arp + 1) > end)
		return TC_ACT_OK;
	if (arp->ar_op != bpf_htons(ARPOP_REQUEST) || arp->ar_hrd != bpf_htons(ARPHRD_ETHER) ||
	    arp->ar_pro != bpf_htons(ETH_P_IP) || arp->ar_hln != ETH_ALEN || arp->ar_pln != 4)
		return TC_ACT_OK;
	if (__builtin_memcmp(arp->sip, arp->tip, 4) == 0)
		return TC_ACT_OK; /* a pod checking its own address: nobody else has it */
	struct ipv4 sender;
	__builtin_memcpy(sender.addr, arp->sip, 4);
	struct endpoint_info *ep = bpf_map_lookup_elem(&endpoints, &sender);
	if (!ep)
		return TC_ACT_OK;

	__u8 target_ip[4];
	__builtin_memcpy(target_ip, arp->tip, 4);
	arp->ar_op = bpf_htons(ARPOP_REPLY);
	__builtin_memcpy(arp->tha, arp->sha, ETH_ALEN);
	__builtin_memcpy(arp->tip, arp->sip, 4);
	__builtin_memcpy(arp->sha, ep->node_mac, ETH_ALEN);
	__builtin_memcpy(arp->sip, target_ip, 4);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ep->node_mac, ETH_ALEN);
	return bpf_redirect(skb->ifindex, 0); /* back out of the lxc device, to the pod */
}

#define NDISC_ROUTER_SOLICITATION 133
#define NDISC_NEIGHBOUR_SOLICITATION 135
#define NDISC_NEIGHBOUR_ADVERTISEMENT 136
#define NDISC_REDIRECT 137
#define ND_OPT_SOURCE_LL_ADDR 1
#define ND_OPT_TARGET_LL_ADDR 2
#define NA_FLAGS_ROUTER_SOLICITED_OVERRIDE 0xe0

/* A neighbour solicitation or advertisement with one link-layer address option: the same 32 bytes. */
struct nd_msg {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__u8 flags;        /* R, S, O in an advertisement */
	__u8 reserved[3];
	__u8 target[16];
	__u8 opt_type;
	__u8 opt_len;      /* in units of 8 bytes */
	__u8 opt_mac[ETH_ALEN];
};

/* What the ICMPv6 checksum covers: the pseudo-header, then the message. */
struct nd_csum {
	__u8 saddr[16];
	__u8 daddr[16];
	__be32 len;
	__u8 zero[3];
	__u8 nexthdr;
	struct nd_msg msg;
};

static __always_inline __u16 fold(__s64 sum)
{
	__u32 s = (__u32)sum;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/*
 * NDP where IPv4 has ARP: a pod's neighbour solicitation (for its gateway
 * fe80::1, or any other neighbour) is answered with the lxc device's MAC,
 * rewritten in place into an advertisement of the same length. Solicitations
 * from the unspecified address (duplicate address detection) are left alone.
 */
static __always_inline int answer_ns(struct __sk_buff *skb, struct ipv6hdr_ *ip6)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct nd_msg *nd = (void *)(ip6 + 1);
	if ((void *)(nd + 1) > end)
		return TC_ACT_OK;
	if (bpf_ntohs(ip6->payload_len) != sizeof(*nd) || nd->code != 0 || ip6->hop_limit != 255 ||
	    nd->opt_type != ND_OPT_SOURCE_LL_ADDR || nd->opt_len != 1)
		return TC_ACT_OK;
	__u32 *src = (__u32 *)ip6->saddr;
	if ((src[0] | src[1] | src[2] | src[3]) == 0)
		return TC_ACT_OK;
	__u32 ifindex = skb->ingress_ifindex;
	struct endpoint_info *ep = bpf_map_lookup_elem(&lxc_ifindex, &ifindex);
	if (!ep)
		return TC_ACT_OK;

	struct nd_csum c = {};
	__builtin_memcpy(c.saddr, nd->target, 16); /* the answer comes from the address asked for */
	__builtin_memcpy(c.daddr, ip6->saddr, 16);
	c.len = bpf_htonl(sizeof(struct nd_msg));
	c.nexthdr = IPPROTO_ICMPV6;
	c.msg.type = NDISC_NEIGHBOUR_ADVERTISEMENT;
	c.msg.flags = NA_FLAGS_ROUTER_SOLICITED_OVERRIDE;
	__builtin_memcpy(c.msg.target, nd->target, 16);
	c.msg.opt_type = ND_OPT_TARGET_LL_ADDR;
	c.msg.opt_len = 1;
	__builtin_memcpy(c.msg.opt_mac, ep->node_mac, ETH_ALEN);
	c.msg.checksum = fold(bpf_csum_diff(NULL, 0, (__be32 *)&c, sizeof(c), 0));

	__builtin_memcpy(ip6->saddr, c.saddr, 16);
	__builtin_memcpy(ip6->daddr, c.daddr, 16);
	__builtin_memcpy(nd, &c.msg, sizeof(*nd));
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ep->node_mac, ETH_ALEN);
	return bpf_redirect(skb->ifindex, 0);
}

/* IPv6 routed on the IPv6 underlay, as to_node_native does for IPv4. */
static __always_inline int to_node_native6(struct __sk_buff *skb, const __u8 *node_ip6)
{
	struct ipv6hdr_ *ip6 = ipv6_header(skb);
	if (!ip6)
		return TC_ACT_SHOT;
	struct bpf_fib_lookup fib = {
		.family = AF_INET6,
		.ifindex = skb->ingress_ifindex,
	};
	__builtin_memcpy(fib.ipv6_src, ip6->saddr, 16);
	__builtin_memcpy(fib.ipv6_dst, node_ip6, 16);
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return TC_ACT_SHOT;
	if (!decrement_hop_limit(skb))
		return TC_ACT_SHOT;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* Not resolved yet: the kernel resolves the next hop (NDP) and sends the packet on. */
		struct bpf_redir_neigh nh = { .nh_family = AF_INET6 };
		__builtin_memcpy(nh.ipv6_nh, node_ip6, 16);
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

/* IPv6 pods in the same tunnel: the outer header is the underlay's family (IPv4 here), the inner one IPv6. */
static __always_inline int to_node_vxlan6(struct __sk_buff *skb, const __u8 *node_ip4, const struct node_config *cfg)
{
	if (!decrement_hop_limit(skb))
		return TC_ACT_SHOT;
	__be32 remote;
	__builtin_memcpy(&remote, node_ip4, 4);
	struct bpf_tunnel_key key = {
		.tunnel_id = cfg->vni,
		.remote_ipv4 = bpf_ntohl(remote),
		.tunnel_ttl = 64,
	};
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(cfg->tunnel_ifindex, 0);
}

static __always_inline int from_container6(struct __sk_buff *skb)
{
	struct ipv6hdr_ *ip6 = ipv6_header(skb);
	if (!ip6)
		return TC_ACT_OK;
	if (ip6->nexthdr == IPPROTO_ICMPV6) {
		__u8 *type = (void *)(ip6 + 1);
		if ((void *)(type + 1) > (void *)(long)skb->data_end)
			return TC_ACT_OK;
		if (*type == NDISC_NEIGHBOUR_SOLICITATION)
			return answer_ns(skb, ip6);
		/* The rest of NDP (router solicitations, advertisements) is the node's: never a policy matter. */
		if (*type >= NDISC_ROUTER_SOLICITATION && *type <= NDISC_REDIRECT)
			return TC_ACT_OK;
	}
	/* Multicast (MLD reports behind a hop-by-hop header, all-nodes, all-routers) is for the node's stack. */
	if (ip6->daddr[0] == 0xff)
		return TC_ACT_OK;
	struct flow6 f;
	flow6_of(skb, ip6, &f);
	if (!policy_verdict6(skb->ingress_ifindex, DIR_EGRESS, &f))
		return TC_ACT_SHOT;

	struct ipv6 dst = as_key6(f.daddr);
	struct endpoint_info *ep = bpf_map_lookup_elem(&endpoints6, &dst);
	if (ep) {
		if (!policy_verdict6(ep->ifindex, DIR_INGRESS, &f))
			return TC_ACT_SHOT;
		return deliver_local6(skb, ep);
	}

	struct remote_key6 rk = { .prefixlen = 128 };
	__builtin_memcpy(rk.addr, f.daddr, 16);
	struct remote_node6 *node = bpf_map_lookup_elem(&remote_nodes6, &rk);
	if (!node)
		return TC_ACT_OK;
	struct remote_node6 n = *node;
	__u32 zero = 0;
	struct node_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg && cfg->mode == MODE_VXLAN)
		return to_node_vxlan6(skb, n.addr4, cfg);
	return to_node_native6(skb, n.addr6);
}

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_ARP))
		return answer_arp(skb);
	if (skb->protocol == ETH_P_IPV6_BE)
		return from_container6(skb);
	/* A service frontend becomes one of its backends before anything else looks at the packet. */
	if (lb4_translate(skb, 0) < 0)
		return TC_ACT_SHOT;
	struct iphdr *ip = ipv4_header(skb);
	if (!ip)
		return TC_ACT_OK;
	__be32 saddr = ip->saddr, daddr = ip->daddr;
	count(saddr, skb->len, 0);
	struct flow f;
	flow_of(skb, ip, &f);
	/* The sender's egress policy first, then, for a pod on this node, the receiver's ingress. */
	if (!policy_verdict(skb->ingress_ifindex, DIR_EGRESS, &f))
		return TC_ACT_SHOT;

	struct ipv4 dst = as_key(daddr);
	struct endpoint_info *ep = bpf_map_lookup_elem(&endpoints, &dst);
	if (ep) {
		if (!policy_verdict(ep->ifindex, DIR_INGRESS, &f))
			return TC_ACT_SHOT;
		return deliver_local(skb, ep, daddr);
	}
	int to_pod = to_remote_pod(skb, daddr);
	if (to_pod != TC_ACT_OK)
		return to_pod;
	/* Not a pod address: a backend's reply to a NodePort client leaves restored, the rest goes to the node's stack. */
	int rev = lb4_reverse(skb);
	if (rev < 0)
		return TC_ACT_SHOT;
	return rev == 2 ? lb4_route_out(skb) : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
