/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render_files: route maps and crt-lists written next to a rendered
 * configuration (see render_files.h).
 */
#include "render_files.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errmsg.h"
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
