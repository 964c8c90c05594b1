/* SPDX-License-Identifier: Apache-2.0 */
/* frontdoor_anycast: VIP verdicts of an anycast proxy host (see
 * frontdoor_anycast.h). */
#include "frontdoor_anycast.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 128
#define ADDR_MAX_LEN 64

struct strv {
    char **v;
    size_t n;
};

struct afront {
    char name[NAME_MAX_LEN];
    struct strv vips, backends;
    char fail[256]; /* why it does not serve; "" when it does */
};

struct apx { /* one proxy of `show stat` */
    char name[NAME_MAX_LEN];
    char fe_status[32]; /* "" when it has no FRONTEND row */
    unsigned up;
    uint64_t stot; /* the FRONTEND row's cumulative sessions */
};

struct frontdoor_anycast {
    struct afront *fe;
    size_t n_fe;
    struct frontdoor_verdict *verdicts;
    char (*reasons)[256];
    struct strv vips;  /* sorted unique */
    uint64_t sessions; /* of the frontends that bind a VIP */
};

static int strv_add(struct strv *s, const char *x, size_t len, bool unique)
{
    for (size_t i = 0; unique && i < s->n; i++)
        if (strlen(s->v[i]) == len && !memcmp(s->v[i], x, len))
            return 0;
    char **p = realloc(s->v, (s->n + 1) * sizeof(*p));
    if (!p)
        return -ENOMEM;
    s->v = p;
    if (!(s->v[s->n] = strndup(x, len)))
        return -ENOMEM;
    s->n++;
    return 0;
}

static void strv_free(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

int frontdoor_anycast_new(struct frontdoor_anycast **out)
{
    return (*out = calloc(1, sizeof(**out))) ? 0 : -ENOMEM;
}

void frontdoor_anycast_free(struct frontdoor_anycast *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_fe; i++) {
        strv_free(&a->fe[i].vips);
        strv_free(&a->fe[i].backends);
    }
    free(a->fe);
    free(a->verdicts);
    free(a->reasons);
    strv_free(&a->vips);
    free(a);
}

/* Words of a line (at most max), pointers into buf (modified). */
static size_t words(char *buf, char **w, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(buf, " \t\r", &save); t && n < max;
         t = strtok_r(NULL, " \t\r", &save))
        w[n++] = t;
    return n;
}

/* One bind address "ADDR:PORT" (or ipv4@/ipv6@ prefixed): the VIP, if it is
 * a specific IP address. */
static int add_bind(struct afront *f, const char *spec)
{
    char buf[ADDR_MAX_LEN + 16];
    unsigned char bin[16];

    if (!strncmp(spec, "ipv4@", 5) || !strncmp(spec, "ipv6@", 5))
        spec += 5;
    snprintf(buf, sizeof(buf), "%s", spec);
    char *colon = strrchr(buf, ':');
    if (!colon)
        return 0;
    *colon = '\0';
    char *addr = buf;
    size_t len = strlen(addr);
    if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
        addr[len - 1] = '\0';
        addr++;
    }
    if (inet_pton(AF_INET, addr, bin) == 1) {
        if (!strcmp(addr, "0.0.0.0"))
            return 0;
    } else if (inet_pton(AF_INET6, addr, bin) == 1) {
        if (!strcmp(addr, "::"))
            return 0;
    } else {
        return 0; /* wildcard, unix socket, name: no VIP */
    }
    return strv_add(&f->vips, addr, strlen(addr), true);
}

static int add_config(struct frontdoor_anycast *a, const char *text, size_t len)
{
    struct afront *cur = NULL;
    size_t pos = 0;
    int rc = 0;

    while (pos < len && rc == 0) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        char line[1024], *w[8];
        snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1),
                 text + pos);
        pos += n + 1;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        bool indented = line[0] == ' ' || line[0] == '\t';
        size_t k = words(line, w, 8);
        if (!k)
            continue;
        if (!indented) { /* a section keyword */
            cur = NULL;
            if ((!strcmp(w[0], "frontend") || !strcmp(w[0], "listen")) && k >= 2) {
                void *p = realloc(a->fe, (a->n_fe + 1) * sizeof(*a->fe));
                if (!p)
                    return -ENOMEM;
                a->fe = p;
                cur = &a->fe[a->n_fe++];
                memset(cur, 0, sizeof(*cur));
                snprintf(cur->name, sizeof(cur->name), "%s", w[1]);
                if (!strcmp(w[0], "listen"))
                    rc = strv_add(&cur->backends, w[1], strlen(w[1]), true);
            }
            continue;
        }
        if (!cur)
            continue;
        if (!strcmp(w[0], "bind") && k >= 2) {
            char *save = NULL;
            for (char *t = strtok_r(w[1], ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save))
                rc = add_bind(cur, t);
        } else if ((!strcmp(w[0], "default_backend") || !strcmp(w[0], "use_backend")) && k >= 2) {
            rc = strv_add(&cur->backends, w[1], strlen(w[1]), true);
        }
    }
    return rc;
}

/* Column index of name in the header words, or -1. */
static int column(char **hdr, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(hdr[i], name))
            return (int)i;
    return -1;
}

/* Split a CSV line (no quoting in `show stat`) into fields, in place. */
static size_t fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static struct apx *proxy_of(struct apx **px, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*px)[i].name, name))
            return &(*px)[i];
    void *p = realloc(*px, (*n + 1) * sizeof(**px));
    if (!p)
        return NULL;
    *px = p;
    struct apx *x = &(*px)[(*n)++];
    memset(x, 0, sizeof(*x));
    snprintf(x->name, sizeof(x->name), "%s", name);
    return x;
}

