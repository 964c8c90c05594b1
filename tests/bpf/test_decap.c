/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF_PROG_TEST_RUN tests of the proxy-side decap program: local delivery
 * (SYN to a listener, local socket, hop list exhausted, UDP), second chance
 * (SYN without a listener, non-SYN without a socket forwarded to the next
 * hop after a FIB lookup, in a private network namespace with a routed next
 * hop), non-GUE pass-through,
 * bad GUE and truncation at every length dropped, VLAN, and a round trip
 * through the director program. GUE packets are built here byte by byte
 * from the wire format in docs/director.md.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <check.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "decap_bpf.skel.h"
#include "director_bpf.skel.h"
#include "director_config.h"
#include "director_maps.h"
#include "log.h"
#include "pkt.h"

#define XDP_DROP_     1
#define XDP_PASS_     2
#define XDP_TX_       3
#define XDP_REDIRECT_ 4

static struct decap_bpf *skel;
static int prog;
static int sc0; /* ifindex of the test namespace's routed device */

struct gue_spec {
    uint8_t family;
    const char *src, *dst;
    const char *hops[DROVER_MAX_HOPS];
    uint8_t hop_count, slots, next_hop;
    uint16_t port;
    uint16_t vlan;
    struct pkt_spec inner;
};

static void put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

/* Build a GUE packet; *inner_off = offset of the inner IP header. */
static void build_gue(struct pkt *p, const struct gue_spec *g, size_t *inner_off)
{
    struct pkt inner;
    size_t in_l3 = pkt_build(&inner, &g->inner);
    size_t in_len = inner.len - in_l3;
    int v4 = g->family == DROVER_AF_INET;
    size_t alen = v4 ? 4 : 16, slots = g->slots ? g->slots : g->hop_count;
    size_t priv = 4 + slots * alen;
    size_t udp_len = 8 + 4 + priv + in_len;
    uint8_t *b = p->b;
    size_t o = 0;

    memcpy(b, "\x02\x00\x00\x00\x00\xd1\x02\x00\x00\x00\x00\x99", 12);
    o = 12;
    if (g->vlan) {
        put16(b + o, 0x8100);
        put16(b + o + 2, g->vlan);
        o += 4;
    }
    put16(b + o, v4 ? 0x0800 : 0x86dd);
    o += 2;
    if (v4) {
        memset(b + o, 0, 20);
        b[o] = 0x45;
        put16(b + o + 2, (uint16_t)(20 + udp_len));
        b[o + 8] = 64;
        b[o + 9] = IPPROTO_UDP;
        inet_pton(AF_INET, g->src, b + o + 12);
        inet_pton(AF_INET, g->dst, b + o + 16);
        put16(b + o + 10, pkt_ipv4_csum(b + o));
        o += 20;
    } else {
        memset(b + o, 0, 40);
        b[o] = 0x60;
        put16(b + o + 4, (uint16_t)udp_len);
        b[o + 6] = IPPROTO_UDP;
        b[o + 7] = 64;
        inet_pton(AF_INET6, g->src, b + o + 8);
        inet_pton(AF_INET6, g->dst, b + o + 24);
        o += 40;
    }
    put16(b + o, 50000);
    put16(b + o + 2, g->port ? g->port : DROVER_GUE_PORT_DEFAULT);
    put16(b + o + 4, (uint16_t)udp_len);
    put16(b + o + 6, 0);
    o += 8;
    b[o] = (uint8_t)(priv / 4); /* version 0, C 0, hlen */
    b[o + 1] = g->inner.family == DROVER_AF_INET ? 4 : 41;
    put16(b + o + 2, 0);
    o += 4;
    b[o] = DROVER_HOPS_VERSION;
    b[o + 1] = g->family;
    b[o + 2] = g->hop_count;
    b[o + 3] = g->next_hop;
    o += 4;
    memset(b + o, 0, slots * alen);
    for (size_t i = 0; i < slots && i < DROVER_MAX_HOPS; i++)
        if (g->hops[i])
            inet_pton(v4 ? AF_INET : AF_INET6, g->hops[i], b + o + i * alen);
    o += slots * alen;
    memcpy(b + o, inner.b + in_l3, in_len);
    *inner_off = o;
    p->len = o + in_len;
}

