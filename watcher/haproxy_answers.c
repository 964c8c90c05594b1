/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_answers: pure parsers of HAProxy's CLI answers and the
 * server-state filter (see haproxy_answers.h). No I/O.
 */
#include "haproxy_answers.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "haproxy_value.h"
#include "str_affix.h"

/* ---- framing and verdicts ----------------------------------------------- */

size_t haproxy_split_prompt_answers(char *buf, size_t len, char **answers, size_t want)
{
    size_t pos = 0, k = 0;
    while (k < want && pos < len) {
        if (len - pos >= 3 && memcmp(buf + pos, "\n> ", 3) == 0) {
            buf[pos] = 0;
            answers[k++] = buf + pos;
            pos += 3;
            continue;
        }
        char *end = memmem(buf + pos, len - pos, "\n\n> ", 4);
        if (!end)
            break;
        end[1] = 0; /* keep the answer's own "\n" */
        answers[k++] = buf + pos;
        pos = (size_t)(end - buf) + 4;
    }
    return k;
}

/* First line of an answer, for messages (static buffer per call site is
 * not needed: callers copy it right away into err). */
static void first_line(const char *answer, char *buf, size_t len)
{
    size_t n = strcspn(answer, "\n");
    if (n >= len)
        n = len - 1;
    memcpy(buf, answer, n);
    buf[n] = 0;
}

int haproxy_runtime_check_answer(const char *cmd, const char *answer, char *err, size_t errlen)
{
    const char *p = answer;
    while (*p == '\n' || *p == ' ')
        p++;
    if (!*p)
        return 0;
    /* `set server B/S addr` reports what it changed (or that nothing had
     * to), prefixed by what changed; failures say "Invalid ..." */
    if (str_has_prefix(cmd, "set server ") && strstr(cmd, " addr ") &&
        (str_has_prefix(p, "IP changed from") || str_has_prefix(p, "port changed from") ||
         str_has_prefix(p, "no need to change")))
        return 0;
    if (str_has_prefix(cmd, "show ") &&
        !(str_has_prefix(p, "No such") || str_has_prefix(p, "Can't find") ||
          str_has_prefix(p, "Unknown command") || str_has_prefix(p, "Permission denied")))
        return 0;
    char line[200];
    first_line(p, line, sizeof(line));
    errmsg_set(err, errlen, "haproxy: `%s`: %s", cmd, line);
    return -EINVAL;
}

/* ---- show servers state ------------------------------------------------- */

enum ss_col {
    SS_BE_NAME,
    SS_SRV_NAME,
    SS_ADDR,
    SS_OP,
    SS_ADMIN,
    SS_UWEIGHT,
    SS_IWEIGHT,
    SS_AGENT,
    SS_PORT,
    SS_NCOLS,
};
static const char *const ss_names[SS_NCOLS] = {
    "be_name",     "srv_name",    "srv_addr",        "srv_op_state", "srv_admin_state",
    "srv_uweight", "srv_iweight", "srv_agent_state", "srv_port",
};

#define SS_MAX_FIELDS 64

