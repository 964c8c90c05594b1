/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_prune: remove unread members from a list body's text. See
 * kube_prune.h.
 *
 * One pass records the byte ranges to remove; only if the whole scan
 * succeeds are they cut out (memmove, left to right), so a failed scan
 * leaves the text as it was.
 */
#include "kube_prune.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "array_grow.h"

struct cut {
    size_t start, end; /* [start, end) */
};

struct scan {
    const char *s;
    size_t len, pos;
    struct cut *cuts;
    size_t n_cuts, cap;
};

/* Where a member is: what to do with the member of each key. */
enum level {
    LVL_ROOT,        /* the list object */
    LVL_ITEM,        /* an element of items */
    LVL_META,        /* its metadata */
    LVL_ANNOTATIONS, /* its metadata.annotations */
    LVL_STATUS,      /* its status */
};

enum action {
    ACT_SKIP,
    ACT_DROP,
    ACT_ITEMS,   /* walk the array's object elements at LVL_ITEM */
    ACT_DESCEND, /* walk the object at the level next_level() says */
};

/* A Node's status members that no record reads (the kubelet's inventory:
 * images alone is often most of a real Node). */
static const char *const status_dropped[] = {
    "images",          "nodeInfo",     "capacity",        "allocatable",
    "daemonEndpoints", "volumesInUse", "volumesAttached", NULL,
};

static bool key_is(const char *k, size_t klen, const char *want)
{
    return klen == strlen(want) && memcmp(k, want, klen) == 0;
}

static enum action action_of(enum level lvl, const char *k, size_t klen, enum level *next)
{
    switch (lvl) {
    case LVL_ROOT:
        return key_is(k, klen, "items") ? ACT_ITEMS : ACT_SKIP;
    case LVL_ITEM:
        if (key_is(k, klen, "metadata")) {
            *next = LVL_META;
            return ACT_DESCEND;
        }
        if (key_is(k, klen, "status")) {
            *next = LVL_STATUS;
            return ACT_DESCEND;
        }
        return ACT_SKIP;
    case LVL_META:
        if (key_is(k, klen, "managedFields"))
            return ACT_DROP;
        if (key_is(k, klen, "annotations")) {
            *next = LVL_ANNOTATIONS;
            return ACT_DESCEND;
        }
        return ACT_SKIP;
    case LVL_ANNOTATIONS:
        return key_is(k, klen, "kubectl.kubernetes.io/last-applied-configuration") ? ACT_DROP
                                                                                   : ACT_SKIP;
    case LVL_STATUS:
        for (const char *const *d = status_dropped; *d; d++)
            if (key_is(k, klen, *d))
                return ACT_DROP;
        return ACT_SKIP;
    }
    return ACT_SKIP;
}

