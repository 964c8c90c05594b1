/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_objects: Service -> export records, Node -> node record, and the
 * NotReady grace period. See kube_objects.h.
 */
#include "kube_objects.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_value.h"

/* custom-attrs larger than this are refused: Consul values are capped at
 * 512 KiB and a record must stay small. */
#define CUSTOM_ATTRS_MAX (64 * 1024)

static void reason_set(struct kube_reason *why, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reason_set(struct kube_reason *why, const char *reason, const char *fmt, ...)
{
    if (!why)
        return;
    snprintf(why->reason, sizeof(why->reason), "%s", reason);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof(why->message), fmt, ap);
    va_end(ap);
}

static const char *obj_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- annotations -------------------------------------------------------- */

/* One setting, readable through drover's and kube-service-exporter's
 * annotation; `kse` NULL when KSE has no equivalent. */
struct ann_def {
    const char *drover;
    const char *kse;
};

static const struct ann_def ANN_EXPORTED = {"drover.io/exported", KUBE_ANN_KSE_PREFIX "exported"};
static const struct ann_def ANN_CLASS = {"drover.io/load-balancer-class",
                                         KUBE_ANN_KSE_PREFIX "load-balancer-class"};
static const struct ann_def ANN_BACKEND = {"drover.io/backend-protocol",
                                           KUBE_ANN_KSE_PREFIX "load-balancer-backend-protocol"};
static const struct ann_def ANN_PROXY = {"drover.io/proxy-protocol",
                                         KUBE_ANN_KSE_PREFIX "load-balancer-proxy-protocol"};
static const struct ann_def ANN_HC_PATH = {"drover.io/health-check-path",
                                           KUBE_ANN_KSE_PREFIX "load-balancer-health-check-path"};
static const struct ann_def ANN_HC_PORT = {"drover.io/health-check-port",
                                           KUBE_ANN_KSE_PREFIX "load-balancer-health-check-port"};
static const struct ann_def ANN_DNS = {"drover.io/dns-name",
                                       KUBE_ANN_KSE_PREFIX "load-balancer-dns-name"};
static const struct ann_def ANN_ATTRS = {"drover.io/custom-attrs",
                                         KUBE_ANN_KSE_PREFIX "custom-attrs"};
static const struct ann_def ANN_LISTEN = {"drover.io/listen-port",
                                          KUBE_ANN_KSE_PREFIX "load-balancer-listen-port"};
static const struct ann_def ANN_PER_CLUSTER = {NULL, KUBE_ANN_KSE_PREFIX
                                               "load-balancer-service-per-cluster"};
static const struct ann_def ANN_ID_PREFIX = {NULL, KUBE_ANN_KSE_PREFIX "id-prefix"};

struct ann_ctx {
    const json_t *anns; /* metadata.annotations or NULL */
    const char *ns, *name;
    struct kube_reason *why;
};

/* The winning annotation of a setting: drover's, else KSE's. Returns its
 * value (NULL when neither is set) and its name in *used. -EINVAL (with
 * a reason) when the value is not a plain string. */
static int ann_get(struct ann_ctx *c, const struct ann_def *d, const char **value,
                   const char **used)
{
    const char *names[2] = {d->drover, d->kse};
    *value = NULL;
    *used = NULL;
    for (int i = 0; i < 2; i++) {
        if (!names[i] || !c->anns)
            continue;
        json_t *v = json_object_get(c->anns, names[i]);
        if (!v)
            continue;
        *used = names[i];
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            reason_set(c->why, "InvalidAnnotation",
                       "Service %s/%s: annotation %s is not a plain string; the Service is not "
                       "exported",
                       c->ns, c->name, names[i]);
            return -EINVAL;
        }
        *value = json_string_value(v);
        return 0;
    }
    return 0;
}

static int ann_invalid(struct ann_ctx *c, const char *used, const char *value, const char *expect)
{
    reason_set(c->why, "InvalidAnnotation",
               "Service %s/%s: annotation %s=\"%.128s\" is invalid (%s); the Service is not "
               "exported",
               c->ns, c->name, used, value, expect);
    return -EINVAL;
}

