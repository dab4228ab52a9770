/* On the node's own devices, tc ingress: the underlay device (eth0) and the
 * VXLAN device. A packet for a pod on this node goes straight into that pod;
 * everything else (the node's own traffic, VXLAN before decapsulation) goes on
 * to the node's stack. */
#include "common.h"

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	return from_outside(skb);
}

SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	return from_outside(skb);
}

char _license[] SEC("license") = "GPL";
