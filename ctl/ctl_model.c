/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_model: see ctl_model.h. */
#include "ctl_model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "timefmt.h"

#define SLOTS_DEFAULT 16

static const char *const state_names[] = {"ready", "drain", "maint"};

const char *ctl_state_name(enum ctl_state s)
{
    return (unsigned)s < 3 ? state_names[s] : "?";
}

void ctl_model_init(struct ctl_model *m, int64_t now)
{
    memset(m, 0, sizeof(*m));
    m->now = now;
}

void ctl_maint_clear(struct ctl_maint *e)
{
    free(e->id);
    free(e->a);
    free(e->b);
    free(e->reason);
    free(e->author);
    free(e->created);
    free(e->expires);
    json_decref(e->value);
    memset(e, 0, sizeof(*e));
}

void ctl_model_clear(struct ctl_model *m)
{
    for (size_t i = 0; i < m->n_nodes; i++) {
        struct ctl_node *n = &m->nodes[i];
        free(n->cluster);
        free(n->name);
        free(n->address);
        for (size_t k = 0; k < n->n_addresses; k++)
            free(n->addresses[k]);
        free(n->addresses);
    }
    for (size_t i = 0; i < m->n_ports; i++) {
        struct ctl_kube_port *p = &m->ports[i];
        free(p->cluster);
        free(p->ns);
        free(p->svc);
        free(p->port);
    }
    for (size_t i = 0; i < m->n_backends; i++) {
        struct ctl_backend *b = &m->backends[i];
        free(b->service);
        free(b->name);
        for (size_t k = 0; k < b->n_kube; k++) {
            free(b->kube[k].cluster);
            free(b->kube[k].ns);
            free(b->kube[k].svc);
            free(b->kube[k].port);
        }
        free(b->kube);
        for (size_t k = 0; k < b->n_servers; k++) {
            free(b->servers[k].name);
            free(b->servers[k].address);
        }
        free(b->servers);
    }
    for (size_t i = 0; i < m->n_maint; i++)
        ctl_maint_clear(&m->maint[i]);
    free(m->nodes);
    free(m->ports);
    free(m->backends);
    free(m->maint);
    ctl_model_init(m, m->now);
}

bool ctl_maint_expired(const struct ctl_maint *e, int64_t now)
{
    return e->expires_unix > 0 && e->expires_unix <= now;
}

/* ---- helpers ------------------------------------------------------------ */

