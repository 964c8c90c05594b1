/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF_PROG_TEST_RUN tests of the director XDP program: every VIP path (v4/v6,
 * TCP/UDP, VLAN, ICMP PTB), fail-open for everything else, truncation at
 * every length, no-proxy drops, and atomic generation swaps under load.
 * The expected row is computed in user space with the same keyed hash, so
 * these also check that kernel and user space agree on it.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "director_bpf.skel.h"
#include "director_config.h"
#include "director_counters.h"
#include "director_maps.h"
#include "director_publish.h"
#include "drover_hash.h"
#include "log.h"
#include "pkt.h"

#define XDP_ABORTED_ 0
#define XDP_DROP_    1
#define XDP_PASS_    2
#define XDP_TX_      3

static const __u64 KEY[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
static const uint8_t GW_MAC[6] = {0x02, 0, 0, 0, 0, 0x99};
static const uint8_t SRC_MAC[6] = {0x02, 0, 0, 0, 0, 0xd1};
static const char *const PROXY_ADDRS[] = {"10.1.0.10", "10.1.0.11", "fd00:1::10", "fd00:1::11"};
#define NPROXIES 4

static struct director_bpf *skel;
static struct director_maps maps;
static struct drover_proxy proxies[NPROXIES];
static struct drover_row rows[DROVER_TABLE_ROWS];
static struct drover_gen_config gen;
static int prog;

static void vip(const char *addr, uint16_t port, uint8_t proto, struct drover_vip_key *k)
{
    memset(k, 0, sizeof(*k));
    ck_assert_int_eq(director_parse_addr(addr, &k->family, k->addr), 0);
    k->port = htons(port);
    k->proto = proto;
}

/* Rows alternate between the two proxies of a family, so both are hit. */
static void fill_rows(int v6)
{
    __u16 a = v6 ? 2 : 0, b = v6 ? 3 : 1;

    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        rows[r].primary = (r & 1) ? a : b;
        rows[r].secondary = (r & 1) ? b : a;
    }
}

static void publish(void)
{
    __u32 g;
    ck_assert_int_eq(director_maps_publish(&maps, &gen, proxies, rows, &g), 0);
}

static void load_director(void)
{
    skel = director_bpf__open_and_load();
    ck_assert_ptr_nonnull(skel);
    prog = bpf_program__fd(skel->progs.drover_director);
    ck_assert_int_eq(director_maps_from_object(&maps, skel->obj), 0);
}

static void setup(void)
{
    struct drover_vip_key vips[5];
    __u8 fam;

    log_set_level(LOGL_WARN);
    load_director();
    for (int i = 0; i < NPROXIES; i++) {
        memset(&proxies[i], 0, sizeof(proxies[i]));
        ck_assert_int_eq(director_parse_addr(PROXY_ADDRS[i], &proxies[i].family, proxies[i].addr),
                         0);
        proxies[i].state = DROVER_PROXY_ACTIVE;
    }
    memset(&gen, 0, sizeof(gen));
    gen.version = DROVER_MAPS_VERSION;
    gen.proxy_count = NPROXIES;
    gen.hash_key[0] = KEY[0];
    gen.hash_key[1] = KEY[1];
    gen.hash_fields = DROVER_HASH_SRC;
    gen.gue_port = htons(DROVER_GUE_PORT_DEFAULT);
    inet_pton(AF_INET, "10.0.0.1", &gen.src_v4);
    ck_assert_int_eq(director_parse_addr("fd00::1", &fam, gen.src_v6), 0);
    memcpy(gen.gw_mac, GW_MAC, 6);
    memcpy(gen.src_mac, SRC_MAC, 6);
    vip("192.0.2.1", 80, IPPROTO_TCP, &vips[0]);
    vip("192.0.2.1", 53, IPPROTO_UDP, &vips[1]);
    vip("2001:db8::1", 443, IPPROTO_TCP, &vips[2]);
    vip("2001:db8::1", 53, IPPROTO_UDP, &vips[3]);
    vip("192.0.2.2", 443, IPPROTO_TCP, &vips[4]);
    ck_assert_int_eq(director_maps_set_vips(&maps, vips, 5), 0);
    fill_rows(0);
    publish();
}

static void teardown(void)
{
    director_maps_close(&maps);
    director_bpf__destroy(skel);
}

static __u64 stat(int which)
{
    __u64 v[DROVER_STAT_MAX];
    ck_assert_int_eq(director_stats_read(bpf_map__fd(skel->maps.drover_stats), v), 0);
    return v[which];
}

static uint16_t get16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