static size_t split_words(char *line, char **w, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
        w[n++] = t;
    return n;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    if (*s == '+') /* HAProxy prints port 0 of a 0.0.0.0:0 server as "+0" at times */
        s++;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

int haproxy_parse_servers_state(const char *text, size_t len, const char *backend,
                                struct slot_live **out, size_t *n, char *err, size_t errlen)
{
    char *copy = strndup(text, len), *save = NULL;
    int idx[SS_NCOLS];
    bool have_version = false, have_header = false;
    struct slot_live *v = NULL;
    size_t nv = 0, cap = 0, lineno = 0;
    int rc = -EINVAL;

    *out = NULL;
    *n = 0;
    if (!copy)
        return -ENOMEM;
    for (int c = 0; c < SS_NCOLS; c++)
        idx[c] = -1;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *w[SS_MAX_FIELDS];
        size_t nw;
        lineno++;
        if (!have_version) {
            if (strcmp(line, "1") != 0) {
                errmsg_set(err, errlen,
                           "haproxy: show servers state: format version \"%.20s\", expected 1",
                           line);
                goto out;
            }
            have_version = true;
            continue;
        }
        if (line[0] == '#') {
            nw = split_words(line + 1, w, SS_MAX_FIELDS);
            for (size_t i = 0; i < nw; i++)
                for (int c = 0; c < SS_NCOLS; c++)
                    if (strcmp(w[i], ss_names[c]) == 0)
                        idx[c] = (int)i;
            for (int c = 0; c < SS_NCOLS; c++)
                if (idx[c] < 0) {
                    errmsg_set(err, errlen,
                               "haproxy: show servers state: no column %s in the header",
                               ss_names[c]);
                    goto out;
                }
            have_header = true;
            continue;
        }
        if (!have_header) {
            errmsg_set(err, errlen, "haproxy: show servers state: line %zu before the header",
                       lineno);
            goto out;
        }
        nw = split_words(line, w, SS_MAX_FIELDS);
        if (nw == 0)
            continue;
        bool short_line = false;
        for (int c = 0; c < SS_NCOLS; c++)
            short_line |= (size_t)idx[c] >= nw;
        if (short_line) {
            errmsg_set(err, errlen, "haproxy: show servers state: line %zu has %zu fields", lineno,
                       nw);
            goto out;
        }
        if (backend && strcmp(w[idx[SS_BE_NAME]], backend) != 0)
            continue;
        if (nv == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct slot_live *nvp = realloc(v, ncap * sizeof(*v));
            if (!nvp) {
                rc = -ENOMEM;
                goto out;
            }
            v = nvp;
            cap = ncap;
        }
        struct slot_live *l = &v[nv];
        long op, adm, uw, iw, ag, port;
        memset(l, 0, sizeof(*l));
        if (strlen(w[idx[SS_SRV_NAME]]) >= sizeof(l->name) ||
            strlen(w[idx[SS_ADDR]]) >= sizeof(l->address) ||
            parse_int(w[idx[SS_OP]], 0, 255, &op) < 0 ||
            parse_int(w[idx[SS_ADMIN]], 0, 0xffff, &adm) < 0 ||
            parse_int(w[idx[SS_UWEIGHT]], 0, 256, &uw) < 0 ||
            parse_int(w[idx[SS_IWEIGHT]], 0, 256, &iw) < 0 ||
            parse_int(w[idx[SS_AGENT]], 0, 0xffff, &ag) < 0 ||
            parse_int(w[idx[SS_PORT]], 0, 65535, &port) < 0) {
            errmsg_set(err, errlen, "haproxy: show servers state: bad field on line %zu", lineno);
            goto out;
        }
        strcpy(l->name, w[idx[SS_SRV_NAME]]);
        strcpy(l->address, w[idx[SS_ADDR]]);
        l->op_state = (int)op;
        l->admin = (unsigned)adm;
        l->uweight = (int)uw;
        l->iweight = (int)iw;
        l->agent_state = (unsigned)ag;
        l->port = (uint16_t)port;
        nv++;
    }
    if (!have_version) {
        errmsg_set(err, errlen, "haproxy: show servers state: empty answer");
        goto out;
    }
    *out = v;
    *n = nv;
    v = NULL;
    rc = 0;
out:
    free(v);
    free(copy);
    return rc;
}

int haproxy_parse_servers_state_answer(const char *cmd, const char *answer, const char *backend,
                                       struct slot_live **live, size_t *n, char *err, size_t errlen)
{
    if (str_has_prefix(answer, "Can't find backend") || str_has_prefix(answer, "No such backend")) {
        errmsg_set(err, errlen, "haproxy: `%s`: no backend %s in the running config", cmd, backend);
        return -ENOENT;
    }
    int rc = haproxy_runtime_check_answer(cmd, answer, err, errlen);
    if (rc < 0)
        return rc;
    return haproxy_parse_servers_state(answer, strlen(answer), backend, live, n, err, errlen);
}

/* ---- state file filter --------------------------------------------------- */

