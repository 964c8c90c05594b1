/* SPDX-License-Identifier: Apache-2.0 */
/* consul_options: see consul_options.h. */
#include "consul_options.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"

/* Replace *s by a malloc'd "prefix + *s + suffix". 0 or -ENOMEM. */
static int rewrap(char **s, const char *prefix, const char *suffix)
{
    char *n = NULL;

    if (asprintf(&n, "%s%s%s", prefix, *s, suffix) < 0)
        return -ENOMEM;
    free(*s);
    *s = n;
    return 0;
}

int consul_options_config(struct consul_options *o, struct consul_config *cc, char *err,
                          size_t errlen)
{
    const char *ssl = getenv("CONSUL_HTTP_SSL");
    const char *token = getenv("CONSUL_HTTP_TOKEN");
    bool https = false;
    int rc;

    if (!o->address || !*o->address) {
        errmsg_set(err, errlen, "--consul-addr is empty (want http(s)://HOST[:PORT])");
        return -EINVAL;
    }
    if (strncmp(o->address, "unix://", 7) == 0) {
        errmsg_set(err, errlen, "--consul-addr %s: unix sockets are not supported, use http(s)://",
                   o->address);
        return -EINVAL;
    }
    if (!strstr(o->address, "://")) {
        /* Consul's CLI reads HOST:PORT with CONSUL_HTTP_SSL choosing https */
        if (ssl && *ssl && config_parse_bool(ssl, &https) < 0) {
            errmsg_set(err, errlen, "CONSUL_HTTP_SSL: bad bool '%s' (want true/false)", ssl);
            return -EINVAL;
        }
        if ((rc = rewrap(&o->address, https ? "https://" : "http://", "")) < 0)
            return rc;
    }
    if (o->kv_prefix) {
        size_t n = strlen(o->kv_prefix);
        if (o->kv_prefix[0] == '/') {
            errmsg_set(err, errlen, "--kv-prefix '%s' must not start with '/'", o->kv_prefix);
            return -EINVAL;
        }
        if (n && o->kv_prefix[n - 1] != '/' && (rc = rewrap(&o->kv_prefix, "", "/")) < 0)
            return rc;
    }
    if (o->max_stale_ms < 0 || o->max_stale_ms > 600000) {
        errmsg_set(err, errlen, "--consul-max-stale %lldms: want 0 (no stale reads) to 10m",
                   (long long)o->max_stale_ms);
        return -EINVAL;
    }
    cc->max_stale_ms = (unsigned)o->max_stale_ms;
    cc->address = o->address;
    cc->token_file = o->token_file && *o->token_file ? o->token_file : NULL;
    cc->token = !cc->token_file && token && *token ? token : NULL;
    cc->ca_file = o->ca_file && *o->ca_file ? o->ca_file : NULL;
    cc->tls_server_name = o->tls_server_name && *o->tls_server_name ? o->tls_server_name : NULL;
    return 0;
}