/* Check out is in, encapsulated for flow f by the current gen/rows. */
static void check_encap(const struct pkt *in, size_t in_l3, const struct pkt *out,
                        const struct drover_flow *f)
{
    __u64 h = drover_flow_hash(KEY, f, gen.hash_fields);
    const struct drover_row *row = &rows[drover_hash_row(h)];
    const struct drover_proxy *pri = &proxies[row->primary], *sec = &proxies[row->secondary];
    const uint8_t *o = out->b;
    size_t ip_len, alen;

    ck_assert_mem_eq(o, GW_MAC, 6);
    ck_assert_mem_eq(o + 6, SRC_MAC, 6);
    if (pri->family == DROVER_AF_INET) {
        ck_assert_uint_eq(get16(o + 12), 0x0800);
        ck_assert_uint_eq(o[14], 0x45);
        ck_assert_uint_eq(get16(o + 16), out->len - 14);
        ck_assert_uint_eq(pkt_ipv4_csum(o + 14), 0);
        ck_assert_uint_eq(o[22], 64);
        ck_assert_uint_eq(o[23], IPPROTO_UDP);
        ck_assert_mem_eq(o + 26, &gen.src_v4, 4);
        ck_assert_mem_eq(o + 30, pri->addr, 4);
        ip_len = 20;
        alen = 4;
    } else {
        ck_assert_uint_eq(get16(o + 12), 0x86dd);
        ck_assert_uint_eq(o[14] >> 4, 6);
        ck_assert_uint_eq(get16(o + 18), out->len - 14 - 40);
        ck_assert_uint_eq(o[20], IPPROTO_UDP);
        ck_assert_mem_eq(o + 22, gen.src_v6, 16);
        ck_assert_mem_eq(o + 38, pri->addr, 16);
        ip_len = 40;
        alen = 16;
    }
    const uint8_t *udp = o + 14 + ip_len;
    ck_assert_uint_eq(get16(udp), drover_hash_sport(h));
    ck_assert_uint_eq(get16(udp + 2), DROVER_GUE_PORT_DEFAULT);
    ck_assert_uint_eq(get16(udp + 4), out->len - 14 - ip_len);
    const uint8_t *gue = udp + 8;
    ck_assert_uint_eq(gue[0], (4 + 2 * alen) / 4); /* version 0, C 0, hlen */
    ck_assert_uint_eq(gue[1], f->family == DROVER_AF_INET ? 4 : 41);
    ck_assert_uint_eq(get16(gue + 2), 0);
    const uint8_t *hops = gue + 4;
    ck_assert_uint_eq(hops[0], DROVER_HOPS_VERSION);
    ck_assert_uint_eq(hops[1], pri->family);
    ck_assert_uint_eq(hops[2], 2);
    ck_assert_uint_eq(hops[3], 1);
    ck_assert_mem_eq(hops + 4, pri->addr, alen);
    ck_assert_mem_eq(hops + 4 + alen, sec->addr, alen);
    size_t outer = 14 + ip_len + 8 + 4 + 4 + 2 * alen;
    ck_assert_uint_eq(out->len - outer, in->len - in_l3);
    ck_assert_mem_eq(o + outer, in->b + in_l3, in->len - in_l3);
}

static void run_expect_encap(const struct pkt_spec *s)
{
    struct pkt in, out;
    struct drover_flow f;
    uint32_t act;

    size_t l3 = pkt_build(&in, s);
    pkt_flow(s, &f);
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
    ck_assert_uint_eq(act, XDP_TX_);
    check_encap(&in, l3, &out, &f);
}

static void run_expect_pass(const struct pkt *in)
{
    struct pkt out;
    uint32_t act;

    ck_assert_int_eq(pkt_run(prog, in, &out, &act, 0), 0);
    ck_assert_uint_eq(act, XDP_PASS_);
    ck_assert_uint_eq(out.len, in->len);
    ck_assert_mem_eq(out.b, in->b, in->len);
}

static const struct pkt_spec V4_TCP = {
    DROVER_AF_INET, IPPROTO_TCP, "198.51.100.7", "192.0.2.1", 40000, 80, 0x02, 0, 0};
static const struct pkt_spec V4_UDP = {
    DROVER_AF_INET, IPPROTO_UDP, "198.51.100.7", "192.0.2.1", 40001, 53, 0, 0, 32};
static const struct pkt_spec V6_TCP = {
    DROVER_AF_INET6, IPPROTO_TCP, "2001:db8:99::7", "2001:db8::1", 40002, 443, 0x10, 0, 100};
static const struct pkt_spec V6_UDP = {
    DROVER_AF_INET6, IPPROTO_UDP, "2001:db8:99::7", "2001:db8::1", 40003, 53, 0, 0, 0};

START_TEST(test_vip_v4_tcp_udp)
{
    struct pkt_spec s = V4_TCP;
    /* Many source ports: both proxies, both row parities. */
    for (int i = 0; i < 64; i++) {
        s.sport = (uint16_t)(1024 + i * 997);
        run_expect_encap(&s);
    }
    run_expect_encap(&V4_UDP);
    ck_assert_uint_eq(stat(DROVER_STAT_ENCAP_V4), 65);
    ck_assert_uint_eq(stat(DROVER_STAT_RX), 65);
}
END_TEST