static const struct gue_spec GUE4 = {
    .family = DROVER_AF_INET,
    .src = "10.0.0.1",
    .dst = "10.1.0.10",
    .hops = {"10.1.0.10", "10.1.0.11"},
    .hop_count = 2,
    .next_hop = 1,
    .inner = {DROVER_AF_INET, IPPROTO_TCP, "198.51.100.7", "192.0.2.1", 40000, 80, 0x10, 0, 20},
};

static const struct gue_spec GUE6 = {
    .family = DROVER_AF_INET6,
    .src = "fd00::1",
    .dst = "fd00:1::10",
    .hops = {"fd00:1::10", "fd00:1::11"},
    .hop_count = 2,
    .next_hop = 1,
    .inner = {DROVER_AF_INET6, IPPROTO_TCP, "2001:db8:99::7", "2001:db8::1", 40002, 443, 0x10, 0,
              0},
};

static void setup(void)
{
    log_set_level(LOGL_WARN);
    sc0 = pkt_netns_setup("10.1.0.11/32", "fd00:1::11/128");
    ck_assert_int_gt(sc0, 0);
    skel = decap_bpf__open_and_load();
    ck_assert_ptr_nonnull(skel);
    prog = bpf_program__fd(skel->progs.drover_decap);
    ck_assert_int_eq(
        decap_maps_configure(bpf_map__fd(skel->maps.decap_config), DROVER_GUE_PORT_DEFAULT), 0);
}

static void teardown(void)
{
    decap_bpf__destroy(skel);
}

static __u64 stat(int which)
{
    __u64 v[DROVER_STAT_MAX];
    ck_assert_int_eq(director_stats_read(bpf_map__fd(skel->maps.decap_stats), v), 0);
    return v[which];
}

/* Expect local delivery: same L2 header (ethertype of the inner packet),
 * then exactly the inner packet. */
static void expect_local(const struct gue_spec *g, int ifindex)
{
    struct pkt in, out;
    size_t inner_off;
    uint32_t act;

    build_gue(&in, g, &inner_off);
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, ifindex), 0);
    ck_assert_uint_eq(act, XDP_PASS_);
    size_t l2 = g->vlan ? 18 : 14;
    ck_assert_uint_eq(out.len, l2 + in.len - inner_off);
    ck_assert_mem_eq(out.b, in.b, 12);
    if (g->vlan) {
        ck_assert_uint_eq(get16(out.b + 12), 0x8100);
        ck_assert_uint_eq(get16(out.b + 14), g->vlan);
    }
    ck_assert_uint_eq(get16(out.b + l2 - 2), g->inner.family == DROVER_AF_INET ? 0x0800 : 0x86dd);
    ck_assert_mem_eq(out.b + l2, in.b + inner_off, in.len - inner_off);
}

/* pkt_listener(), asserted. */
static int listener(int family, uint16_t port)
{
    int fd = pkt_listener(family, port);

    ck_assert_msg(fd >= 0, "listener on port %u: %s", port, strerror(fd < 0 ? -fd : 0));
    return fd;
}

START_TEST(test_syn_local)
{
    int l4 = listener(AF_INET, GUE4.inner.dport), l6 = listener(AF_INET6, GUE6.inner.dport);
    struct gue_spec g = GUE4;
    g.inner.tcp_flags = 0x02;
    expect_local(&g, sc0);
    g = GUE6;
    g.inner.tcp_flags = 0x02;
    expect_local(&g, sc0);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_SYN_LOCAL), 2);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_LOCAL), 2);
    ck_assert_uint_eq(stat(DROVER_STAT_SECOND_CHANCE), 0);
    close(l4);
    close(l6);
}
END_TEST