enum sf_col { SF_BE, SF_SRV, SF_ADDR, SF_PORT, SF_ADMIN, SF_NCOLS };
static const char *const sf_names[SF_NCOLS] = {"be_name", "srv_name", "srv_addr", "srv_port",
                                               "srv_admin_state"};

/* Keep a state line of a placed backend? See haproxy_runtime_reload_placed. */
static bool sf_keep(const struct slot_assignment *a, char **w, const int *idx)
{
    size_t s;
    long port, admin;
    if (slots_parse_name(w[idx[SF_SRV]], &s) < 0 || s >= a->nslots)
        return true; /* not a slot of this placement: HAProxy sorts it out */
    if (parse_int(w[idx[SF_PORT]], 0, 65535, &port) < 0 ||
        parse_int(w[idx[SF_ADMIN]], 0, 0xffff, &admin) < 0)
        return false;
    if (!a->slots[s].used)
        return admin & SLOTS_ADMF_FMAINT;
    const struct slot_server *d = &a->slots[s].srv;
    char ip[64];
    size_t iplen;
    const char *why;
    if (haproxy_value_format(HAPROXY_VALUE_IP, d->address, strlen(d->address), ip, sizeof(ip),
                             &iplen, &why) < 0)
        return false;
    return strcmp(w[idx[SF_ADDR]], ip) == 0 && port == d->port;
}

/* What a line visitor of state_rewrite decides. */
enum sf_verdict {
    SF_KEEP,    /* the line as it is */
    SF_DROP,    /* left out */
    SF_REWRITE, /* the words again, joined by one space (the visitor changed some) */
};
/* w[0..nw) are the words of one server line, idx[] the columns (every one
 * present); scratch (16 bytes) may hold a word the visitor puts into w. */
typedef enum sf_verdict (*sf_visit_fn)(void *arg, char **w, size_t nw, const int *idx,
                                       char *scratch);

/* Walk a `show servers state` text (version line, header, server lines)
 * and copy it into *out as the visitor says; *touched counts the lines
 * dropped or rewritten. 0, -EINVAL (not a state dump) or -ENOMEM. */
static int state_rewrite(const char *text, size_t len, sf_visit_fn visit, void *arg, char **out,
                         size_t *touched)
{
    /* a rewritten line is at most 4 characters longer (a 5-digit admin
     * state for a 1-digit one) and a server line is longer than that */
    char *res = malloc(2 * len + 16), *w_at = res;
    char *line_copy = NULL;
    int idx[SF_NCOLS];
    bool have_version = false, have_header = false;
    size_t pos = 0;
    int rc = -EINVAL;

    *out = NULL;
    *touched = 0;
    if (!res)
        return -ENOMEM;
    for (int c = 0; c < SF_NCOLS; c++)
        idx[c] = -1;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        size_t with_nl = nl ? ll + 1 : ll;
        enum sf_verdict v = SF_KEEP;
        char *w[SS_MAX_FIELDS];
        size_t nw = 0;
        char scratch[16];

        pos += with_nl;
        free(line_copy);
        line_copy = strndup(line, ll);
        if (!line_copy) {
            rc = -ENOMEM;
            goto out;
        }
        if (!have_version) {
            if (strcmp(line_copy, "1") != 0)
                goto out;
            have_version = true;
        } else if (line_copy[0] == '#') {
            nw = split_words(line_copy + 1, w, SS_MAX_FIELDS);
            for (size_t i = 0; i < nw; i++)
                for (int c = 0; c < SF_NCOLS; c++)
                    if (strcmp(w[i], sf_names[c]) == 0)
                        idx[c] = (int)i;
            for (int c = 0; c < SF_NCOLS; c++)
                if (idx[c] < 0)
                    goto out;
            have_header = true;
        } else if (ll > 0) {
            if (!have_header)
                goto out;
            nw = split_words(line_copy, w, SS_MAX_FIELDS);
            for (int c = 0; c < SF_NCOLS && nw; c++)
                if ((size_t)idx[c] >= nw)
                    goto out;
            if (nw)
                v = visit(arg, w, nw, idx, scratch);
            /* a line with more words than were split cannot be written
             * again whole: keep it as HAProxy wrote it */
            if (v == SF_REWRITE && nw == SS_MAX_FIELDS)
                v = SF_KEEP;
        }
        if (v == SF_KEEP) {
            memcpy(w_at, line, with_nl);
            w_at += with_nl;
            continue;
        }
        (*touched)++;
        for (size_t i = 0; v == SF_REWRITE && i < nw; i++) {
            size_t wl = strlen(w[i]);
            if (i)
                *w_at++ = ' ';
            memcpy(w_at, w[i], wl);
            w_at += wl;
        }
        if (v == SF_REWRITE && nl)
            *w_at++ = '\n';
    }
    if (!have_version)
        goto out;
    *w_at = 0;
    *out = res;
    res = NULL;
    rc = 0;
