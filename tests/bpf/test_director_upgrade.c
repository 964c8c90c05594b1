/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upgrading a director over the pins an older one left behind
 * (docs/director.md "Maps"). The pin set of maps version 2 is made here
 * with bpf_map_create + bpf_obj_pin from that version's layout, written out
 * as numbers (it is what an old director left, not what this build would
 * make), with a version-2 generation and VIP in it and a program pinned and
 * attached as the old director's (today's program over those maps: no old
 * build runs here). Today's
 * program over it passes VIP traffic as pass_no_config until its own
 * generation is published; today's publisher refuses the set (the maps
 * version 3 added are missing); director_loader_attach (drover-director
 * attach) reuses the old maps, pins the new ones, publishes a version-3
 * generation, replaces the old program without --force, and VIP packets
 * are then forwarded. After a version-2 period - its apply over the new
 * pins, or its detach (which leaves the counter maps pinned) and attach -
 * the next version-3 apply or attach starts the traffic counters from
 * zero. A pin set of an unknown layout (a map of another
 * value size) is refused by attach and by the publisher, naming the map
 * and both sizes, with nothing changed and the maps unreadable for the
 * scrape. Runs in a network and mount namespace of its own.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <check.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "director_bpf.skel.h"
#include "director_build.h"
#include "director_config.h"
#include "director_counters.h"
#include "director_loader.h"
#include "director_maps.h"
#include "director_metrics.h"
#include "director_publish.h"
#include "log.h"
#include "metrics.h"
#include "pkt.h"

#define XDP_PASS_ 2
#define XDP_TX_   3

static const char *CONFIG =
    "{\"hash_key\":\"00112233445566778899aabbccddeeff\",\"gue_port\":19600,"
    "\"source_v4\":\"10.0.0.254\",\"gateway_mac\":\"02:00:00:00:00:01\","
    "\"vips\":[{\"address\":\"198.51.100.1\",\"port\":80,\"protocol\":\"tcp\"}],"
    "\"proxies\":[{\"address\":\"10.0.0.2\"},{\"address\":\"10.0.0.3\"}]}";
static const struct pkt_spec VIP_PKT = {
    DROVER_AF_INET, IPPROTO_TCP, "192.0.2.7", "198.51.100.1", 40000, 80, 0x02, 0, 0};

static char root[] = "/tmp/drover-upgrade-XXXXXX";

/* A map of a pin set: its pin name and layout. */
struct pinned_map {
    const char *name;
    struct director_map_layout layout;
};

/* What a maps-version-2 director pinned: director.bpf.c and the structs of
 * drover_maps.h as they were then. */
static const struct pinned_map V2_MAPS[] = {
    {"drover_vips", {BPF_MAP_TYPE_HASH, 20, 8, 4096, 0}},
    {"drover_vip_idx", {BPF_MAP_TYPE_ARRAY, 4, 24, 2 * 16384, BPF_F_MMAPABLE}},
    {"drover_vip_act", {BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0}},
    {"drover_table", {BPF_MAP_TYPE_ARRAY, 4, 8, 2 * 65536, BPF_F_MMAPABLE}},
    {"drover_proxies", {BPF_MAP_TYPE_ARRAY, 4, 20, 2 * 1024, 0}},
    {"drover_gen_cfg", {BPF_MAP_TYPE_ARRAY, 4, 232, 2, 0}},
    {"drover_active", {BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0}},
    {"drover_stats", {BPF_MAP_TYPE_PERCPU_ARRAY, 4, 23 * 8, 1, 0}},
};
#define N_V2 (sizeof(V2_MAPS) / sizeof(V2_MAPS[0]))

/* Version-2 values whose fields differ from today's. */
struct v2_vip_value {
    __u16 version, flags;
    __u32 vip_id;
};
struct v2_vip_slot {
    struct drover_vip_key key;
    __u32 flags;
};
struct v2_proxy {
    __u32 addr[4];
    __u8 family, state;
    __u16 reserved;
};
_Static_assert(sizeof(struct v2_vip_slot) == 24 && sizeof(struct v2_proxy) == 20 &&
                   sizeof(struct drover_gen_config) == 232,
               "version-2 layout");