/* Go's strconv.ParseBool, which kube-service-exporter uses. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int parse_port(const char *s, int *out)
{
    if (!*s || strlen(s) > 5)
        return -EINVAL;
    int v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > 65535)
        return -EINVAL;
    *out = v;
    return 0;
}

/* ---- Kubernetes' own name rules ---- */

static bool dns_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? of exactly len bytes. */
static bool dns1123_part(const char *s, size_t len)
{
    if (len == 0 || !dns_alnum(s[0]) || !dns_alnum(s[len - 1]))
        return false;
    for (size_t i = 1; i + 1 < len; i++)
        if (!dns_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool kube_name_is_dns1123_label(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    return len <= 63 && dns1123_part(s, len);
}

bool kube_name_is_dns1123_subdomain(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > 253)
        return false;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!dns1123_part(p, n))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

/* RFC 1123 host name, optionally a leading "*." wildcard and a trailing dot. */
static bool valid_dns_name(const char *s)
{
    size_t len = strlen(s);
    if (len && s[len - 1] == '.')
        len--;
    if (len > 2 && s[0] == '*' && s[1] == '.') {
        s += 2;
        len -= 2;
    }
    return label_dns_subdomain_valid(s, len, true);
}

/* A load-balancer class is a name HAProxy templates key on; KSE id
 * prefixes follow the same rule (they become part of a key segment). */
static bool valid_class(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 63 || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static bool valid_backend_protocol(const char *s)
{
    static const char *const ok[] = {"http", "https", "h2", "h2c", "tcp", "tls"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(s, ok[i]) == 0)
            return true;
    return false;
}

/* An absolute URL path (with optional query) HAProxy can put on an
 * httpchk line: RFC 3986 path/query characters without quotes or '$',
 * '%' only as a %XX escape. The watcher applies the same rule when it
 * renders the check, so a path accepted here is never refused there. */
static bool valid_path(const char *s)
{
    size_t len = strlen(s);
    if (s[0] != '/' || len > 1024)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2]))
                return false;
            i += 2;
        } else if (!isalnum(c) && !strchr("-._~!&()*+,;=:@/?", c)) {
            return false;
        }
    }
    return true;
}

/* Service-wide settings from annotations, validated once for all ports. */
struct svc_settings {
    bool have_hc_port;
    int hc_port;
    const char *hc_path;
    const char *class_;
    const char *backend;
    bool proxy_protocol;
    const char *dns_name;
    int listen_port;
    bool per_cluster;
    const char *id_prefix;
    json_t *custom_attrs; /* owned */
};

/* The opt-in decision alone: Services that are not exported are not
 * validated further (their other annotations are not our business). */
static int read_exported(struct ann_ctx *c, const struct export_options *opt, bool *exported)
{
    const char *v, *used;
    int rc = ann_get(c, &ANN_EXPORTED, &v, &used);
    if (rc)
        return rc;
    *exported = opt->export_by_default;
    if (v && parse_bool(v, exported) < 0)
        return ann_invalid(c, used, v, "expected true or false");
    return 0;
}

