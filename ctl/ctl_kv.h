/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_kv: blocking Consul KV access for droverctl. A one-shot tool wants
 * "read, decide, write" in straight-line code, so each call starts one
 * request of the asynchronous client (common/consul.h) on a private libuv
 * loop and runs that loop until the answer is in. A struct ctl_kv belongs
 * to one thread; droverctl serve gives every command its own (commands run
 * on libuv's thread pool, never on the HTTP server's loop).
 */
#ifndef DROVER_CTL_KV_H
#define DROVER_CTL_KV_H

#include <stddef.h>

#include "consul.h"

struct ctl_kv;

/* 0 or negative errno with a message (bad address, unreadable token
 * file). */
int ctl_kv_open(const struct consul_config *cfg, struct ctl_kv **out, char *err, size_t errlen);
void ctl_kv_close(struct ctl_kv *kv);

/* Every key under prefix (an empty list when there is none). *out is the
 * caller's (consul_kv_list_free). 0 or -errno with Consul's message. */
int ctl_kv_list(struct ctl_kv *kv, const char *prefix, struct consul_kv_list **out, char *err,
                size_t errlen);
/* One key: *out is a list of one entry, or NULL when the key is absent. */
int ctl_kv_get(struct ctl_kv *kv, const char *key, struct consul_kv_list **out, char *err,
               size_t errlen);
/* One transaction of at most CONSUL_TXN_MAX_OPS ops: 0 when it committed,
 * -ECANCELED when Consul rolled it back (a cas check failed: the message
 * names the failed ops), other -errno on transport or HTTP errors. */
int ctl_kv_txn(struct ctl_kv *kv, const struct consul_txn_op *ops, size_t n, char *err,
               size_t errlen);

#endif
