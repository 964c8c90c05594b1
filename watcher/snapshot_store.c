/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot_store: persistence of the watcher's last good snapshot with
 * protobuf-c (proto/snapshot.proto). What is stored is the raw KV input,
 * not the derived model, so a restart rebuilds through exactly the same
 * validation as a live update, and the file stays valid when the model
 * code changes. See snapshot.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errmsg.h"
#include "snapshot.h"
#include "snapshot.pb-c.h"

#define SNAPSHOT_SCHEMA    1
#define SNAPSHOT_MAX_BYTES (512u << 20)

void snapshot_saved_slots_free(struct snapshot_saved_slots *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].backend);
        slot_assignment_free(&v[i].a);
    }
    free(v);
}

/* Everything allocated for one message, freed together. */
struct pack_state {
    Drover__Watcher__KvEntry *entries;
    Drover__Watcher__KvEntry **entry_ptrs;
    Drover__Watcher__BackendSlots *slots;
    Drover__Watcher__BackendSlots **slot_ptrs;
    size_t n_slots;
};

static void pack_state_free(struct pack_state *p)
{
    for (size_t i = 0; i < p->n_slots; i++) {
        Drover__Watcher__BackendSlots *b = &p->slots[i];
        free(b->used);
        if (b->servers) {
            free(b->servers[0]);
            free(b->servers);
        }
    }
    free(p->entries);
    free(p->entry_ptrs);
    free(p->slots);
    free(p->slot_ptrs);
}

int snapshot_save(const struct snapshot *s, const struct kv_model_opts *o, snapshot_slots_fn slots,
                  void *slots_arg, const char *path, int64_t now, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = snapshot_encode(s, o, slots, slots_arg, now, &buf, &len);
    if (rc == 0 && (rc = atomic_file_write(path, buf, len, 0600)) < 0)
        errmsg_set(err, errlen, "snapshot file %s: write failed: %s", path, strerror(-rc));
    else if (rc < 0)
        errmsg_set(err, errlen, "snapshot file %s: out of memory", path);
    free(buf);
    return rc;
}