START_TEST(test_udp_inner_and_vlan_local)
{
    int l4 = listener(AF_INET, GUE4.inner.dport);
    struct gue_spec g = GUE4;
    g.inner.proto = IPPROTO_UDP;
    expect_local(&g, sc0);
    g = GUE4;
    g.vlan = 33;
    g.inner.tcp_flags = 0x02;
    expect_local(&g, sc0);
    g = GUE6;
    g.inner = GUE4.inner; /* IPv4 inside IPv6 */
    g.inner.tcp_flags = 0x02;
    expect_local(&g, sc0);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_LOCAL), 3);
    close(l4);
}
END_TEST

START_TEST(test_hops_exhausted_local)
{
    struct gue_spec g = GUE4;
    g.next_hop = 2; /* already at the secondary */
    expect_local(&g, sc0);
    g = GUE6;
    g.next_hop = 2;
    expect_local(&g, sc0);
    g = GUE4;
    g.hop_count = 1; /* director had only a primary */
    g.slots = 2;
    expect_local(&g, sc0);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_HOPS_DONE), 3);
}
END_TEST

/* Non-SYN, no socket, a hop left: re-addressed to hops[next_hop], next_hop
 * advanced, TTL decremented, MACs from the FIB, everything else as sent. */
static void expect_forward(const struct gue_spec *g, int ingress, uint32_t want_act)
{
    struct pkt in, out;
    size_t inner_off;
    uint32_t act;
    uint8_t mac[6];
    struct ifreq ifr = {0};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "sc0");
    ck_assert_int_eq(ioctl(fd, SIOCGIFHWADDR, &ifr), 0);
    close(fd);
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);

    build_gue(&in, g, &inner_off);
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, ingress), 0);
    ck_assert_uint_eq(act, want_act);
    ck_assert_uint_eq(out.len, in.len);
    ck_assert_mem_eq(out.b, "\x02\x00\x00\x00\x02\x02", 6); /* PKT_NEXT_HOP_MAC */
    ck_assert_mem_eq(out.b + 6, mac, 6);
    size_t l3 = g->vlan ? 18 : 14;
    uint8_t want[16];
    if (g->family == DROVER_AF_INET) {
        inet_pton(AF_INET, g->hops[g->next_hop], want);
        ck_assert_mem_eq(out.b + l3 + 16, want, 4);
        ck_assert_uint_eq(out.b[l3 + 8], 63);
        ck_assert_uint_eq(pkt_ipv4_csum(out.b + l3), 0);
        ck_assert_mem_eq(out.b + l3 + 12, in.b + l3 + 12, 4); /* source kept */
    } else {
        inet_pton(AF_INET6, g->hops[g->next_hop], want);
        ck_assert_mem_eq(out.b + l3 + 24, want, 16);
        ck_assert_uint_eq(out.b[l3 + 7], 63);
    }
    size_t ipl = g->family == DROVER_AF_INET ? 20 : 40;
    size_t hops = l3 + ipl + 8 + 4;
    ck_assert_uint_eq(out.b[hops + 3], g->next_hop + 1);
    ck_assert_mem_eq(out.b + hops + 4, in.b + hops + 4, in.len - hops - 4);
}

START_TEST(test_second_chance_forward)
{
    expect_forward(&GUE4, sc0, XDP_TX_);
    expect_forward(&GUE6, sc0, XDP_TX_);
    /* RST and FIN without a socket are forwarded too: only SYN is new. */
    struct gue_spec g = GUE4;
    g.inner.tcp_flags = 0x04;
    expect_forward(&g, sc0, XDP_TX_);
    g.inner.tcp_flags = 0x12; /* SYN+ACK is not a new connection */
    expect_forward(&g, sc0, XDP_TX_);
    /* Arrived on another device than the route's: redirect. */
    expect_forward(&GUE4, (int)if_nametoindex("sc1"), XDP_REDIRECT_);
    ck_assert_uint_eq(stat(DROVER_STAT_SECOND_CHANCE), 5);
}
END_TEST

/* Nothing listens (the proxy's HAProxy is being restarted): a SYN with a
 * hop left goes to the next hop instead of meeting a RST here; at the
 * last hop it stays (nobody else could take it). */
