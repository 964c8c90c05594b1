/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "timefmt.h"

/* Largest state file we read: 50k servers with long reasons fit in a few
 * MiB; anything bigger is not something the watcher wrote. */
#define STATE_FILE_MAX (64u << 20)

/* Keys in the table carry a one-letter kind so the three maps share one
 * table: "s:be/srv", "a:10.0.0.5:80", "b:be". */
#define KIND_SERVER  's'
#define KIND_ADDRESS 'a'
#define KIND_BACKEND 'b'

/* 32 bytes per entry; strings live in the arena. */
struct entry {
    uint32_t hash;
    uint32_t key_off;
    uint32_t text_off;
    uint16_t key_len;
    uint8_t text_len;
    uint8_t admin;
    uint8_t health;
    int16_t weight;
    int32_t maxconn;
    int64_t expires; /* unix seconds, INT64_MAX = never */
};

struct agent_state {
    struct entry *entries;
    size_t count;
    uint32_t *slots; /* entry index + 1, 0 = empty */
    uint32_t mask;
    char *arena;
    size_t arena_len, arena_cap;
    bool has_default;
    struct entry dflt;
    int64_t generated;
};

static const char *const match_names[AGENT_MATCH_COUNT] = {"server", "address", "backend",
                                                           "default", "none"};

const char *agent_match_name(enum agent_match m)
{
    return (unsigned)m < AGENT_MATCH_COUNT ? match_names[m] : "?";
}