static int read_settings(struct ann_ctx *c, struct svc_settings *st)
{
    const char *v, *used;
    int rc;

    memset(st, 0, sizeof(*st));
    st->per_cluster = true; /* kube-service-exporter's default */

    if ((rc = ann_get(c, &ANN_CLASS, &v, &used)))
        return rc;
    if (v && !valid_class(v))
        return ann_invalid(c, used, v, "expected 1-63 characters of [A-Za-z0-9._-]");
    st->class_ = v;

    if ((rc = ann_get(c, &ANN_BACKEND, &v, &used)))
        return rc;
    if (v && !valid_backend_protocol(v))
        return ann_invalid(c, used, v, "expected http, https, h2, h2c, tcp or tls");
    st->backend = v;

    if ((rc = ann_get(c, &ANN_PROXY, &v, &used)))
        return rc;
    if (v) {
        /* kube-service-exporter enables it with "*" (all backends) */
        if (strcmp(v, "*") == 0)
            st->proxy_protocol = true;
        else if (parse_bool(v, &st->proxy_protocol) < 0)
            return ann_invalid(c, used, v, "expected true, false or \"*\"");
    }

    if ((rc = ann_get(c, &ANN_HC_PATH, &v, &used)))
        return rc;
    if (v && !valid_path(v))
        return ann_invalid(c, used, v,
                           "expected a URL path starting with '/' (RFC 3986 characters, "
                           "'%' only as %XX)");
    st->hc_path = v;

    if ((rc = ann_get(c, &ANN_HC_PORT, &v, &used)))
        return rc;
    if (v) {
        if (parse_port(v, &st->hc_port) < 0)
            return ann_invalid(c, used, v, "expected a port number 1-65535");
        st->have_hc_port = true;
    }

    if ((rc = ann_get(c, &ANN_DNS, &v, &used)))
        return rc;
    if (v && !valid_dns_name(v))
        return ann_invalid(c, used, v, "expected a DNS name (RFC 1123)");
    st->dns_name = v;

    if ((rc = ann_get(c, &ANN_LISTEN, &v, &used)))
        return rc;
    if (v && parse_port(v, &st->listen_port) < 0)
        return ann_invalid(c, used, v, "expected a port number 1-65535");

    if ((rc = ann_get(c, &ANN_PER_CLUSTER, &v, &used)))
        return rc;
    if (v && parse_bool(v, &st->per_cluster) < 0)
        return ann_invalid(c, used, v, "expected true or false");

    if ((rc = ann_get(c, &ANN_ID_PREFIX, &v, &used)))
        return rc;
    if (v && !valid_class(v))
        return ann_invalid(c, used, v, "expected 1-63 characters of [A-Za-z0-9._-]");
    st->id_prefix = v;

    if ((rc = ann_get(c, &ANN_ATTRS, &v, &used)))
        return rc;
    if (v) {
        json_error_t jerr;
        if (strlen(v) > CUSTOM_ATTRS_MAX)
            return ann_invalid(c, used, v, "larger than 64 KiB");
        st->custom_attrs = json_loads(v, JSON_REJECT_DUPLICATES, &jerr);
        if (!st->custom_attrs)
            return ann_invalid(c, used, v, "not valid JSON");
        if (!json_is_object(st->custom_attrs)) {
            json_decref(st->custom_attrs);
            st->custom_attrs = NULL;
            return ann_invalid(c, used, v, "expected a JSON object");
        }
    } else {
        st->custom_attrs = json_object();
        if (!st->custom_attrs)
            return -ENOMEM;
    }
    return 0;
}

/* ---- services ----------------------------------------------------------- */

void export_record_clear(struct export_record *r)
{
    if (!r)
        return;
    free(r->cluster);
    free(r->namespace);
    free(r->service);
    free(r->port_name);
    free(r->type);
    free(r->protocol);
    free(r->health_check_path);
    free(r->load_balancer_class);
    free(r->backend_protocol);
    free(r->dns_name);
    free(r->kse_id_prefix);
    json_decref(r->labels);
    json_decref(r->custom_attrs);
    memset(r, 0, sizeof(*r));
}