START_TEST(test_syn_without_listener_forwarded)
{
    struct gue_spec g = GUE4;
    g.inner.tcp_flags = 0x02;
    expect_forward(&g, sc0, XDP_TX_);
    g = GUE6;
    g.inner.tcp_flags = 0x02;
    expect_forward(&g, sc0, XDP_TX_);
    ck_assert_uint_eq(stat(DROVER_STAT_SECOND_CHANCE), 2);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_SYN_LOCAL), 0);
    g = GUE4;
    g.inner.tcp_flags = 0x02;
    g.next_hop = 2;
    expect_local(&g, sc0);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_HOPS_DONE), 1);
    /* listening again: local */
    int l4 = listener(AF_INET, GUE4.inner.dport);
    g.next_hop = 1;
    expect_local(&g, sc0);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_SYN_LOCAL), 1);
    close(l4);
}
END_TEST

START_TEST(test_second_chance_ttl_expired_drops)
{
    struct pkt in, out;
    size_t inner_off;
    uint32_t act;

    build_gue(&in, &GUE4, &inner_off);
    in.b[14 + 8] = 1; /* TTL */
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, sc0), 0);
    ck_assert_uint_eq(act, XDP_DROP_);
    build_gue(&in, &GUE6, &inner_off);
    in.b[14 + 7] = 1; /* hop limit */
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, sc0), 0);
    ck_assert_uint_eq(act, XDP_DROP_);
    ck_assert_uint_eq(stat(DROVER_STAT_DROP_TTL), 2);
}
END_TEST

START_TEST(test_second_chance_unresolved_passes)
{
    struct gue_spec g = GUE4;
    struct pkt in, out;
    size_t inner_off;
    uint32_t act;

    g.hops[1] = "10.1.0.99"; /* no route: the stack gets the rewritten packet */
    build_gue(&in, &g, &inner_off);
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, sc0), 0);
    ck_assert_uint_eq(act, XDP_PASS_);
    uint8_t want[4];
    inet_pton(AF_INET, "10.1.0.99", want);
    ck_assert_mem_eq(out.b + 14 + 16, want, 4);
    ck_assert_uint_eq(out.b[14 + 20 + 8 + 4 + 3], 2);
    ck_assert_uint_eq(stat(DROVER_STAT_SECOND_CHANCE_PASS), 1);
}
END_TEST

/* A connected TCP socket pair in the test namespace; the GUE inner packet
 * is client -> server, as it would arrive from the director. */
static void connected_pair(int family, int fds[3], uint16_t *cport, uint16_t *sport)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    int l = socket(family, SOCK_STREAM, 0);

    ck_assert_int_ge(l, 0);
    if (family == AF_INET) {
        struct sockaddr_in *a = (void *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (void *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    }
    ck_assert_int_eq(bind(l, (void *)&ss, sl), 0);
    ck_assert_int_eq(listen(l, 4), 0);
    ck_assert_int_eq(getsockname(l, (void *)&ss, &sl), 0);
    *sport = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
    int c = socket(family, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(c, (void *)&ss, sl), 0);
    int a = accept(l, NULL, NULL);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(getsockname(c, (void *)&ss, &sl), 0);
    *cport = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
    fds[0] = l;
    fds[1] = c;
    fds[2] = a;
}

START_TEST(test_local_socket_stays_local)
{
    int fds[3];
    uint16_t cport, sport;
    struct gue_spec g = GUE4;

    connected_pair(AF_INET, fds, &cport, &sport);
    g.inner.src = "127.0.0.1";
    g.inner.dst = "127.0.0.1";
    g.inner.sport = cport;
    g.inner.dport = sport;
    expect_local(&g, sc0);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_SOCKET_LOCAL), 1);

    /* Only the listener matches another client port: not ours, forward. */
    g.inner.sport = (uint16_t)(cport == 65000 ? 65001 : 65000);
    expect_forward(&g, sc0, XDP_TX_);
    for (int i = 0; i < 3; i++)
        close(fds[i]);

    connected_pair(AF_INET6, fds, &cport, &sport);
    g = GUE6;
    g.inner.src = "::1";
    g.inner.dst = "::1";
    g.inner.sport = cport;
    g.inner.dport = sport;
    expect_local(&g, sc0);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_SOCKET_LOCAL), 2);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}
