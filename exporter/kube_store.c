/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_store: list/watch semantics over a key -> [resourceVersion, JSON
 * text] map (a jansson object used as hash table). See kube_store.h.
 */
#include "kube_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct kube_store {
    char *resource;
    bool namespaced;
    json_t *objects; /* key -> [rv, text] */
    json_t *staging; /* during a list, else NULL */
    char *rv;
    bool complete;
    uint64_t generation;
    uint64_t skipped;
    uint64_t loads; /* mutable statistic, also from const accessors */
    kube_store_slim_fn slim;
};

void kube_store_set_slim(struct kube_store *s, kube_store_slim_fn slim)
{
    s->slim = slim;
}

bool kube_store_slimmed(const struct kube_store *s)
{
    return s->slim != NULL;
}

static const char *meta_str(const json_t *obj, const char *field)
{
    json_t *v = json_object_get(json_object_get(obj, "metadata"), field);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The entry the store keeps for obj: [rv, compact text of slim(obj)]. New
 * reference or NULL (ENOMEM). */
static json_t *make_entry(const struct kube_store *s, const json_t *obj)
{
    json_t *kept = s->slim ? s->slim(obj) : json_incref((json_t *)obj);
    if (!kept)
        return NULL;
    const char *rv = meta_str(kept, "resourceVersion");
    /* One serialisation (json_dumpb would need two: size, then text);
     * jansson's own output is valid UTF-8, so no second check either. */
    char *text = json_dumps(kept, JSON_COMPACT);
    json_t *entry = json_array();
    if (!text || !entry || json_array_append_new(entry, json_string(rv ? rv : "")) < 0 ||
        json_array_append_new(entry, json_stringn_nocheck(text, strlen(text))) < 0) {
        json_decref(entry);
        entry = NULL;
    }
    free(text);
    json_decref(kept);
    return entry;
}

static const char *entry_rv(const json_t *e)
{
    return json_string_value(json_array_get(e, 0));
}

/* Same object version: resourceVersion is opaque, compare for equality;
 * without one, compare the content. */
static bool same_version(const json_t *a, const json_t *b)
{
    const char *ra = entry_rv(a), *rb = entry_rv(b);
    if (ra && rb && ra[0] && rb[0])
        return strcmp(ra, rb) == 0;
    return json_equal(json_array_get(a, 1), json_array_get(b, 1));
}

struct kube_store *kube_store_new(const char *resource, bool namespaced)
{
    struct kube_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->resource = strdup(resource ? resource : "objects");
    s->objects = json_object();
    s->namespaced = namespaced;
    if (!s->resource || !s->objects) {
        kube_store_free(s);
        return NULL;
    }
    return s;
}

void kube_store_free(struct kube_store *s)
{
    if (!s)
        return;
    json_decref(s->objects);
    json_decref(s->staging);
    free(s->resource);
    free(s->rv);
    free(s);
}

int kube_store_key(const struct kube_store *s, const json_t *obj, char *buf, size_t len)
{
    const char *name = meta_str(obj, "name");
    const char *ns = s->namespaced ? meta_str(obj, "namespace") : NULL;
    if (!name || !name[0] || (s->namespaced && (!ns || !ns[0])))
        return -EINVAL;
    int n = s->namespaced ? snprintf(buf, len, "%s/%s", ns, name) : snprintf(buf, len, "%s", name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int set_rv(struct kube_store *s, const char *rv)
{
    if (!rv || (s->rv && strcmp(s->rv, rv) == 0))
        return 0;
    char *copy = strdup(rv);
    if (!copy)
        return -ENOMEM;
    free(s->rv);
    s->rv = copy;
    return 0;
}

int kube_store_list_begin(struct kube_store *s)
{
    json_decref(s->staging);
    s->staging = json_object();
    s->complete = false;
    return s->staging ? 0 : -ENOMEM;
}

int kube_store_list_page(struct kube_store *s, const struct kube_list *page)
{
    char key[512];
    size_t i;
    json_t *item;

    if (!s->staging)
        return -EINVAL;
    json_array_foreach(page->items, i, item)
    {
        if (!json_is_object(item) || kube_store_key(s, item, key, sizeof(key)) < 0) {
            s->skipped++;
            log_warn("kube list %s: item %zu has no usable metadata.name%s; skipping it",
                     s->resource, i, s->namespaced ? "/namespace" : "");
            continue;
        }
        if (json_object_set_new(s->staging, key, make_entry(s, item)) < 0)
            return -ENOMEM;
    }
    return 0;
}

int kube_store_list_end(struct kube_store *s, const char *resource_version)
{
    if (!s->staging)
        return -EINVAL;
    bool changed = json_object_size(s->staging) != json_object_size(s->objects);
    const char *key;
    json_t *entry;
    json_object_foreach(s->staging, key, entry)
    {
        if (changed)
            break;
        json_t *old = json_object_get(s->objects, key);
        changed = !old || !same_version(old, entry);
    }
    int rc = set_rv(s, resource_version);
    if (rc)
        return rc;
    json_decref(s->objects);
    s->objects = s->staging;
    s->staging = NULL;
    s->complete = true;
    if (changed)
        s->generation++;
    return changed ? 1 : 0;
}

void kube_store_list_abort(struct kube_store *s)
{
    json_decref(s->staging);
    s->staging = NULL;
}

int kube_store_apply(struct kube_store *s, const struct kube_event *ev)
{
    char key[512];
    int changed = 0;

    if (s->staging)
        return -EBUSY;
    if (ev->type == KUBE_EVENT_ERROR) {
        if (kube_status_is_expired(&ev->status)) {
            /* events between our resourceVersion and now are lost */
            s->complete = false;
            return -ESTALE;
        }
        log_warn("kube watch %s: ERROR event (code %ld, reason %s): %s", s->resource,
                 ev->status.code, ev->status.reason ? ev->status.reason : "-",
                 ev->status.message ? ev->status.message : "-");
        return -EPROTO;
    }
    if (ev->type != KUBE_EVENT_BOOKMARK) {
        if (kube_store_key(s, ev->object, key, sizeof(key)) < 0) {
            log_warn("kube watch %s: %s event (line %llu) without a usable "
                     "metadata.name%s; ignoring it",
                     s->resource, kube_event_type_name(ev->type), (unsigned long long)ev->line_no,
                     s->namespaced ? "/namespace" : "");
            return -EPROTO;
        }
        json_t *old = json_object_get(s->objects, key);
        if (ev->type == KUBE_EVENT_DELETED) {
            if (old) {
                json_object_del(s->objects, key);
                changed = 1;
            }
        } else {
            json_t *entry = make_entry(s, ev->object);
            if (!entry)
                return -ENOMEM;
            if (!old || !same_version(old, entry)) {
                if (json_object_set_new(s->objects, key, entry) < 0)
                    return -ENOMEM;
                changed = 1;
            } else {
                json_decref(entry);
            }
        }
    }
    int rc = set_rv(s, ev->resource_version);
    if (rc)
        return rc;
    if (changed)
        s->generation++;
    return changed;
}

const char *kube_store_resource_version(const struct kube_store *s)
{
    return s->rv;
}

bool kube_store_complete(const struct kube_store *s)
{
    return s->complete;
}

bool kube_store_listing(const struct kube_store *s)
{
    return s->staging != NULL;
}

size_t kube_store_count(const struct kube_store *s)
{
    return json_object_size(s->objects);
}

uint64_t kube_store_generation(const struct kube_store *s)
{
    return s->generation;
}

uint64_t kube_store_skipped(const struct kube_store *s)
{
    return s->skipped;
}

uint64_t kube_store_loads(const struct kube_store *s)
{
    return s->loads;
}

static json_t *parse(const struct kube_store *s, const char *text, size_t len)
{
    /* the statistic is not part of the store's observable content */
    ((struct kube_store *)s)->loads++;
    return json_loadb(text, len, 0, NULL);
}

json_t *kube_store_item_load(const struct kube_store *s, const struct kube_store_item *item)
{
    return parse(s, item->json, item->json_len);
}

json_t *kube_store_load(struct kube_store *s, const char *key)
{
    json_t *text = json_array_get(json_object_get(s->objects, key), 1);
    if (!text)
        return NULL;
    return parse(s, json_string_value(text), json_string_length(text));
}

int kube_store_foreach(const struct kube_store *s, kube_store_iter_cb cb, void *arg)
{
    const char *key;
    json_t *entry;
    json_object_foreach(s->objects, key, entry)
    {
        json_t *text = json_array_get(entry, 1);
        struct kube_store_item item = {.key = key,
                                       .resource_version = entry_rv(entry),
                                       .json = json_string_value(text),
                                       .json_len = json_string_length(text)};
        int rc = cb(&item, arg);
        if (rc)
            return rc;
    }
    return 0;
}