START_TEST(test_vip_v6_tcp_udp)
{
    fill_rows(1); /* IPv6 proxies: outer IPv6 */
    publish();
    run_expect_encap(&V6_TCP);
    run_expect_encap(&V6_UDP);
    /* A v4 VIP through v6 proxies: inner IPv4, outer IPv6. */
    run_expect_encap(&V4_TCP);
    ck_assert_uint_eq(stat(DROVER_STAT_ENCAP_V6), 3);
    /* And v6 VIP through v4 proxies. */
    fill_rows(0);
    publish();
    run_expect_encap(&V6_TCP);
    ck_assert_uint_eq(stat(DROVER_STAT_ENCAP_V4), 1);
}
END_TEST

START_TEST(test_hash_fields)
{
    struct pkt_spec s = V4_TCP;
    gen.hash_fields = DROVER_HASH_5TUPLE;
    publish();
    run_expect_encap(&s);
    s.dport = 443;
    s.dst = "192.0.2.2";
    run_expect_encap(&s);
    gen.hash_fields = DROVER_HASH_SRC_DPORT;
    publish();
    run_expect_encap(&s);
    run_expect_encap(&V6_UDP);
}
END_TEST

START_TEST(test_vlan)
{
    struct pkt_spec s = V4_TCP;
    s.vlan = 42;
    run_expect_encap(&s);
    s = V6_UDP;
    s.vlan = 7;
    run_expect_encap(&s);
}
END_TEST

START_TEST(test_non_vip_passes)
{
    struct pkt p;
    struct pkt_spec s = V4_TCP;

    s.dst = "192.0.2.9"; /* not a VIP address */
    pkt_build(&p, &s);
    run_expect_pass(&p);
    s = V4_TCP;
    s.dport = 81; /* VIP address, other port */
    pkt_build(&p, &s);
    run_expect_pass(&p);
    s = V4_TCP;
    s.proto = IPPROTO_UDP; /* VIP address and port, other protocol */
    pkt_build(&p, &s);
    run_expect_pass(&p);
    s = V6_TCP;
    s.dst = "2001:db8::2";
    pkt_build(&p, &s);
    run_expect_pass(&p);
    ck_assert_uint_eq(stat(DROVER_STAT_PASS_NON_VIP), 4);

    /* ARP and other ethertypes */
    pkt_build(&p, &V4_TCP);
    p.b[12] = 0x08;
    p.b[13] = 0x06;
    run_expect_pass(&p);
    ck_assert_uint_eq(stat(DROVER_STAT_PASS_NOT_IP), 1);

    /* ICMP echo to a VIP is not ours either */
    pkt_build(&p, &V4_TCP);
    p.b[14 + 9] = IPPROTO_ICMP;
    p.b[34] = 8;
    run_expect_pass(&p);

    /* fragments (MF set, then an offset) */
    pkt_build(&p, &V4_TCP);
    p.b[14 + 6] = 0x20;
    run_expect_pass(&p);
    pkt_build(&p, &V4_TCP);
    p.b[14 + 7] = 0x10;
    run_expect_pass(&p);
    ck_assert_uint_eq(stat(DROVER_STAT_PASS_FRAGMENT), 2);
    ck_assert_uint_eq(stat(DROVER_STAT_PASS_NON_VIP), 5);
    ck_assert_uint_eq(stat(DROVER_STAT_ENCAP_V4), 0);
    /* Each exit counts its packet as received once (the stats are looked
     * up where the outcome is known, not on entry). */
    ck_assert_uint_eq(stat(DROVER_STAT_RX), 8);
}
END_TEST

/* IPv6 addresses in the VIP 2001:db8::1's index slot (the slot folds the
 * four address words by XOR, so flipping the same bits in two words keeps
 * it) that differ from the VIP in only one of the two 8-byte words the
 * director compares: each must pass, counted as non-VIP. */
START_TEST(test_vip_slot_other_address)
{
    static const char *const same_slot[] = {
        "2001:db8::ff:0:ff:1", /* first word equal, second not */
        "2001:db9:0:1::1",     /* first word differs, second equal */
    };
    struct drover_vip_key want, k;
    struct pkt p;

    vip(V6_TCP.dst, V6_TCP.dport, IPPROTO_TCP, &want);
    for (size_t i = 0; i < sizeof(same_slot) / sizeof(same_slot[0]); i++) {
        vip(same_slot[i], V6_TCP.dport, IPPROTO_TCP, &k);
        ck_assert_uint_eq(drover_vip_slot(&k), drover_vip_slot(&want));
        struct pkt_spec s = V6_TCP;
        s.dst = same_slot[i];
        pkt_build(&p, &s);
        run_expect_pass(&p);
    }
    ck_assert_uint_eq(stat(DROVER_STAT_PASS_NON_VIP), 2);
    run_expect_encap(&V6_TCP);
}
END_TEST

/* The ICMP error quotes VIP:port -> client:port; it must reach the proxy of
 * the client's flow, with the same outer source port. */
