/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_watch_stream: the Kubernetes watch-stream, list and Status parsers
 * on arbitrary bytes. The first byte picks chunk sizes so line assembly
 * is exercised across every kind of split; a small line limit exercises
 * the oversize path. Events go into a kube_store as the daemon's would.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kube_store.h"
#include "kube_watch_stream.h"
#include "log.h"

struct fuzz_ctx {
    size_t count;
    struct kube_store *store;
};

static int on_event(const struct kube_event *ev, void *arg)
{
    struct fuzz_ctx *c = arg;
    size_t *count = &c->count;
    (void)kube_store_apply(c->store, ev);
    /* touch what a consumer touches */
    if (ev->resource_version)
        *count += strlen(ev->resource_version);
    if (ev->type == KUBE_EVENT_ERROR && kube_status_is_expired(&ev->status))
        (*count)++;
    (void)kube_event_type_name(ev->type);
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        log_set_level(LOGL_ERROR + 1);
        quiet = 1;
    }
    if (size == 0)
        return 0;
    size_t step = (size_t)(data[0] % 64) + 1;
    const uint8_t *p = data + 1;
    size_t len = size - 1;

    struct fuzz_ctx ctx = {.store = kube_store_new("fuzz", data[0] & 0x80)};
    struct kube_watch_stream *ws = kube_watch_stream_new("fuzz", 512, on_event, &ctx);
    if (!ws || !ctx.store) {
        kube_watch_stream_free(ws);
        kube_store_free(ctx.store);
        return 0;
    }
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        (void)kube_watch_stream_feed(ws, p + off, n);
    }
    (void)kube_watch_stream_finish(ws);
    kube_watch_stream_free(ws);

    struct kube_list l;
    char err[256];
    if (kube_list_parse(p, len, &l, err, sizeof(err)) == 0) {
        if (kube_store_list_begin(ctx.store) == 0 && kube_store_list_page(ctx.store, &l) == 0)
            (void)kube_store_list_end(ctx.store, l.resource_version);
        kube_list_clear(&l);
    }
    kube_store_free(ctx.store);
    struct kube_status st;
    if (kube_status_parse(p, len, &st) == 0)
        kube_status_clear(&st);
    return 0;
}
