/* SPDX-License-Identifier: Apache-2.0 */
/* kube_annotations: see kube_annotations.h. */
#include "kube_annotations.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_fields.h"

/* custom-attrs larger than this are refused: Consul values are capped at
 * 512 KiB and a record must stay small. */
#define CUSTOM_ATTRS_MAX (64 * 1024)

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

/* The winning annotation of a setting: drover's, else KSE's. Returns its
 * value (NULL when neither is set) and its name in *used. -EINVAL (with
 * a reason) when the value is not a plain string. */
static int ann_get(struct kube_ann_ctx *c, const struct ann_def *d, const char **value,
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
            kube_reason_set(
                c->why, "InvalidAnnotation",
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

static int ann_invalid(struct kube_ann_ctx *c, const char *used, const char *value,
                       const char *expect)
{
    kube_reason_set(c->why, "InvalidAnnotation",
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

/* The opt-in decision alone: Services that are not exported are not
 * validated further (their other annotations are not our business). */
int kube_ann_read_exported(struct kube_ann_ctx *c, const struct export_options *opt, bool *exported)
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

int kube_ann_read_settings(struct kube_ann_ctx *c, struct kube_svc_settings *st)
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