static void check_ptb(const struct pkt_spec *flow_spec, const char *router)
{
    struct pkt_spec quoted = *flow_spec;
    struct pkt in, out;
    struct drover_flow f;
    uint32_t act;

    quoted.src = flow_spec->dst;
    quoted.dst = flow_spec->src;
    quoted.sport = flow_spec->dport;
    quoted.dport = flow_spec->sport;
    quoted.payload = 0;
    pkt_build_icmp_ptb(&in, router, flow_spec->dst, &quoted);
    pkt_flow(flow_spec, &f);
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
    ck_assert_uint_eq(act, XDP_TX_);
    check_encap(&in, 14, &out, &f);
}

START_TEST(test_icmp_ptb)
{
    struct pkt_spec s = V4_TCP;
    for (int i = 0; i < 16; i++) {
        s.sport = (uint16_t)(2000 + i * 313);
        check_ptb(&s, "203.0.113.1");
    }
    fill_rows(1);
    publish();
    s = V6_TCP;
    for (int i = 0; i < 16; i++) {
        s.sport = (uint16_t)(2000 + i * 313);
        check_ptb(&s, "2001:db8:ffff::1");
    }
    ck_assert_uint_eq(stat(DROVER_STAT_ENCAP_ICMP), 32);
}
END_TEST

/* Every truncation of a VIP packet below min_ok bytes passes untouched (the
 * stack drops it); from min_ok on the director has what it needs (an ICMP
 * error quotes only 8 bytes of L4, of which it reads the ports). XDP test
 * runs need at least an Ethernet header, so lengths start at 14. */
static void truncations(const struct pkt *full, size_t min_ok)
{
    struct pkt t, out;
    uint32_t act;
    __u64 before = stat(DROVER_STAT_RX);

    if (min_ok == 0)
        min_ok = full->len;
    for (size_t len = 14; len < full->len; len++) {
        memcpy(t.b, full->b, len);
        t.len = len;
        if (len < min_ok) {
            run_expect_pass(&t);
        } else {
            ck_assert_int_eq(pkt_run(prog, &t, &out, &act, 0), 0);
            ck_assert_uint_eq(act, XDP_TX_);
        }
    }
    ck_assert_uint_eq(stat(DROVER_STAT_RX) - before, full->len - 14);
}

START_TEST(test_truncated_every_length)
{
    struct pkt p;
    struct pkt_spec s;
    const struct pkt_spec *specs[] = {&V4_TCP, &V4_UDP, &V6_TCP, &V6_UDP};

    for (size_t i = 0; i < 4; i++) {
        s = *specs[i];
        s.payload = 0;
        pkt_build(&p, &s);
        truncations(&p, 0);
        s.vlan = 100;
        pkt_build(&p, &s);
        truncations(&p, 0);
    }
    struct pkt_spec q = V4_TCP;
    q.src = "192.0.2.1";
    q.dst = "198.51.100.7";
    q.sport = 80;
    q.dport = 40000;
    pkt_build_icmp_ptb(&p, "203.0.113.1", "192.0.2.1", &q);
    truncations(&p, 14 + 20 + 8 + 20 + 4);
    q = V6_TCP;
    q.src = "2001:db8::1";
    q.dst = "2001:db8:99::7";
    q.sport = 443;
    q.dport = 40002;
    q.payload = 0;
    pkt_build_icmp_ptb(&p, "2001:db8:ffff::1", "2001:db8::1", &q);
    truncations(&p, 14 + 40 + 8 + 40 + 4);
    ck_assert_uint_eq(stat(DROVER_STAT_ENCAP_V4) + stat(DROVER_STAT_ENCAP_V6), 4 + 4);

    /* Bad IPv4 header length and version */
    pkt_build(&p, &V4_TCP);
    p.b[14] = 0x44;
    run_expect_pass(&p);
    p.b[14] = 0x65;
    run_expect_pass(&p);
    pkt_build(&p, &V6_TCP);
    p.b[14] = 0x40;
    run_expect_pass(&p);
}
END_TEST

START_TEST(test_no_proxy_drops)
{
    struct pkt in, out;
    uint32_t act;

    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++)
        rows[r].primary = rows[r].secondary = DROVER_ROW_NONE;
    publish();
    pkt_build(&in, &V4_TCP);
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
    ck_assert_uint_eq(act, XDP_DROP_);
    ck_assert_uint_eq(stat(DROVER_STAT_DROP_NO_PROXY), 1);

    /* Secondary missing: sent with one hop */
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        rows[r].primary = 0;
        rows[r].secondary = DROVER_ROW_NONE;
    }
    publish();
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
    ck_assert_uint_eq(act, XDP_TX_);
    ck_assert_uint_eq(out.b[14 + 20 + 8 + 4 + 2], 1); /* hop_count */

    /* Secondary of the other family: one hop, counted */
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++)
        rows[r].secondary = 2;
    publish();
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
    ck_assert_uint_eq(act, XDP_TX_);
    ck_assert_uint_eq(out.b[14 + 20 + 8 + 4 + 2], 1);
    ck_assert_uint_eq(stat(DROVER_STAT_HOPS_FAMILY), 1);
    /* A drop and two sends: each received once, whatever its exit. */
    ck_assert_uint_eq(stat(DROVER_STAT_ENCAP_V4), 2);
    ck_assert_uint_eq(stat(DROVER_STAT_RX), 3);
}
END_TEST

