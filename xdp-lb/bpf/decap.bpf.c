// SPDX-License-Identifier: Apache-2.0
/*
 * decap: the proxy-side XDP program. Takes GUE packets sent by the
 * director (UDP to the configured GUE port), checks the GUE header and hop
 * list, and either
 *   - strips the outer headers and hands the inner packet to the local
 *     stack (XDP_PASS) as if it came straight from the client, or
 *   - second chance: a TCP packet that is not a SYN, for which this host has
 *     no socket, or a SYN for which it has no listener (HAProxy died and is
 *     being restarted, its frontend is disabled), while the hop list still
 *     has a next hop, is re-addressed to that hop (next_hop advanced) and
 *     sent on with XDP_TX/redirect after a FIB lookup; when the neighbour is
 *     not resolved yet the rewritten packet goes to the stack, which
 *     forwards it.
 * Non-GUE traffic passes untouched; bad or truncated GUE is dropped and
 * counted. Counters: drover_maps.h, map decap_stats.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "drover_maps.h"
#include "drover_parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET  2
#define AF_INET6 10

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct drover_decap_config);
} decap_config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct drover_stats);
} decap_stats SEC(".maps");

/* Every drop is counted. */
static __always_inline int drop(struct drover_stats *st, int reason)
{
    st->count[reason]++;
    return XDP_DROP;
}

/* What the inner packet is, as far as second chance cares. */
struct inner_info {
    struct bpf_sock_tuple tuple;
    __u32 tuple_len;
    __u8 is_tcp;
    __u8 is_syn;
    __u16 ethertype; /* network order */
};

/* Parse the inner IPv4/IPv6 packet at 'inner'. Returns 0 or -1 (bad). */
static __always_inline int parse_inner(void *inner, void *data_end, __u8 proto_ctype,
                                       struct inner_info *in)
{
    struct tcphdr *tcp;
    __u8 flags;

    /* The TCP flags are read in each branch, right after that branch's
     * bounds check, so the verifier never has to merge two packet
     * pointers. */
    if (proto_ctype == IPPROTO_IPIP) {
        struct iphdr *iph = inner;
        if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5)
            return -1;
        in->ethertype = bpf_htons(ETH_P_IP);
        if (iph->protocol != IPPROTO_TCP || (iph->frag_off & bpf_htons(IP_OFFSET)))
            return 0;
        tcp = (void *)iph + iph->ihl * 4;
        if ((void *)(tcp + 1) > data_end)
            return -1;
        flags = ((__u8 *)tcp)[13];
        in->tuple.ipv4.saddr = iph->saddr;
        in->tuple.ipv4.daddr = iph->daddr;
        in->tuple.ipv4.sport = tcp->source;
        in->tuple.ipv4.dport = tcp->dest;
        in->tuple_len = sizeof(in->tuple.ipv4);
    } else if (proto_ctype == IPPROTO_IPV6) {
        struct ipv6hdr *ip6 = inner;
        if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
            return -1;
        in->ethertype = bpf_htons(ETH_P_IPV6);
        if (ip6->nexthdr != IPPROTO_TCP)
            return 0;
        tcp = (void *)(ip6 + 1);
        if ((void *)(tcp + 1) > data_end)
            return -1;
        flags = ((__u8 *)tcp)[13];
        __builtin_memcpy(in->tuple.ipv6.saddr, &ip6->saddr, 16);
        __builtin_memcpy(in->tuple.ipv6.daddr, &ip6->daddr, 16);
        in->tuple.ipv6.sport = tcp->source;
        in->tuple.ipv6.dport = tcp->dest;
        in->tuple_len = sizeof(in->tuple.ipv6);
    } else {
        return -1;
    }
    in->is_tcp = 1;
    in->is_syn = (flags & TCP_FLAG_SYN) && !(flags & TCP_FLAG_ACK);
    return 0;
}

/* The socket the kernel would hand this packet to: 0 none, 1 a listener,
 * 2 a connection (established, time-wait or a request socket: handshake in
 * progress). The lookup falls back to listeners when no connection
 * matches, as the stack's own does. */