static int grow(void **arr, size_t n, size_t size)
{
    /* capacity doubles at powers of two, so n alone says when to grow */
    if (n && (n & (n - 1)))
        return 0;
    void *p = realloc(*arr, (n ? n * 2 : 4) * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    return 0;
}

/* Canonical text of an IP address; 0 or -EINVAL. */
static int canon_ip(const char *text, char *out, size_t outlen)
{
    unsigned char buf[16];

    if (inet_pton(AF_INET, text, buf) == 1)
        return inet_ntop(AF_INET, buf, out, (socklen_t)outlen) ? 0 : -EINVAL;
    if (inet_pton(AF_INET6, text, buf) == 1)
        return inet_ntop(AF_INET6, buf, out, (socklen_t)outlen) ? 0 : -EINVAL;
    return -EINVAL;
}

/* One key segment: non-empty, no '/', printable. */
static bool good_segment(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || (unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Split rest into exactly n '/'-separated good segments (copied into
 * seg[i], each at most 255 bytes). */
static bool split_segments(const char *rest, size_t n, char seg[][256])
{
    const char *p = rest;

    for (size_t i = 0; i < n; i++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if ((i + 1 < n) != (slash != NULL) || !good_segment(p, len) || len > 255)
            return false;
        memcpy(seg[i], p, len);
        seg[i][len] = '\0';
        p = slash ? slash + 1 : p + len;
    }
    return true;
}

static char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? strdup(s) : NULL;
}

/* ---- maintenance values ------------------------------------------------- */

int ctl_target_from_id(const char *id, struct ctl_target *out)
{
    char seg[2][256];

    memset(out, 0, sizeof(*out));
    if (!strncmp(id, "node/", 5) && split_segments(id + 5, 2, seg)) {
        out->kind = CTL_TARGET_NODE;
        snprintf(out->a, sizeof(out->a), "%s", seg[0]);
        snprintf(out->b, sizeof(out->b), "%s", seg[1]);
    } else if (!strncmp(id, "server/", 7) && split_segments(id + 7, 2, seg)) {
        out->kind = CTL_TARGET_SERVER;
        snprintf(out->a, sizeof(out->a), "%s", seg[0]);
        snprintf(out->b, sizeof(out->b), "%s", seg[1]);
    } else if (!strncmp(id, "addr/", 5) && split_segments(id + 5, 1, seg) &&
               canon_ip(seg[0], out->a, sizeof(out->a)) == 0) {
        out->kind = CTL_TARGET_ADDR;
    } else {
        return -EINVAL;
    }
    if (out->kind == CTL_TARGET_ADDR)
        snprintf(out->id, sizeof(out->id), "addr/%s", out->a);
    else
        snprintf(out->id, sizeof(out->id), "%s/%s/%s",
                 out->kind == CTL_TARGET_NODE ? "node" : "server", out->a, out->b);
    return 0;
}

int ctl_maint_parse(const char *id, const char *value, size_t len, struct ctl_maint *e, char *err,
                    size_t errlen)
{
    struct ctl_target t;
    json_error_t je;
    json_t *v = NULL, *w;
    const char *state;
    int rc = -EINVAL;

    memset(e, 0, sizeof(*e));
    e->weight = -1;
    if (ctl_target_from_id(id, &t) < 0) {
        errmsg_set(err, errlen, "maintenance/%s: not a node/, addr/ or server/ key", id);
        return -EINVAL;
    }
    if (!value || !(v = json_loadb(value, len, JSON_REJECT_DUPLICATES, &je)) ||
        !json_is_object(v)) {
        errmsg_set(err, errlen, "maintenance/%s: value is not a JSON object%s%s", id, v ? "" : ": ",
                   v ? "" : (value ? je.text : "empty"));
        goto out;
    }
    state = json_string_value(json_object_get(v, "state"));
    if (!state || (strcmp(state, "ready") && strcmp(state, "drain") && strcmp(state, "maint"))) {
        errmsg_set(err, errlen, "maintenance/%s: state must be ready, drain or maint", id);
        goto out;
    }
    e->state = !strcmp(state, "drain")   ? CTL_STATE_DRAIN
               : !strcmp(state, "maint") ? CTL_STATE_MAINT
                                         : CTL_STATE_READY;
    if ((w = json_object_get(v, "weight"))) {
        if (!json_is_integer(w) || json_integer_value(w) < 0 || json_integer_value(w) > 256) {
            errmsg_set(err, errlen, "maintenance/%s: weight must be an integer 0..256", id);
            goto out;
        }
        e->weight = (int)json_integer_value(w);
    }
    e->expires = jstr(v, "expires");
    if (e->expires && timefmt_parse_rfc3339(e->expires, &e->expires_unix) < 0) {
        errmsg_set(err, errlen, "maintenance/%s: bad expires '%.40s'", id, e->expires);
        goto out;
    }
    e->id = strdup(t.id);
    e->kind = t.kind;
    e->a = strdup(t.a);
    e->b = t.kind == CTL_TARGET_ADDR ? NULL : strdup(t.b);
    e->reason = jstr(v, "reason");
    e->author = jstr(v, "author");
    e->created = jstr(v, "created");
    e->value = v;
    v = NULL;
    rc = (!e->id || !e->a || (t.kind != CTL_TARGET_ADDR && !e->b)) ? -ENOMEM : 0;
out:
    json_decref(v);
    if (rc < 0)
        ctl_maint_clear(e);
    return rc;
}

/* ---- adding entries --------------------------------------------------------- */

static int add_node(struct ctl_model *m, const char *cluster, const char *name, const json_t *v,
                    char *err, size_t errlen, const char *key)
{
    struct ctl_node n = {0};
    const json_t *addrs = json_object_get(v, "addresses");
    const char *addr = json_string_value(json_object_get(v, "address"));
    char ip[64];
    size_t i;
    json_t *a;
    int rc = -EINVAL;

    if (grow((void **)&m->nodes, m->n_nodes, sizeof(*m->nodes)) < 0)
        return -ENOMEM;
    n.cluster = strdup(cluster);
    n.name = strdup(name);
    n.eligible = json_is_true(json_object_get(v, "eligible"));
    if (addr) {
        if (canon_ip(addr, ip, sizeof(ip)) < 0) {
            errmsg_set(err, errlen, "%s: address '%.60s' is not an IP address", key, addr);
            goto bad;
        }
        n.address = strdup(ip);
    }
    if (json_is_array(addrs)) {
        n.addresses = calloc(json_array_size(addrs) + 1, sizeof(char *));
        if (!n.addresses)
            goto nomem;
        json_array_foreach(addrs, i, a)
        {
            const char *s = json_string_value(a);
            if (!s || canon_ip(s, ip, sizeof(ip)) < 0) {
                errmsg_set(err, errlen, "%s: addresses[%zu] is not an IP address", key, i);
                goto bad;
            }
            if (!(n.addresses[n.n_addresses] = strdup(ip)))
                goto nomem;
            n.n_addresses++;
        }
    }
    if (!n.address && n.n_addresses && !(n.address = strdup(n.addresses[0])))
        goto nomem;
    if (!n.cluster || !n.name || (addr && !n.address))
        goto nomem;
    m->nodes[m->n_nodes++] = n;
    return 1;
nomem:
    errmsg_set(err, errlen, "%s: out of memory", key);
    rc = -ENOMEM;
bad:
    free(n.cluster);
    free(n.name);
    free(n.address);
    for (i = 0; i < n.n_addresses; i++)
        free(n.addresses[i]);
    free(n.addresses);
    return rc;
}

static int add_backends(struct ctl_model *m, const char *service, const json_t *v, char *err,
                        size_t errlen, const char *key)
{
    const json_t *bes = json_object_get(v, "backends");
    size_t i, k;
    json_t *be, *x;

    if (!json_is_array(bes)) {
        errmsg_set(err, errlen, "%s: backends must be an array", key);
        return -EINVAL;
    }
    /* validate everything before adding anything: a bad service adds no backend */
    json_array_foreach(bes, i, be)
    {
        if (!json_string_value(json_object_get(be, "name"))) {
            errmsg_set(err, errlen, "%s: backends[%zu].name missing", key, i);
            return -EINVAL;
        }
        json_array_foreach(json_object_get(be, "servers"), k, x)
        {
            const char *a = json_string_value(json_object_get(x, "address"));
            char ip[64];
            if (!json_string_value(json_object_get(x, "name")) || !a ||
                canon_ip(a, ip, sizeof(ip)) < 0) {
                errmsg_set(err, errlen,
                           "%s: backends[%zu].servers[%zu] needs a name and an IP address", key, i,
                           k);
                return -EINVAL;
            }
        }
    }
    json_array_foreach(bes, i, be)
    {
        struct ctl_backend b = {0};
        const json_t *kube = json_object_get(be, "kube"), *srv = json_object_get(be, "servers");
        const json_t *slots = json_object_get(be, "slots");

        if (grow((void **)&m->backends, m->n_backends, sizeof(*m->backends)) < 0)
            return -ENOMEM;
        b.service = strdup(service);
        b.name = jstr(be, "name");
        b.slots = json_is_integer(slots) ? json_integer_value(slots) : SLOTS_DEFAULT;
        b.kube = calloc(json_array_size(kube) + 1, sizeof(*b.kube));
        b.servers = calloc(json_array_size(srv) + 1, sizeof(*b.servers));
        m->backends[m->n_backends++] = b; /* owned by the model from here */
        struct ctl_backend *bp = &m->backends[m->n_backends - 1];
        if (!bp->service || !bp->name || !bp->kube || !bp->servers)
            return -ENOMEM;
        json_array_foreach(kube, k, x)
        {
            struct ctl_kube_ref *r = &bp->kube[bp->n_kube];
            r->cluster = jstr(x, "cluster");
            r->ns = jstr(x, "namespace");
            r->svc = jstr(x, "service");
            r->port = jstr(x, "port");
            bp->n_kube++;
        }
        json_array_foreach(srv, k, x)
        {
            struct ctl_static *s = &bp->servers[bp->n_servers++];
            char ip[64];
            canon_ip(json_string_value(json_object_get(x, "address")), ip, sizeof(ip));
            s->name = jstr(x, "name");
            s->address = strdup(ip);
            s->port = (int)json_integer_value(json_object_get(x, "port"));
        }
    }
    return 1;
}

static int add_port(struct ctl_model *m, char seg[][256], const json_t *v, char *err, size_t errlen,
                    const char *key)
{
    const json_t *np = json_object_get(v, "node_port");
    struct ctl_kube_port p;

    if (!json_is_integer(np) || json_integer_value(np) < 1 || json_integer_value(np) > 65535) {
        errmsg_set(err, errlen, "%s: node_port must be an integer 1..65535", key);
        return -EINVAL;
    }
    if (grow((void **)&m->ports, m->n_ports, sizeof(*m->ports)) < 0)
        return -ENOMEM;
    p.cluster = strdup(seg[0]);
    p.ns = strdup(seg[1]);
    p.svc = strdup(seg[2]);
    p.port = strdup(seg[3]);
    p.node_port = (int)json_integer_value(np);
    m->ports[m->n_ports++] = p;
    return p.cluster && p.ns && p.svc && p.port ? 1 : -ENOMEM;
}

int ctl_model_add(struct ctl_model *m, const char *root, const char *haproxy_cluster,
                  const char *key, const char *value, size_t len, uint64_t modify_index, char *err,
                  size_t errlen)
{
    size_t rl = strlen(root);
    const char *rest;
    char seg[4][256];
    json_t *v = NULL;
    json_error_t je;
    int rc = 0;

    if (strncmp(key, root, rl) != 0)
        return 0;
    rest = key + rl;
    if (!strncmp(rest, "maintenance/", 12)) {
        struct ctl_maint e;
        if ((rc = ctl_maint_parse(rest + 12, value, len, &e, err, errlen)) < 0) {
            m->bad++;
            return rc;
        }
        if (grow((void **)&m->maint, m->n_maint, sizeof(*m->maint)) < 0) {
            ctl_maint_clear(&e);
            return -ENOMEM;
        }
        e.modify_index = modify_index;
        m->maint[m->n_maint++] = e;
        return 1;
    }
    bool is_node = !strncmp(rest, "kube/", 5) && strstr(rest + 5, "/nodes/");
    bool is_port = !strncmp(rest, "kube/", 5) && strstr(rest + 5, "/services/");
    bool is_svc = !strncmp(rest, "haproxy/", 8) && strstr(rest + 8, "/services/");
    if (!is_node && !is_port && !is_svc)
        return 0;
    if (is_node) {
        char c[3][256];
        if (!split_segments(rest + 5, 3, c) || strcmp(c[1], "nodes"))
            return 0;
        if (!value || !(v = json_loadb(value, len, 0, &je)) || !json_is_object(v)) {
            errmsg_set(err, errlen, "%s: value is not a JSON object", key);
            rc = -EINVAL;
        } else {
            rc = add_node(m, c[0], c[2], v, err, errlen, key);
        }
    } else if (is_port) {
        char c[5][256];
        if (!split_segments(rest + 5, 5, c) || strcmp(c[1], "services"))
            return 0;
        memcpy(seg[0], c[0], 256);
        memcpy(seg[1], c[2], 256);
        memcpy(seg[2], c[3], 256);
        memcpy(seg[3], c[4], 256);
        if (!value || !(v = json_loadb(value, len, 0, &je)) || !json_is_object(v)) {
            errmsg_set(err, errlen, "%s: value is not a JSON object", key);
            rc = -EINVAL;
        } else {
            rc = add_port(m, seg, v, err, errlen, key);
        }
    } else {
        char c[3][256];
        if (!split_segments(rest + 8, 3, c) || strcmp(c[1], "services"))
            return 0;
        if (haproxy_cluster && *haproxy_cluster && strcmp(c[0], haproxy_cluster))
            return 0;
        if (!value || !(v = json_loadb(value, len, 0, &je)) || !json_is_object(v)) {
            errmsg_set(err, errlen, "%s: value is not a JSON object", key);
            rc = -EINVAL;
        } else {
            rc = add_backends(m, c[2], v, err, errlen, key);
        }
    }
    json_decref(v);
    if (rc == -EINVAL)
        m->bad++;
    return rc;
}

/* ---- lookups ------------------------------------------------------------------ */

const struct ctl_maint *ctl_model_maint(const struct ctl_model *m, const char *id)
{
    for (size_t i = 0; i < m->n_maint; i++)
        if (!strcmp(m->maint[i].id, id))
            return &m->maint[i];
    return NULL;
}

static const struct ctl_node *find_node(const struct ctl_model *m, const char *c, const char *n)
{
    for (size_t i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].cluster, c) && !strcmp(m->nodes[i].name, n))
            return &m->nodes[i];
    return NULL;
}

