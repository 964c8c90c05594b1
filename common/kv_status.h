/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_status: the schema module of R status/<host>/<role> (contract:
 * docs/kv-schema.md): what each drover-watcher (role "haproxy" or
 * "director") reports it has applied. The watcher writes its entry with
 * ?acquire= on a session of its own (invalidation deletes it), so the
 * entry disappears when the host does; droverctl status reads the prefix.
 */
#ifndef DROVER_KV_STATUS_H
#define DROVER_KV_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_STATUS_ROLE_HAPROXY  "haproxy"
#define KV_STATUS_ROLE_DIRECTOR "director"
#define KV_STATUS_ERROR_MAX     512u /* bytes of last_error / a service error kept */

/* R status/<host>/<role>; NULL when host is not a valid segment, role is
 * not one of the two, or on ENOMEM. Caller frees. */
char *kv_status_key(const char *root, const char *host, const char *role);
/* Split the part below status/ ("<host>/<role>"). 0 or -EINVAL. */
int kv_status_key_parse(const char *rel, char host[256], char role[16]);

/* Where the host placed a static server: server "<backend>/<name>" (as
 * droverctl targets it), slot "slot<k>" (as HAProxy and the agent-checker
 * state file name it). */
struct kv_status_slot {
    char *server, *slot;
};

/* HAProxy's own error counters of a service's running worker, summed
 * over its proxies, as read from its stats socket (`show stat`) at the
 * entry's cadence. They count from the worker's start: a reload or a
 * restart sets them back to 0 (docs/kv-schema.md, "errors"). */
struct kv_status_errors {
    int64_t requests;    /* req_tot of the frontends: HTTP requests received */
    int64_t req_errors;  /* ereq of the frontends */
    int64_t conn_errors; /* econ of the backends */
    int64_t resp_errors; /* eresp of the backends */
    int64_t http_5xx;    /* hrsp_5xx of the frontends: 5xx sent to clients */
};

/* One HAProxy service as the host applied it. */
struct kv_status_service {
    char *name;
    char *definition;             /* kv_hash64_hex of the definition value in force ("" none) */
    char *config_hash;            /* kv_hash64_hex of the installed <service>.cfg ("" none) */
    int64_t reloads;              /* reloads this watcher made of it since it started */
    char *error;                  /* latest render/check/reload error, NULL none */
    struct kv_status_slot *slots; /* its static servers' slots ("slots", optional) */
    size_t n_slots;
    bool have_errors; /* "errors" present: its HAProxy answered `show stat` */
    struct kv_status_errors errors;
};

/* The record. encode borrows the strings; decode fills owned ones
 * (kv_status_free). */
struct kv_status_rec {
    char *host, *role, *cluster, *version;
    int64_t started_unix, updated_unix;
    uint64_t kv_index; /* Consul index of the snapshot in force (0 unknown) */
    char *snapshot;    /* 16 hex: hash of the inputs in force ("" none) */
    struct kv_status_service *services;
    size_t n_services;
    char **guards; /* held guards, e.g. "removal:be_web", "service-removal" */
    size_t n_guards;
    char *last_error; /* NULL none */
    /* the staged config version this host runs as a canary (field
     * "canary", absent when 0: it runs the live definitions; kv_deploy.h) */
    uint64_t canary_version;
    /* director role */
    char *table_checksum; /* NULL: no table */
    char **vips;
    size_t n_vips;
};

/* The "errors" object of a service ({"requests", "req_errors",
 * "conn_errors", "resp_errors", "http_5xx"}). New reference, NULL on
 * ENOMEM. */
json_t *kv_status_errors_json(const struct kv_status_errors *e);

/* The value as a JSON object. New reference, NULL on ENOMEM. */
json_t *kv_status_encode(const struct kv_status_rec *r);
/* Decode v (unknown fields ignored). 0 or -EINVAL (err says which field)
 * or -ENOMEM; on failure *out is left empty. */
int kv_status_decode(const json_t *v, struct kv_status_rec *out, char *err, size_t errlen);
void kv_status_free(struct kv_status_rec *r);

#endif