START_TEST(test_vip_set_sync)
{
    struct drover_vip_key k[2];
    struct pkt in;
    size_t n;

    /* Replace the five VIPs by two, one of them new. */
    vip("192.0.2.2", 443, IPPROTO_TCP, &k[0]);
    vip("192.0.2.3", 80, IPPROTO_TCP, &k[1]);
    ck_assert_int_eq(director_maps_set_vips(&maps, k, 2), 0);
    ck_assert_int_eq(director_maps_count_vips(&maps, &n), 0);
    ck_assert_uint_eq(n, 2);
    pkt_build(&in, &V4_TCP); /* 192.0.2.1:80 is gone */
    run_expect_pass(&in);
    struct pkt_spec s = V4_TCP;
    s.dst = "192.0.2.3";
    run_expect_encap(&s);
    ck_assert_int_eq(director_maps_set_vips(&maps, NULL, 0), 0);
    ck_assert_int_eq(director_maps_count_vips(&maps, &n), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

/* VIPs sharing a slot of the VIP index are found through the hash map;
 * a non-VIP in such a slot still passes. */
START_TEST(test_vip_index_collisions)
{
    struct drover_vip_key k[3];
    uint16_t ports[3];
    int found = 0;

    vip("192.0.2.1", 1000, IPPROTO_TCP, &k[0]);
    __u32 slot = drover_vip_slot(&k[0]);
    ports[0] = 1000;
    for (uint32_t p = 1001; p < 65536 && found < 2; p++) {
        struct drover_vip_key t;
        vip("192.0.2.1", (uint16_t)p, IPPROTO_TCP, &t);
        if (drover_vip_slot(&t) == slot) {
            k[1 + found] = t;
            ports[1 + found] = (uint16_t)p;
            found++;
        }
    }
    ck_assert_int_eq(found, 2);
    ck_assert_int_eq(director_maps_set_vips(&maps, k, 2), 0);
    struct pkt_spec s = V4_TCP;
    struct pkt in;
    s.dport = ports[0];
    run_expect_encap(&s);
    s.dport = ports[1];
    run_expect_encap(&s);
    s.dport = ports[2]; /* same slot, not a VIP */
    pkt_build(&in, &s);
    run_expect_pass(&in);
    /* Alone in its slot again: found without the hash map. */
    ck_assert_int_eq(director_maps_set_vips(&maps, &k[1], 1), 0);
    s.dport = ports[1];
    run_expect_encap(&s);
    s.dport = ports[0];
    pkt_build(&in, &s);
    run_expect_pass(&in);
}
END_TEST

START_TEST(test_egress_redirect)
{
    struct pkt in, out;
    uint32_t act;

    gen.egress_ifindex = 1; /* lo: any device will do for the verdict */
    publish();
    pkt_build(&in, &V4_TCP);
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
    ck_assert_uint_eq(act, 4 /* XDP_REDIRECT */);
    ck_assert_uint_eq(stat(DROVER_STAT_ENCAP_V4), 1);
}
END_TEST

START_TEST(test_no_config_passes)
{
    struct pkt in;

    /* A fresh object: VIP present but no generation written yet. */
    teardown();
    load_director();
    struct drover_vip_key k;
    vip("192.0.2.1", 80, IPPROTO_TCP, &k);
    ck_assert_int_eq(director_maps_set_vips(&maps, &k, 1), 0);
    pkt_build(&in, &V4_TCP);
    run_expect_pass(&in);
    ck_assert_uint_eq(stat(DROVER_STAT_PASS_NO_CONFIG), 1);
    ck_assert_uint_eq(stat(DROVER_STAT_RX), 1);
}
END_TEST

START_TEST(test_table_swap)
{
    struct pkt in, out;
    uint32_t act;
    __u32 g0, g1;
    __u64 sum;

    pkt_build(&in, &V4_TCP);
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        rows[r].primary = 0;
        rows[r].secondary = 1;
    }
    ck_assert_int_eq(director_maps_publish(&maps, &gen, proxies, rows, &g0), 0);
    ck_assert_uint_eq(director_maps_checksum(&maps, g0, &sum), 0);
    ck_assert_uint_eq(sum, director_generation_checksum(&gen, proxies, rows));
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
    ck_assert_mem_eq(out.b + 30, proxies[0].addr, 4);

    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        rows[r].primary = 1;
        rows[r].secondary = 0;
    }
    ck_assert_int_eq(director_maps_publish(&maps, &gen, proxies, rows, &g1), 0);
    ck_assert_uint_ne(g0, g1);
    ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
    ck_assert_mem_eq(out.b + 30, proxies[1].addr, 4);
    ck_assert_uint_eq(director_maps_checksum(&maps, g1, &sum), 0);
    ck_assert_uint_eq(sum, director_generation_checksum(&gen, proxies, rows));
    /* The old generation is still intact until the next publish. */
    ck_assert_uint_eq(maps.table[(size_t)g0 * DROVER_TABLE_ROWS].primary, 0);
}
END_TEST