static const struct ctl_kube_port *find_port(const struct ctl_model *m,
                                             const struct ctl_kube_ref *r)
{
    if (!r->cluster || !r->ns || !r->svc || !r->port)
        return NULL;
    for (size_t i = 0; i < m->n_ports; i++) {
        const struct ctl_kube_port *p = &m->ports[i];
        if (!strcmp(p->cluster, r->cluster) && !strcmp(p->ns, r->ns) && !strcmp(p->svc, r->svc) &&
            !strcmp(p->port, r->port))
            return p;
    }
    return NULL;
}

struct server_ref;
typedef void (*server_fn)(void *arg, const struct ctl_backend *be, const struct server_ref *s);
static void for_each_server(const struct ctl_model *m, const struct ctl_backend *be, server_fn fn,
                            void *arg);

static void count_server(void *arg, const struct ctl_backend *be, const struct server_ref *s)
{
    (void)be;
    (void)s;
    (*(size_t *)arg)++;
}

/* Is name one of be's HAProxy server slots? The watcher renders them as
 * "slot1".."slotN" (watcher/slots.h), N = the backend's "slots", grown
 * when the backend has more servers than that. */
static bool is_slot(const struct ctl_model *m, const struct ctl_backend *be, const char *name)
{
    size_t servers = 0;
    char *end;

    if (strncmp(name, "slot", 4) || name[4] < '1' || name[4] > '9')
        return false;
    errno = 0;
    long k = strtol(name + 4, &end, 10);
    if (*end || errno)
        return false;
    for_each_server(m, be, count_server, &servers);
    int64_t limit = be->slots > 0 ? be->slots : SLOTS_DEFAULT;
    if ((int64_t)servers > limit)
        limit = (int64_t)servers;
    return k >= 1 && k <= limit;
}

