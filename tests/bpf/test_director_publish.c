/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_publish against real director maps (loaded skeleton, pinned in
 * a bpffs of a private mount namespace): drover-director's config path and
 * the watcher's table path give the byte-identical generation (same
 * checksum, so the table path flips nothing), the table path keeps the
 * tunnel settings of the active generation, changes flip and verify, the
 * live read reports what was published, and a map set nobody attached
 * with settings is refused with -EAGAIN, as is one whose generation
 * became another version's while the publisher waited for the lock
 * (neither generation nor VIP set written over); tunnel settings an apply
 * changed while the watcher waited for the lock are the ones it
 * publishes with. The metrics collector of the watchers reads the
 * director's and the decap program's pins.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "decap_bpf.skel.h"
#include "director_bpf.skel.h"
#include "director_build.h"
#include "director_config.h"
#include "director_maps.h"
#include "director_metrics.h"
#include "director_publish.h"
#include "log.h"
#include "metrics.h"
#include "pkt.h"

static const char *CONFIG =
    "{\"hash_key\":\"00112233445566778899aabbccddeeff\",\"hash_fields\":\"src+dport\","
    "\"gue_port\":19600,\"source_v4\":\"10.0.0.254\",\"source_v6\":\"fd00::fe\","
    "\"gateway_mac\":\"02:00:00:00:00:01\","
    "\"vips\":[{\"address\":\"198.51.100.1\",\"port\":80,\"protocol\":\"tcp\"},"
    "{\"address\":\"2001:db8::5\",\"port\":53,\"protocol\":\"udp\"}],"
    "\"proxies\":[{\"address\":\"10.0.0.3\",\"name\":\"c\"},"
    "{\"address\":\"fd00::1\",\"name\":\"a\",\"weight\":200},"
    "{\"address\":\"10.0.0.2\",\"name\":\"b\",\"state\":\"draining\"}]}";
static const struct director_vip VIPS[] = {{"198.51.100.1", IPPROTO_TCP, 80},
                                           {"2001:db8::5", IPPROTO_UDP, 53}};
static const uint8_t SRC_MAC[6] = {0x02, 0, 0, 0, 0, 0xd1};

static char root[] = "/tmp/drover-publish-XXXXXX";

/* Pin the named maps of obj in dir, as the loader does. */
static void pin_maps(struct bpf_object *obj, const char *dir)
{
    struct bpf_map *map;
    char path[512];

    ck_assert(mkdir(dir, 0700) == 0 || errno == EEXIST);
    bpf_object__for_each_map(map, obj)
    {
        if (strchr(bpf_map__name(map), '.'))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
        ck_assert_int_eq(bpf_map__pin(map, path), 0);
    }
}