void export_records_free(struct export_record *recs, size_t n)
{
    if (!recs)
        return;
    for (size_t i = 0; i < n; i++)
        export_record_clear(&recs[i]);
    free(recs);
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

static json_t *select_labels(const json_t *labels, const char *const *keys, size_t n)
{
    json_t *out = json_object();
    if (!out)
        return NULL;
    for (size_t i = 0; i < n && json_is_object(labels); i++) {
        json_t *v = json_object_get(labels, keys[i]);
        if (json_is_string(v) && json_object_set(out, keys[i], v) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static struct kv_kube_service_rec record_rec(const struct export_record *r)
{
    return (struct kv_kube_service_rec){
        .cluster = r->cluster,
        .namespace = r->namespace,
        .service = r->service,
        .port_name = r->port_name,
        .type = r->type,
        .protocol = r->protocol,
        .port = r->port,
        .node_port = r->node_port,
        .health_check_port = r->health_check_port,
        .health_check_source = r->health_check_source,
        .health_check_path = r->health_check_path,
        .load_balancer_class = r->load_balancer_class,
        .backend_protocol = r->backend_protocol,
        .proxy_protocol = r->proxy_protocol,
        .dns_name = r->dns_name,
        .listen_port = r->listen_port,
        .labels = r->labels,
        .custom_attrs = r->custom_attrs,
        .hash = r->hash,
    };
}

json_t *export_record_to_json(const struct export_record *r, bool with_hash)
{
    struct kv_kube_service_rec rec = record_rec(r);
    return kv_kube_service_json(&rec, with_hash);
}

static int record_hash(struct export_record *r)
{
    struct kv_kube_service_rec rec = record_rec(r);
    return kv_kube_service_hash(&rec, r->hash);
}

static int port_num(const json_t *port, const char *key, int *out)
{
    json_t *v = json_object_get(port, key);
    if (!json_is_integer(v))
        return -ENOENT;
    json_int_t i = json_integer_value(v);
    if (i < 1 || i > 65535)
        return -ERANGE;
    *out = (int)i;
    return 0;
}

static int build_record(struct export_record *r, const struct export_options *opt, const char *ns,
                        const char *name, const char *type, const json_t *labels,
                        const struct svc_settings *st, const json_t *port, int lb_local_hc_port)
{
    char numbuf[16];
    const char *pname = obj_str(port, "name");
    const char *proto = obj_str(port, "protocol");

    if (port_num(port, "port", &r->port) < 0 || port_num(port, "nodePort", &r->node_port) < 0)
        return -EINVAL; /* checked by the caller */
    if (!pname || !pname[0]) {
        /* the service port, not the nodePort: it is the same in every cluster */
        snprintf(numbuf, sizeof(numbuf), "%d", r->port);
        pname = numbuf;
    }
    if (!proto || !proto[0])
        proto = "TCP";

    if (st->have_hc_port) {
        r->health_check_port = st->hc_port;
        r->health_check_source = "annotation";
    } else if (lb_local_hc_port) {
        r->health_check_port = lb_local_hc_port;
        r->health_check_source = "healthCheckNodePort";
    } else {
        r->health_check_port = r->node_port;
        r->health_check_source = "nodePort";
    }
    const char *path = st->hc_path;
    if (!path && !st->have_hc_port && lb_local_hc_port)
        path = KUBE_PROXY_HEALTHZ_PATH;

    r->proxy_protocol = st->proxy_protocol;
    r->listen_port = st->listen_port;
    r->kse_service_per_cluster = st->per_cluster;
    if (dup_opt(&r->cluster, opt->cluster) || dup_opt(&r->namespace, ns) ||
        dup_opt(&r->service, name) || dup_opt(&r->port_name, pname) || dup_opt(&r->type, type) ||
        dup_opt(&r->protocol, proto) || dup_opt(&r->health_check_path, path) ||
        dup_opt(&r->load_balancer_class, st->class_) ||
        dup_opt(&r->backend_protocol, st->backend) || dup_opt(&r->dns_name, st->dns_name) ||
        dup_opt(&r->kse_id_prefix, st->id_prefix))
        return -ENOMEM;
    r->labels = select_labels(labels, opt->label_keys, opt->n_label_keys);
    r->custom_attrs = json_deep_copy(st->custom_attrs);
    if (!r->labels || !r->custom_attrs)
        return -ENOMEM;
    return record_hash(r);
}

int kube_service_to_records(const json_t *svc, const struct export_options *opt,
                            struct export_record **out, size_t *n, struct kube_reason *why)
{
    struct svc_settings st = {0};
    struct export_record *recs = NULL;
    size_t nrec = 0;
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (why)
        why->reason[0] = why->message[0] = '\0';

    json_t *meta = json_is_object(svc) ? json_object_get(svc, "metadata") : NULL;
    const char *ns = json_is_object(meta) ? obj_str(meta, "namespace") : NULL;
    const char *name = json_is_object(meta) ? obj_str(meta, "name") : NULL;
    if (!ns || !name || !ns[0] || !name[0]) {
        reason_set(why, "InvalidObject",
                   "Service without metadata.namespace/metadata.name; skipping it");
        return -EINVAL;
    }
    if (!kube_name_is_dns1123_label(ns) || !kube_name_is_dns1123_label(name)) {
        /* They become KV key segments: only what Kubernetes itself allows
         * (no "%2e%2e%2f", spaces, "?&=") ever gets that far. */
        reason_set(why, "InvalidObject",
                   "Service \"%.64s/%.64s\": namespace and name must be DNS-1123 labels "
                   "(Kubernetes never makes others); skipping it",
                   ns, name);
        return -EINVAL;
    }
    if (!opt || !opt->cluster || !opt->cluster[0]) {
        reason_set(why, "InvalidObject", "Service %s/%s: no cluster name configured", ns, name);
        return -EINVAL;
    }
    json_t *spec = json_object_get(svc, "spec");
    if (!json_is_object(spec)) {
        reason_set(why, "InvalidObject", "Service %s/%s has no spec object; skipping it", ns, name);
        return -EINVAL;
    }
    const char *type = obj_str(spec, "type");
    if (!type)
        type = "ClusterIP"; /* the API server's default */

    struct ann_ctx c = {
        .anns = json_object_get(meta, "annotations"), .ns = ns, .name = name, .why = why};
    if (c.anns && !json_is_object(c.anns)) {
        reason_set(why, "InvalidObject", "Service %s/%s: metadata.annotations is not an object", ns,
                   name);
        return -EINVAL;
    }
    bool exported;
    rc = read_exported(&c, opt, &exported);
    if (rc)
        goto out;
    if (!exported) {
        reason_set(why, "NotExported", "Service %s/%s is not opted in for export", ns, name);
        goto out;
    }
    bool is_lb = strcmp(type, "LoadBalancer") == 0;
    if (!is_lb && strcmp(type, "NodePort") != 0) {
        reason_set(why, "UnsupportedType",
                   "Service %s/%s is of type %s; only NodePort and LoadBalancer are exported", ns,
                   name, type);
        goto out;
    }
    rc = read_settings(&c, &st);
    if (rc)
        goto out;

    int hc_node_port = 0;
    const char *etp = obj_str(spec, "externalTrafficPolicy");
    if (is_lb && etp && strcmp(etp, "Local") == 0) {
        int r2 = port_num(spec, "healthCheckNodePort", &hc_node_port);
        if (r2 < 0) {
            reason_set(why, "InvalidObject",
                       "Service %s/%s: LoadBalancer with externalTrafficPolicy Local but no valid "
                       "spec.healthCheckNodePort; skipping it",
                       ns, name);
            rc = -EINVAL;
            goto out;
        }
    }

    json_t *ports = json_object_get(spec, "ports");
    if (!json_is_array(ports) || json_array_size(ports) == 0) {
        reason_set(why, "InvalidObject", "Service %s/%s has no spec.ports; skipping it", ns, name);
        rc = -EINVAL;
        goto out;
    }
    size_t np = json_array_size(ports);
    recs = calloc(np, sizeof(*recs));
    if (!recs) {
        rc = -ENOMEM;
        goto out;
    }
    json_t *labels = json_object_get(meta, "labels");
    for (size_t i = 0; i < np; i++) {
        json_t *port = json_array_get(ports, i);
        int tmp;
        if (!json_is_object(port) || port_num(port, "port", &tmp) < 0) {
            reason_set(why, "InvalidObject",
                       "Service %s/%s: spec.ports[%zu] has no valid port; skipping the Service", ns,
                       name, i);
            rc = -EINVAL;
            goto out;
        }
        const char *pname = obj_str(port, "name");
        if (pname && pname[0] && !kube_name_is_dns1123_label(pname)) {
            reason_set(why, "InvalidObject",
                       "Service %s/%s: spec.ports[%zu].name \"%.64s\" is not a DNS-1123 label "
                       "(Kubernetes never makes one); skipping the Service",
                       ns, name, i, pname);
            rc = -EINVAL;
            goto out;
        }
        if (port_num(port, "nodePort", &tmp) < 0) {
            reason_set(why, "MissingNodePort",
                       "Service %s/%s: spec.ports[%zu] has no nodePort (allocateLoadBalancer"
                       "NodePorts=false?); skipping the Service",
                       ns, name, i);
            rc = -EINVAL;
            goto out;
        }
        rc = build_record(&recs[i], opt, ns, name, type, labels, &st, port, hc_node_port);
        nrec = i + 1;
        if (rc)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(recs[j].port_name, recs[i].port_name) == 0) {
                reason_set(why, "InvalidObject",
                           "Service %s/%s: two ports named \"%s\"; skipping the Service", ns, name,
                           recs[i].port_name);
                rc = -EINVAL;
                goto out;
            }
        }
    }
    *out = recs;
    *n = nrec;
    recs = NULL;
out:
    if (rc == -ENOMEM)
        reason_set(why, "InternalError", "Service %s/%s: out of memory", ns, name);
    export_records_free(recs, nrec);
    json_decref(st.custom_attrs);
    return rc;
}

/* ---- slim copies --------------------------------------------------------- */

/* dst[key] = src[key] (shared reference) for each present key. */
static int copy_keys(json_t *dst, const json_t *src, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(src, *keys);
        if (v && json_object_set(dst, *keys, v) < 0)
            return -ENOMEM;
    }
    return 0;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static json_t *slim_metadata(const json_t *meta, bool annotations)
{
    static const char *const keep[] = {"name",   "namespace", "uid", "resourceVersion",
                                       "labels", NULL};
    json_t *m = json_object();
    if (!m || copy_keys(m, meta, keep) < 0)
        goto fail;
    json_t *anns = json_object_get(meta, "annotations");
    if (annotations && json_is_object(anns)) {
        json_t *a = json_object();
        const char *k;
        json_t *v;
        if (!a || json_object_set_new(m, "annotations", a) < 0)
            goto fail;
        json_object_foreach(anns, k, v)
        {
            if ((starts_with(k, KUBE_ANN_DROVER_PREFIX) || starts_with(k, KUBE_ANN_KSE_PREFIX)) &&
                json_object_set(a, k, v) < 0)
                goto fail;
        }
    } else if (anns && annotations && json_object_set(m, "annotations", anns) < 0) {
        goto fail; /* not an object: keep it so validation still refuses it */
    }
    return m;
fail:
    json_decref(m);
    return NULL;
}

json_t *kube_service_slim(const json_t *svc)
{
    static const char *const spec_keep[] = {"type", "externalTrafficPolicy", "healthCheckNodePort",
                                            NULL};
    static const char *const port_keep[] = {"name", "protocol", "port", "nodePort", NULL};
    if (!json_is_object(svc))
        return NULL;
    json_t *o = json_object();
    /* a metadata that is not an object is kept as is: still invalid */
    json_t *meta_in = json_object_get(svc, "metadata");
    json_t *meta = json_is_object(meta_in) ? slim_metadata(meta_in, true) : json_incref(meta_in);
    json_t *spec_in = json_object_get(svc, "spec");
    json_t *spec = json_object();
    if (!o || !spec || (meta_in && !meta))
        goto fail;
    if (meta && json_object_set_new(o, "metadata", meta) < 0) {
        meta = NULL;
        goto fail;
    }
    meta = NULL;
    if (json_is_object(spec_in)) {
        if (copy_keys(spec, spec_in, spec_keep) < 0)
            goto fail;
        json_t *ports_in = json_object_get(spec_in, "ports");
        if (json_is_array(ports_in)) {
            json_t *ports = json_array();
            size_t i;
            json_t *p;
            if (!ports || json_object_set_new(spec, "ports", ports) < 0)
                goto fail;
            json_array_foreach(ports_in, i, p)
            {
                json_t *q = json_is_object(p) ? json_object() : json_incref(p);
                if (!q || (json_is_object(p) && copy_keys(q, p, port_keep) < 0) ||
                    json_array_append_new(ports, q) < 0)
                    goto fail;
            }
        } else if (ports_in && json_object_set(spec, "ports", ports_in) < 0) {
            goto fail;
        }
        if (json_object_set_new(o, "spec", spec) < 0) {
            spec = NULL;
            goto fail;
        }
        spec = NULL;
    } else if (spec_in && json_object_set(o, "spec", spec_in) < 0) {
        goto fail;
    }
    json_decref(spec);
    return o;
fail:
    json_decref(meta);
    json_decref(spec);
    json_decref(o);
    return NULL;
}

json_t *kube_node_slim(const json_t *node)
{
    if (!json_is_object(node))
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_t *meta_in = json_object_get(node, "metadata");
    if (json_is_object(meta_in)) {
        json_t *meta = slim_metadata(meta_in, false);
        if (!meta || json_object_set_new(o, "metadata", meta) < 0)
            goto fail;
    }
    json_t *spec_in = json_object_get(node, "spec");
    json_t *unsched = json_is_object(spec_in) ? json_object_get(spec_in, "unschedulable") : NULL;
    if (unsched && json_object_set_new(o, "spec", json_pack("{s:O}", "unschedulable", unsched)) < 0)
        goto fail;
    json_t *status_in = json_object_get(node, "status");
    if (json_is_object(status_in)) {
        json_t *status = json_object();
        if (!status || json_object_set_new(o, "status", status) < 0)
            goto fail;
        json_t *addrs = json_object_get(status_in, "addresses");
        if (addrs && json_object_set(status, "addresses", addrs) < 0)
            goto fail;
        /* only the Ready condition's type and status: heartbeat times
         * change on every kubelet update and are not used */
        json_t *conds = json_object_get(status_in, "conditions");
        json_t *c;
        size_t i;
        json_array_foreach(conds, i, c)
        {
            const char *t = obj_str(c, "type");
            if (!t || strcmp(t, "Ready") != 0)
                continue;
            json_t *ready =
                json_pack("[{s:s, s:O?}]", "type", "Ready", "status", json_object_get(c, "status"));
            if (!ready || json_object_set_new(status, "conditions", ready) < 0)
                goto fail;
            break;
        }
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* ---- nodes -------------------------------------------------------------- */

void node_record_clear(struct node_record *r)
{
    if (!r)
        return;
    free(r->name);
    for (size_t i = 0; i < r->n_addresses; i++)
        free(r->addresses[i]);
    free(r->addresses);
    json_decref(r->labels);
    free(r->zone);
    memset(r, 0, sizeof(*r));
}

/* The node's zone label, if it is a name HAProxy-side code may compare and
 * log (kind `name`); an absent or odd value gives no zone, never an error:
 * the node still serves, only without a zone. */
static const char *node_zone_label(const json_t *labels)
{
    static const char *const keys[] = {KUBE_NODE_ZONE_LABEL, KUBE_NODE_ZONE_LABEL_OLD};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_is_object(labels) ? json_object_get(labels, keys[i]) : NULL;
        const char *why = NULL;
        if (json_is_string(v) && haproxy_value_check(HAPROXY_VALUE_NAME, json_string_value(v),
                                                     json_string_length(v), &why) == 0)
            return json_string_value(v);
    }
    return NULL;
}

static bool is_ip_type(const char *type)
{
    return strcmp(type, "InternalIP") == 0 || strcmp(type, "ExternalIP") == 0;
}

static bool valid_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int kube_node_to_record(const json_t *node, const struct node_options *opt, struct node_record *out,
                        struct kube_reason *why)
{
    const char *atype = opt && opt->address_type ? opt->address_type : "InternalIP";
    memset(out, 0, sizeof(*out));
    if (why)
        why->reason[0] = why->message[0] = '\0';

    json_t *meta = json_is_object(node) ? json_object_get(node, "metadata") : NULL;
    const char *name = json_is_object(meta) ? obj_str(meta, "name") : NULL;
    if (!name || !name[0]) {
        reason_set(why, "InvalidObject", "Node without metadata.name; skipping it");
        return -EINVAL;
    }
    if (!kube_name_is_dns1123_subdomain(name)) {
        reason_set(why, "InvalidObject",
                   "Node name \"%.64s\" is not a DNS-1123 subdomain (Kubernetes never makes one); "
                   "skipping it",
                   name);
        return -EINVAL;
    }
    out->name = strdup(name);
    if (!out->name)
        goto nomem;

    json_t *labels = json_object_get(meta, "labels");
    json_t *spec = json_object_get(node, "spec");
    json_t *status = json_object_get(node, "status");

    json_t *unsched = json_is_object(spec) ? json_object_get(spec, "unschedulable") : NULL;
    out->schedulable = !json_is_true(unsched);

    json_t *conds = json_is_object(status) ? json_object_get(status, "conditions") : NULL;
    size_t i;
    json_t *cond;
    json_array_foreach(conds, i, cond)
    {
        const char *t = obj_str(cond, "type");
        if (t && strcmp(t, "Ready") == 0) {
            const char *s = obj_str(cond, "status");
            out->ready = s && strcmp(s, "True") == 0;
            break;
        }
    }

    json_t *ex = json_is_object(labels) ? json_object_get(labels, KUBE_NODE_EXCLUDE_LABEL) : NULL;
    out->excluded = ex && !(json_is_string(ex) && strcmp(json_string_value(ex), "false") == 0);

    out->selected = label_selector_matches(opt ? opt->selector : NULL, labels);
    const char *zone = node_zone_label(labels);
    if (zone && !(out->zone = strdup(zone)))
        goto nomem;

    json_t *addrs = json_is_object(status) ? json_object_get(status, "addresses") : NULL;
    json_t *a;
    json_array_foreach(addrs, i, a)
    {
        const char *t = obj_str(a, "type");
        const char *v = obj_str(a, "address");
        if (!t || !v || strcmp(t, atype) != 0 || !v[0])
            continue;
        if (is_ip_type(atype) && !valid_ip(v))
            continue; /* never publish something HAProxy cannot connect to */
        bool dup = false;
        for (size_t k = 0; k < out->n_addresses; k++)
            dup = dup || strcmp(out->addresses[k], v) == 0;
        if (dup)
            continue;
        char **na = realloc(out->addresses, (out->n_addresses + 1) * sizeof(*na));
        if (!na)
            goto nomem;
        out->addresses = na;
        na[out->n_addresses] = strdup(v);
        if (!na[out->n_addresses])
            goto nomem;
        out->n_addresses++;
    }

    out->labels = select_labels(labels, opt ? opt->label_keys : NULL, opt ? opt->n_label_keys : 0);
    if (!out->labels)
        goto nomem;
    out->eligible =
        out->ready && out->schedulable && !out->excluded && out->selected && out->n_addresses > 0;
    out->effective_eligible = out->eligible;
    return 0;
nomem:
    node_record_clear(out);
    reason_set(why, "InternalError", "Node %s: out of memory", name);
    return -ENOMEM;
}

bool node_grace_apply(struct node_grace_state *st, const struct node_record *rec, int64_t now,
                      int64_t grace, int64_t *recheck_at)
{
    bool eff;
    if (recheck_at)
        *recheck_at = INT64_MAX;
    if (rec->eligible) {
        eff = true;
        st->in_grace = false;
    } else {
        /* only readiness is missing: the kubelet may just be flapping */
        bool only_not_ready = !rec->ready && rec->schedulable && !rec->excluded && rec->selected &&
                              rec->n_addresses > 0;
        if (only_not_ready && st->known && st->effective_eligible && !st->in_grace) {
            st->in_grace = true;
            st->not_ready_since = now;
        }
        if (only_not_ready && st->in_grace && grace > 0 && now - st->not_ready_since < grace) {
            eff = true;
            if (recheck_at)
                *recheck_at = st->not_ready_since + grace;
        } else {
            eff = false;
            st->in_grace = false;
        }
    }
    st->known = true;
    st->effective_eligible = eff;
    return eff;
}