static bool node_has_addr(const struct ctl_node *n, const char *ip)
{
    if (n->address && !strcmp(n->address, ip))
        return true;
    for (size_t k = 0; k < n->n_addresses; k++)
        if (!strcmp(n->addresses[k], ip))
            return true;
    return false;
}

int ctl_model_resolve(const struct ctl_model *m, const char *text, char *const *clusters, size_t n,
                      struct ctl_target *out, char *err, size_t errlen)
{
    char ip[64];
    const char *slash = strchr(text, '/');
    size_t slashes = 0;

    memset(out, 0, sizeof(*out));
    for (const char *p = text; *p; p++)
        slashes += *p == '/';
    if (!*text || strlen(text) > 500) {
        errmsg_set(err, errlen, "refused: target '%.60s' is empty or too long", text);
        return -EINVAL;
    }
    /* an IP address, bare or addr/<ip> */
    if (canon_ip(text, ip, sizeof(ip)) == 0 ||
        (!strncmp(text, "addr/", 5) && canon_ip(text + 5, ip, sizeof(ip)) == 0)) {
        bool known = false;
        for (size_t i = 0; i < m->n_nodes && !known; i++)
            known = node_has_addr(&m->nodes[i], ip);
        for (size_t i = 0; i < m->n_backends && !known; i++)
            for (size_t k = 0; k < m->backends[i].n_servers && !known; k++)
                known = !strcmp(m->backends[i].servers[k].address, ip);
        if (!known) {
            errmsg_set(err, errlen,
                       "refused: unknown target addr/%s: no kube node and no static server "
                       "has that address",
                       ip);
            return -ENOENT;
        }
        out->kind = CTL_TARGET_ADDR;
        snprintf(out->a, sizeof(out->a), "%s", ip);
        snprintf(out->id, sizeof(out->id), "addr/%s", ip);
        return 0;
    }
    if (!strncmp(text, "addr/", 5)) {
        errmsg_set(err, errlen, "refused: '%s' is not addr/<IP address>", text);
        return -EINVAL;
    }
    if (!strncmp(text, "node/", 5)) {
        if (ctl_target_from_id(text, out) < 0) {
            errmsg_set(err, errlen, "refused: '%s' is not node/<cluster>/<node>", text);
            return -EINVAL;
        }
        if (!find_node(m, out->a, out->b)) {
            errmsg_set(err, errlen, "refused: unknown target %s: no kube/%s/nodes/%s in KV",
                       out->id, out->a, out->b);
            return -ENOENT;
        }
        return 0;
    }
    if (!strncmp(text, "server/", 7) || (slash && slashes == 1)) {
        char id[600];
        if (strncmp(text, "server/", 7))
            snprintf(id, sizeof(id), "server/%s", text);
        else
            snprintf(id, sizeof(id), "%s", text);
        if (ctl_target_from_id(id, out) < 0) {
            errmsg_set(err, errlen, "refused: '%s' is not <backend>/<server>", text);
            return -EINVAL;
        }
        const struct ctl_backend *be = NULL;
        bool found_server = false;
        for (size_t i = 0; i < m->n_backends; i++) {
            const struct ctl_backend *b = &m->backends[i];
            if (strcmp(b->name, out->a))
                continue;
            be = b;
            for (size_t k = 0; k < b->n_servers && !found_server; k++)
                found_server = !strcmp(b->servers[k].name, out->b);
            found_server = found_server || is_slot(m, b, out->b);
        }
        if (!be) {
            errmsg_set(err, errlen,
                       "refused: unknown target %s: no backend '%s' in the HAProxy service "
                       "definitions",
                       out->id, out->a);
            return -ENOENT;
        }
        if (!found_server) {
            errmsg_set(err, errlen,
                       "refused: unknown target %s: backend %s has no static server '%s' and "
                       "no slot of that name (slot1..slotN)",
                       out->id, out->a, out->b);
            return -ENOENT;
        }
        return 0;
    }
    if (slash) {
        errmsg_set(err, errlen,
                   "refused: cannot read target '%s' (node/<cluster>/<node>, <node>, "
                   "addr/<ip>, <ip>, <backend>/<server> or server/<backend>/<server>)",
                   text);
        return -EINVAL;
    }
    /* a bare kube node name */
    const struct ctl_node *hit[8];
    size_t nhit = 0, total = 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const struct ctl_node *nd = &m->nodes[i];
        bool in = n == 0;
        for (size_t k = 0; k < n && !in; k++)
            in = !strcmp(clusters[k], nd->cluster);
        if (!in || strcmp(nd->name, text))
            continue;
        if (nhit < 8)
            hit[nhit++] = nd;
        total++;
    }
    if (total == 0) {
        errmsg_set(err, errlen,
                   "refused: unknown target '%s': no kube node of that name in %s, and it is "
                   "not an IP address or <backend>/<server>",
                   text, n ? "the configured clusters (--cluster)" : "any cluster in KV");
        return -ENOENT;
    }
    if (total > 1) {
        char list[400] = "";
        for (size_t i = 0; i < nhit; i++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%snode/%s/%s", i ? ", " : "", hit[i]->cluster,
                     hit[i]->name);
        }
        errmsg_set(err, errlen, "refused: ambiguous target '%s' matches %zu nodes: %s%s", text,
                   total, list, total > nhit ? ", ..." : "");
        return -EEXIST;
    }
    out->kind = CTL_TARGET_NODE;
    snprintf(out->a, sizeof(out->a), "%s", hit[0]->cluster);
    snprintf(out->b, sizeof(out->b), "%s", hit[0]->name);
    snprintf(out->id, sizeof(out->id), "node/%s/%s", out->a, out->b);
    return 0;
}