START_TEST(test_config_and_table_paths_agree)
{
    struct director_bpf *skel = director_bpf__open_and_load();
    struct director_publish_device dev = {.egress_ifindex = 0};
    struct director_publish_result first, res;
    struct director_config cfg;
    struct director_table *t = NULL;
    struct director_maps m;
    struct director_live l;
    static struct drover_row rows[DROVER_TABLE_ROWS];
    static struct drover_proxy px[DROVER_MAX_PROXIES];
    char dir[256], err[512];

    ck_assert_ptr_nonnull(skel);
    memcpy(dev.src_mac, SRC_MAC, 6);
    ck_assert_int_eq(director_config_parse(CONFIG, strlen(CONFIG), "t", &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(director_maps_from_object(&m, skel->obj), 0);
    ck_assert_int_eq(director_publish_config(&m, "test", &cfg, &dev, &first, err, sizeof(err)), 0);
    ck_assert(first.gen_written && first.vips_written && first.have_generation);
    ck_assert_uint_eq(first.generation, 0); /* a fresh map set fills generation 0 */
    director_maps_close(&m);
    ck_assert_int_eq(director_pin_dir(root, "eth0", dir, sizeof(dir)), 0);
    pin_maps(skel->obj, dir);

    /* the watcher's path with the same proxies, key and VIPs */
    ck_assert_int_eq(director_build_from_config(&cfg, &t, err, sizeof(err)), 0);
    director_publish_to_maps(t, px, rows);
    struct director_publish_table p = {.table = t,
                                       .hash_key = {cfg.hash_key[0], cfg.hash_key[1]},
                                       .hash_fields = cfg.hash_fields,
                                       .gue_port = cfg.gue_port,
                                       .vips = VIPS,
                                       .n_vips = 2};
    ck_assert_int_eq(director_publish_table(dir, &p, &res, err, sizeof(err)), 0);
    ck_assert(res.have_generation && !res.gen_written && !res.vips_written);
    ck_assert_uint_eq(res.generation, first.generation);
    ck_assert_uint_eq(res.checksum, first.checksum);
    /* a caller whose VIPs changed gets them rewritten, nothing flipped */
    p.vips_changed = true;
    ck_assert_int_eq(director_publish_table(dir, &p, &res, err, sizeof(err)), 0);
    ck_assert(!res.gen_written && res.vips_written);

    /* a change flips the other generation in, verified */
    p.vips_changed = false;
    p.gue_port = 19601;
    ck_assert_int_eq(director_publish_table(dir, &p, &res, err, sizeof(err)), 0);
    ck_assert(res.gen_written && !res.vips_written);
    ck_assert_uint_eq(res.generation, first.generation ^ 1);
    ck_assert_uint_ne(res.checksum, first.checksum);

    /* the live read reports it; the tunnel settings stayed */
    ck_assert_int_eq(director_live_read(dir, true, &l), 0);
    ck_assert_uint_eq(l.generation, res.generation);
    ck_assert_uint_eq(l.checksum, res.checksum);
    ck_assert_uint_eq(l.gue_port, 19601);
    ck_assert_uint_eq(l.maps_version, DROVER_MAPS_VERSION);
    ck_assert_uint_eq(l.n_vips, 2);
    ck_assert_uint_eq(l.proxy_count, t->proxy_count);
    ck_assert_uint_eq(l.n_listed, t->proxy_count);
    ck_assert_ptr_nonnull(l.rows);
    uint32_t primaries = l.rows_without_proxy;
    for (uint32_t i = 0; i < l.n_listed; i++) {
        ck_assert_uint_eq(l.proxies[i].primary_rows, t->proxies[i].primary_rows);
        ck_assert_uint_eq(l.proxies[i].secondary_rows, t->proxies[i].secondary_rows);
        char a[64];
        ck_assert_ptr_nonnull(inet_ntop(t->proxies[i].family, t->proxies[i].addr, a, sizeof(a)));
        ck_assert_str_eq(l.proxies[i].address, a);
        primaries += l.proxies[i].primary_rows;
    }
    ck_assert_uint_eq(primaries, DIRECTOR_TABLE_ROWS);
    ck_assert_str_eq(l.proxies[l.n_listed].address, "-"); /* empty slot */
    for (uint32_t r = 0; r < DIRECTOR_TABLE_ROWS; r++)
        ck_assert_uint_eq(l.rows[r].primary, rows[r].primary);
    struct drover_gen_config g;
    ck_assert_int_eq(director_maps_open_pinned(dir, &m), 0);
    ck_assert_int_eq(director_maps_read_gen(&m, l.generation, &g, px), 0);
    ck_assert_uint_eq(g.src_v4, cfg.src_v4);
    ck_assert_int_eq(memcmp(g.src_mac, SRC_MAC, 6), 0);
    ck_assert_int_eq(memcmp(g.gw_mac, cfg.gw_mac, 6), 0);
    ck_assert_int_eq(memcmp(g.src_v6, cfg.src_v6, 16), 0);
    ck_assert_uint_eq(g.version, DROVER_MAPS_VERSION);
    ck_assert_uint_eq(g.hash_fields, cfg.hash_fields);
    ck_assert_uint_eq(g.hash_key[1], cfg.hash_key[1]);
    ck_assert_uint_eq(g.egress_ifindex, 0);
    director_maps_close(&m);
    director_live_free(&l);

    /* fewer VIPs: the live count differs, the set is made exact */
    p.n_vips = 1;
    ck_assert_int_eq(director_publish_table(dir, &p, &res, err, sizeof(err)), 0);
    ck_assert(!res.gen_written && res.vips_written);
    ck_assert_int_eq(director_live_read(dir, false, &l), 0);
    ck_assert_uint_eq(l.n_vips, 1);
    ck_assert_ptr_null(l.rows);
    director_live_free(&l);

    director_table_free(t);
    director_config_free(&cfg);
    director_bpf__destroy(skel);
}
END_TEST

START_TEST(test_unattached_maps_refused)
{
    struct director_bpf *skel = director_bpf__open_and_load();
    struct director_table *t = NULL;
    struct director_publish_result res;
    struct director_proxy_input in = {
        .id = "a", .address = "10.0.0.1", .state = DIRECTOR_PROXY_ACTIVE, .healthy = true};
    const __u64 key[2] = {1, 2};
    char dir[256], err[512];

    ck_assert_ptr_nonnull(skel);
    ck_assert_int_eq(director_pin_dir(root, "fresh0", dir, sizeof(dir)), 0);
    pin_maps(skel->obj, dir);
    ck_assert_int_eq(director_build_table(key, &in, 1, &t, err, sizeof(err)), 0);
    struct director_publish_table p = {.table = t, .hash_key = {1, 2}, .gue_port = 19523};
    ck_assert_int_eq(director_publish_table(dir, &p, &res, err, sizeof(err)), -EAGAIN);
    ck_assert_ptr_nonnull(strstr(err, "attach drover-director"));
    ck_assert_ptr_nonnull(strstr(err, dir));
    ck_assert(!res.gen_written && !res.vips_written);
    director_table_free(t);
    director_bpf__destroy(skel);
}
END_TEST

/* A watcher publish, run in a thread of its own. */
struct racing_publish {
    const char *dir;
    const struct director_publish_table *p;
    struct director_publish_result res;
    char err[512];
    int rc;
};

static void *racing_publish_run(void *arg)
{
    struct racing_publish *r = arg;
    r->rc = director_publish_table(r->dir, r->p, &r->res, r->err, sizeof(r->err));
    return NULL;
}

/* Whether /proc/locks lists a flock request blocked on the inode of dir
 * (a "->" line: someone waits for the lock this test holds). */
static bool lock_waited_for(const char *dir)
{
    struct stat st;
    char want[64], line[256];
    bool found = false;

    ck_assert_int_eq(stat(dir, &st), 0);
    snprintf(want, sizeof(want), " %02x:%02x:%lu ", major(st.st_dev), minor(st.st_dev),
             (unsigned long)st.st_ino);
    FILE *f = fopen("/proc/locks", "r");
    ck_assert_ptr_nonnull(f);
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, "->") && strstr(line, " FLOCK ") && strstr(line, want);
    fclose(f);
    return found;
}

/* A watcher publish of p into dir, started while the test holds the
 * publish lock and seen waiting for it: what the test writes before
 * race_release() is what another publisher holding the lock wrote. */
struct race {
    struct racing_publish r;
    pthread_t th;
    int lock;
};

static void race_start(struct race *race, const char *dir, const struct director_publish_table *p)
{
    memset(race, 0, sizeof(*race));
    race->r.dir = dir;
    race->r.p = p;
    race->lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(race->lock, 0);
    ck_assert_int_eq(flock(race->lock, LOCK_EX), 0);
    ck_assert_int_eq(pthread_create(&race->th, NULL, racing_publish_run, &race->r), 0);
    /* the publisher opens the pins before it asks for the lock:
     * milliseconds; 20 s covers a machine at full load */
    struct timespec tick = {.tv_nsec = 10 * 1000 * 1000};
    int polls = 0;
    while (!lock_waited_for(dir) && ++polls < 2000)
        nanosleep(&tick, NULL);
    ck_assert_msg(polls < 2000, "the publisher never waited for the lock on %s in 20 s", dir);
}

static void race_release(struct race *race)
{
    ck_assert_int_eq(flock(race->lock, LOCK_UN), 0);
    close(race->lock);
    ck_assert_int_eq(pthread_join(race->th, NULL), 0);
}

/* Maps published from CONFIG by the config path (drover-director attach)
 * and pinned as dev; the watcher's publish p of the same proxies and VIPs
 * with gue_port (another one than CONFIG's: a generation to write). */
struct attached {
    struct director_bpf *skel;
    struct director_config cfg;
    struct director_table *t;
    struct director_publish_result first;
    struct director_publish_table p;
    char dir[256];
};

static void attached_setup(struct attached *a, const char *dev, uint16_t gue_port)
{
    struct director_publish_device d = {.egress_ifindex = 0};
    struct director_maps m;
    char err[512];

    memset(a, 0, sizeof(*a));
    memcpy(d.src_mac, SRC_MAC, 6);
    a->skel = director_bpf__open_and_load();
    ck_assert_ptr_nonnull(a->skel);
    ck_assert_int_eq(director_config_parse(CONFIG, strlen(CONFIG), "t", &a->cfg, err, sizeof(err)),
                     0);
    ck_assert_int_eq(director_maps_from_object(&m, a->skel->obj), 0);
    ck_assert_int_eq(director_publish_config(&m, "test", &a->cfg, &d, &a->first, err, sizeof(err)),
                     0);
    director_maps_close(&m);
    ck_assert_int_eq(director_pin_dir(root, dev, a->dir, sizeof(a->dir)), 0);
    pin_maps(a->skel->obj, a->dir);
    ck_assert_int_eq(director_build_from_config(&a->cfg, &a->t, err, sizeof(err)), 0);
    a->p = (struct director_publish_table){.table = a->t,
                                           .hash_key = {a->cfg.hash_key[0], a->cfg.hash_key[1]},
                                           .hash_fields = a->cfg.hash_fields,
                                           .gue_port = gue_port,
                                           .vips = VIPS,
                                           .n_vips = 2};
}

static void attached_free(struct attached *a)
{
    director_table_free(a->t);
    director_config_free(&a->cfg);
    director_bpf__destroy(a->skel);
}

/* What a version-2 apply leaves: a version-2 copy of generation from,
 * flipped in as the other one. */
static void flip_in_version_2(const char *dir, __u32 from)
{
    static struct drover_proxy px[DROVER_MAX_PROXIES];
    struct drover_gen_config g;
    struct director_maps m;

    ck_assert_int_eq(director_maps_open_pinned(dir, &m), 0);
    ck_assert_int_eq(director_maps_read_gen(&m, from, &g, px), 0);
    g.version = 2;
    ck_assert_int_eq(bpf_map_update_elem(m.gen_cfg_fd, &(__u32){from ^ 1}, &g, BPF_ANY), 0);
    ck_assert_int_eq(director_maps_activate(&m, from ^ 1), 0);
    director_maps_close(&m);
}

/* The watcher's path reads the active generation's version under the
 * publish lock: an apply of another version that flips its generation in
 * while the publisher waits for the lock is not written over. */
START_TEST(test_version_flipped_in_while_waiting_for_the_lock)
{
    struct attached a;
    struct director_live l;
    struct race race;

    attached_setup(&a, "race0", 19601);
    race_start(&race, a.dir, &a.p);
    flip_in_version_2(a.dir, a.first.generation);
    race_release(&race);

    ck_assert_msg(race.r.rc == -EAGAIN, "publish returned %d: %s", race.r.rc, race.r.err);
    ck_assert_msg(strstr(race.r.err, "no usable generation (version 2)") &&
                      strstr(race.r.err, a.dir),
                  "%s", race.r.err);
    ck_assert(!race.r.res.gen_written && !race.r.res.vips_written);
    ck_assert_int_eq(director_live_read(a.dir, false, &l), 0);
    ck_assert_uint_eq(l.generation, a.first.generation ^ 1);
    ck_assert_uint_eq(l.maps_version, 2);
    director_live_free(&l);
    attached_free(&a);
}
END_TEST

/* The tunnel settings the watcher's path keeps are read under the publish
 * lock too: a same-version apply that changes them while the publisher
 * waits (here: another source address, written by the real config path
 * as if it held the lock) is what the published generation builds on. */
START_TEST(test_settings_applied_while_waiting_for_the_lock)
{
    struct director_publish_device d = {.egress_ifindex = 0};
    struct director_publish_result res;
    static struct drover_proxy px[DROVER_MAX_PROXIES];
    struct drover_gen_config g;
    struct director_maps m;
    struct attached a;
    struct race race;
    char err[512];
    __u32 src[4];
    __u8 family;

    attached_setup(&a, "race1", 19601);
    memcpy(d.src_mac, SRC_MAC, 6);
    ck_assert_int_eq(director_parse_addr("10.0.0.253", &family, src), 0);
    race_start(&race, a.dir, &a.p);
    ck_assert_int_eq(director_maps_open_pinned(a.dir, &m), 0);
    close(m.lock_fd); /* the test holds the lock: the apply runs under it */
    m.lock_fd = -1;
    a.cfg.src_v4 = src[0];
    ck_assert_int_eq(director_publish_config(&m, "test", &a.cfg, &d, &res, err, sizeof(err)), 0);
    ck_assert(res.gen_written);
    director_maps_close(&m);
    race_release(&race);

    ck_assert_msg(race.r.rc == 0, "publish returned %d: %s", race.r.rc, race.r.err);
    ck_assert(race.r.res.gen_written);
    ck_assert_uint_eq(race.r.res.generation, res.generation ^ 1);
    ck_assert_int_eq(director_maps_open_pinned(a.dir, &m), 0);
    ck_assert_int_eq(director_maps_read_gen(&m, race.r.res.generation, &g, px), 0);
    director_maps_close(&m);
    ck_assert_msg(g.src_v4 == src[0],
                  "the watcher's generation has source %08x, the apply set %08x", g.src_v4, src[0]);
    ck_assert_uint_eq(ntohs(g.gue_port), 19601);
    attached_free(&a);
}
END_TEST

/* The VIP keys of the pinned hash map in dir with their value's version;
 * returns how many (at most max). */
static size_t vip_set(const char *dir, struct drover_vip_key *keys, __u16 *versions, size_t max)
{
    struct drover_vip_key cur, next;
    struct director_maps m;
    size_t n = 0;

    ck_assert_int_eq(director_maps_open_pinned(dir, &m), 0);
    int more = bpf_map_get_next_key(m.vips_fd, NULL, &cur) == 0;
    while (more && n < max) {
        struct drover_vip_value v;
        ck_assert_int_eq(bpf_map_lookup_elem(m.vips_fd, &cur, &v), 0);
        keys[n] = cur;
        versions[n++] = v.version;
        more = bpf_map_get_next_key(m.vips_fd, &cur, &next) == 0;
        cur = next;
    }
    director_maps_close(&m);
    return n;
}

/* The VIP set is written under the same hold of the lock as the
 * generation, after the same version check: a version-2 apply that flips
 * its generation and its own VIP set in while a watcher with an unchanged
 * generation but changed VIPs waits keeps its VIP set (the watcher used
 * to write its version-3 VIPs over it and report success). */
START_TEST(test_vips_of_another_version_kept)
{
    struct drover_vip_key k = {.port = htons(8080), .proto = IPPROTO_TCP}, got[4];
    struct director_maps m;
    struct attached a;
    struct race race;
    __u16 versions[4];

    attached_setup(&a, "race2", 19600); /* CONFIG's port: the same generation */
    a.p.vips_changed = true;
    ck_assert_int_eq(director_parse_addr("192.0.2.80", &k.family, k.addr), 0);
    race_start(&race, a.dir, &a.p);
    flip_in_version_2(a.dir, a.first.generation);
    /* and the apply's VIP set: one VIP of its own, a version-2 value */
    ck_assert_uint_eq(vip_set(a.dir, got, versions, 4), 2);
    ck_assert_int_eq(director_maps_open_pinned(a.dir, &m), 0);
    for (size_t i = 0; i < 2; i++)
        ck_assert_int_eq(bpf_map_delete_elem(m.vips_fd, &got[i]), 0);
    struct drover_vip_value v2 = {.version = 2, .vip_id = 0};
    ck_assert_int_eq(bpf_map_update_elem(m.vips_fd, &k, &v2, BPF_ANY), 0);
    director_maps_close(&m);
    race_release(&race);

    ck_assert_msg(race.r.rc == -EAGAIN, "publish returned %d: %s", race.r.rc, race.r.err);
    ck_assert(!race.r.res.gen_written && !race.r.res.vips_written);
    ck_assert_uint_eq(vip_set(a.dir, got, versions, 4), 1);
    ck_assert_int_eq(memcmp(&got[0], &k, sizeof(k)), 0);
    ck_assert_uint_eq(versions[0], 2);
    attached_free(&a);
}
END_TEST

struct scrape_target {
    const char *pin_dir, *dev;
    bool decap;
};

static void collect_target(struct metrics_emitter *em, void *arg)
{
    const struct scrape_target *t = arg;
    director_metrics_emit(em, t->pin_dir, t->dev, t->decap);
}

/* /metrics text of director_metrics_emit over the given pins. Caller frees. */
static char *scrape(const struct scrape_target *targets, size_t n)
{
    struct metrics_registry *r = metrics_registry_new();
    char *out = NULL;
    size_t len = 0;

    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(metrics_add_collector(r, collect_target, (void *)&targets[i]), 0);
    ck_assert_int_eq(metrics_render(r, &out, &len), 0);
    metrics_registry_free(r);
    return out;
}

START_TEST(test_metrics_from_pins)
{
    struct director_bpf *dskel = director_bpf__open_and_load();
    struct decap_bpf *xskel = decap_bpf__open_and_load();
    char ddir[256], xdir[256], gone[256];
    struct drover_vip_key k = {0};
    struct director_maps m;
    struct pkt in, out;
    uint32_t act;

    ck_assert_ptr_nonnull(dskel);
    ck_assert_ptr_nonnull(xskel);
    ck_assert_int_eq(director_pin_dir(root, "m0", ddir, sizeof(ddir)), 0);
    ck_assert_int_eq(director_pin_dir(root, "d0", xdir, sizeof(xdir)), 0);
    ck_assert_int_eq(director_pin_dir(root, "gone0", gone, sizeof(gone)), 0);
    pin_maps(dskel->obj, ddir);
    pin_maps(xskel->obj, xdir);
    ck_assert_int_eq(director_maps_open_pinned(ddir, &m), 0);
    ck_assert_int_eq(director_parse_addr("198.51.100.9", &k.family, k.addr), 0);
    k.port = htons(443);
    k.proto = IPPROTO_TCP;
    ck_assert_int_eq(director_maps_set_vips(&m, &k, 1), 0);
    director_maps_close(&m);
    /* one packet through the (unconfigured) decap program */
    const struct pkt_spec spec = {
        DROVER_AF_INET, IPPROTO_TCP, "198.51.100.7", "10.0.0.9", 40000, 80, 0x02, 0, 0};
    pkt_build(&in, &spec);
    ck_assert_int_eq(pkt_run(bpf_program__fd(xskel->progs.drover_decap), &in, &out, &act, 0), 0);

    const struct scrape_target t[] = {
        {ddir, "m0", false}, {xdir, "d0", true}, {gone, "gone0", false}};
    char *text = scrape(t, 3);
    static const char *const want[] = {
        "drover_director_packets_total{dev=\"m0\",outcome=\"rx\"} 0\n",
        "drover_director_packets_total{dev=\"m0\",outcome=\"encap_v4\"} 0\n",
        "drover_director_vip_packets_total{dev=\"m0\",vip=\"198.51.100.9:443/tcp\"} 0\n",
        "drover_director_vip_bytes_total{dev=\"m0\",vip=\"198.51.100.9:443/tcp\"} 0\n",
        "drover_director_vip_drops_total{dev=\"m0\",vip=\"198.51.100.9:443/tcp\"} 0\n",
        "drover_director_maps_readable{dev=\"m0\"} 1\n",
        "drover_decap_packets_total{dev=\"d0\",outcome=\"rx\"} 1\n",
        "drover_decap_maps_readable{dev=\"d0\"} 1\n",
        "drover_director_maps_readable{dev=\"gone0\"} 0\n",
        "# TYPE drover_director_vip_packets_total counter\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]), "missing %s in:\n%s", want[i], text);
    /* each program's own counters only */
    ck_assert_ptr_null(
        strstr(text, "drover_director_packets_total{dev=\"m0\",outcome=\"decap_local\"}"));
    ck_assert_ptr_null(strstr(text, "drover_decap_packets_total{dev=\"d0\",outcome=\"encap_v4\"}"));
    free(text);
    decap_bpf__destroy(xskel);
    director_bpf__destroy(dskel);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bpf_director_publish");
    TCase *tc = tcase_create("publish");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_config_and_table_paths_agree);
    tcase_add_test(tc, test_unattached_maps_refused);
    tcase_add_test(tc, test_version_flipped_in_while_waiting_for_the_lock);
    tcase_add_test(tc, test_settings_applied_while_waiting_for_the_lock);
    tcase_add_test(tc, test_vips_of_another_version_kept);
    tcase_add_test(tc, test_metrics_from_pins);
    suite_add_tcase(s, tc);
    if (geteuid() != 0) {
        fprintf(stderr, "bpf tests need root (CAP_BPF, CAP_SYS_ADMIN for a bpffs)\n");
        return 77;
    }
    /* a bpffs of our own, in a mount namespace of our own: nothing is
     * left behind whatever happens */
    return pkt_bpffs_run(s, root);
}
