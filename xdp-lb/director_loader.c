/* SPDX-License-Identifier: Apache-2.0 */
#include "director_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "decap_bpf.skel.h"
#include "director_bpf.skel.h"
#include "director_maps.h"
#include "director_publish.h"
#include "log.h"

#define BPF_FS_MAGIC_VALUE 0xcafe4a11

static const char *root_of(const struct director_attach_opts *o)
{
    return o->pin_root ? o->pin_root : DIRECTOR_PIN_ROOT;
}

/* A bpffs mounted by this process lives as long as its mount namespace.
 * `ip netns exec` (and a unit with private mounts) runs each command in a
 * mount namespace of its own, with a fresh /sys: that namespace, the bpffs
 * and every pin in it end with the command, so attach would "succeed" and
 * the next status/apply find nothing. Warn loudly unless we share PID 1's
 * mount namespace, where the mount outlives us. */
static void warn_own_bpffs(const char *dev)
{
    char self[64] = "", init[64] = "";
    ssize_t a = readlink("/proc/self/ns/mnt", self, sizeof(self) - 1);
    ssize_t b = readlink("/proc/1/ns/mnt", init, sizeof(init) - 1);

    if (a > 0 && b > 0 && strcmp(self, init) == 0) {
        log_info("%s: mounted a bpffs on /sys/fs/bpf (host mount namespace, it stays)", dev);
        return;
    }
    log_warn("%s: /sys/fs/bpf had no bpffs, so this command mounted one in its own mount "
             "namespace (%s, PID 1 has %s; ip netns exec gives every command a new one): "
             "unless another process keeps that namespace, the pins vanish when this command "
             "exits and later status/apply/detach will not find them; continuing, but use "
             "--pin-root DIR on a bpffs mounted where it persists (mount -t bpf bpf DIR in the "
             "host namespace)",
             dev, a > 0 ? self : "unknown", b > 0 ? init : "unknown");
}

/* Make sure root is on a bpffs (mounting /sys/fs/bpf if that is where it
 * lives and nothing is mounted yet), then create root/dev. */
static int prepare_pin_dir(const struct director_attach_opts *o, char *dir, size_t len)
{
    const char *root = root_of(o);
    struct statfs st;
    int rc;

    if (strncmp(root, "/sys/fs/bpf", 11) == 0 && statfs("/sys/fs/bpf", &st) == 0 &&
        st.f_type != BPF_FS_MAGIC_VALUE) {
        if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0) {
            rc = -errno;
            log_error("%s: /sys/fs/bpf is not a bpffs and mounting one failed: %s", o->dev,
                      strerror(errno));
            return rc;
        }
        warn_own_bpffs(o->dev);
    }
    if (mkdir(root, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        log_error("%s: cannot create pin directory %s: %s", o->dev, root, strerror(errno));
        return rc;
    }
    if (statfs(root, &st) < 0 || st.f_type != BPF_FS_MAGIC_VALUE) {
        log_error("%s: pin directory %s is not on a bpffs; mount one (mount -t bpf bpf DIR)",
                  o->dev, root);
        return -ENOTSUP;
    }
    rc = director_pin_dir(root, o->dev, dir, len);
    if (rc < 0)
        return rc;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        log_error("%s: cannot create pin directory %s: %s", o->dev, dir, strerror(errno));
        return rc;
    }
    return 0;
}

static int dev_ifindex(const char *dev, int *ifindex)
{
    *ifindex = (int)if_nametoindex(dev);
    if (*ifindex == 0) {
        int rc = -errno;
        log_error("%s: no such network device: %s", dev, strerror(errno));
        return rc ? rc : -ENODEV;
    }
    return 0;
}

static int dev_mac(const char *dev, __u8 mac[6])
{
    struct ifreq ifr = {0};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rc = 0;

    if (fd < 0)
        return -errno;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
        rc = -errno;
        log_error("%s: cannot read MAC address: %s", dev, strerror(errno));
    } else {
        memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    }
    close(fd);
    return rc;
}

static __u32 xdp_flags(enum director_xdp_mode mode)
{
    if (mode == DIRECTOR_MODE_NATIVE)
        return XDP_FLAGS_DRV_MODE;
    if (mode == DIRECTOR_MODE_GENERIC)
        return XDP_FLAGS_SKB_MODE;
    return 0;
}