/* ---- servers and shares --------------------------------------------------------- */

struct server_ref {
    const char *static_name;     /* NULL for kube servers */
    const struct ctl_node *node; /* kube servers */
    const char *address;
    int port;
};

static const struct ctl_maint *entry_for(const struct ctl_model *m, const char *id,
                                         const struct ctl_override *ov)
{
    const struct ctl_maint *e;

    if (ov && !strcmp(ov->id, id))
        e = ov->entry;
    else
        e = ctl_model_maint(m, id);
    return e && !ctl_maint_expired(e, m->now) ? e : NULL;
}

static bool entry_out(const struct ctl_maint *e)
{
    return e && (e->state != CTL_STATE_READY || e->weight == 0);
}

/* Effective entry of one server: server > addr > node. */
static const struct ctl_maint *effective(const struct ctl_model *m, const struct ctl_backend *be,
                                         const struct server_ref *s, const struct ctl_override *ov)
{
    char id[600];
    const struct ctl_maint *e;

    if (s->static_name) {
        snprintf(id, sizeof(id), "server/%s/%s", be->name, s->static_name);
        if ((e = entry_for(m, id, ov)))
            return e;
    }
    snprintf(id, sizeof(id), "addr/%s", s->address);
    if ((e = entry_for(m, id, ov)))
        return e;
    if (s->node) {
        snprintf(id, sizeof(id), "node/%s/%s", s->node->cluster, s->node->name);
        if ((e = entry_for(m, id, ov)))
            return e;
    }
    return NULL;
}