out:
    free(line_copy);
    free(res);
    return rc;
}

struct sf_filter {
    const struct haproxy_placement *p;
    size_t n;
};

static enum sf_verdict sf_filter_visit(void *arg, char **w, size_t nw, const int *idx,
                                       char *scratch)
{
    const struct sf_filter *f = arg;
    (void)nw;
    (void)scratch;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(w[idx[SF_BE]], f->p[i].backend) == 0)
            return sf_keep(f->p[i].a, w, idx) ? SF_KEEP : SF_DROP;
    return SF_KEEP;
}

int haproxy_state_filter(const char *text, size_t len, const struct haproxy_placement *p, size_t n,
                         char **out, size_t *dropped)
{
    struct sf_filter f = {p, n};
    return state_rewrite(text, len, sf_filter_visit, &f, out, dropped);
}

struct sf_admin {
    haproxy_admin_fn fn;
    void *arg;
};

static enum sf_verdict sf_admin_visit(void *arg, char **w, size_t nw, const int *idx, char *scratch)
{
    const struct sf_admin *a = arg;
    long admin, want;
    (void)nw;
    if (parse_int(w[idx[SF_ADMIN]], 0, 0xffff, &admin) < 0)
        return SF_KEEP; /* HAProxy's own business: it reads it back as it wrote it */
    switch (a->fn(a->arg, w[idx[SF_BE]], w[idx[SF_SRV]])) {
    case HAPROXY_ADMIN_READY:
        want = admin & ~(long)(SLOTS_ADMF_FMAINT | SLOTS_ADMF_FDRAIN);
        break;
    case HAPROXY_ADMIN_DRAIN:
        want = (admin & ~(long)SLOTS_ADMF_FMAINT) | SLOTS_ADMF_FDRAIN;
        break;
    case HAPROXY_ADMIN_MAINT:
        want = admin | SLOTS_ADMF_FMAINT;
        break;
    default:
        return SF_KEEP;
    }
    if (want == admin)
        return SF_KEEP;
    snprintf(scratch, 16, "%ld", want);
    w[idx[SF_ADMIN]] = scratch;
    return SF_REWRITE;
}

int haproxy_state_set_admin(const char *text, size_t len, haproxy_admin_fn fn, void *arg,
                            char **out, size_t *changed)
{
    struct sf_admin a = {fn, arg};
    return state_rewrite(text, len, sf_admin_visit, &a, out, changed);
}

/* ---- show proc ---------------------------------------------------------- */

void haproxy_proc_list_free(struct haproxy_proc_list *l)
{
    free(l->workers);
    memset(l, 0, sizeof(*l));
}

enum proc_col { PC_PID, PC_TYPE, PC_RELPID, PC_RELOADS, PC_UPTIME, PC_VERSION, PC_OTHER };