/* Parse `show stat`: frontend status and UP servers per proxy. */
static int parse_stat(const char *stat, size_t len, struct apx **px, size_t *npx)
{
    char *copy = strndup(stat, len), *save = NULL, *hdr[128], *f[128];
    size_t nh = 0;
    int ipx = -1, isv = -1, ist = -1, itot = -1;

    if (!copy)
        return -ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            char *h = line + 1;
            while (*h == ' ')
                h++;
            nh = fields(h, hdr, 128);
            ipx = column(hdr, nh, "pxname");
            isv = column(hdr, nh, "svname");
            ist = column(hdr, nh, "status");
            itot = column(hdr, nh, "stot");
            continue;
        }
        size_t nf = fields(line, f, 128);
        if (ipx < 0 || isv < 0 || ist < 0 || (size_t)ipx >= nf || (size_t)isv >= nf ||
            (size_t)ist >= nf)
            continue;
        struct apx *x = proxy_of(px, npx, f[ipx]);
        if (!x) {
            free(copy);
            return -ENOMEM;
        }
        if (!strcmp(f[isv], "FRONTEND")) {
            snprintf(x->fe_status, sizeof(x->fe_status), "%s", f[ist]);
            if (itot >= 0 && (size_t)itot < nf)
                x->stot = strtoull(f[itot], NULL, 10);
        } else if (strcmp(f[isv], "BACKEND") != 0 &&
                   (!strncmp(f[ist], "UP", 2) || !strcmp(f[ist], "no check")))
            x->up++;
    }
    free(copy);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Judge the frontends [first, a->n_fe) of one service by its stat. */
static void judge(struct frontdoor_anycast *a, size_t first, const char *service,
                  const struct apx *px, size_t npx, bool answered)
{
    for (size_t f = first; f < a->n_fe; f++) {
        struct afront *fe = &a->fe[f];
        const struct apx *x = NULL;
        fe->fail[0] = '\0';
        if (!answered) {
            snprintf(fe->fail, sizeof(fe->fail), "HAProxy of service %s does not answer", service);
            continue;
        }
        for (size_t k = 0; k < npx && !x; k++)
            if (!strcmp(px[k].name, fe->name))
                x = &px[k];
        if (x && fe->vips.n)
            a->sessions += x->stot;
        if (!x || !x->fe_status[0]) {
            snprintf(fe->fail, sizeof(fe->fail), "frontend %s is not running in HAProxy (%s)",
                     fe->name, service);
            continue;
        }
        if (strcmp(x->fe_status, "OPEN") != 0) {
            snprintf(fe->fail, sizeof(fe->fail), "frontend %s is %s (%s)", fe->name, x->fe_status,
                     service);
            continue;
        }
        for (size_t b = 0; b < fe->backends.n && !fe->fail[0]; b++) {
            const struct apx *be = NULL;
            for (size_t k = 0; k < npx && !be; k++)
                if (!strcmp(px[k].name, fe->backends.v[b]))
                    be = &px[k];
            if (!be || !be->up)
                snprintf(fe->fail, sizeof(fe->fail),
                         "backend %s of frontend %s has no server UP (%s)", fe->backends.v[b],
                         fe->name, service);
        }
    }
}

int frontdoor_anycast_add_service(struct frontdoor_anycast *a, const char *service,
                                  const char *config, size_t config_len, const char *stat,
                                  size_t stat_len)
{
    struct apx *px = NULL;
    size_t npx = 0, first = a->n_fe;
    int rc = add_config(a, config, config_len);

    if (rc == 0 && stat)
        rc = parse_stat(stat, stat_len, &px, &npx);
    if (rc == 0)
        judge(a, first, service, px, npx, stat != NULL);
    free(px);
    return rc;
}

uint64_t frontdoor_anycast_sessions(const struct frontdoor_anycast *a)
{
    return a->sessions;
}

int frontdoor_anycast_verdicts(struct frontdoor_anycast *a, const struct frontdoor_verdict **v,
                               size_t *n)
{
    int rc = 0;

    *v = NULL;
    *n = 0;
    strv_free(&a->vips);
    for (size_t i = 0; i < a->n_fe && rc == 0; i++)
        for (size_t k = 0; k < a->fe[i].vips.n && rc == 0; k++)
            rc = strv_add(&a->vips, a->fe[i].vips.v[k], strlen(a->fe[i].vips.v[k]), true);
    if (rc < 0)
        return rc;
    if (a->vips.n)
        qsort(a->vips.v, a->vips.n, sizeof(*a->vips.v), cmp_str);
    free(a->verdicts);
    free(a->reasons);
    a->verdicts = calloc(a->vips.n + 1, sizeof(*a->verdicts));
    a->reasons = calloc(a->vips.n + 1, sizeof(*a->reasons));
    if (!a->verdicts || !a->reasons)
        return -ENOMEM;
    for (size_t i = 0; i < a->vips.n; i++) {
        const char *vip = a->vips.v[i];
        char *why = a->reasons[i];
        why[0] = '\0';
        for (size_t f = 0; f < a->n_fe && !why[0]; f++) {
            const struct afront *fe = &a->fe[f];
            for (size_t k = 0; k < fe->vips.n && !why[0]; k++)
                if (!strcmp(fe->vips.v[k], vip) && fe->fail[0])
                    snprintf(why, sizeof(a->reasons[i]), "%s", fe->fail);
        }
        a->verdicts[i] = (struct frontdoor_verdict){
            .address = vip, .ok = !why[0], .reason = why[0] ? why : NULL};
    }
    *v = a->verdicts;
    *n = a->vips.n;
    return 0;
}