static void for_each_server(const struct ctl_model *m, const struct ctl_backend *be, server_fn fn,
                            void *arg)
{
    for (size_t k = 0; k < be->n_servers; k++) {
        struct server_ref s = {.static_name = be->servers[k].name,
                               .address = be->servers[k].address,
                               .port = be->servers[k].port};
        fn(arg, be, &s);
    }
    for (size_t r = 0; r < be->n_kube; r++) {
        const struct ctl_kube_port *p = find_port(m, &be->kube[r]);
        if (!p)
            continue; /* the watcher builds no server for a missing kube service either */
        for (size_t i = 0; i < m->n_nodes; i++) {
            const struct ctl_node *nd = &m->nodes[i];
            if (!nd->eligible || !nd->address || strcmp(nd->cluster, p->cluster))
                continue;
            struct server_ref s = {.node = nd, .address = nd->address, .port = p->node_port};
            fn(arg, be, &s);
        }
    }
}

struct count_ctx {
    const struct ctl_model *m;
    const struct ctl_override *ov;
    size_t total, before, after;
};

static void count_one(void *arg, const struct ctl_backend *be, const struct server_ref *s)
{
    struct count_ctx *c = arg;
    c->total++;
    c->before += entry_out(effective(c->m, be, s, NULL));
    c->after += entry_out(effective(c->m, be, s, c->ov));
}