#define SOCK_NONE     0
#define SOCK_LISTENER 1
#define SOCK_CONN     2
static __always_inline int local_socket(struct xdp_md *ctx, struct inner_info *in)
{
    struct bpf_sock *sk;

    if (in->tuple_len == sizeof(in->tuple.ipv4))
        sk = bpf_skc_lookup_tcp(ctx, &in->tuple, sizeof(in->tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
    else
        sk = bpf_skc_lookup_tcp(ctx, &in->tuple, sizeof(in->tuple.ipv6), BPF_F_CURRENT_NETNS, 0);
    if (!sk)
        return SOCK_NONE;
    int kind = sk->state == TCP_LISTEN_STATE ? SOCK_LISTENER : SOCK_CONN;
    bpf_sk_release(sk);
    return kind;
}

/* Strip everything between the L2 header and the inner packet. The L2
 * header (with its VLAN tag, if any) is kept, with the inner ethertype. */
static __always_inline int decap_local(struct xdp_md *ctx, struct drover_stats *st, __u32 l3off,
                                       __u32 inner_off, __u16 ethertype)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr eth;
    struct drover_vlan_hdr vlan = {};
    int has_vlan = l3off > sizeof(struct ethhdr);

    if (data + sizeof(eth) + sizeof(vlan) > data_end)
        return drop(st, DROVER_STAT_DROP_BAD_INNER); /* cannot happen: checked before */
    __builtin_memcpy(&eth, data, sizeof(eth));
    __builtin_memcpy(&vlan, data + sizeof(eth), sizeof(vlan));
    if (bpf_xdp_adjust_head(ctx, (int)(inner_off - l3off)))
        return drop(st, DROVER_STAT_DROP_BAD_INNER);
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    if (has_vlan) {
        if (data + sizeof(eth) + sizeof(vlan) > data_end)
            return drop(st, DROVER_STAT_DROP_BAD_INNER);
        vlan.proto = ethertype;
        __builtin_memcpy(data, &eth, sizeof(eth));
        __builtin_memcpy(data + sizeof(eth), &vlan, sizeof(vlan));
    } else {
        if (data + sizeof(eth) > data_end)
            return drop(st, DROVER_STAT_DROP_BAD_INNER);
        eth.h_proto = ethertype;
        __builtin_memcpy(data, &eth, sizeof(eth));
    }
    st->count[DROVER_STAT_DECAP_LOCAL]++;
    return XDP_PASS;
}

/* Second chance: send the packet, still encapsulated, to hop next_hop. */
static __always_inline int forward_next_hop(struct xdp_md *ctx, struct drover_stats *st,
                                            __u32 l3off, __u8 family, __u32 hop_off)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct bpf_fib_lookup fib = {};
    struct ethhdr *eth = data;
    struct drover_gue_hops *hops = data + hop_off;

    if ((void *)(hops + 1) > data_end)
        return drop(st, DROVER_STAT_DROP_BAD_GUE);
    __u32 nh = hops->next_hop;
    if (nh >= DROVER_MAX_HOPS)
        return drop(st, DROVER_STAT_DROP_BAD_GUE);
    hops->next_hop = nh + 1;

    if (family == DROVER_AF_INET) {
        struct iphdr *iph = data + l3off;
        struct udphdr *udp = (void *)(iph + 1);
        __u32 *addr = (void *)(hops + 1) + nh * 4;
        if ((void *)(udp + 1) > data_end || (void *)(addr + 1) > data_end)
            return drop(st, DROVER_STAT_DROP_BAD_GUE);
        iph->daddr = *addr;
        if (iph->ttl <= 1)
            return drop(st, DROVER_STAT_DROP_TTL);
        iph->ttl--;
        drover_ipv4_csum(iph);
        udp->check = 0; /* the pseudo header changed; 0 = none for IPv4 */
        fib.family = AF_INET;
        fib.tos = iph->tos;
        fib.ipv4_src = iph->saddr;
        fib.ipv4_dst = iph->daddr;
        fib.tot_len = bpf_ntohs(iph->tot_len);
    } else {
        struct ipv6hdr *ip6 = data + l3off;
        __u32 *addr = (void *)(hops + 1) + nh * 16;
        if ((void *)(ip6 + 1) > data_end || (void *)(addr + 4) > data_end)
            return drop(st, DROVER_STAT_DROP_BAD_GUE);
        __builtin_memcpy(&ip6->daddr, addr, 16);
        if (ip6->hop_limit <= 1)
            return drop(st, DROVER_STAT_DROP_TTL);
        ip6->hop_limit--;
        fib.family = AF_INET6;
        __builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
        __builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
        fib.tot_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
    }
    fib.l4_protocol = IPPROTO_UDP;
    fib.ifindex = ctx->ingress_ifindex;
    long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
    if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
        /* Typically an unresolved neighbour: the stack routes the
         * rewritten packet (needs forwarding enabled) and resolves it. */
        st->count[DROVER_STAT_SECOND_CHANCE_PASS]++;
        return XDP_PASS;
    }
    if ((void *)(eth + 1) > data_end)
        return drop(st, DROVER_STAT_DROP_BAD_GUE);
    __builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
    __builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
    st->count[DROVER_STAT_SECOND_CHANCE]++;
    if (fib.ifindex == ctx->ingress_ifindex)
        return XDP_TX;
    return bpf_redirect(fib.ifindex, 0);
}