static int pin_fd(const char *dir, const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return bpf_obj_get(path);
}

/* The kernel id of the object pinned as dir/name; 0 if none. */
static __u32 pinned_id(const char *dir, const char *name, bool prog)
{
    struct bpf_map_info mi = {0};
    struct bpf_prog_info pi = {0};
    __u32 len = prog ? sizeof(pi) : sizeof(mi);
    int fd = pin_fd(dir, name);
    __u32 id = 0;

    if (fd < 0)
        return 0;
    if (bpf_obj_get_info_by_fd(fd, prog ? (void *)&pi : (void *)&mi, &len) == 0)
        id = prog ? pi.id : mi.id;
    close(fd);
    return id;
}

/* Create and pin maps[0..n) in dir; their ids into ids. */
static void pin_set(const char *dir, const struct pinned_map *maps, size_t n, __u32 *ids)
{
    char path[512];

    ck_assert(mkdir(dir, 0700) == 0 || errno == EEXIST);
    for (size_t i = 0; i < n; i++) {
        const struct director_map_layout *l = &maps[i].layout;
        LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = l->flags);
        int fd = bpf_map_create(l->type, maps[i].name, l->key_size, l->value_size, l->max_entries,
                                &opts);
        ck_assert_msg(fd >= 0, "creating map %s: %s", maps[i].name, strerror(errno));
        snprintf(path, sizeof(path), "%s/%s", dir, maps[i].name);
        ck_assert_int_eq(bpf_obj_pin(fd, path), 0);
        close(fd);
        ids[i] = pinned_id(dir, maps[i].name, false);
        ck_assert_uint_ne(ids[i], 0);
    }
}

static void update(const char *dir, const char *name, __u32 key, const void *value)
{
    int fd = pin_fd(dir, name);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bpf_map_update_elem(fd, &key, value, BPF_ANY), 0);
    close(fd);
}

/* What a version-2 director published: generation 0 (version 2) with one
 * proxy on every row, and the VIP of CONFIG in the hash map and in half 0
 * of the VIP index. */