int haproxy_parse_show_proc(const char *text, size_t len, struct haproxy_proc_list *out, char *err,
                            size_t errlen)
{
    char *copy = strndup(text, len), *save = NULL;
    enum proc_col cols[16];
    size_t ncols = 0, cap = 0;
    bool have_master = false;
    int section = 0; /* 0 master, 1 workers, 2 programs/other */
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    if (!copy)
        return -ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *w[24];
        size_t nw;
        if (line[0] == '#') {
            if (strncmp(line, "#<", 2) == 0) {
                /* header: "#<PID> <type> [<relative PID>] <reloads> <uptime> <version>" */
                char *r = strstr(line, "<relative PID>");
                if (r)
                    r[9] = '_';
                nw = split_words(line + 1, w, 16);
                ncols = 0;
                for (size_t i = 0; i < nw; i++) {
                    enum proc_col c = PC_OTHER;
                    if (strcmp(w[i], "<PID>") == 0)
                        c = PC_PID;
                    else if (strcmp(w[i], "<type>") == 0)
                        c = PC_TYPE;
                    else if (strcmp(w[i], "<relative_PID>") == 0)
                        c = PC_RELPID;
                    else if (strcmp(w[i], "<reloads>") == 0)
                        c = PC_RELOADS;
                    else if (strcmp(w[i], "<uptime>") == 0)
                        c = PC_UPTIME;
                    else if (strcmp(w[i], "<version>") == 0)
                        c = PC_VERSION;
                    cols[ncols++] = c;
                }
            } else if (strstr(line, "workers")) {
                section = 1;
            } else {
                section = 2;
            }
            continue;
        }
        if (section == 2)
            continue;
        if (ncols == 0) {
            errmsg_set(err, errlen, "haproxy: show proc: process line before the header");
            goto out;
        }
        nw = split_words(line, w, 24);
        if (nw == 0)
            continue;
        struct haproxy_proc p;
        memset(&p, 0, sizeof(p));
        size_t wi = 0;
        for (size_t c = 0; c < ncols && wi < nw; c++, wi++) {
            long v;
            switch (cols[c]) {
            case PC_PID:
                if (parse_int(w[wi], 1, 0x7fffffff, &v) < 0)
                    goto bad;
                p.pid = (int)v;
                break;
            case PC_TYPE:
                snprintf(p.type, sizeof(p.type), "%s", w[wi]);
                break;
            case PC_RELPID:
                if (parse_int(w[wi], 0, 0x7fffffff, &v) == 0)
                    p.relative_pid = (int)v;
                break;
            case PC_RELOADS:
                if (parse_int(w[wi], 0, 0x7fffffff, &v) < 0)
                    goto bad;
                p.reloads = (int)v;
                /* the master adds "[failed: N]" */
                if (wi + 2 < nw && strcmp(w[wi + 1], "[failed:") == 0) {
                    char *end;
                    long f = strtol(w[wi + 2], &end, 10);
                    if (end == w[wi + 2] || strcmp(end, "]") != 0 || f < 0)
                        goto bad;
                    p.failed_reloads = (int)f;
                    wi += 2;
                }
                break;
            case PC_UPTIME:
                snprintf(p.uptime, sizeof(p.uptime), "%s", w[wi]);
                break;
            case PC_VERSION:
                snprintf(p.version, sizeof(p.version), "%s", w[wi]);
                break;
            case PC_OTHER:
                break;
            }
        }
        if (!p.pid)
            goto bad;
        if (strcmp(p.type, "master") == 0) {
            out->master = p;
            have_master = true;
        } else if (strcmp(p.type, "worker") == 0) {
            if (out->n_workers == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                struct haproxy_proc *nv = realloc(out->workers, ncap * sizeof(*nv));
                if (!nv) {
                    rc = -ENOMEM;
                    goto out;
                }
                out->workers = nv;
                cap = ncap;
            }
            out->workers[out->n_workers++] = p;
        }
        continue;
    bad:
        errmsg_set(err, errlen, "haproxy: show proc: cannot parse \"%.80s\"", line);
        goto out;
    }
    if (!have_master) {
        errmsg_set(err, errlen, "haproxy: show proc: no master line");
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        haproxy_proc_list_free(out);
    free(copy);
    return rc;
}

/* ---- show stat (error counters) ----------------------------------------- */