static uint32_t hash_bytes(char kind, const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    h = (h ^ (unsigned char)kind) * 16777619u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void set_err(struct agent_state_error *err, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_err(struct agent_state_error *err, int line, int column, const char *fmt, ...)
{
    va_list ap;
    err->line = line;
    err->column = column;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
}

static int arena_add(struct agent_state *st, const char *s, size_t n, uint32_t *off)
{
    if (st->arena_len + n + 1 > st->arena_cap) {
        size_t cap = st->arena_cap ? st->arena_cap * 2 : 4096;
        while (cap < st->arena_len + n + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            return -ENOMEM;
        char *a = realloc(st->arena, cap);
        if (!a)
            return -ENOMEM;
        st->arena = a;
        st->arena_cap = cap;
    }
    memcpy(st->arena + st->arena_len, s, n);
    st->arena[st->arena_len + n] = '\0';
    *off = (uint32_t)st->arena_len;
    st->arena_len += n + 1;
    return 0;
}

/* Parse one entry object at JSON path `path` into e (key not set). */
static int parse_entry(struct agent_state *st, const char *path, json_t *obj, struct entry *e,
                       struct agent_state_error *err)
{
    enum agent_admin admin = AGENT_ADMIN_READY;
    enum agent_health health = AGENT_HEALTH_UP;
    const char *reason = NULL, *author = NULL;
    json_t *v;

    if (!json_is_object(obj)) {
        set_err(err, 0, 0, "%s: expected an object", path);
        return -EINVAL;
    }
    memset(e, 0, sizeof(*e));
    e->weight = -1;
    e->maxconn = -1;
    e->expires = INT64_MAX;

    if ((v = json_object_get(obj, "admin")) && !json_is_null(v)) {
        if (!json_is_string(v) || agent_admin_parse(json_string_value(v), &admin) < 0) {
            set_err(err, 0, 0, "%s.admin: expected \"ready\", \"drain\" or \"maint\"", path);
            return -EINVAL;
        }
    }
    if ((v = json_object_get(obj, "health")) && !json_is_null(v)) {
        if (!json_is_string(v) || agent_health_parse(json_string_value(v), &health) < 0) {
            set_err(err, 0, 0, "%s.health: expected \"up\", \"down\", \"stopped\" or \"fail\"",
                    path);
            return -EINVAL;
        }
    }
    if ((v = json_object_get(obj, "weight")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > AGENT_WEIGHT_MAX) {
            set_err(err, 0, 0, "%s.weight: expected an integer percentage 0..%d", path,
                    AGENT_WEIGHT_MAX);
            return -EINVAL;
        }
        e->weight = (int16_t)json_integer_value(v);
    }
    if ((v = json_object_get(obj, "maxconn")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
            set_err(err, 0, 0, "%s.maxconn: expected an integer 0..1000000", path);
            return -EINVAL;
        }
        e->maxconn = (int32_t)json_integer_value(v);
    }
    if ((v = json_object_get(obj, "reason")) && !json_is_null(v)) {
        if (!json_is_string(v)) {
            set_err(err, 0, 0, "%s.reason: expected a string", path);
            return -EINVAL;
        }
        reason = json_string_value(v);
    }
    if ((v = json_object_get(obj, "author")) && !json_is_null(v)) {
        if (!json_is_string(v)) {
            set_err(err, 0, 0, "%s.author: expected a string", path);
            return -EINVAL;
        }
        author = json_string_value(v);
    }
    if ((v = json_object_get(obj, "expires")) && !json_is_null(v)) {
        if (!json_is_string(v) || timefmt_parse_rfc3339(json_string_value(v), &e->expires) < 0) {
            set_err(err, 0, 0, "%s.expires: expected an RFC 3339 time", path);
            return -EINVAL;
        }
    }
    e->admin = (uint8_t)admin;
    e->health = (uint8_t)health;

    char text[AGENT_TEXT_MAX + 1];
    size_t tl = agent_text_build(reason, author, text, sizeof(text));
    e->text_len = (uint8_t)tl;
    if (arena_add(st, text, tl, &e->text_off) < 0) {
        set_err(err, 0, 0, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static struct entry *find(const struct agent_state *st, char kind, const char *key, size_t n)
{
    if (!st->slots)
        return NULL;
    uint32_t h = hash_bytes(kind, key, n);
    for (uint32_t i = h & st->mask;; i = (i + 1) & st->mask) {
        uint32_t slot = st->slots[i];
        if (!slot)
            return NULL;
        struct entry *e = &st->entries[slot - 1];
        if (e->hash == h && e->key_len == n + 1 && st->arena[e->key_off] == kind &&
            memcmp(st->arena + e->key_off + 1, key, n) == 0)
            return e;
    }
}

/* Parse every member of a map ("servers", "addresses", "backends"). */
static int parse_map(struct agent_state *st, json_t *root, const char *name, char kind, size_t *cap,
                     struct agent_state_error *err)
{
    json_t *map = json_object_get(root, name);
    const char *key;
    json_t *val;

    if (!map || json_is_null(map))
        return 0;
    if (!json_is_object(map)) {
        set_err(err, 0, 0, "%s: expected an object", name);
        return -EINVAL;
    }
    json_object_foreach(map, key, val)
    {
        size_t n = strlen(key);
        char path[AGENT_KEY_MAX + 32];
        snprintf(path, sizeof(path), "%s[\"%.*s\"]", name, AGENT_KEY_MAX, key);
        if (n == 0 || n > AGENT_KEY_MAX) {
            set_err(err, 0, 0, "%s: key must be 1..%d bytes", path, AGENT_KEY_MAX);
            return -EINVAL;
        }
        if (st->count == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            struct entry *ne = realloc(st->entries, ncap * sizeof(*ne));
            if (!ne) {
                set_err(err, 0, 0, "out of memory");
                return -ENOMEM;
            }
            st->entries = ne;
            *cap = ncap;
        }
        struct entry *e = &st->entries[st->count];
        int rc = parse_entry(st, path, val, e, err);
        if (rc < 0)
            return rc;
        char kbuf[AGENT_KEY_MAX + 2];
        kbuf[0] = kind;
        memcpy(kbuf + 1, key, n);
        if (arena_add(st, kbuf, n + 1, &e->key_off) < 0) {
            set_err(err, 0, 0, "out of memory");
            return -ENOMEM;
        }
        e->key_len = (uint16_t)(n + 1);
        e->hash = hash_bytes(kind, key, n);
        st->count++;
    }
    return 0;
}

static int build_index(struct agent_state *st, struct agent_state_error *err)
{
    uint32_t size = 16;
    while (size < st->count * 2 + 1) /* load factor <= 0.5 keeps probes short */
        size *= 2;
    st->slots = calloc(size, sizeof(*st->slots));
    if (!st->slots) {
        set_err(err, 0, 0, "out of memory");
        return -ENOMEM;
    }
    st->mask = size - 1;
    for (size_t k = 0; k < st->count; k++) {
        struct entry *e = &st->entries[k];
        uint32_t i = e->hash & st->mask;
        while (st->slots[i])
            i = (i + 1) & st->mask;
        st->slots[i] = (uint32_t)k + 1;
    }
    return 0;
}

int agent_state_parse(const char *buf, size_t len, struct agent_state **out,
                      struct agent_state_error *err)
{
    json_error_t jerr;
    json_t *root = NULL, *v;
    struct agent_state *st = NULL;
    size_t cap = 0;
    int rc = -EINVAL;

    *out = NULL;
    memset(err, 0, sizeof(*err));
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        set_err(err, jerr.line > 0 ? jerr.line : 1, jerr.column > 0 ? jerr.column : 1, "%s",
                jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        set_err(err, 0, 0, "top level: expected an object");
        goto out;
    }
    v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) != AGENT_STATE_VERSION) {
        set_err(err, 0, 0, "version: expected %d (unknown versions are refused)",
                AGENT_STATE_VERSION);
        goto out;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        rc = -ENOMEM;
        set_err(err, 0, 0, "out of memory");
        goto out;
    }
    if ((v = json_object_get(root, "generated")) && !json_is_null(v)) {
        if (!json_is_string(v) || timefmt_parse_rfc3339(json_string_value(v), &st->generated) < 0) {
            set_err(err, 0, 0, "generated: expected an RFC 3339 time");
            goto out;
        }
    }
    if ((v = json_object_get(root, "default")) && !json_is_null(v)) {
        if ((rc = parse_entry(st, "default", v, &st->dflt, err)) < 0)
            goto out;
        st->has_default = true;
    }
    if ((rc = parse_map(st, root, "servers", KIND_SERVER, &cap, err)) < 0 ||
        (rc = parse_map(st, root, "addresses", KIND_ADDRESS, &cap, err)) < 0 ||
        (rc = parse_map(st, root, "backends", KIND_BACKEND, &cap, err)) < 0 ||
        (rc = build_index(st, err)) < 0)
        goto out;
    *out = st;
    st = NULL;
    rc = 0;
out:
    json_decref(root);
    agent_state_free(st);
    return rc;
}

int agent_state_load(const char *path, struct agent_state **out, struct agent_state_error *err)
{
    struct stat sb;
    char *buf = NULL;
    int fd, rc;

    *out = NULL;
    memset(err, 0, sizeof(*err));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        set_err(err, 0, 0, "open: %s", strerror(-rc));
        return rc;
    }
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        set_err(err, 0, 0, "stat: %s", strerror(-rc));
        goto out;
    }
    if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > STATE_FILE_MAX) {
        rc = -EINVAL;
        set_err(err, 0, 0, "not a regular file of at most %u bytes", STATE_FILE_MAX);
        goto out;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        set_err(err, 0, 0, "out of memory");
        goto out;
    }
    /* The watcher replaces the file by rename, so the inode we opened is
     * complete and will not change under us. */
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            set_err(err, 0, 0, "read: %s", n < 0 ? strerror(errno) : "short read");
            goto out;
        }
        got += (size_t)n;
    }
    rc = agent_state_parse(buf, got, out, err);