static __u32 prog_id_of_fd(int fd)
{
    struct bpf_prog_info info = {0};
    __u32 len = sizeof(info);

    if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
        return 0;
    return info.id;
}

int director_loader_prog_ids(const struct director_attach_opts *o, const char *pin_name,
                             __u32 *attached_id, __u32 *ours_id)
{
    char dir[256], path[320];
    int ifindex, rc;

    *attached_id = *ours_id = 0;
    rc = dev_ifindex(o->dev, &ifindex);
    if (rc < 0)
        return rc;
    if (bpf_xdp_query_id(ifindex, 0, attached_id) < 0) {
        rc = -errno;
        log_error("%s: XDP query failed: %s", o->dev, strerror(errno));
        return rc;
    }
    rc = director_pin_dir(root_of(o), o->dev, dir, sizeof(dir));
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%s", dir, pin_name);
    int fd = bpf_obj_get(path);
    if (fd >= 0) {
        *ours_id = prog_id_of_fd(fd);
        close(fd);
    }
    return 0;
}

/* Attach prog_fd to ifindex, refusing to replace a foreign program. */
static int attach_xdp(const struct director_attach_opts *o, const char *pin_name,
                      const char *prog_name, int ifindex, int prog_fd)
{
    __u32 attached = 0, ours = 0;
    __u32 flags = xdp_flags(o->mode);
    int rc = director_loader_prog_ids(o, pin_name, &attached, &ours);

    if (rc < 0)
        return rc;
    if (attached && attached != ours && !o->force) {
        log_error("%s: XDP program id %u is already attached and is not drover's %s; refusing "
                  "to replace it (use --force)",
                  o->dev, attached, prog_name);
        return -EEXIST;
    }
    if (!attached)
        flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
    if (bpf_xdp_attach(ifindex, prog_fd, flags, NULL) < 0) {
        rc = -errno;
        log_error("%s: attaching XDP program %s failed: %s", o->dev, prog_name, strerror(errno));
        return rc;
    }
    return 0;
}

static int pin_prog(const char *dev, struct bpf_program *prog, const char *dir, const char *name)
{
    char path[320];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    int rc = bpf_program__pin(prog, path);
    if (rc < 0)
        log_error("%s: pinning program %s at %s failed: %s", dev, bpf_program__name(prog), path,
                  strerror(-rc));
    return rc;
}

