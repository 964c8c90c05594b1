/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render_files: route maps and crt-lists written next to a rendered
 * configuration (see render_files.h).
 */
#include "render_files.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errmsg.h"
#include "log.h"
#include "render.h"
#include "snapshot.h"
#include "tls_files.h"

/* A probe directory: only whether a path is made matters, not where. */
#define ANY_DIR "/"

bool render_files_any(const struct kvm_service *d)
{
    for (size_t i = 0; i < d->n_frontends; i++) {
        char *map = snapshot_map_path(ANY_DIR, d, &d->frontends[i]);
        bool any = map || d->frontends[i].n_tls_certs;
        free(map);
        if (any)
            return true;
    }
    return false;
}

static int write_maps(const char *dir, const struct kvm_service *d, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < d->n_frontends && rc == 0; i++) {
        char *path = snapshot_map_path(dir, d, &d->frontends[i]);
        char *text = path ? snapshot_map_text(&d->frontends[i]) : NULL;
        if (!path)
            continue; /* no selector routes into this frontend */
        if (!text)
            rc = -ENOMEM;
        else if ((rc = atomic_file_write(path, text, strlen(text), 0644)) < 0)
            errmsg_set(err, errlen, "route map %s: %s", path, strerror(-rc));
        free(text);
        free(path);
    }
    return rc;
}

int render_files_write(const char *dir, const struct kvm_service *d, char *err, size_t errlen)
{
    int rc = write_maps(dir, d, err, errlen);
    return rc < 0 ? rc : tls_files_write_crt_lists(dir, d, NULL, err, errlen);
}

void render_files_remove(const char *dir, const struct kvm_service *d)
{
    char err[512];
    for (size_t i = 0; i < d->n_frontends; i++) {
        char *path = snapshot_map_path(dir, d, &d->frontends[i]);
        if (path)
            unlink(path);
        free(path);
    }
    tls_files_remove_service(dir, d->name, err, sizeof(err));
}

#define MAP_SUFFIX ".map"

/* Whether some service the map file name can belong to still claims it:
 * each prefix before a '.' that leaves a frontend name is a reading. The
 * reading of except (NULL: none) does not count: its caller decides. */
static bool map_claimed(int dfd, const char *name, const char *except, tls_files_in_use_fn in_use,
                        void *arg)
{
    size_t stem = strlen(name) - strlen(MAP_SUFFIX);
    char owner[NAME_MAX + 1];
    for (size_t i = 1; i + 1 < stem; i++) {
        if (name[i] != '.')
            continue;
        snprintf(owner, sizeof(owner), "%.*s", (int)i, name);
        if (except && strcmp(owner, except) == 0)
            continue;
        if (render_config_exists(dfd, owner) || (in_use && in_use(arg, owner)))
            return true;
    }
    return false;
}

/* A route map file name ("<service>.<frontend>.map"), of service when
 * given. */
static bool map_of(const char *name, const char *service)
{
    size_t n = strlen(name), k = strlen(MAP_SUFFIX), s = service ? strlen(service) : 0;
    if (name[0] == '.' || n <= k + 2 || strcmp(name + n - k, MAP_SUFFIX) != 0 ||
        !memchr(name + 1, '.', n - k - 2))
        return false;
    return !service || (n > s + 1 + k && strncmp(name, service, s) == 0 && name[s] == '.');
}

/* What the removals leave: with keep, service's own claim is keep's to
 * judge, map by map. */
struct map_rule {
    const char *service;
    render_files_keep_fn keep;
    void *keep_arg;
    tls_files_in_use_fn in_use;
    void *arg;
};

/* Call fn with the path of each route map in dir that rule r does not
 * keep; returns how many calls returned true. */
static int each_unkept_map(const char *dir, const struct map_rule *r,
                           bool (*fn)(void *fn_arg, const char *path), void *fn_arg)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    char path[PATH_MAX];
    int n = 0;
    if (!dh)
        return 0; /* no config dir yet: nothing written */
    while ((de = readdir(dh))) {
        if (!map_of(de->d_name, r->service) ||
            map_claimed(dirfd(dh), de->d_name, r->keep ? r->service : NULL, r->in_use, r->arg))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!(r->keep && r->keep(r->keep_arg, path)) && fn(fn_arg, path))
            n++;
    }
    closedir(dh);
    return n;
}

static bool remove_map(void *arg, const char *path)
{
    int rc = file_writer_remove(arg, path);
    if (rc < 0)
        log_warn("watcher: cannot remove route map %s: %s; tried again at the watcher's "
                 "next start",
                 path, strerror(-rc));
    return rc == 0;
}

int render_files_remove_maps(const char *dir, const char *service, tls_files_in_use_fn in_use,
                             void *arg, struct file_writer *w)
{
    const struct map_rule r = {service, NULL, NULL, in_use, arg};
    return each_unkept_map(dir, &r, remove_map, w);
}

int render_files_prune_maps(const char *dir, const char *service, render_files_keep_fn keep,
                            void *keep_arg, tls_files_in_use_fn in_use, void *arg,
                            struct file_writer *w)
{
    const struct map_rule r = {service, keep, keep_arg, in_use, arg};
    return each_unkept_map(dir, &r, remove_map, w);
}

bool render_files_same_name(const char *a, const char *b)
{
    const char *x = strrchr(a, '/'), *y = strrchr(b, '/');
    return strcmp(x ? x + 1 : a, y ? y + 1 : b) == 0;
}

bool render_files_names_map(const struct kvm_service *d, const char *path)
{
    bool named = false;
    for (size_t i = 0; !named && i < d->n_frontends; i++) {
        char *m = snapshot_map_path(ANY_DIR, d, &d->frontends[i]);
        named = m && render_files_same_name(m, path);
        free(m);
    }
    return named;
}

static bool keep_named(void *arg, const char *path)
{
    return render_files_names_map(arg, path);
}

int render_files_each_map_to_prune(const char *dir, const struct kvm_service *d,
                                   bool (*fn)(void *fn_arg, const char *path), void *fn_arg)
{
    const struct map_rule r = {d->name, keep_named, (void *)d, NULL, NULL};
    return each_unkept_map(dir, &r, fn, fn_arg);
}