static void fill_v2(const char *dir)
{
    struct drover_vip_key k = {.port = htons(80), .proto = IPPROTO_TCP};
    struct v2_vip_value v = {.version = 2, .vip_id = 0};
    struct v2_vip_slot slot = {.flags = DROVER_VIP_SLOT_USED};
    struct v2_proxy px = {.family = DROVER_AF_INET, .state = DROVER_PROXY_ACTIVE};
    struct drover_gen_config g = {.version = 2, .proxy_count = 1, .gue_port = htons(19600)};
    const __u32 zero = 0;
    size_t table_bytes = 2 * 65536 * sizeof(struct drover_row);

    ck_assert_int_eq(director_parse_addr("198.51.100.1", &k.family, k.addr), 0);
    ck_assert_int_eq(director_parse_addr("10.0.0.2", &px.family, px.addr), 0);
    int fd = pin_fd(dir, "drover_vips");
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
    close(fd);
    slot.key = k;
    update(dir, "drover_vip_idx", drover_vip_slot(&k), &slot);
    update(dir, "drover_vip_act", 0, &zero);
    update(dir, "drover_proxies", 0, &px);
    fd = pin_fd(dir, "drover_table");
    ck_assert_int_ge(fd, 0);
    struct drover_row *rows = mmap(NULL, table_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert(rows != MAP_FAILED);
    for (size_t r = 0; r < 65536; r++)
        rows[r] = (struct drover_row){.primary = 0, .secondary = DROVER_ROW_NONE};
    munmap(rows, table_bytes);
    close(fd);
    __u32 src[4];
    __u8 family;
    ck_assert_int_eq(director_parse_addr("10.0.0.254", &family, src), 0);
    g.src_v4 = src[0];
    g.hash_key[0] = 1;
    director_gen_derive(&g);
    update(dir, "drover_gen_cfg", 0, &g);
    update(dir, "drover_active", 0, &zero);
}

static __u64 stat_of(const char *dir, int stat)
{
    __u64 c[DROVER_STAT_MAX];
    int fd = pin_fd(dir, DIRECTOR_MAP_STATS);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(director_stats_read(fd, c), 0);
    close(fd);
    return c[stat];
}

static __u32 run_vip_packet(int prog_fd)
{
    struct pkt in, out;
    __u32 act = 0;

    pkt_build(&in, &VIP_PKT);
    ck_assert_int_eq(pkt_run(prog_fd, &in, &out, &act, 0), 0);
    return act;
}

/* The window between the new program and its first publish (and the old
 * director until the upgrade): today's program on the version-2 maps,
 * attached to ifindex and pinned as the old one was. Leaves it attached. */
static void old_maps_new_program(const char *dir, int ifindex)
{
    struct director_bpf *skel = director_bpf__open();
    char path[512];

    ck_assert_ptr_nonnull(skel);
    for (size_t i = 0; i < N_V2; i++) {
        struct bpf_map *map = bpf_object__find_map_by_name(skel->obj, V2_MAPS[i].name);
        int fd = pin_fd(dir, V2_MAPS[i].name);
        ck_assert_ptr_nonnull(map);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bpf_map__reuse_fd(map, fd), 0);
        close(fd);
    }
    ck_assert_int_eq(director_bpf__load(skel), 0);
    int prog = bpf_program__fd(skel->progs.drover_director);
    ck_assert_uint_eq(run_vip_packet(prog), XDP_PASS_);
    ck_assert_uint_eq(stat_of(dir, DROVER_STAT_PASS_NO_CONFIG), 1);
    ck_assert_uint_eq(stat_of(dir, DROVER_STAT_PASS_NON_VIP), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, DIRECTOR_PROG_PIN);
    ck_assert_int_eq(bpf_program__pin(skel->progs.drover_director, path), 0);
    ck_assert_int_eq(bpf_xdp_attach(ifindex, prog, XDP_FLAGS_SKB_MODE, NULL), 0);
    director_bpf__destroy(skel);
}

/* director_publish_table as the watcher calls it, with CONFIG's proxies. */
static int watcher_publish(const char *dir, char *err, size_t errlen)
{
    struct director_config cfg;
    struct director_table *t = NULL;
    struct director_publish_result res;
    static const struct director_vip vip = {"198.51.100.1", IPPROTO_TCP, 80};

    ck_assert_int_eq(director_config_parse(CONFIG, strlen(CONFIG), "t", &cfg, err, errlen), 0);
    ck_assert_int_eq(director_build_from_config(&cfg, &t, err, errlen), 0);
    struct director_publish_table p = {.table = t,
                                       .hash_key = {cfg.hash_key[0], cfg.hash_key[1]},
                                       .gue_port = cfg.gue_port,
                                       .vips = &vip,
                                       .n_vips = 1};
    int rc = director_publish_table(dir, &p, &res, err, errlen);
    ck_assert(rc == 0 || (!res.gen_written && !res.vips_written));
    director_table_free(t);
    director_config_free(&cfg);
    return rc;
}

/* Remove what a version-2 detach removes: its program and its maps. */
static void unpin_v2(const char *dir)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, DIRECTOR_PROG_PIN);
    ck_assert_int_eq(unlink(path), 0);
    for (size_t i = 0; i < N_V2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, V2_MAPS[i].name);
        ck_assert_int_eq(unlink(path), 0);
    }
}

/* The VIP's and every proxy's packets count as the pins in dir show them
 * (the VIP: want; the proxies: want in all). */