static int set_pins(const char *dev, struct bpf_object *obj, const char *dir)
{
    struct bpf_map *map;
    char path[320];

    bpf_object__for_each_map(map, obj)
    {
        if (strchr(bpf_map__name(map), '.')) /* .rodata/.bss: not shared */
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
        int rc = bpf_map__set_pin_path(map, path);
        if (rc < 0) {
            log_error("%s: setting pin path %s failed: %s", dev, path, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Refuse pins in dir that libbpf could not reuse for obj's maps, before
 * anything is loaded or pinned: libbpf's own refusal names neither the
 * field nor the sizes. A missing pin is fine (a map this version added:
 * the load creates and pins it). */
static int check_pins(const char *dev, struct bpf_object *obj, const char *dir)
{
    struct bpf_map *map;
    char path[320];

    bpf_object__for_each_map(map, obj)
    {
        if (strchr(bpf_map__name(map), '.'))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
        int fd = bpf_obj_get(path);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0) {
            int rc = -errno;
            log_error("%s: cannot open pinned map %s: %s", dev, path, strerror(errno));
            return rc;
        }
        const struct director_map_layout want = {
            bpf_map__type(map), bpf_map__key_size(map), bpf_map__value_size(map),
            bpf_map__max_entries(map), bpf_map__map_flags(map)};
        int rc = director_map_check_layout(fd, path, &want);
        close(fd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Publish cfg into maps m; o->dev is the attach device. */
static int apply_config(const struct director_attach_opts *o, struct director_maps *m,
                        const struct director_config *cfg)
{
    struct director_publish_device d = {0};
    struct director_publish_result res;
    char err[512];
    int rc;

    if (cfg->egress[0]) {
        int idx;
        rc = dev_ifindex(cfg->egress, &idx);
        if (rc < 0)
            return rc;
        d.egress_ifindex = (__u32)idx;
    }
    rc = dev_mac(cfg->egress[0] ? cfg->egress : o->dev, d.src_mac);
    if (rc < 0)
        return rc;
    rc = director_publish_config(m, o->dev, cfg, &d, &res, err, sizeof(err));
    if (rc < 0) {
        log_error("%s: %s", o->dev, err);
        return rc;
    }
    log_info("%s: generation %u active: %zu proxies, %zu VIPs, checksum %016llx", o->dev,
             res.generation, cfg->n_proxies, cfg->n_vips, (unsigned long long)res.checksum);
    return 0;
}

/* What differs between attaching the director and the decap program. */
struct attach_job {
    struct bpf_object *obj;
    struct bpf_program *prog;
    const char *pin_name;
    /* Fill the freshly loaded maps before the program sees a packet. */
    int (*fill)(const struct director_attach_opts *o, void *arg);
    void *arg;
};

/* Pin maps under <root>/<dev>/ (reusing pinned ones), load, fill, attach
 * (refusing a foreign program unless forced) and pin the program. */
static int attach_object(const struct director_attach_opts *o, struct attach_job *job)
{
    const char *name = bpf_program__name(job->prog);
    char dir[256];
    int ifindex, rc;

    rc = dev_ifindex(o->dev, &ifindex);
    if (rc < 0)
        return rc;
    rc = prepare_pin_dir(o, dir, sizeof(dir));
    if (rc < 0)
        return rc;
    rc = check_pins(o->dev, job->obj, dir);
    if (rc < 0)
        return rc;
    rc = set_pins(o->dev, job->obj, dir);
    if (rc < 0)
        return rc;
    rc = bpf_object__load(job->obj);
    if (rc < 0) {
        log_error("%s: loading program %s failed: %s (pinned maps in %s with another layout? "
                  "detach first)",
                  o->dev, name, strerror(-rc), dir);
        return rc;
    }
    rc = job->fill(o, job->arg);
    if (rc < 0)
        return rc;
    rc = attach_xdp(o, job->pin_name, name, ifindex, bpf_program__fd(job->prog));
    if (rc < 0)
        return rc;
    rc = pin_prog(o->dev, job->prog, dir, job->pin_name);
    if (rc == 0)
        log_info("%s: %s attached, maps pinned in %s", o->dev, name, dir);
    return rc;
}

struct director_fill {
    struct director_bpf *skel;
    const struct director_config *cfg;
};

static int fill_director(const struct director_attach_opts *o, void *arg)
{
    struct director_fill *d = arg;
    struct director_maps m;
    int rc = director_maps_from_object(&m, d->skel->obj);

    if (rc < 0)
        return rc;
    /* The maps may be pinned ones a watcher is publishing to: take the
     * same lock it does. */
    char dir[256];
    if (director_pin_dir(root_of(o), o->dev, dir, sizeof(dir)) == 0)
        m.lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = apply_config(o, &m, d->cfg);
    director_maps_close(&m);
    return rc;
}

int director_loader_attach(const struct director_attach_opts *o, const struct director_config *cfg)
{
    struct director_bpf *skel = director_bpf__open();
    int rc;

    if (!skel) {
        rc = -errno;
        log_error("%s: opening BPF object director failed: %s", o->dev, strerror(errno));
        return rc;
    }
    struct director_fill fill = {.skel = skel, .cfg = cfg};
    struct attach_job job = {.obj = skel->obj,
                             .prog = skel->progs.drover_director,
                             .pin_name = DIRECTOR_PROG_PIN,
                             .fill = fill_director,
                             .arg = &fill};
    rc = attach_object(o, &job);
    director_bpf__destroy(skel);
    return rc;
}

int director_loader_apply(const struct director_attach_opts *o, const struct director_config *cfg)
{
    struct director_maps m;
    char dir[256];
    int rc = director_pin_dir(root_of(o), o->dev, dir, sizeof(dir));

    if (rc < 0)
        return rc;
    rc = director_maps_open_pinned(dir, &m);
    if (rc < 0)
        return rc;
    rc = apply_config(o, &m, cfg);
    director_maps_close(&m);
    return rc;
}

static void unpin_all(const char *dir, const char *const *names, size_t n)
{
    char path[320];

    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) < 0 && errno != ENOENT)
            log_warn("unpin %s failed: %s; remove it by hand", path, strerror(errno));
    }
    rmdir(dir); /* only succeeds once both programs are gone */
}

static int detach_prog(const struct director_attach_opts *o, const char *pin_name,
                       const char *const *pins, size_t npins)
{
    __u32 attached = 0, ours = 0;
    char dir[256], path[320];
    int ifindex, rc;

    rc = dev_ifindex(o->dev, &ifindex);
    if (rc < 0)
        return rc;
    rc = director_loader_prog_ids(o, pin_name, &attached, &ours);
    if (rc < 0)
        return rc;
    rc = director_pin_dir(root_of(o), o->dev, dir, sizeof(dir));
    if (rc < 0)
        return rc;
    if (attached && (attached == ours || o->force)) {
        snprintf(path, sizeof(path), "%s/%s", dir, pin_name);
        int fd = attached == ours ? bpf_obj_get(path) : -1;
        LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = fd);
        __u32 flags = fd >= 0 ? XDP_FLAGS_REPLACE : 0;
        rc = bpf_xdp_attach(ifindex, -1, flags, fd >= 0 ? &opts : NULL);
        if (rc < 0) {
            rc = -errno;
            log_error("%s: detaching XDP program id %u failed: %s", o->dev, attached,
                      strerror(errno));
        }
        if (fd >= 0)
            close(fd);
        if (rc < 0)
            return rc;
    } else if (attached) {
        log_error("%s: attached XDP program id %u is not drover's %s; leaving it (use --force)",
                  o->dev, attached, pin_name);
        return -EEXIST;
    }
    unpin_all(dir, pins, npins);
    log_info("%s: %s detached and unpinned", o->dev, pin_name);
    return 0;
}

int director_loader_detach(const struct director_attach_opts *o)
{
    static const char *const pins[] = {
        DIRECTOR_PROG_PIN,    DIRECTOR_MAP_VIPS,    DIRECTOR_MAP_TABLE,    DIRECTOR_MAP_PROXIES,
        DIRECTOR_MAP_GEN_CFG, DIRECTOR_MAP_ACTIVE,  DIRECTOR_MAP_STATS,    DIRECTOR_MAP_VIP_IDX,
        DIRECTOR_MAP_VIP_ACT, DIRECTOR_MAP_VIP_CTR, DIRECTOR_MAP_PROXY_CTR};
    return detach_prog(o, DIRECTOR_PROG_PIN, pins, sizeof(pins) / sizeof(pins[0]));
}

int decap_loader_detach(const struct director_attach_opts *o)
{
    static const char *const pins[] = {DECAP_PROG_PIN, DECAP_MAP_CONFIG, DECAP_MAP_STATS};
    return detach_prog(o, DECAP_PROG_PIN, pins, sizeof(pins) / sizeof(pins[0]));
}

struct decap_fill {
    struct decap_bpf *skel;
    __u16 gue_port;
};

static int fill_decap(const struct director_attach_opts *o, void *arg)
{
    struct decap_fill *d = arg;
    (void)o;
    return decap_maps_configure(bpf_map__fd(d->skel->maps.decap_config), d->gue_port);
}

int decap_loader_attach(const struct director_attach_opts *o, __u16 gue_port)
{
    struct decap_bpf *skel = decap_bpf__open();
    int rc;

    if (!skel) {
        rc = -errno;
        log_error("%s: opening BPF object decap failed: %s", o->dev, strerror(errno));
        return rc;
    }
    struct decap_fill fill = {.skel = skel, .gue_port = gue_port};
    struct attach_job job = {.obj = skel->obj,
                             .prog = skel->progs.drover_decap,
                             .pin_name = DECAP_PROG_PIN,
                             .fill = fill_decap,
                             .arg = &fill};
    rc = attach_object(o, &job);
    if (rc == 0)
        log_info("%s: decap listens on GUE port %u", o->dev, gue_port);
    decap_bpf__destroy(skel);
    return rc;
}
