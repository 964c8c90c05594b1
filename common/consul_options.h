/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul_options: the one Consul option block of every program that talks
 * to Consul (drover-exporter, drover-watcher in both modes, droverctl,
 * drover-director): address, ACL token file, CA file, TLS server name and
 * the KV prefix, with one help text, and the builder of the struct
 * consul_config the client takes.
 *
 * Environment, as Consul's own tools read it, after drover's variables:
 *   --consul-addr             DROVER_CONSUL_ADDR, then CONSUL_HTTP_ADDR
 *                             (no scheme: http://, or https:// when
 *                             CONSUL_HTTP_SSL is true)
 *   --consul-token-file       DROVER_CONSUL_TOKEN_FILE, then CONSUL_HTTP_TOKEN_FILE;
 *                             with no token file from any source, the token
 *                             in CONSUL_HTTP_TOKEN (a file wins, as in Consul)
 *   --consul-ca-file          DROVER_CONSUL_CA_FILE, then CONSUL_CACERT
 *   --consul-tls-server-name  DROVER_CONSUL_TLS_SERVER_NAME, then CONSUL_TLS_SERVER_NAME
 *   --kv-prefix               DROVER_KV_PREFIX
 *   --consul-max-stale        DROVER_CONSUL_MAX_STALE (default 2s; 0: no stale reads)
 *
 * A program lists the block in its config_program:
 *
 *   static struct { struct consul_options consul; ... } opt;
 *   static const struct config_group groups[] = {
 *       CONSUL_OPTION_GROUP(&opt.consul), CONFIG_GROUP_END};
 *
 * and after config_parse builds its client configuration with
 * consul_options_config().
 */
#ifndef DROVER_CONSUL_OPTIONS_H
#define DROVER_CONSUL_OPTIONS_H

#include <stddef.h>

#include "config.h"
#include "consul.h"

#define CONSUL_OPTIONS_DEFAULT_ADDR   "http://127.0.0.1:8500"
#define CONSUL_OPTIONS_DEFAULT_PREFIX "drover/v1/"
/* consul-template's default bound on stale reads */
#define CONSUL_OPTIONS_DEFAULT_MAX_STALE "2s"

/* Option targets: strings owned by the config module (config_free). */
struct consul_options {
    char *address;
    char *token_file;
    char *ca_file;
    char *tls_server_name;
    char *kv_prefix;
    int64_t max_stale_ms; /* --consul-max-stale; 0: no stale reads */
};

/* The option group bound to the struct consul_options *o_, for a
 * file-scope table (its options are a compound literal, constant only
 * there); o_ must be a file-scope object too. */
#define CONSUL_OPTION_GROUP(o_)                                                                    \
    {                                                                                              \
        .title = "Consul", .options = (const struct config_option[])                               \
        {                                                                                          \
            {.name = "consul-addr",                                                                \
             .type = CONFIG_STRING,                                                                \
             .target.str = &(o_)->address,                                                         \
             .def = CONSUL_OPTIONS_DEFAULT_ADDR,                                                   \
             .metavar = "URL",                                                                     \
             .env_alt = "CONSUL_HTTP_ADDR",                                                        \
             .help = "Consul HTTP API, http(s)://HOST[:PORT]; without a scheme http, or https "    \
                     "when CONSUL_HTTP_SSL=true"},                                                 \
                {.name = "consul-token-file",                                                      \
                 .type = CONFIG_STRING,                                                            \
                 .target.str = &(o_)->token_file,                                                  \
                 .metavar = "FILE",                                                                \
                 .env_alt = "CONSUL_HTTP_TOKEN_FILE",                                              \
                 .help = "file holding the ACL token, re-read every minute and after a 403; "      \
                         "without one, the token in CONSUL_HTTP_TOKEN if set"},                    \
                {.name = "consul-ca-file",                                                         \
                 .type = CONFIG_STRING,                                                            \
                 .target.str = &(o_)->ca_file,                                                     \
                 .metavar = "FILE",                                                                \
                 .env_alt = "CONSUL_CACERT",                                                       \
                 .help = "CA bundle (PEM) that verifies an https Consul; none: the system's"},     \
                {.name = "consul-tls-server-name",                                                 \
                 .type = CONFIG_STRING,                                                            \
                 .target.str = &(o_)->tls_server_name,                                             \
                 .metavar = "NAME",                                                                \
                 .env_alt = "CONSUL_TLS_SERVER_NAME",                                              \
                 .help = "name an https Consul's certificate is verified for, instead of the "     \
                         "address' host"},                                                         \
                {.name = "kv-prefix",                                                              \
                 .type = CONFIG_STRING,                                                            \
                 .target.str = &(o_)->kv_prefix,                                                   \
                 .def = CONSUL_OPTIONS_DEFAULT_PREFIX,                                             \
                 .metavar = "PREFIX",                                                              \
                 .help = "root of drover's KV keys (docs/kv-schema.md)"},                          \
                {.name = "consul-max-stale",                                                       \
                 .type = CONFIG_DURATION,                                                          \
                 .target.i64 = &(o_)->max_stale_ms,                                                \
                 .def = CONSUL_OPTIONS_DEFAULT_MAX_STALE,                                          \
                 .metavar = "DURATION",                                                            \
                 .help = "watches read with ?stale (any Consul server answers) while the server "  \
                         "heard from the raft leader at most this long ago, else re-read from "    \
                         "the leader; 0 reads from the leader only"},                              \
                CONFIG_OPT_END,                                                                    \
        }                                                                                          \
    }

/*
 * After config_parse: check and normalize o in place (a scheme added to
 * the address, kv_prefix ending in '/') and fill *cc with pointers into o
 * and the environment, valid until config_free. Fields of *cc other than
 * the block's (timeouts, datacenter) are left as they are.
 * 0, -EINVAL (message naming the option in err), -ENOMEM.
 */
int consul_options_config(struct consul_options *o, struct consul_config *cc, char *err,
                          size_t errlen);

#endif