SEC("xdp")
int drover_decap(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct inner_info in = {};
    __u32 zero = 0;
    __u32 outer_l3;
    __u8 family;

    struct drover_stats *st = bpf_map_lookup_elem(&decap_stats, &zero);
    if (!st)
        return XDP_PASS;
    st->count[DROVER_STAT_RX]++;
    struct drover_decap_config *cfg = bpf_map_lookup_elem(&decap_config, &zero);
    if (!cfg || cfg->version != DROVER_MAPS_VERSION) {
        st->count[DROVER_STAT_PASS_NO_CONFIG]++;
        return XDP_PASS;
    }

    __u16 proto;
    __u32 l3off;
    if (drover_parse_l2(data, data_end, &proto, &l3off) < 0) {
        st->count[DROVER_STAT_DECAP_PASS_NOT_GUE]++;
        return XDP_PASS;
    }

    struct udphdr *udp;
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *iph = data + l3off;
        if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl != 5 ||
            iph->protocol != IPPROTO_UDP || (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))) {
            st->count[DROVER_STAT_DECAP_PASS_NOT_GUE]++;
            return XDP_PASS;
        }
        family = DROVER_AF_INET;
        outer_l3 = sizeof(*iph);
    } else if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = data + l3off;
        if ((void *)(ip6 + 1) > data_end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP) {
            st->count[DROVER_STAT_DECAP_PASS_NOT_GUE]++;
            return XDP_PASS;
        }
        family = DROVER_AF_INET6;
        outer_l3 = sizeof(*ip6);
    } else {
        st->count[DROVER_STAT_DECAP_PASS_NOT_GUE]++;
        return XDP_PASS;
    }
    udp = data + l3off + outer_l3;
    if ((void *)(udp + 1) > data_end || udp->dest != cfg->gue_port) {
        st->count[DROVER_STAT_DECAP_PASS_NOT_GUE]++;
        return XDP_PASS;
    }

    /* From here on the packet is addressed to our tunnel: anything wrong
     * with it is dropped and counted, never handed to the stack. */
    struct drover_gue_hdr *gue = (void *)(udp + 1);
    struct drover_gue_hops *hops = (void *)(gue + 1);
    if ((void *)(hops + 1) > data_end)
        goto bad_gue;
    __u32 hlen = gue->hlen_c_ver & 0x1f;
    if ((gue->hlen_c_ver >> 5) != 0 || gue->flags != 0) /* version 0, data (C = 0) */
        goto bad_gue;
    if (hops->version != DROVER_HOPS_VERSION)
        goto bad_gue;
    __u32 alen = hops->family == DROVER_AF_INET ? 4 : hops->family == DROVER_AF_INET6 ? 16 : 0;
    if (alen == 0 || hops->family != family)
        goto bad_gue;
    if (hops->hop_count == 0 || hops->hop_count > DROVER_MAX_HOPS ||
        hops->next_hop > hops->hop_count || hlen * 4 < 4 + hops->hop_count * alen)
        goto bad_gue;
    __u32 hop_off = l3off + outer_l3 + sizeof(*udp) + sizeof(*gue);
    __u32 inner_off = hop_off + hlen * 4;
    /* UDP claiming more than we received means truncation; less is fine
     * (Ethernet padding). */
    if (bpf_ntohs(udp->len) > (__u32)(data_end - (void *)udp))
        goto bad_gue;
    if (inner_off > 512)
        goto bad_gue;
    void *inner = data + inner_off;
    if (inner > data_end)
        goto bad_gue;
    if (parse_inner(inner, data_end, gue->proto_ctype, &in) < 0)
        return drop(st, DROVER_STAT_DROP_BAD_INNER);

    if (!in.is_tcp)
        return decap_local(ctx, st, l3off, inner_off, in.ethertype);
    if (hops->next_hop >= hops->hop_count) {
        st->count[DROVER_STAT_DECAP_HOPS_DONE]++;
        return decap_local(ctx, st, l3off, inner_off, in.ethertype);
    }
    int sock = local_socket(ctx, &in);
    if (in.is_syn) {
        /* A new connection stays here while something listens for it;
         * with nobody listening the stack would answer RST, so the next
         * hop gets its chance (issue 14: a HAProxy being restarted). */
        if (sock != SOCK_NONE) {
            st->count[DROVER_STAT_DECAP_SYN_LOCAL]++;
            return decap_local(ctx, st, l3off, inner_off, in.ethertype);
        }
        return forward_next_hop(ctx, st, l3off, family, hop_off); /* counted there */
    }
    if (sock == SOCK_CONN) {
        st->count[DROVER_STAT_DECAP_SOCKET_LOCAL]++;
        return decap_local(ctx, st, l3off, inner_off, in.ethertype);
    }
    return forward_next_hop(ctx, st, l3off, family, hop_off);

bad_gue:
    return drop(st, DROVER_STAT_DROP_BAD_GUE);
}