enum stat_col { ST_SVNAME, ST_REQ_TOT, ST_EREQ, ST_ECON, ST_ERESP, ST_5XX, ST_NCOLS };
static const char *const st_names[ST_NCOLS] = {"svname", "req_tot", "ereq",
                                               "econ",   "eresp",   "hrsp_5xx"};

/* Column index of each name in the CSV header h (modified in place). */
static int stat_header(char *h, long idx[ST_NCOLS], char *err, size_t errlen)
{
    long col = 0;
    for (int k = 0; k < ST_NCOLS; k++)
        idx[k] = -1;
    while (*h == ' ')
        h++;
    for (char *f = h, *next; f; f = next, col++) {
        if ((next = strchr(f, ',')))
            *next++ = '\0';
        for (int k = 0; k < ST_NCOLS; k++)
            if (idx[k] < 0 && strcmp(f, st_names[k]) == 0)
                idx[k] = col;
    }
    for (int k = 0; k < ST_NCOLS; k++)
        if (idx[k] < 0) {
            errmsg_set(err, errlen, "haproxy: show stat: no column %s in the header", st_names[k]);
            return -EINVAL;
        }
    return 0;
}

/* The fields of one data row at the header's columns ("" when the row is
 * shorter). Pointers into line (modified in place). */
static void stat_row(char *line, const long idx[ST_NCOLS], const char *val[ST_NCOLS])
{
    long col = 0;
    for (int k = 0; k < ST_NCOLS; k++)
        val[k] = "";
    for (char *f = line, *next; f; f = next, col++) {
        if ((next = strchr(f, ',')))
            *next++ = '\0';
        for (int k = 0; k < ST_NCOLS; k++)
            if (idx[k] == col)
                val[k] = f;
    }
}

static int stat_add(uint64_t *sum, const char *field, const char *name, unsigned line, char *err,
                    size_t errlen)
{
    char *end;
    if (!*field)
        return 0;
    errno = 0;
    unsigned long long v = strtoull(field, &end, 10);
    if (errno || *end || field[0] == '-' || field[0] == '+' || field[0] == ' ') {
        errmsg_set(err, errlen, "haproxy: show stat: line %u: %s \"%.40s\" is not a counter", line,
                   name, field);
        return -EINVAL;
    }
    *sum += (uint64_t)v;
    return 0;
}

int haproxy_parse_stat_errors(const char *text, size_t len, struct haproxy_error_counters *out,
                              char *err, size_t errlen)
{
    char *copy = strndup(text, len), *save = NULL;
    long idx[ST_NCOLS];
    bool have_header = false;
    unsigned lineno = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!copy)
        return -ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        const char *val[ST_NCOLS];
        lineno++;
        if (line[0] == '#') {
            rc = stat_header(line + 1, idx, err, errlen);
            have_header = rc == 0;
            continue;
        }
        if (!have_header) {
            errmsg_set(err, errlen, "haproxy: show stat: line %u comes before the header", lineno);
            rc = -EINVAL;
            break;
        }
        stat_row(line, idx, val);
        /* frontends see what clients sent and got; backends what servers did */
        if (strcmp(val[ST_SVNAME], "FRONTEND") == 0) {
            if ((rc = stat_add(&out->requests, val[ST_REQ_TOT], "req_tot", lineno, err, errlen)) ||
                (rc = stat_add(&out->req_errors, val[ST_EREQ], "ereq", lineno, err, errlen)) ||
                (rc = stat_add(&out->http_5xx, val[ST_5XX], "hrsp_5xx", lineno, err, errlen)))
                break;
        } else if (strcmp(val[ST_SVNAME], "BACKEND") == 0) {
            if ((rc = stat_add(&out->conn_errors, val[ST_ECON], "econ", lineno, err, errlen)) ||
                (rc = stat_add(&out->resp_errors, val[ST_ERESP], "eresp", lineno, err, errlen)))
                break;
        }
    }
    if (rc == 0 && !have_header) {
        errmsg_set(err, errlen, "haproxy: show stat: no header line");
        rc = -EINVAL;
    }
    free(copy);
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    return rc;
}