static void skip_ws(struct scan *sc)
{
    while (sc->pos < sc->len) {
        char c = sc->s[sc->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        sc->pos++;
    }
}

static bool at(const struct scan *sc, char c)
{
    return sc->pos < sc->len && sc->s[sc->pos] == c;
}

/* At the opening quote: moves past the closing one. */
static int skip_string(struct scan *sc)
{
    sc->pos++;
    while (sc->pos < sc->len) {
        const char *q = memchr(sc->s + sc->pos, '"', sc->len - sc->pos);
        if (!q)
            return -EINVAL;
        size_t end = (size_t)(q - sc->s);
        /* an odd number of backslashes right before escapes the quote */
        size_t bs = 0;
        while (end - bs > sc->pos && sc->s[end - bs - 1] == '\\')
            bs++;
        sc->pos = end + 1;
        if (bs % 2 == 0)
            return 0;
    }
    return -EINVAL;
}

/* Any value: strings and containers by their delimiters (nesting counted
 * outside strings), scalars up to the next delimiter. */
static int skip_value(struct scan *sc)
{
    if (sc->pos >= sc->len)
        return -EINVAL;
    char c = sc->s[sc->pos];
    if (c == '"')
        return skip_string(sc);
    if (c == '{' || c == '[') {
        size_t depth = 0;
        while (sc->pos < sc->len) {
            c = sc->s[sc->pos];
            if (c == '"') {
                if (skip_string(sc) < 0)
                    return -EINVAL;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0) {
                sc->pos++;
                return 0;
            }
            sc->pos++;
        }
        return -EINVAL;
    }
    size_t start = sc->pos;
    while (sc->pos < sc->len && !strchr(",]} \t\r\n", sc->s[sc->pos]))
        sc->pos++;
    return sc->pos > start ? 0 : -EINVAL;
}

static int add_cut(struct scan *sc, size_t start, size_t end)
{
    if (array_grow((void **)&sc->cuts, &sc->cap, sc->n_cuts, sizeof(*sc->cuts)) < 0)
        return -ENOMEM;
    sc->cuts[sc->n_cuts++] = (struct cut){start, end};
    return 0;
}

static int walk_object(struct scan *sc, enum level lvl);

/* At '[' of items: each object element is walked as an item. */
static int walk_items(struct scan *sc)
{
    sc->pos++;
    skip_ws(sc);
    if (at(sc, ']')) {
        sc->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(sc);
        int rc = at(sc, '{') ? walk_object(sc, LVL_ITEM) : skip_value(sc);
        if (rc < 0)
            return rc;
        skip_ws(sc);
        if (at(sc, ']')) {
            sc->pos++;
            return 0;
        }
        if (!at(sc, ','))
            return -EINVAL;
        sc->pos++;
    }
}

/* A dropped member takes one comma with it: the one before it when a
 * kept member precedes it in the output, else the one after it. */
static int drop_member(struct scan *sc, size_t key_start, size_t prev_end, bool first_kept)
{
    if (!first_kept)
        return add_cut(sc, prev_end, sc->pos);
    size_t after = sc->pos;
    skip_ws(sc);
    if (!at(sc, ','))
        return add_cut(sc, key_start, after);
    sc->pos++;
    skip_ws(sc);
    size_t next = sc->pos;
    sc->pos = after;
    return add_cut(sc, key_start, next);
}

/* At '{': walks the members, descending or dropping as action_of says. */
static int walk_object(struct scan *sc, enum level lvl)
{
    sc->pos++;
    size_t prev_end = sc->pos; /* end of the previous member's value */
    bool none_kept = true;
    skip_ws(sc);
    if (at(sc, '}')) {
        sc->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(sc);
        if (!at(sc, '"'))
            return -EINVAL;
        size_t key_start = sc->pos;
        if (skip_string(sc) < 0)
            return -EINVAL;
        const char *k = sc->s + key_start + 1;
        size_t klen = sc->pos - key_start - 2;
        /* an escaped key might spell a removed one: leave the page alone
         * (the API server never escapes these keys) */
        if (memchr(k, '\\', klen))
            return -EINVAL;
        skip_ws(sc);
        if (!at(sc, ':'))
            return -EINVAL;
        sc->pos++;
        skip_ws(sc);
        enum level next = lvl;
        enum action act = action_of(lvl, k, klen, &next);
        int rc;
        if (act == ACT_ITEMS && at(sc, '['))
            rc = walk_items(sc);
        else if (act == ACT_DESCEND && at(sc, '{'))
            rc = walk_object(sc, next);
        else
            rc = skip_value(sc);
        if (rc < 0)
            return rc;
        if (act == ACT_DROP) {
            rc = drop_member(sc, key_start, prev_end, none_kept);
            if (rc < 0)
                return rc;
        }
        none_kept = none_kept && act == ACT_DROP;
        /* the next cut starts here: after a kept member, or after the
         * one just cut (cuts never overlap) */
        prev_end = sc->pos;
        skip_ws(sc);
        if (at(sc, '}')) {
            sc->pos++;
            return 0;
        }
        if (!at(sc, ','))
            return -EINVAL;
        sc->pos++;
    }
}

int kube_list_prune(char *text, size_t *len)
{
    struct scan sc = {.s = text, .len = *len};
    skip_ws(&sc);
    if (!at(&sc, '{'))
        return -EINVAL;
    int rc = walk_object(&sc, LVL_ROOT);
    if (rc == 0) {
        size_t w = sc.cuts && sc.n_cuts ? sc.cuts[0].start : *len;
        for (size_t i = 0; i < sc.n_cuts; i++) {
            size_t from = sc.cuts[i].end;
            size_t to = i + 1 < sc.n_cuts ? sc.cuts[i + 1].start : *len;
            memmove(text + w, text + from, to - from);
            w += to - from;
        }
        *len = w;
    }
    free(sc.cuts);
    return rc;
}

/* The same removal on a parsed list, member by member of the paths in
 * kube_prune.h: the reference the tests and the fuzz target compare the
 * text scan with. */
void kube_list_prune_tree(json_t *list)
{
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(list, "items"), i, item)
    {
        json_t *meta = json_object_get(item, "metadata");
        json_t *status = json_object_get(item, "status");
        if (json_is_object(meta)) {
            json_object_del(meta, "managedFields");
            json_t *anns = json_object_get(meta, "annotations");
            if (json_is_object(anns))
                json_object_del(anns, "kubectl.kubernetes.io/last-applied-configuration");
        }
        for (const char *const *d = status_dropped; json_is_object(status) && *d; d++)
            json_object_del(status, *d);
    }
}
