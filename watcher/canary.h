/* SPDX-License-Identifier: Apache-2.0 */
/*
 * canary: how a watcher takes part in a staged config change
 * (`droverctl config apply --canary HOST`; record: kv_deploy.h, contract:
 * docs/kv-schema.md). The staged change R haproxy/<cluster>/canary comes in
 * with the rest of haproxy/<cluster>/. Before the snapshot is built:
 *  - every watcher takes the entry out of the inputs (it is no definition,
 *    and a host that does not run it must see the same inputs as before,
 *    so nothing is rebuilt or reloaded there);
 *  - a watcher whose status host is one of the record's canary hosts
 *    replaces the live values of the staged keys by the staged ones (a
 *    staged null deletes the key), encoded canonically: the very bytes
 *    promote later writes, so promoting changes nothing on a canary host.
 * When the record goes (promote or abort) the live values rule again.
 * A record that does not decode is skipped (the live values apply) and
 * counted.
 */
#ifndef DROVER_WATCHER_CANARY_H
#define DROVER_WATCHER_CANARY_H

#include <jansson.h>
#include <stdint.h>

#include "kv_model.h"
#include "snapshot.h"

struct canary_result {
    uint64_t version; /* the staged version applied here; 0: none */
    bool bad;         /* a staged record was there but did not decode */
};

/* Apply the staged change in (*e)[0..*n) for host (NULL: never a canary).
 * The array may be reallocated; entries it drops are freed. 0 or
 * -ENOMEM (the entries are then freed and *e is NULL). */
int canary_overlay(const struct kv_model_opts *o, const char *host, struct snapshot_entry **e,
                   size_t *n, struct canary_result *out);

/* Put key = v into the entries as its canonical bytes (compact, sorted
 * keys: what droverctl writes), or take key out (v JSON null). The array
 * may be reallocated. 0 or -ENOMEM (the entries are left as they were). */
int canary_set_entry(struct snapshot_entry **e, size_t *n, const char *key, const json_t *v);

#endif
