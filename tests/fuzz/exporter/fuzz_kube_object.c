/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_kube_object: one JSON document as a Service and as a Node through
 * the record builders and every KV value and key built from them, and
 * its first line as a label selector. Invariants: the slim copies give
 * the same records, produced keys are owned, a self-diff is empty.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube_objects.h"
#include "kv_layout.h"
#include "label_selector.h"
#include "log.h"

static const char *const LABELS[] = {"team", "app", "topology.kubernetes.io/zone"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kv_layout layout;
    static struct label_selector *zone_sel;
    static int init;
    if (!init) {
        log_set_level(LOGL_ERROR + 1);
        if (kv_layout_init(&layout, NULL, "fuzz", KV_LAYOUT_DEFAULT_KSE_PREFIX) < 0)
            abort();
        if (label_selector_parse("topology.kubernetes.io/zone notin (z9),!gpu", &zone_sel, NULL,
                                 0) < 0)
            abort();
        init = 1;
    }

    /* first line: a label selector, as --node-selector would give it */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t first = nl ? (size_t)(nl - data) : size;
    char *text = strndup((const char *)data, first);
    struct label_selector *sel = NULL;
    char err[256];
    if (text && label_selector_parse(text, &sel, err, sizeof(err)) == 0) {
        json_t *labels = json_pack("{s:s, s:s}", "team", text, "app", "x");
        (void)label_selector_matches(sel, labels);
        json_decref(labels);
        label_selector_free(sel);
    }
    free(text);

    json_t *obj = json_loadb((const char *)data, size, 0, NULL);
    if (!obj)
        return 0;
    struct kv_map m;
    kv_map_init(&m);
    for (int by_default = 0; by_default < 2; by_default++) {
        struct export_options o = {.cluster = "fuzz",
                                   .export_by_default = by_default,
                                   .label_keys = LABELS,
                                   .n_label_keys = 3};
        struct export_record *recs = NULL;
        size_t n = 0;
        struct kube_reason why;
        if (kube_service_to_records(obj, &o, &recs, &n, &why) == 0) {
            for (size_t i = 0; i < n && by_default; i++)
                (void)kv_layout_add_service(&layout, &m, &recs[i]);
            export_records_free(recs, n);
        }
    }
    /* the slim copy the store keeps must give the same verdict and records */
    json_t *slim = kube_service_slim(obj);
    if (slim) {
        struct export_options o = {.cluster = "fuzz", .export_by_default = 1};
        struct export_record *ra = NULL, *rb = NULL;
        size_t na = 0, nb = 0;
        struct kube_reason wa, wb;
        int a = kube_service_to_records(obj, &o, &ra, &na, &wa);
        int b = kube_service_to_records(slim, &o, &rb, &nb, &wb);
        if (a != b || na != nb)
            abort();
        for (size_t i = 0; i < na; i++)
            if (strcmp(ra[i].hash, rb[i].hash) != 0)
                abort();
        export_records_free(ra, na);
        export_records_free(rb, nb);
        json_decref(slim);
    }
    struct node_options no = {.selector = zone_sel, .label_keys = LABELS, .n_label_keys = 3};
    struct node_record nr;
    struct kube_reason why;
    json_t *nslim = kube_node_slim(obj);
    if (nslim) {
        struct node_record x, y;
        int a = kube_node_to_record(obj, &no, &x, &why);
        int b = kube_node_to_record(nslim, &no, &y, &why);
        if (a != b)
            abort();
        if (a == 0) {
            if (x.eligible != y.eligible || x.n_addresses != y.n_addresses || x.ready != y.ready ||
                x.excluded != y.excluded || x.selected != y.selected)
                abort();
            node_record_clear(&x);
            node_record_clear(&y);
        }
        json_decref(nslim);
    }
    if (kube_node_to_record(obj, &no, &nr, &why) == 0) {
        struct node_grace_state st = {0};
        nr.effective_eligible = node_grace_apply(&st, &nr, 0, 30, NULL);
        (void)kv_layout_add_nodes(&layout, &m, &nr, 1);
        node_record_clear(&nr);
    }
    json_decref(obj);

    /* every produced key must belong to this exporter, and diffing the
     * result against itself must be a no-op */
    struct kv_map cur;
    kv_map_init(&cur);
    for (size_t i = 0; i < m.n; i++) {
        if (!kv_layout_owns(&layout, m.v[i].key))
            abort();
        kv_map_put(&cur, m.v[i].key, m.v[i].value, 1);
    }
    struct kv_ops ops;
    if (kv_layout_diff(&layout, &m, &cur, true, &ops) == 0) {
        if (ops.n != 0)
            abort();
        kv_ops_clear(&ops);
    }
    kv_map_clear(&cur);
    kv_map_clear(&m);
    return 0;
}