/* Two generations that differ in every field a packet uses: outer source,
 * primary, secondary. A packet mixing them saw half a table. */
static volatile int swapping;
static void *swapper(void *arg)
{
    static struct drover_row r2[DROVER_TABLE_ROWS];
    struct drover_gen_config g = gen;
    (void)arg;
    for (int i = 0; swapping; i++) {
        int b = i & 1;
        inet_pton(AF_INET, b ? "10.0.0.2" : "10.0.0.1", &g.src_v4);
        for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
            r2[r].primary = (__u16)b;
            r2[r].secondary = (__u16)!b;
        }
        if (director_maps_publish(&maps, &g, proxies, r2, NULL) < 0)
            break;
    }
    return NULL;
}

START_TEST(test_swap_under_traffic)
{
    struct pkt in, out;
    uint32_t act, s1, s2;
    pthread_t th;
    int seen[2] = {0, 0};

    inet_pton(AF_INET, "10.0.0.1", &s1);
    inet_pton(AF_INET, "10.0.0.2", &s2);
    /* Start from a generation that follows the same rule as the swapper's. */
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        rows[r].primary = 0;
        rows[r].secondary = 1;
    }
    publish();
    pkt_build(&in, &V4_TCP);
    swapping = 1;
    ck_assert_int_eq(pthread_create(&th, NULL, swapper, NULL), 0);
    for (int i = 0; i < 20000; i++) {
        ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
        ck_assert_uint_eq(act, XDP_TX_);
        uint32_t src;
        memcpy(&src, out.b + 26, 4);
        int b = src == s2;
        ck_assert(src == s1 || src == s2);
        ck_assert_mem_eq(out.b + 30, proxies[b].addr, 4);
        ck_assert_mem_eq(out.b + 14 + 20 + 8 + 4 + 4, proxies[b].addr, 4);
        ck_assert_mem_eq(out.b + 14 + 20 + 8 + 4 + 8, proxies[!b].addr, 4);
        seen[b]++;
    }
    swapping = 0;
    pthread_join(th, NULL);
    /* Both generations were live during the run. */
    ck_assert_int_gt(seen[0], 0);
    ck_assert_int_gt(seen[1], 0);
}
END_TEST

START_TEST(test_table_states)
{
    /* The shared builder (director_build.h) in map layout: proxies come
     * back in the table's order (by address text), rows index them. */
    struct drover_proxy p[3], q[3];
    static struct drover_row a[DROVER_TABLE_ROWS], b[DROVER_TABLE_ROWS];
    __u8 fam;

    memset(p, 0, sizeof(p));
    for (int i = 0; i < 3; i++) {
        director_parse_addr(PROXY_ADDRS[i < 2 ? i : 0], &fam, p[i].addr);
        p[i].family = fam;
        p[i].state = DROVER_PROXY_ACTIVE;
    }
    ck_assert_int_eq(director_parse_addr("10.1.0.12", &fam, p[2].addr), 0);
    memcpy(q, p, sizeof(p));
    ck_assert_int_eq(director_publish_build_proxies(KEY, q, 3, a), 0);
    int count[3] = {0}, drained = -1;
    for (int i = 0; i < 3; i++)
        if (memcmp(q[i].addr, p[2].addr, sizeof(p[2].addr)) == 0)
            drained = i;
    ck_assert_int_ge(drained, 0);
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        ck_assert_uint_lt(a[r].primary, 3);
        ck_assert_uint_ne(a[r].primary, a[r].secondary);
        count[a[r].primary]++;
    }
    for (int i = 0; i < 3; i++) /* about a third each */
        ck_assert_int_gt(count[i], DROVER_TABLE_ROWS / 4);
    /* Draining one proxy: its rows get a new primary and keep it as
     * secondary; no other row changes its primary. */
    memcpy(q, p, sizeof(p));
    q[2].state = DROVER_PROXY_DRAINING;
    ck_assert_int_eq(director_publish_build_proxies(KEY, q, 3, b), 0);
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        if (a[r].primary == drained) {
            ck_assert_uint_ne(b[r].primary, drained);
            ck_assert_uint_eq(b[r].secondary, drained);
        } else {
            ck_assert_uint_eq(b[r].primary, a[r].primary);
        }
    }
    /* Inactive: in no row. The order of the input does not matter. */
    memcpy(q, p, sizeof(p));
    q[2].state = DROVER_PROXY_INACTIVE;
    ck_assert_int_eq(director_publish_build_proxies(KEY, q, 3, b), 0);
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++) {
        ck_assert_uint_ne(b[r].primary, drained);
        ck_assert_uint_ne(b[r].secondary, drained);
    }
    struct drover_proxy swapped[3] = {p[2], p[1], p[0]};
    swapped[0].state = DROVER_PROXY_INACTIVE;
    ck_assert_int_eq(director_publish_build_proxies(KEY, swapped, 3, a), 0);
    ck_assert_int_eq(memcmp(swapped, q, sizeof(q)), 0);
    ck_assert_int_eq(memcmp(a, b, sizeof(a)), 0);
}
END_TEST