END_TEST

static void expect_verdict(const struct pkt *in, uint32_t want)
{
    struct pkt out;
    uint32_t act;

    ck_assert_int_eq(pkt_run(prog, in, &out, &act, sc0), 0);
    ck_assert_uint_eq(act, want);
    if (want == XDP_PASS_) {
        ck_assert_uint_eq(out.len, in->len);
        ck_assert_mem_eq(out.b, in->b, in->len);
    }
}

START_TEST(test_not_gue_passes)
{
    struct pkt p;
    size_t off;
    struct gue_spec g = GUE4;

    g.port = 4789; /* UDP, another port */
    build_gue(&p, &g, &off);
    expect_verdict(&p, XDP_PASS_);
    build_gue(&p, &GUE4, &off);
    p.b[14 + 9] = IPPROTO_TCP;
    expect_verdict(&p, XDP_PASS_);
    p.b[12] = 0x08;
    p.b[13] = 0x06; /* ARP */
    expect_verdict(&p, XDP_PASS_);
    build_gue(&p, &GUE4, &off);
    p.b[14 + 6] = 0x20; /* fragment */
    expect_verdict(&p, XDP_PASS_);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_PASS_NOT_GUE), 4);
}
END_TEST

START_TEST(test_bad_gue_drops)
{
    struct pkt p;
    size_t off;
    struct gue_spec g;
    /* byte offsets from the start of the GUE header */
    const size_t gue = 14 + 20 + 8;
    struct {
        size_t at;
        uint8_t value;
    } bad[] = {
        {0, 0x43}, /* GUE version 1 */
        {0, 0x23}, /* control message */
        {0, 0x01}, /* hlen too small for two hops */
        {1, 17},   /* inner protocol not IP */
        {2, 0x80}, /* flags set */
        {4, 2},    /* hop-list version */
        {5, 6},    /* family differs from the outer header */
        {5, 9},    /* unknown family */
        {6, 0},    /* no hops */
        {6, 5},    /* more hops than we accept */
        {6, 3},    /* more hops than slots */
        {7, 3},    /* next hop beyond the list */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        build_gue(&p, &GUE4, &off);
        p.b[gue + bad[i].at] = bad[i].value;
        expect_verdict(&p, XDP_DROP_);
    }
    /* Inner packet that is not what proto_ctype says */
    build_gue(&p, &GUE4, &off);
    p.b[off] = 0x65;
    expect_verdict(&p, XDP_DROP_);
    g = GUE4;
    g.inner.tcp_flags = 0x02;
    build_gue(&p, &g, &off);
    p.b[gue + 1] = 41;
    expect_verdict(&p, XDP_DROP_);
    ck_assert_uint_eq(stat(DROVER_STAT_DROP_BAD_GUE) + stat(DROVER_STAT_DROP_BAD_INNER), 14);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_LOCAL), 0);
}
END_TEST

/* Cut at every length: before the UDP header is complete it is not ours
 * (pass untouched), after it everything is dropped (the UDP length or the
 * inner headers do not fit). */
static void truncations(const struct gue_spec *g)
{
    struct pkt full, t;
    size_t off;
    size_t udp_end = (g->vlan ? 18 : 14) + (g->family == DROVER_AF_INET ? 20 : 40) + 8;

    build_gue(&full, g, &off);
    for (size_t len = 14; len < full.len; len++) {
        memcpy(t.b, full.b, len);
        t.len = len;
        expect_verdict(&t, len < udp_end ? XDP_PASS_ : XDP_DROP_);
    }
}