int snapshot_encode(const struct snapshot *s, const struct kv_model_opts *o,
                    snapshot_slots_fn slots, void *slots_arg, int64_t now, uint8_t **out,
                    size_t *out_len)
{
    Drover__Watcher__WatcherSnapshot msg = DROVER__WATCHER__WATCHER_SNAPSHOT__INIT;
    struct pack_state p = {0};
    size_t n_backends = 0;
    uint8_t *buf = NULL;
    int rc = -ENOMEM;

    msg.schema = SNAPSHOT_SCHEMA;
    msg.saved_unix = now;
    msg.kv_root = (char *)o->root;
    msg.haproxy_cluster = (char *)o->haproxy_cluster;
    msg.n_kube_clusters = o->n_kube_clusters;
    msg.kube_clusters = (char **)o->kube_clusters;
    msg.inputs_hash = s->inputs_hash;

    p.entries = calloc(s->n_entries + 1, sizeof(*p.entries));
    p.entry_ptrs = calloc(s->n_entries + 1, sizeof(*p.entry_ptrs));
    if (!p.entries || !p.entry_ptrs)
        goto out;
    for (size_t i = 0; i < s->n_entries; i++) {
        Drover__Watcher__KvEntry *e = &p.entries[i];
        drover__watcher__kv_entry__init(e);
        e->key = s->entries[i].key;
        e->value.data = (uint8_t *)s->entries[i].value;
        e->value.len = s->entries[i].value ? s->entries[i].len : 0;
        p.entry_ptrs[i] = e;
    }
    msg.n_entries = s->n_entries;
    msg.entries = p.entry_ptrs;

    for (size_t i = 0; i < s->n_services; i++)
        n_backends += s->services[i].n_backends;
    p.slots = calloc(n_backends + 1, sizeof(*p.slots));
    p.slot_ptrs = calloc(n_backends + 1, sizeof(*p.slot_ptrs));
    if (!p.slots || !p.slot_ptrs)
        goto out;
    for (size_t i = 0; slots && i < s->n_services; i++) {
        for (size_t j = 0; j < s->services[i].n_backends; j++) {
            const char *name = s->services[i].backends[j].def->name;
            const struct slot_assignment *a = slots(slots_arg, name);
            if (!a)
                continue;
            Drover__Watcher__BackendSlots *b = &p.slots[p.n_slots];
            drover__watcher__backend_slots__init(b);
            p.slot_ptrs[p.n_slots++] = b;
            b->backend = (char *)name;
            b->nslots = (uint32_t)a->nslots;
            b->used = calloc(a->nslots + 1, sizeof(*b->used));
            b->servers = calloc(a->nslots + 1, sizeof(*b->servers));
            Drover__Watcher__SlotServer *sv = calloc(a->nslots + 1, sizeof(*sv));
            if (!b->used || !b->servers || !sv) {
                free(sv);
                goto out;
            }
            b->servers[0] = sv; /* freed through servers[0] */
            b->n_used = b->n_servers = a->nslots;
            for (size_t k = 0; k < a->nslots; k++) {
                drover__watcher__slot_server__init(&sv[k]);
                b->used[k] = a->slots[k].used;
                if (a->slots[k].used) {
                    sv[k].key = a->slots[k].srv.key;
                    sv[k].address = a->slots[k].srv.address;
                    sv[k].port = a->slots[k].srv.port;
                    sv[k].weight = a->slots[k].srv.weight;
                }
                b->servers[k] = &sv[k];
            }
        }
    }
    msg.n_slots = p.n_slots;
    msg.slots = p.slot_ptrs;

    size_t len = drover__watcher__watcher_snapshot__get_packed_size(&msg);
    if (!(buf = malloc(len ? len : 1)))
        goto out;
    drover__watcher__watcher_snapshot__pack(&msg, buf);
    *out = buf;
    *out_len = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    pack_state_free(&p);
    return rc;
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int rc = 0;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if ((uint64_t)st.st_size > SNAPSHOT_MAX_BYTES) {
        rc = -EFBIG;
        goto out;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            goto out;
        }
        got += (size_t)r;
    }
    *out = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int snapshot_load(const char *path, const struct kv_model_opts *o, int64_t now,
                  struct snapshot **out, struct snapshot_saved_slots **slots, size_t *n_slots,
                  char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    Drover__Watcher__WatcherSnapshot *msg = NULL;
    struct snapshot_entry *entries = NULL;
    struct snapshot_saved_slots *sv = NULL;
    size_t nsv = 0;
    int rc = read_all(path, &buf, &len);

    *slots = NULL;
    *n_slots = 0;
    if (rc < 0) {
        errmsg_set(err, errlen, "snapshot file %s: %s", path, strerror(-rc));
        return rc;
    }
    msg = drover__watcher__watcher_snapshot__unpack(NULL, len, buf);
    if (!msg || msg->schema != SNAPSHOT_SCHEMA) {
        errmsg_set(err, errlen, "snapshot file %s: %s", path,
                   msg ? "unknown schema version" : "not a valid WatcherSnapshot message");
        rc = -EBADMSG;
        goto out;
    }
    rc = -ENOMEM;
    if (!(entries = calloc(msg->n_entries + 1, sizeof(*entries))))
        goto out;
    for (size_t i = 0; i < msg->n_entries; i++) {
        const Drover__Watcher__KvEntry *e = msg->entries[i];
        entries[i].key = strdup(e->key ? e->key : "");
        entries[i].value = malloc(e->value.len + 1);
        if (!entries[i].key || !entries[i].value) {
            snapshot_entries_free(entries, i + 1);
            entries = NULL;
            goto out;
        }
        if (e->value.len)
            memcpy(entries[i].value, e->value.data, e->value.len);
        entries[i].value[e->value.len] = '\0';
        entries[i].len = e->value.len;
    }
    if (!(sv = calloc(msg->n_slots + 1, sizeof(*sv))))
        goto out;
    for (size_t i = 0; i < msg->n_slots; i++) {
        const Drover__Watcher__BackendSlots *b = msg->slots[i];
        struct snapshot_saved_slots *d = &sv[nsv];
        if (b->n_used != b->nslots || b->n_servers != b->nslots || b->nslots > SLOTS_MAX ||
            !b->backend) {
            errmsg_set(err, errlen, "snapshot file %s: slots of backend %d are inconsistent", path,
                       (int)i);
            rc = -EBADMSG;
            goto out;
        }
        slot_assignment_init(&d->a);
        nsv++;
        if (!(d->backend = strdup(b->backend)) ||
            !(d->a.slots = calloc(b->nslots + 1, sizeof(*d->a.slots))))
            goto out;
        d->a.nslots = b->nslots;
        for (size_t k = 0; k < b->nslots; k++) {
            const Drover__Watcher__SlotServer *s = b->servers[k];
            if (!b->used[k])
                continue;
            d->a.slots[k].used = true;
            d->a.slots[k].srv.key = strdup(s->key ? s->key : "");
            d->a.slots[k].srv.address = strdup(s->address ? s->address : "");
            d->a.slots[k].srv.port = (uint16_t)s->port;
            d->a.slots[k].srv.weight = s->weight;
            if (!d->a.slots[k].srv.key || !d->a.slots[k].srv.address)
                goto out;
        }
    }
    rc = snapshot_build(o, entries, msg->n_entries, now, NULL, out);
    entries = NULL; /* taken */
    if (rc == 0) {
        *slots = sv;
        *n_slots = nsv;
        sv = NULL;
    }
out:
    if (rc == -ENOMEM)
        errmsg_set(err, errlen, "snapshot file %s: out of memory", path);
    if (entries)
        snapshot_entries_free(entries, msg ? msg->n_entries : 0);
    snapshot_saved_slots_free(sv, nsv);
    if (msg)
        drover__watcher__watcher_snapshot__free_unpacked(msg, NULL);
    free(buf);
    return rc;
}