/* One entry of t by name; fails the test when missing. */
static const struct director_traffic_entry *traffic_of(const struct director_traffic_entry *e,
                                                       size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i].name, name))
            return &e[i];
    ck_abort_msg("no counters for %s", name);
    return NULL;
}

/* Send n packets of spec s (source port varied), each encapsulated; add
 * what was sent to want_proxy[] by outer destination (the primary). */
static size_t send_vip(struct pkt_spec s, int n, __u64 want_proxy[NPROXIES][2])
{
    size_t bytes = 0;

    for (int i = 0; i < n; i++) {
        struct pkt in, out;
        uint32_t act;
        s.sport = (uint16_t)(2000 + i * 131);
        size_t l3 = pkt_build(&in, &s);
        ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
        ck_assert_uint_eq(act, XDP_TX_);
        int hit = 0;
        for (int p = 0; p < NPROXIES; p++) {
            size_t off = proxies[p].family == DROVER_AF_INET ? 30 : 38;
            size_t alen = proxies[p].family == DROVER_AF_INET ? 4 : 16;
            if (proxies[p].family == (out.b[12] == 0x08 ? DROVER_AF_INET : DROVER_AF_INET6) &&
                !memcmp(out.b + off, proxies[p].addr, alen)) {
                want_proxy[p][0]++;
                want_proxy[p][1] += in.len - l3;
                hit = 1;
            }
        }
        ck_assert_int_eq(hit, 1);
        bytes += in.len - l3;
    }
    return bytes;
}

/* The per-VIP and per-proxy counters count exactly what was sent and
 * dropped, and keep counting for the same VIP / proxy address across VIP
 * set and table changes; a newcomer starts at zero. */