out:
    free(buf);
    close(fd);
    return rc;
}

void agent_state_free(struct agent_state *st)
{
    if (!st)
        return;
    free(st->entries);
    free(st->slots);
    free(st->arena);
    free(st);
}

static void to_answer(const struct agent_state *st, const struct entry *e, struct agent_answer *out)
{
    out->admin = (enum agent_admin)e->admin;
    out->health = (enum agent_health)e->health;
    out->weight = e->weight;
    out->maxconn = e->maxconn;
    out->text = st->arena + e->text_off;
}

static bool live(const struct entry *e, int64_t now)
{
    return e && now < e->expires;
}

enum agent_match agent_state_lookup(const struct agent_state *st, const struct agent_request *req,
                                    int64_t now, struct agent_answer *out)
{
    const struct entry *e;
    size_t klen = strlen(req->key);

    if (klen) {
        e = find(st, KIND_SERVER, req->key, klen);
        if (live(e, now)) {
            to_answer(st, e, out);
            return AGENT_MATCH_SERVER;
        }
    }
    if (req->address[0]) {
        const char *a = req->address;
        size_t alen = strlen(a);
        e = find(st, KIND_ADDRESS, a, alen);
        if (!live(e, now)) {
            /* Without the port: "10.0.0.5:80" -> "10.0.0.5",
             * "[2001:db8::1]:80" -> "2001:db8::1". A bare IPv6 address has
             * several colons and no brackets and is left alone. */
            const char *colon = strrchr(a, ':');
            if (a[0] == '[') {
                const char *rb = strchr(a, ']');
                if (rb)
                    e = find(st, KIND_ADDRESS, a + 1, (size_t)(rb - a - 1));
            } else if (colon && colon == strchr(a, ':')) {
                e = find(st, KIND_ADDRESS, a, (size_t)(colon - a));
            }
        }
        if (live(e, now)) {
            to_answer(st, e, out);
            return AGENT_MATCH_ADDRESS;
        }
    }
    if (klen) {
        const char *slash = strchr(req->key, '/');
        e = slash ? find(st, KIND_BACKEND, req->key, (size_t)(slash - req->key)) : NULL;
        if (live(e, now)) {
            to_answer(st, e, out);
            return AGENT_MATCH_BACKEND;
        }
    }
    if (st->has_default && live(&st->dflt, now)) {
        to_answer(st, &st->dflt, out);
        return AGENT_MATCH_DEFAULT;
    }
    return AGENT_MATCH_NONE;
}

size_t agent_state_count(const struct agent_state *st)
{
    return st ? st->count : 0;
}

int64_t agent_state_generated(const struct agent_state *st)
{
    return st ? st->generated : 0;
}