/* server/<be>/<slot> entries: the slot-to-node mapping is the watcher's,
 * so each such entry counts as one more server out of service. */
static size_t slot_outs(const struct ctl_model *m, const struct ctl_backend *be,
                        const struct ctl_override *ov)
{
    size_t n = 0;
    char id[600];

    for (size_t i = 0; i < m->n_maint; i++) {
        const struct ctl_maint *e = &m->maint[i];
        if (e->kind == CTL_TARGET_SERVER && !strcmp(e->a, be->name) && is_slot(m, be, e->b) &&
            !(ov && !strcmp(ov->id, e->id)))
            n += entry_out(entry_for(m, e->id, NULL));
    }
    if (ov && ov->entry && ov->entry->kind == CTL_TARGET_SERVER &&
        !strcmp(ov->entry->a, be->name) && is_slot(m, be, ov->entry->b)) {
        snprintf(id, sizeof(id), "%s", ov->id);
        n += entry_out(entry_for(m, id, ov));
    }
    return n;
}

void ctl_model_backend_share(const struct ctl_model *m, const struct ctl_backend *be,
                             const struct ctl_override *ov, struct ctl_share *out)
{
    struct count_ctx c = {.m = m, .ov = ov};

    for_each_server(m, be, count_one, &c);
    c.before += slot_outs(m, be, NULL);
    c.after += slot_outs(m, be, ov);
    out->backend = be->name;
    out->total = c.total;
    out->out_before = c.before < c.total ? c.before : c.total;
    out->out_after = c.after < c.total ? c.after : c.total;
}