START_TEST(test_truncated_every_length)
{
    struct gue_spec g = GUE4;
    truncations(&g);
    g.vlan = 12;
    truncations(&g);
    truncations(&GUE6);
    g = GUE4;
    g.inner.proto = IPPROTO_UDP;
    g.inner.payload = 0;
    truncations(&g);
    ck_assert_uint_eq(stat(DROVER_STAT_DECAP_LOCAL) + stat(DROVER_STAT_SECOND_CHANCE), 0);
}
END_TEST

START_TEST(test_director_roundtrip)
{
    struct director_bpf *dir = director_bpf__open_and_load();
    struct director_maps m;
    struct drover_gen_config gen = {0};
    static struct drover_row rows[DROVER_TABLE_ROWS];
    struct drover_proxy px[2] = {0};
    struct drover_vip_key vip = {0};
    struct pkt in, enc, out;
    uint32_t act;

    ck_assert_ptr_nonnull(dir);
    ck_assert_int_eq(director_maps_from_object(&m, dir->obj), 0);
    director_parse_addr("10.1.0.10", &px[0].family, px[0].addr);
    director_parse_addr("10.1.0.11", &px[1].family, px[1].addr);
    px[0].state = px[1].state = DROVER_PROXY_ACTIVE;
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        rows[r].primary = 0;
        rows[r].secondary = 1;
    }
    gen.version = DROVER_MAPS_VERSION;
    gen.proxy_count = 2;
    gen.hash_key[0] = 1;
    gen.hash_key[1] = 2;
    gen.gue_port = htons(DROVER_GUE_PORT_DEFAULT);
    inet_pton(AF_INET, "10.0.0.1", &gen.src_v4);
    ck_assert_int_eq(director_maps_publish(&m, &gen, px, rows, NULL), 0);
    director_parse_addr("192.0.2.1", &vip.family, vip.addr);
    vip.port = htons(80);
    vip.proto = IPPROTO_TCP;
    ck_assert_int_eq(director_maps_set_vips(&m, &vip, 1), 0);

    struct pkt_spec s = GUE4.inner;
    size_t l3 = pkt_build(&in, &s);
    ck_assert_int_eq(pkt_run(bpf_program__fd(dir->progs.drover_director), &in, &enc, &act, 0), 0);
    ck_assert_uint_eq(act, XDP_TX_);
    /* ACK, no socket, at the primary: second chance to the secondary */
    ck_assert_int_eq(pkt_run(prog, &enc, &out, &act, sc0), 0);
    ck_assert_uint_eq(act, XDP_TX_);
    /* at the secondary, the hop list is exhausted: local */
    ck_assert_int_eq(pkt_run(prog, &out, &enc, &act, sc0), 0);
    ck_assert_uint_eq(act, XDP_PASS_);
    ck_assert_uint_eq(enc.len, 14 + in.len - l3);
    ck_assert_mem_eq(enc.b + 14, in.b + l3, in.len - l3);
    director_maps_close(&m);
    director_bpf__destroy(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bpf_decap");
    TCase *tc = tcase_create("decap");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_syn_local);
    tcase_add_test(tc, test_syn_without_listener_forwarded);
    tcase_add_test(tc, test_udp_inner_and_vlan_local);
    tcase_add_test(tc, test_hops_exhausted_local);
    tcase_add_test(tc, test_second_chance_forward);
    tcase_add_test(tc, test_second_chance_ttl_expired_drops);
    tcase_add_test(tc, test_second_chance_unresolved_passes);
    tcase_add_test(tc, test_local_socket_stays_local);
    tcase_add_test(tc, test_not_gue_passes);
    tcase_add_test(tc, test_bad_gue_drops);
    tcase_add_test(tc, test_truncated_every_length);
    tcase_add_test(tc, test_director_roundtrip);
    suite_add_tcase(s, tc);
    if (geteuid() != 0) {
        fprintf(stderr, "bpf tests need root (CAP_BPF, CAP_NET_ADMIN, netns)\n");
        return 77;
    }
    SRunner *sr = srunner_create(s);
    /* Each test runs in its own forked child, which moves into its own
     * network namespace: nothing to clean up on the host. */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
