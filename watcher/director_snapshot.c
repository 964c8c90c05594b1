/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_snapshot: struct director_saved <-> DirectorSnapshot protobuf.
 * What is stored are the parsed, validated inputs (plus health), so a
 * restart rebuilds the same table through the same builder and can check
 * the checksum it gets against the stored one.
 */
#include "director_snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomic_file.h"
#include "director_snapshot.pb-c.h"
#include "errmsg.h"

#define DIRECTOR_SNAPSHOT_SCHEMA    1
#define DIRECTOR_SNAPSHOT_MAX_BYTES (64u << 20)

void director_saved_clear(struct director_saved *s)
{
    director_inputs_free(s->inputs);
    free(s->proxies);
    free(s->kv_root);
    free(s->cluster);
    free(s->dev);
    free(s->last_error);
    free(s->tier);
    memset(s, 0, sizeof(*s));
}

static char *str(const char *s)
{
    return (char *)(s ? s : "");
}

int director_snapshot_save(const struct director_saved *s, const char *path, char *err,
                           size_t errlen)
{
    Drover__Director__DirectorSnapshot msg = DROVER__DIRECTOR__DIRECTOR_SNAPSHOT__INIT;
    Drover__Director__Force force = DROVER__DIRECTOR__FORCE__INIT;
    const struct director_inputs *in = s->inputs;
    size_t np = in ? in->n_proxies : 0, nv = in ? in->n_vips : 0;
    Drover__Director__Proxy *px = calloc(np + 1, sizeof(*px));
    Drover__Director__Proxy **pp = calloc(np + 1, sizeof(*pp));
    Drover__Director__Vip *vx = calloc(nv + 1, sizeof(*vx));
    Drover__Director__Vip **vp = calloc(nv + 1, sizeof(*vp));
    uint32_t **ports = calloc(nv + 1, sizeof(*ports));
    uint8_t key[16], *buf = NULL;
    int rc = -ENOMEM;

    if (!px || !pp || !vx || !vp || !ports)
        goto out;
    msg.schema = DIRECTOR_SNAPSHOT_SCHEMA;
    msg.saved_unix = (int64_t)time(NULL);
    msg.kv_root = str(s->kv_root);
    msg.cluster = str(s->cluster);
    msg.dev = str(s->dev);
    if (in && in->config.present) {
        for (int i = 0; i < 8; i++) {
            key[i] = (uint8_t)(in->config.hash_key[0] >> (8 * i));
            key[8 + i] = (uint8_t)(in->config.hash_key[1] >> (8 * i));
        }
        msg.has_config = true;
        msg.hash_key.data = key;
        msg.hash_key.len = 16;
        msg.hash_fields = in->config.hash_fields;
        msg.gue_port = in->config.gue_port;
        msg.has_max_moved_share = in->config.has_max_moved_share;
        msg.max_moved_share = in->config.max_moved_share;
    }
    for (size_t i = 0; i < np; i++) {
        const struct director_proxy_spec *p = &in->proxies[i];
        drover__director__proxy__init(&px[i]);
        px[i].host = p->host;
        px[i].address = p->address;
        px[i].state = p->state;
        px[i].weight = p->weight;
        px[i].health_port = p->health_port;
        px[i].health_path = str(p->health_path);
        if (s->proxies) {
            px[i].healthy = s->proxies[i].healthy;
            px[i].primary_rows = s->proxies[i].primary_rows;
            px[i].secondary_rows = s->proxies[i].secondary_rows;
        }
        pp[i] = &px[i];
    }
    msg.n_proxies = np;
    msg.proxies = pp;
    for (size_t i = 0; i < nv; i++) {
        const struct director_vip_spec *v = &in->vips[i];
        drover__director__vip__init(&vx[i]);
        vx[i].name = v->name;
        vx[i].address = v->address;
        vx[i].protocol = v->protocol;
        if (!(ports[i] = calloc(v->n_ports + 1, sizeof(**ports))))
            goto out;
        for (size_t j = 0; j < v->n_ports; j++)
            ports[i][j] = v->ports[j];
        vx[i].n_ports = v->n_ports;
        vx[i].ports = ports[i];
        vp[i] = &vx[i];
    }
    msg.n_vips = nv;
    msg.vips = vp;
    if (in && in->force.present) {
        force.expires_unix = in->force.expires_unix;
        force.author = str(in->force.author);
        force.reason = str(in->force.reason);
        msg.force = &force;
    }
    msg.table_checksum = s->table_checksum;
    msg.generation_checksum = s->generation_checksum;
    msg.generation = s->generation;
    msg.applied_unix = s->applied_unix;
    msg.last_change_unix = s->last_change_unix;
    msg.held = s->held;
    msg.held_moved_share = s->held_moved_share;
    msg.held_since_unix = s->held_since_unix;
    msg.last_error = str(s->last_error);
    msg.tier = str(s->tier);
    msg.balance = s->balance;

    size_t len = drover__director__director_snapshot__get_packed_size(&msg);
    if (!(buf = malloc(len ? len : 1)))
        goto out;
    drover__director__director_snapshot__pack(&msg, buf);
    rc = atomic_file_write(path, buf, len, 0600);
    if (rc < 0)
        errmsg_set(err, errlen, "director snapshot %s: write failed: %s", path, strerror(-rc));
out:
    if (rc == -ENOMEM)
        errmsg_set(err, errlen, "director snapshot %s: out of memory", path);
    for (size_t i = 0; ports && i < nv; i++)
        free(ports[i]);
    free(ports);
    free(px);
    free(pp);
    free(vx);
    free(vp);
    free(buf);
    return rc;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rbe");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;

    if (!f)
        return -errno;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            uint8_t *nb;
            if (ncap > DIRECTOR_SNAPSHOT_MAX_BYTES) {
                rc = -EFBIG;
                break;
            }
            if (!(nb = realloc(buf, ncap))) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

static char *dupe(const char *s, bool *fail)
{
    char *d = strdup(s ? s : "");
    if (!d)
        *fail = true;
    return d;
}

int director_snapshot_load(const char *path, struct director_saved *out, char *err, size_t errlen)
{
    Drover__Director__DirectorSnapshot *msg = NULL;
    struct director_inputs *in = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    bool fail = false;
    int rc = read_file(path, &buf, &len);

    memset(out, 0, sizeof(*out));
    if (rc < 0) {
        errmsg_set(err, errlen, "director snapshot %s: %s", path, strerror(-rc));
        return rc;
    }
    msg = drover__director__director_snapshot__unpack(NULL, len, buf);
    if (!msg || msg->schema != DIRECTOR_SNAPSHOT_SCHEMA ||
        (msg->has_config && msg->hash_key.len != 16)) {
        errmsg_set(err, errlen, "director snapshot %s: %s", path,
                   msg ? "unknown schema or bad hash key" : "not a DirectorSnapshot message");
        rc = -EBADMSG;
        goto out;
    }
    rc = -ENOMEM;
    if (!(in = calloc(1, sizeof(*in))) ||
        !(in->proxies = calloc(msg->n_proxies + 1, sizeof(*in->proxies))) ||
        !(in->vips = calloc(msg->n_vips + 1, sizeof(*in->vips))) ||
        !(out->proxies = calloc(msg->n_proxies + 1, sizeof(*out->proxies))))
        goto out;
    if (msg->has_config) {
        in->config.present = true;
        for (int i = 7; i >= 0; i--) {
            in->config.hash_key[0] = in->config.hash_key[0] << 8 | msg->hash_key.data[i];
            in->config.hash_key[1] = in->config.hash_key[1] << 8 | msg->hash_key.data[8 + i];
        }
        in->config.hash_fields = msg->hash_fields;
        in->config.gue_port = (uint16_t)msg->gue_port;
        in->config.has_max_moved_share = msg->has_max_moved_share;
        in->config.max_moved_share = msg->max_moved_share;
    }
    for (size_t i = 0; i < msg->n_proxies; i++, in->n_proxies++) {
        const Drover__Director__Proxy *p = msg->proxies[i];
        struct director_proxy_spec *d = &in->proxies[i];
        if (p->state > DIRECTOR_PROXY_DRAINING || p->health_port > 65535) {
            errmsg_set(err, errlen, "director snapshot %s: proxy %zu is inconsistent", path, i);
            rc = -EBADMSG;
            goto out;
        }
        d->host = dupe(p->host, &fail);
        d->address = dupe(p->address, &fail);
        d->health_path = p->health_path && *p->health_path ? dupe(p->health_path, &fail) : NULL;
        d->state = (enum director_proxy_state)p->state;
        d->weight = p->weight;
        d->health_port = (uint16_t)p->health_port;
        out->proxies[i].healthy = p->healthy;
        out->proxies[i].primary_rows = p->primary_rows;
        out->proxies[i].secondary_rows = p->secondary_rows;
    }
    for (size_t i = 0; i < msg->n_vips; i++, in->n_vips++) {
        const Drover__Director__Vip *v = msg->vips[i];
        struct director_vip_spec *d = &in->vips[i];
        d->name = dupe(v->name, &fail);
        d->address = dupe(v->address, &fail);
        d->protocol = (uint8_t)v->protocol;
        if (!(d->ports = calloc(v->n_ports + 1, sizeof(*d->ports))))
            goto out;
        for (size_t j = 0; j < v->n_ports; j++)
            d->ports[j] = (uint16_t)v->ports[j];
        d->n_ports = v->n_ports;
    }
    if (msg->force) {
        in->force.present = true;
        in->force.expires_unix = msg->force->expires_unix;
        in->force.author = dupe(msg->force->author, &fail);
        in->force.reason = dupe(msg->force->reason, &fail);
    }
    out->kv_root = dupe(msg->kv_root, &fail);
    out->cluster = dupe(msg->cluster, &fail);
    out->dev = dupe(msg->dev, &fail);
    out->last_error = dupe(msg->last_error, &fail);
    out->tier = dupe(msg->tier, &fail);
    if (fail)
        goto out;
    /* proxies and vips are stored sorted; finish keeps that order */
    director_inputs_finish(in);
    out->inputs = in;
    in = NULL;
    out->table_checksum = msg->table_checksum;
    out->generation_checksum = msg->generation_checksum;
    out->generation = msg->generation;
    out->saved_unix = msg->saved_unix;
    out->applied_unix = msg->applied_unix;
    out->last_change_unix = msg->last_change_unix;
    out->held = msg->held;
    out->held_moved_share = msg->held_moved_share;
    out->held_since_unix = msg->held_since_unix;
    out->balance = msg->balance;
    rc = 0;
out:
    if (rc == -ENOMEM)
        errmsg_set(err, errlen, "director snapshot %s: out of memory", path);
    if (rc < 0) {
        director_inputs_free(in);
        director_saved_clear(out);
    }
    if (msg)
        drover__director__director_snapshot__free_unpacked(msg, NULL);
    free(buf);
    return rc;
}
