/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director_main_status: `drover-watcher director status [--json]`, what
 * the kernel forwards with (the maps drover-director pinned for --dev) and
 * what was applied (the director snapshot), side by side per proxy. Reads
 * only; works from any process on the host.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "director_main_internal.h"
#include "director_publish.h"
#include "director_snapshot.h"
#include "timefmt.h"

/* The maps drover-director pinned for dev (director_pin_dir); NULL
 * without a usable dev. */
static char *pin_dir(const char *pin_root, const char *dev)
{
    char buf[4096];

    if (director_pin_dir(pin_root, dev, buf, sizeof(buf)) < 0)
        return NULL;
    return strdup(buf);
}

/* A proxy of the live generation with what the snapshot knows of it. */
struct live_proxy {
    const struct director_live_proxy *live;
    const struct director_proxy_spec *spec;
    const struct director_saved_proxy *saved;
};

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The status page says "never" for a time not yet reached (0). */
static void fmt_time(int64_t t, char *buf, size_t len)
{
    if (t <= 0 || timefmt_format_rfc3339(t, buf, len) < 0)
        snprintf(buf, len, "never");
}

int director_main_status(const char *dev, const char *pin_root, const char *snapshot_file,
                         bool json)
{
    struct director_saved s = {0};
    struct director_live l = {0};
    struct live_proxy *lp = calloc(DIRECTOR_TABLE_MAX_PROXIES, sizeof(*lp));
    char err[512], *dir = NULL;
    bool have_maps = false, have_snap = false;
    int rc = 1;

    if (!lp)
        goto out;
    if (!dev || !*dev) {
        fprintf(stderr, "drover-watcher director status: --dev is required\n");
        rc = 2;
        goto out;
    }
    if (!(dir = pin_dir(pin_root, dev))) {
        fprintf(stderr, "drover-watcher director status: --dev '%s' names no pin directory\n", dev);
        rc = 2;
        goto out;
    }
    if (director_snapshot_load(snapshot_file, &s, err, sizeof(err)) == 0)
        have_snap = true;
    else if (!json)
        fprintf(stderr, "note: %s\n", err);
    if (director_live_read(dir, false, &l) == 0) {
        have_maps = true;
        for (uint32_t i = 0; i < l.n_listed; i++) {
            lp[i].live = &l.proxies[i];
            for (size_t k = 0; have_snap && k < s.inputs->n_proxies; k++) {
                if (strcmp(s.inputs->proxies[k].address, l.proxies[i].address) == 0 &&
                    s.inputs->proxies[k].state != DIRECTOR_PROXY_INACTIVE) {
                    lp[i].spec = &s.inputs->proxies[k];
                    lp[i].saved = &s.proxies[k];
                }
            }
        }
    } else if (!json) {
        fprintf(stderr, "note: no director maps pinned in %s\n", dir);
    }
    if (!have_maps && !have_snap) {
        fprintf(stderr, "drover-watcher director status: neither maps in %s nor snapshot %s\n", dir,
                snapshot_file);
        goto out;
    }
    bool in_sync = have_maps && have_snap && l.checksum == s.generation_checksum;
    char applied[32], changed[32], held_since[32];
    fmt_time(s.applied_unix, applied, sizeof(applied));
    fmt_time(s.last_change_unix, changed, sizeof(changed));
    fmt_time(s.held_since_unix, held_since, sizeof(held_since));
    uint32_t n = have_maps ? l.n_listed : 0;
    if (json) {
        FILE *f = stdout;
        fprintf(f, "{\"dev\":");
        json_str(f, dev);
        fprintf(f, ",\"maps\":%s", have_maps ? "true" : "false");
        if (have_maps)
            fprintf(f,
                    ",\"generation\":%u,\"generation_checksum\":\"%016llx\",\"gue_port\":%u,"
                    "\"rows_without_proxy\":%u",
                    l.generation, (unsigned long long)l.checksum, l.gue_port, l.rows_without_proxy);
        fprintf(f, ",\"snapshot\":%s", have_snap ? "true" : "false");
        if (have_snap) {
            fprintf(f, ",\"cluster\":");
            json_str(f, s.cluster);
            fprintf(f, ",\"table_checksum\":\"%016llx\",\"in_sync\":%s,\"tier\":",
                    (unsigned long long)s.table_checksum, in_sync ? "true" : "false");
            json_str(f, s.tier);
            fprintf(f,
                    ",\"balance\":%.4f,\"applied\":\"%s\",\"last_change\":\"%s\",\"held\":%s,"
                    "\"held_moved_share\":%.4f,\"held_since\":\"%s\",\"last_error\":",
                    s.balance, applied, changed, s.held ? "true" : "false", s.held_moved_share,
                    held_since);
            json_str(f, s.last_error);
            fprintf(f, ",\"vips\":%zu", s.inputs->n_vips);
        }
        fprintf(f, ",\"proxies\":[");
        bool first = true;
        for (uint32_t i = 0; i < n; i++) {
            fprintf(f, "%s{\"host\":", first ? "" : ",");
            first = false;
            json_str(f, lp[i].spec ? lp[i].spec->host : "");
            fprintf(f,
                    ",\"address\":\"%s\",\"state\":\"%s\",\"healthy\":%s,"
                    "\"primary_rows\":%u,\"secondary_rows\":%u}",
                    lp[i].live->address, lp[i].live->state,
                    lp[i].saved ? (lp[i].saved->healthy ? "true" : "false") : "null",
                    lp[i].live->primary_rows, lp[i].live->secondary_rows);
        }
        /* proxies that are in KV but not in the maps (inactive) */
        for (size_t k = 0; have_snap && k < s.inputs->n_proxies; k++) {
            const struct director_proxy_spec *p = &s.inputs->proxies[k];
            bool listed = false;
            for (uint32_t i = 0; i < n && !listed; i++)
                listed = lp[i].spec == p;
            if (listed)
                continue;
            fprintf(f, "%s{\"host\":", first ? "" : ",");
            first = false;
            json_str(f, p->host);
            fprintf(f,
                    ",\"address\":\"%s\",\"state\":\"%s\",\"healthy\":%s,"
                    "\"primary_rows\":0,\"secondary_rows\":0}",
                    p->address, director_proxy_state_name(p->state),
                    s.proxies[k].healthy ? "true" : "false");
        }
        fprintf(f, "]}\n");
    } else {
        printf("dev %s\n", dev);
        if (have_maps)
            printf("generation %u\ngeneration_checksum %016llx\nrows_without_proxy %u\n",
                   l.generation, (unsigned long long)l.checksum, l.rows_without_proxy);
        if (have_snap) {
            printf("cluster %s\ntable_checksum %016llx\nin_sync %s\ntier %s\nbalance %.4f\n"
                   "applied %s\nlast_change %s\nheld %s",
                   s.cluster, (unsigned long long)s.table_checksum, in_sync ? "yes" : "no", s.tier,
                   s.balance, applied, changed, s.held ? "yes" : "no");
            if (s.held)
                printf(" (would move %.1f%% of rows, since %s)", 100 * s.held_moved_share,
                       held_since);
            printf("\nvips %zu\n", s.inputs->n_vips);
            if (s.last_error && *s.last_error)
                printf("last_error %s\n", s.last_error);
        }
        printf("%-24s %-40s %-9s %-8s %8s %8s\n", "HOST", "ADDRESS", "STATE", "HEALTH", "PRIMARY",
               "SECOND");
        for (uint32_t i = 0; i < n; i++)
            printf("%-24s %-40s %-9s %-8s %8u %8u\n", lp[i].spec ? lp[i].spec->host : "-",
                   lp[i].live->address, lp[i].live->state,
                   lp[i].saved ? (lp[i].saved->healthy ? "up" : "down") : "?",
                   lp[i].live->primary_rows, lp[i].live->secondary_rows);
        for (size_t k = 0; have_snap && k < s.inputs->n_proxies; k++) {
            const struct director_proxy_spec *p = &s.inputs->proxies[k];
            bool listed = false;
            for (uint32_t i = 0; i < n && !listed; i++)
                listed = lp[i].spec == p;
            if (!listed)
                printf("%-24s %-40s %-9s %-8s %8u %8u\n", p->host, p->address,
                       director_proxy_state_name(p->state), s.proxies[k].healthy ? "up" : "down",
                       0u, 0u);
        }
    }
    rc = 0;
out:
    director_saved_clear(&s);
    director_live_free(&l);
    free(lp);
    free(dir);
    return rc;
}
