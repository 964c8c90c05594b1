/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_files: checks of the certificate and CA files a definition names
 * and the crt-lists of its TLS frontends. See tls_files.h.
 */
#include "tls_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errmsg.h"
#include "log.h"
#include "render.h"
#include "snapshot.h"
#include "str_affix.h"
#include "tls_cert.h"

/* Read path and run the check that fits (CA file or certificate file);
 * err gets "<field>: <path>: <reason>". */
static int check_file(const char *field, const char *path, bool ca, char *err, size_t errlen)
{
    char *text = NULL, *payload = NULL, why[256];
    size_t len = 0, n = 0;
    int rc = render_read_file(path, &text, &len);
    if (rc < 0) {
        errmsg_set(err, errlen, "%s: %s: %s", field, path, strerror(-rc));
        return rc;
    }
    rc = ca ? tls_ca_check(text, len, &n, why, sizeof(why))
            : tls_cert_payload(text, len, &payload, NULL, why, sizeof(why));
    if (rc < 0)
        errmsg_set(err, errlen, "%s: %s: %s", field, path, why);
    free(payload);
    free(text);
    return rc;
}

static int check_ca(const char *where, const struct kvm_server_tls *t, char *err, size_t errlen)
{
    char field[128];
    if (!t->ca_file)
        return 0;
    snprintf(field, sizeof(field), "%s.server_tls.ca_file", where);
    return check_file(field, t->ca_file, true, err, errlen);
}

int tls_files_check(const struct kvm_service *d, char *err, size_t errlen)
{
    char where[64];
    int rc;
    size_t fi = 0;

    for (size_t i = 0; i < d->n_frontends; i++) {
        const struct kvm_frontend *f = &d->frontends[i];
        if (f->generated)
            continue; /* a copy of its selector frontend's certificates */
        for (size_t k = 0; k < f->n_tls_certs; k++) {
            snprintf(where, sizeof(where), "frontends[%zu].tls.certs[%zu]", fi, k);
            if ((rc = check_file(where, f->tls_certs[k].file, false, err, errlen)) < 0)
                return rc;
        }
        fi++;
    }
    for (size_t i = 0; i < d->n_explicit_backends; i++) {
        snprintf(where, sizeof(where), "backends[%zu]", i);
        if ((rc = check_ca(where, &d->backends[i].server_tls, err, errlen)) < 0)
            return rc;
    }
    for (size_t i = 0; i < d->n_selectors; i++) {
        snprintf(where, sizeof(where), "select[%zu]", i);
        if ((rc = check_ca(where, &d->selectors[i].server_tls, err, errlen)) < 0)
            return rc;
    }
    return 0;
}

int tls_files_write_crt_lists(const char *dir, const struct kvm_service *d, size_t *written,
                              char *err, size_t errlen)
{
    int rc = 0;
    if (written)
        *written = 0;
    for (size_t i = 0; i < d->n_frontends && rc == 0; i++) {
        char *path = snapshot_crt_list_path(dir, d, &d->frontends[i]);
        char *text = path ? snapshot_crt_list_text(&d->frontends[i]) : NULL;
        char *old = NULL;
        size_t old_len = 0, len = text ? strlen(text) : 0;
        if (!path)
            continue; /* no TLS on this frontend */
        if (!text)
            rc = -ENOMEM;
        else if ((rc = atomic_file_make_parent_dirs(path, 0755)) < 0)
            errmsg_set(err, errlen, "crt-list %s: cannot create its directory: %s", path,
                       strerror(-rc));
        else if (render_read_file(path, &old, &old_len) == 0 && old_len == len &&
                 memcmp(old, text, len) == 0)
            rc = 0; /* already there: a reload reads it as it is */
        else if ((rc = atomic_file_write(path, text, len, 0644)) < 0)
            errmsg_set(err, errlen, "crt-list %s: %s", path, strerror(-rc));
        else if (written)
            (*written)++;
        free(old);
        free(text);
        free(path);
    }
    return rc;
}

#define CRT_LIST_SUFFIX      ".crtlist"
#define CRT_LISTS_DIR_SUFFIX ".crt-lists"

