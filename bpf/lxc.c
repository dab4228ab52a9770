/* On the host side of every pod's veth pair (lxc…), tc ingress: what the pod
 * sends. ARP for the gateway is answered here; IPv4 goes straight to a pod on
 * this node, to the node that owns the destination's pod CIDR (routed on the
 * underlay, or in the VXLAN tunnel), or else up the node's stack. */
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

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_ARP))
		return answer_arp(skb);
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

	struct remote_key rk = { .prefixlen = 32 };
	__builtin_memcpy(rk.addr, &daddr, 4);
	struct ipv4 *node = bpf_map_lookup_elem(&remote_nodes, &rk);
	if (!node)
		return TC_ACT_OK; /* not a pod address: the node's stack decides */
	__be32 node_ip;
	__builtin_memcpy(&node_ip, node->addr, 4);

	__u32 zero = 0;
	struct node_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg && cfg->mode == MODE_VXLAN)
		return to_node_vxlan(skb, node_ip, cfg);
	return to_node_native(skb, node_ip);
}

char _license[] SEC("license") = "GPL";