int ctl_model_check_share(const struct ctl_model *m, const struct ctl_override *ov,
                          double max_share, struct ctl_share *worst)
{
    int found = 0;
    double worst_share = -1;

    for (size_t i = 0; i < m->n_backends; i++) {
        struct ctl_share s;
        ctl_model_backend_share(m, &m->backends[i], ov, &s);
        if (!s.total || s.out_after <= s.out_before)
            continue;
        double share = (double)s.out_after / (double)s.total;
        if (share > max_share && share > worst_share) {
            *worst = s;
            worst_share = share;
            found = 1;
        }
    }
    return found;
}

struct affect_ctx {
    const struct ctl_target *t;
    ctl_affect_fn fn;
    void *arg;
};

static void affect_one(void *arg, const struct ctl_backend *be, const struct server_ref *s)
{
    struct affect_ctx *a = arg;
    const struct ctl_target *t = a->t;
    char desc[400];
    bool hit = false;

    switch (t->kind) {
    case CTL_TARGET_NODE:
        hit = s->node && !strcmp(s->node->cluster, t->a) && !strcmp(s->node->name, t->b);
        break;
    case CTL_TARGET_ADDR:
        hit = !strcmp(s->address, t->a);
        break;
    case CTL_TARGET_SERVER:
        hit = s->static_name && !strcmp(be->name, t->a) && !strcmp(s->static_name, t->b);
        break;
    }
    if (!hit)
        return;
    bool v6 = strchr(s->address, ':') != NULL;
    snprintf(desc, sizeof(desc), "%s %s%s%s:%d", s->static_name ? s->static_name : s->node->name,
             v6 ? "[" : "", s->address, v6 ? "]" : "", s->port);
    a->fn(a->arg, be->name, desc);
}

void ctl_model_affected(const struct ctl_model *m, const struct ctl_target *t, ctl_affect_fn fn,
                        void *arg)
{
    struct affect_ctx a = {.t = t, .fn = fn, .arg = arg};

    for (size_t i = 0; i < m->n_backends; i++) {
        const struct ctl_backend *be = &m->backends[i];
        if (t->kind == CTL_TARGET_SERVER && !strcmp(be->name, t->a) && is_slot(m, be, t->b)) {
            fn(arg, be->name, t->b);
            continue;
        }
        for_each_server(m, be, affect_one, &a);
    }
}