static bool kept(const char *path, const char *const *keep, size_t n_keep)
{
    for (size_t i = 0; i < n_keep; i++)
        if (keep[i] && strcmp(keep[i], path) == 0)
            return true;
    return false;
}

int tls_files_remove_stale(const char *dir, const char *service, const char *const *keep,
                           size_t n_keep)
{
    char *sub = snapshot_crt_list_dir(dir, service), path[PATH_MAX];
    DIR *dh = sub ? opendir(sub) : NULL;
    struct dirent *de;
    int removed = 0;
    if (!dh) {
        free(sub);
        return 0; /* no crt-list written yet */
    }
    while ((de = readdir(dh))) {
        if (!str_has_suffix(de->d_name, CRT_LIST_SUFFIX))
            continue; /* not a list (atomic_file_write's temporary files among them) */
        snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
        if (!kept(path, keep, n_keep) && unlink(path) == 0)
            removed++;
    }
    closedir(dh);
    free(sub);
    return removed;
}

/* A file this module writes into a crt-lists directory: a list, or what
 * atomic_file_write leaves of one when its process dies mid-write
 * (".<list>.tmp.<pid>.<random>"). */
static bool ours(const char *name)
{
    return str_has_suffix(name, CRT_LIST_SUFFIX) ||
           (name[0] == '.' && strstr(name, CRT_LIST_SUFFIX ".tmp.") != NULL);
}

int tls_files_remove_service(const char *dir, const char *service, char *err, size_t errlen)
{
    char *sub = snapshot_crt_list_dir(dir, service);
    DIR *dh = sub ? opendir(sub) : NULL;
    struct dirent *de;
    int rc = 0;
    if (!sub)
        return -ENOMEM;
    if (!dh) {
        rc = errno == ENOENT ? 0 : -errno; /* none written, or removed already */
        if (rc < 0)
            errmsg_set(err, errlen, "crt-lists %s: %s", sub, strerror(-rc));
        free(sub);
        return rc;
    }
    while ((de = readdir(dh)))
        if (ours(de->d_name) && unlinkat(dirfd(dh), de->d_name, 0) < 0 && errno != ENOENT &&
            rc == 0)
            rc = -errno;
    closedir(dh);
    if (rc == 0 && rmdir(sub) < 0 && errno != ENOENT)
        rc = -errno;
    if (rc < 0)
        errmsg_set(err, errlen, "crt-lists %s: cannot remove it: %s", sub, strerror(-rc));
    free(sub);
    return rc;
}

static bool crt_list_target(const char *target, void *arg)
{
    (void)arg;
    return str_has_suffix(target, CRT_LIST_SUFFIX);
}

int tls_files_sweep_temps(const char *dir, bool ours_too)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    char sub[PATH_MAX];
    int removed = 0;
    if (!dh)
        return 0; /* no config dir yet: nothing written */
    while ((de = readdir(dh))) {
        if (de->d_name[0] == '.' || !str_has_suffix(de->d_name, CRT_LISTS_DIR_SUFFIX))
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
        int n = atomic_file_sweep(sub, crt_list_target, NULL, ours_too);
        if (n > 0)
            removed += n;
    }
    closedir(dh);
    return removed;
}

int tls_files_sweep(const char *dir, tls_files_in_use_fn in_use, void *arg)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    char service[NAME_MAX + 1], err[512];
    int removed = 0;
    if (!dh)
        return 0; /* no config dir yet: nothing written */
    while ((de = readdir(dh))) {
        size_t n = strlen(de->d_name), k = strlen(CRT_LISTS_DIR_SUFFIX);
        if (de->d_name[0] == '.' || !str_has_suffix(de->d_name, CRT_LISTS_DIR_SUFFIX))
            continue; /* a hidden name has no service before the suffix */
        snprintf(service, sizeof(service), "%.*s", (int)(n - k), de->d_name);
        if (render_config_exists(dirfd(dh), service) || (in_use && in_use(arg, service)))
            continue;
        if (tls_files_remove_service(dir, service, err, sizeof(err)) < 0)
            log_warn("watcher: %s; left in place", err);
        else
            removed++;
    }
    closedir(dh);
    return removed;
}