START_TEST(test_traffic_counters)
{
    __u64 want_proxy[NPROXIES][2] = {{0}};
    struct director_traffic t;
    struct pkt_spec udp = V4_UDP;
    struct pkt in, out;
    uint32_t act;

    size_t tcp_bytes = send_vip(V4_TCP, 40, want_proxy);
    size_t udp_bytes = send_vip(udp, 7, want_proxy);
    /* Not for a VIP: in no VIP's or proxy's counters. */
    struct pkt_spec non = V4_TCP;
    non.dst = "192.0.2.99";
    pkt_build(&in, &non);
    run_expect_pass(&in);

    ck_assert_int_eq(director_traffic_read(&maps, &t), 0);
    ck_assert_uint_eq(t.n_vips, 5);
    const struct director_traffic_entry *v = traffic_of(t.vips, t.n_vips, "192.0.2.1:80/tcp");
    ck_assert_uint_eq(v->packets, 40);
    ck_assert_uint_eq(v->bytes, tcp_bytes);
    ck_assert_uint_eq(v->drops, 0);
    v = traffic_of(t.vips, t.n_vips, "192.0.2.1:53/udp");
    ck_assert_uint_eq(v->packets, 7);
    ck_assert_uint_eq(v->bytes, udp_bytes);
    v = traffic_of(t.vips, t.n_vips, "[2001:db8::1]:443/tcp");
    ck_assert_uint_eq(v->packets, 0);
    ck_assert_uint_eq(t.n_proxies, NPROXIES);
    for (int p = 0; p < NPROXIES; p++) {
        const struct director_traffic_entry *e = traffic_of(t.proxies, t.n_proxies, PROXY_ADDRS[p]);
        ck_assert_uint_eq(e->packets, want_proxy[p][0]);
        ck_assert_uint_eq(e->bytes, want_proxy[p][1]);
    }
    ck_assert_uint_gt(want_proxy[0][0], 0);
    ck_assert_uint_gt(want_proxy[1][0], 0);
    director_traffic_free(&t);

    /* Drops are counted per VIP. */
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r++)
        rows[r].primary = rows[r].secondary = DROVER_ROW_NONE;
    publish();
    pkt_build(&in, &V4_TCP);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(pkt_run(prog, &in, &out, &act, 0), 0);
        ck_assert_uint_eq(act, XDP_DROP_);
    }

    /* A new VIP set that keeps 192.0.2.1:80 and adds one; a new table
     * with the proxies in another order plus a new proxy. */
    struct drover_vip_key k[2];
    vip("192.0.2.7", 80, IPPROTO_TCP, &k[0]);
    vip("192.0.2.1", 80, IPPROTO_TCP, &k[1]);
    ck_assert_int_eq(director_maps_set_vips(&maps, k, 2), 0);
    struct drover_proxy first = proxies[0];
    proxies[0] = proxies[1];
    proxies[1] = first;
    __u64 w = want_proxy[0][0];
    want_proxy[0][0] = want_proxy[1][0];
    want_proxy[1][0] = w;
    w = want_proxy[0][1];
    want_proxy[0][1] = want_proxy[1][1];
    want_proxy[1][1] = w;
    memset(&proxies[3], 0, sizeof(proxies[3]));
    ck_assert_int_eq(director_parse_addr("10.1.0.12", &proxies[3].family, proxies[3].addr), 0);
    proxies[3].state = DROVER_PROXY_ACTIVE;
    want_proxy[3][0] = want_proxy[3][1] = 0;
    fill_rows(0);
    for (__u32 r = 0; r < DROVER_TABLE_ROWS; r += 3)
        rows[r].primary = 3;
    publish();
    struct pkt_spec s7 = V4_TCP;
    s7.dst = "192.0.2.7";
    size_t s7_bytes = send_vip(s7, 20, want_proxy);
    tcp_bytes += send_vip(V4_TCP, 10, want_proxy);

    ck_assert_int_eq(director_traffic_read(&maps, &t), 0);
    ck_assert_uint_eq(t.n_vips, 2);
    v = traffic_of(t.vips, t.n_vips, "192.0.2.1:80/tcp");
    ck_assert_uint_eq(v->packets, 50);
    ck_assert_uint_eq(v->bytes, tcp_bytes);
    ck_assert_uint_eq(v->drops, 3);
    v = traffic_of(t.vips, t.n_vips, "192.0.2.7:80/tcp");
    ck_assert_uint_eq(v->packets, 20);
    ck_assert_uint_eq(v->bytes, s7_bytes);
    ck_assert_uint_eq(v->drops, 0);
    ck_assert_uint_gt(want_proxy[3][0], 0);
    for (int p = 0; p < NPROXIES; p++) {
        char name[64];
        director_format_addr(proxies[p].family, proxies[p].addr, name, sizeof(name));
        const struct director_traffic_entry *e = traffic_of(t.proxies, t.n_proxies, name);
        ck_assert_uint_eq(e->packets, want_proxy[p][0]);
        ck_assert_uint_eq(e->bytes, want_proxy[p][1]);
    }
    director_traffic_free(&t);
}
END_TEST

/* Counter slots: keepers keep theirs, newcomers take the lowest slot no
 * live generation uses, a clash or an out-of-range slot is reassigned. */
START_TEST(test_counter_slot_assignment)
{
    bool used[8] = {true, true, false, true};
    int32_t ids[5] = {3, -1, 3, 9, 1};
    uint32_t fresh[5];
    size_t nfresh;

    ck_assert_int_eq(director_counters_assign(ids, 5, used, 8, fresh, &nfresh), 0);
    ck_assert_int_eq(ids[0], 3);
    ck_assert_int_eq(ids[4], 1);
    ck_assert_int_eq(ids[1], 2);
    ck_assert_int_eq(ids[2], 4);
    ck_assert_int_eq(ids[3], 5);
    ck_assert_uint_eq(nfresh, 3);
    int32_t full[3] = {-1, -1, -1};
    ck_assert_int_eq(director_counters_assign(full, 3, used, 4, fresh, &nfresh), -ENOSPC);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bpf_director");
    TCase *tc = tcase_create("director");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_vip_v4_tcp_udp);
    tcase_add_test(tc, test_vip_v6_tcp_udp);
    tcase_add_test(tc, test_hash_fields);
    tcase_add_test(tc, test_vlan);
    tcase_add_test(tc, test_non_vip_passes);
    tcase_add_test(tc, test_vip_slot_other_address);
    tcase_add_test(tc, test_icmp_ptb);
    tcase_add_test(tc, test_truncated_every_length);
    tcase_add_test(tc, test_no_proxy_drops);
    tcase_add_test(tc, test_vip_set_sync);
    tcase_add_test(tc, test_vip_index_collisions);
    tcase_add_test(tc, test_egress_redirect);
    tcase_add_test(tc, test_no_config_passes);
    tcase_add_test(tc, test_table_swap);
    tcase_add_test(tc, test_swap_under_traffic);
    tcase_add_test(tc, test_traffic_counters);
    tcase_add_test(tc, test_counter_slot_assignment);
    tcase_add_test(tc, test_table_states);
    suite_add_tcase(s, tc);
    if (geteuid() != 0) {
        fprintf(stderr, "bpf tests need root (CAP_BPF, CAP_NET_ADMIN)\n");
        return 77;
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
