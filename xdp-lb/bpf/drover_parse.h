/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drover_parse: protocol constants and small packet helpers shared by the
 * BPF programs of xdp-lb (BPF side only). vmlinux.h carries the kernel's
 * structs but not its #define constants, so the few we need live here.
 */
#ifndef DROVER_PARSE_H
#define DROVER_PARSE_H

#define ETH_ALEN     6
#define ETH_HLEN     14
#define ETH_P_IP     0x0800
#define ETH_P_IPV6   0x86DD
#define ETH_P_8021Q  0x8100
#define ETH_P_8021AD 0x88A8

#define IPPROTO_ICMP   1
#define IPPROTO_IPIP   4
#define IPPROTO_TCP    6
#define IPPROTO_UDP    17
#define IPPROTO_IPV6   41
#define IPPROTO_ICMPV6 58

#define IP_MF     0x2000
#define IP_OFFSET 0x1FFF

#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED  4
#define ICMPV6_PKT_TOOBIG 2

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

#define TCP_LISTEN_STATE 10 /* BPF_TCP_LISTEN */

#define XDP_ACTION_OK(a) ((a) == XDP_PASS || (a) == XDP_TX || (a) == XDP_REDIRECT)

struct drover_vlan_hdr {
    __be16 tci;
    __be16 proto;
};

/* Ethernet header with at most one 802.1Q/802.1ad tag. Sets the ethertype
 * after the tag (network order) and the offset of the L3 header; -1 when
 * the frame is too short for them. */
static __always_inline int drover_parse_l2(void *data, void *data_end, __u16 *proto, __u32 *l3off)
{
    struct ethhdr *eth = data;

    if ((void *)(eth + 1) > data_end)
        return -1;
    *proto = eth->h_proto;
    *l3off = sizeof(*eth);
    if (*proto == bpf_htons(ETH_P_8021Q) || *proto == bpf_htons(ETH_P_8021AD)) {
        struct drover_vlan_hdr *vh = (void *)(eth + 1);
        if ((void *)(vh + 1) > data_end)
            return -1;
        *proto = vh->proto;
        *l3off += sizeof(*vh);
    }
    return 0;
}

/* Fold a one's complement sum below 2^32 into the 16-bit checksum. Taken
 * as 64 bits: a 32-bit sum's shift on a 64-bit BPF register costs a mask
 * (a two-slot constant) first. */
static __always_inline __u16 drover_csum_fold(__u64 sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)~sum;
}

/* IPv4 header checksum of a 20-byte header (no options), in place. */
static __always_inline void drover_ipv4_csum(struct iphdr *iph)
{
    __u16 *p = (__u16 *)iph;
    __u32 sum = 0;

    iph->check = 0;
    for (int i = 0; i < 10; i++)
        sum += p[i];
    iph->check = drover_csum_fold(sum);
}

#endif