static void expect_traffic(const char *dir, uint64_t want, const char *when)
{
    struct director_traffic t;
    uint64_t proxies = 0;

    ck_assert_int_eq(director_traffic_read_pinned(dir, &t), 0);
    ck_assert_uint_eq(t.n_vips, 1);
    for (size_t i = 0; i < t.n_proxies; i++)
        proxies += t.proxies[i].packets;
    ck_assert_msg(t.vips[0].packets == want && proxies == want,
                  "%s: VIP %s counts %llu packets, the proxies %llu; want %llu", when,
                  t.vips[0].name, (unsigned long long)t.vips[0].packets,
                  (unsigned long long)proxies, (unsigned long long)want);
    director_traffic_free(&t);
}

START_TEST(test_upgrade_from_v2)
{
    const struct director_attach_opts o = {
        .dev = "sc0", .pin_root = root, .mode = DIRECTOR_MODE_GENERIC};
    struct director_config cfg;
    struct director_live l;
    __u32 ids[N_V2], attached = 0, ours = 0;
    char dir[256], err[512];
    int ifindex = (int)if_nametoindex("sc0");

    ck_assert_int_gt(ifindex, 0);
    ck_assert_int_eq(director_pin_dir(root, "sc0", dir, sizeof(dir)), 0);
    pin_set(dir, V2_MAPS, N_V2, ids);
    fill_v2(dir);
    old_maps_new_program(dir, ifindex);
    __u32 old_prog = pinned_id(dir, DIRECTOR_PROG_PIN, true);

    /* today's publisher before the upgrade: the set lacks version 3's maps */
    ck_assert_int_eq(watcher_publish(dir, err, sizeof(err)), -ENOENT);
    ck_assert_uint_eq(pinned_id(dir, DIRECTOR_MAP_VIP_CTR, false), 0);

    ck_assert_int_eq(director_config_parse(CONFIG, strlen(CONFIG), "t", &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(director_loader_attach(&o, &cfg), 0);
    director_config_free(&cfg);

    for (size_t i = 0; i < N_V2; i++)
        ck_assert_msg(pinned_id(dir, V2_MAPS[i].name, false) == ids[i], "map %s was replaced",
                      V2_MAPS[i].name);
    ck_assert_uint_ne(pinned_id(dir, DIRECTOR_MAP_VIP_CTR, false), 0);
    ck_assert_uint_ne(pinned_id(dir, DIRECTOR_MAP_PROXY_CTR, false), 0);
    ck_assert_int_eq(director_loader_prog_ids(&o, DIRECTOR_PROG_PIN, &attached, &ours), 0);
    ck_assert_uint_eq(attached, ours);
    ck_assert_uint_ne(ours, old_prog);
    ck_assert_int_eq(director_live_read(dir, false, &l), 0);
    ck_assert_uint_eq(l.maps_version, DROVER_MAPS_VERSION);
    ck_assert_uint_eq(l.generation, 1); /* the one the old director did not use */
    ck_assert_uint_eq(l.proxy_count, 2);
    ck_assert_uint_eq(l.n_vips, 1);
    director_live_free(&l);

    int prog = pin_fd(dir, DIRECTOR_PROG_PIN);
    ck_assert_int_ge(prog, 0);
    ck_assert_uint_eq(run_vip_packet(prog), XDP_TX_);
    close(prog);
    ck_assert_uint_eq(stat_of(dir, DROVER_STAT_ENCAP_V4), 1);
    ck_assert_uint_eq(stat_of(dir, DROVER_STAT_PASS_NO_CONFIG), 1);
    /* and the watcher's path now publishes (same proxies: nothing to flip) */
    ck_assert_msg(watcher_publish(dir, err, sizeof(err)) == 0, "%s", err);

    /* a version-2 `drover-director apply` over the new pins (a rollback,
     * or the old binary left in place) flips in a generation of its
     * version: VIP traffic passes, counted; the watcher's path writes
     * nothing over it (it keeps settings only from its own version), and
     * today's apply brings the director back */
    struct drover_gen_config g;
    struct drover_proxy px[DROVER_MAX_PROXIES];
    struct director_maps m;
    ck_assert_int_eq(director_maps_open_pinned(dir, &m), 0);
    ck_assert_int_eq(director_maps_read_gen(&m, 1, &g, px), 0);
    g.version = 2;
    ck_assert_int_eq(bpf_map_update_elem(m.gen_cfg_fd, &(__u32){0}, &g, BPF_ANY), 0);
    ck_assert_int_eq(director_maps_activate(&m, 0), 0);
    director_maps_close(&m);
    prog = pin_fd(dir, DIRECTOR_PROG_PIN);
    ck_assert_uint_eq(run_vip_packet(prog), XDP_PASS_);
    ck_assert_uint_eq(stat_of(dir, DROVER_STAT_PASS_NO_CONFIG), 2);
    ck_assert_int_eq(watcher_publish(dir, err, sizeof(err)), -EAGAIN);
    ck_assert_ptr_nonnull(strstr(err, "no usable generation (version 2)"));
    ck_assert_int_eq(director_live_read(dir, false, &l), 0);
    ck_assert_uint_eq(l.generation, 0);
    ck_assert_uint_eq(l.maps_version, 2);
    director_live_free(&l);
    ck_assert_int_eq(director_config_parse(CONFIG, strlen(CONFIG), "t", &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(director_loader_apply(&o, &cfg), 0);
    director_config_free(&cfg);
    ck_assert_uint_eq(run_vip_packet(prog), XDP_TX_);
    ck_assert_uint_eq(stat_of(dir, DROVER_STAT_ENCAP_V4), 2);
    close(prog);
    /* the apply over the version-2 generation started the counters from
     * zero: the one packet since */
    expect_traffic(dir, 1, "after the apply over a version-2 generation");

    /* version 2 takes over (a rollback): its detach removes the pins it
     * knows - the counter maps stay - and its attach pins a set of its
     * own; the next version-3 attach reuses the counter maps, which must
     * not show the counts of the period before */
    ck_assert_int_eq(bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL), 0);
    unpin_v2(dir);
    ck_assert_uint_ne(pinned_id(dir, DIRECTOR_MAP_VIP_CTR, false), 0);
    pin_set(dir, V2_MAPS, N_V2, ids);
    fill_v2(dir);
    old_maps_new_program(dir, ifindex);
    ck_assert_int_eq(director_config_parse(CONFIG, strlen(CONFIG), "t", &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(director_loader_attach(&o, &cfg), 0);
    director_config_free(&cfg);
    expect_traffic(dir, 0, "after a version-3 attach over a version-2 period");
    prog = pin_fd(dir, DIRECTOR_PROG_PIN);
    ck_assert_int_ge(prog, 0);
    ck_assert_uint_eq(run_vip_packet(prog), XDP_TX_);
    close(prog);
    expect_traffic(dir, 1, "after one packet through the new attach");
}
END_TEST

/* The maps this build would make, as named in its object. */
static size_t current_layout(struct pinned_map *out, size_t max)
{
    struct director_bpf *skel = director_bpf__open();
    struct bpf_map *map;
    size_t n = 0;

    ck_assert_ptr_nonnull(skel);
    bpf_object__for_each_map(map, skel->obj)
    {
        if (strchr(bpf_map__name(map), '.'))
            continue;
        ck_assert_uint_lt(n, max);
        out[n].name = strdup(bpf_map__name(map));
        out[n].layout = (struct director_map_layout){
            bpf_map__type(map), bpf_map__key_size(map), bpf_map__value_size(map),
            bpf_map__max_entries(map), bpf_map__map_flags(map)};
        n++;
    }
    director_bpf__destroy(skel);
    return n;
}

static char *read_all(FILE *f)
{
    long len;
    char *s;

    fflush(f);
    len = ftell(f);
    ck_assert_int_ge(len, 0);
    s = calloc(1, (size_t)len + 1);
    rewind(f);
    ck_assert_uint_eq(fread(s, 1, (size_t)len, f), (size_t)len);
    return s;
}

static void collect(struct metrics_emitter *em, void *dir)
{
    director_metrics_emit(em, dir, "lo", false);
}

START_TEST(test_unknown_layout_refused)
{
    char broot[300], dir[300], err[512];
    const struct director_attach_opts o = {
        .dev = "lo", .pin_root = broot, .mode = DIRECTOR_MODE_GENERIC};
    struct pinned_map maps[16];
    struct director_config cfg;
    __u32 ids[16], xdp = 1;
    size_t n = current_layout(maps, 16), proxies = n;

    for (size_t i = 0; i < n; i++)
        if (strcmp(maps[i].name, DIRECTOR_MAP_PROXIES) == 0)
            proxies = i;
    ck_assert_uint_lt(proxies, n);
    maps[proxies].layout.value_size += 4; /* a layout from a later version */
    snprintf(broot, sizeof(broot), "%s/bigger", root);
    ck_assert_int_eq(mkdir(broot, 0700), 0);
    ck_assert_int_eq(director_pin_dir(broot, "lo", dir, sizeof(dir)), 0);
    pin_set(dir, maps, n, ids);

    FILE *logf = tmpfile();
    ck_assert_ptr_nonnull(logf);
    log_set_stream(logf);
    ck_assert_int_eq(director_config_parse(CONFIG, strlen(CONFIG), "t", &cfg, err, sizeof(err)), 0);
    int attach_rc = director_loader_attach(&o, &cfg);
    director_config_free(&cfg);
    int publish_rc = watcher_publish(dir, err, sizeof(err));
    log_set_stream(NULL);
    char *text = read_all(logf);
    fclose(logf);

    ck_assert_int_eq(attach_rc, -EPROTO);
    ck_assert_int_eq(publish_rc, -EPROTO);
    ck_assert_msg(strstr(err, "pinned by another maps version"), "%s", err);
    const char *want = "drover_proxies has another layout than this build (maps version 3): "
                       "value size 24 (this build's: 20)";
    const char *first = strstr(text, want);
    ck_assert_msg(first && strstr(first + 1, want), "attach and publish did not both say '%s':\n%s",
                  want, text);
    free(text);

    /* nothing changed: the same maps, no program pinned or attached */
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(pinned_id(dir, maps[i].name, false) == ids[i], "map %s changed",
                      maps[i].name);
        free((char *)maps[i].name);
    }
    ck_assert_uint_eq(pinned_id(dir, DIRECTOR_PROG_PIN, true), 0);
    ck_assert_int_eq(bpf_xdp_query_id((int)if_nametoindex("lo"), 0, &xdp), 0);
    ck_assert_uint_eq(xdp, 0);

    struct metrics_registry *r = metrics_registry_new();
    char *out = NULL;
    size_t len = 0;
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(metrics_add_collector(r, collect, dir), 0);
    ck_assert_int_eq(metrics_render(r, &out, &len), 0);
    ck_assert_msg(strstr(out, "drover_director_maps_readable{dev=\"lo\"} 0\n"), "%s", out);
    free(out);
    metrics_registry_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bpf_director_upgrade");
    TCase *tc = tcase_create("upgrade");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_upgrade_from_v2);
    tcase_add_test(tc, test_unknown_layout_refused);
    suite_add_tcase(s, tc);
    if (geteuid() != 0) {
        fprintf(stderr, "bpf tests need root (CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN)\n");
        return 77;
    }
    /* a network namespace (veth sc0, lo) and a bpffs of our own: nothing
     * is left behind whatever happens */
    if (pkt_netns_setup(NULL, NULL) < 0) {
        fprintf(stderr, "cannot make a network namespace\n");
        return 77;
    }
    return pkt_bpffs_run(s, root);
}
