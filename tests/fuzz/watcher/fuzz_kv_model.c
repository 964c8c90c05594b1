/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the watcher's KV value parsing (kv_model) and what is
 * built from it. Input: "<key>\n<value>" (key relative to the root
 * "drover/v1/"). Properties checked:
 *  - kv_model_add never crashes or leaks, whatever the key or value;
 *  - an entry it accepts builds a snapshot, and every accepted HAProxy
 *    service renders with the shipped templates (strict variables): the
 *    model's validation is at least as strict as the templates' value
 *    filters, so a value refused at render time is a kv_model bug;
 *  - the agent-checker state renders for any accepted input;
 *  - the crt-list of every accepted TLS frontend has one line per
 *    certificate and no options but the entries' own.
 *
 * A render is a pure function of the template and its data, and most
 * inputs (a value that is no valid JSON, an entry of another kind) leave
 * the fixed selecting service's data as it was: rendering it again took
 * most of the CPU per input. So the data rendered last per template and
 * mode is kept, and an identical one is not rendered twice (render_seen()).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "snapshot.h"
#include "template.h"

static struct template_set *set;

static const char *const clusters[] = {"prod-a"};
static const struct kv_model_opts opts = {
    .root = "drover/v1/",
    .haproxy_cluster = "edge",
    .kube_clusters = clusters,
    .n_kube_clusters = 1,
};

static const struct snapshot_render_opts ro = {
    .haproxy_cluster = "edge",
    .stats_socket = "/run/drover/x.sock",
    .server_state_file = "/var/lib/drover/x.state",
    .maxconn = 1000,
    .agent_addr = "127.0.0.1",
    .agent_port = 5555,
    .agent_inter_ms = 2000,
    .timeout_connect_ms = 5000,
    .timeout_client_ms = 30000,
    .timeout_server_ms = 30000,
    .map_dir = "/etc/haproxy",
};

/* A definition with a class selector: a fuzzed kube entry in class
 * "public" goes through selection (kv_model_finish), a fuzzed definition
 * with "select" picks the fixed kube entry. */
static const char *selecting_service =
    "{\"frontends\":[{\"name\":\"fe_sel\",\"bind\":[\"127.0.0.1:80\"]}],\"backends\":[],"
    "\"select\":[{\"class\":\"public\",\"frontend\":\"fe_sel\"}]}";

static const char *node_entry = "{\"addresses\":[\"10.0.0.1\",\"fd00::1\"],\"eligible\":true}";

/* The data last rendered (and accepted) per template slot and mode: a
 * few entries, since an input has its own service and the fixed one. */
#define SEEN_SLOTS 4
static struct {
    char *tpl;
    char *data; /* compact JSON, sorted keys */
} seen[2][SEEN_SLOTS];

/* True if template tpl already rendered data d in this mode; else
 * remembers d as tpl's (replacing the oldest slot) and returns false.
 * Out of memory: false, nothing remembered. */
static bool render_seen(int structure, const char *tpl, const json_t *d)
{
    char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return false;
    for (int i = 0; i < SEEN_SLOTS; i++) {
        if (seen[structure][i].tpl && strcmp(seen[structure][i].tpl, tpl) == 0 &&
            strcmp(seen[structure][i].data, text) == 0) {
            free(text);
            return true;
        }
    }
    char *name = strdup(tpl);
    if (!name) {
        free(text);
        return false;
    }
    free(seen[structure][SEEN_SLOTS - 1].tpl);
    free(seen[structure][SEEN_SLOTS - 1].data);
    memmove(&seen[structure][1], &seen[structure][0], (SEEN_SLOTS - 1) * sizeof(seen[0][0]));
    seen[structure][0].tpl = name;
    seen[structure][0].data = text;
    return false;
}

/* The crt-list of an accepted TLS frontend: one line per certificate,
 * no control character, and no '[' but the one opening an entry's
 * options (a value that could open options or add an entry of its own
 * is a kv_model bug). */
static void check_crt_list(const struct kvm_frontend *f)
{
    char *text = snapshot_crt_list_text(f);
    size_t lines = 0, opens = 0;
    if (!text)
        return; /* out of memory only */
    for (const char *p = text; *p; p++) {
        lines += *p == '\n';
        opens += *p == '[';
        if ((unsigned char)*p < 0x20 && *p != '\n')
            abort();
    }
    for (size_t i = 0; i < f->n_tls_certs; i++)
        opens -= f->tls_certs[i].alpn != NULL;
    if (lines != f->n_tls_certs || opens != 0)
        abort();
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    struct snapshot_entry *e;
    struct snapshot *snap = NULL;

    if (!set) {
        struct template_options to;
        struct template_error terr;
        log_set_level(LOGL_ERROR);
        template_options_init(&to);
        to.strict_variables = true;
        if (template_set_new(&to, &set) < 0 ||
            template_set_load_dir(set, DROVER_TEMPLATE_DIR, &terr) < 0)
            abort();
    }
    if (!nl || (size_t)(nl - (const char *)data) > 512)
        return 0;
    size_t klen = (size_t)(nl - (const char *)data);
    e = calloc(4, sizeof(*e));
    if (!e)
        return 0;
    e[0].key = malloc(klen + 11);
    e[0].value = malloc(size - klen);
    e[1].key = strdup("drover/v1/kube/prod-a/nodes/n1");
    e[1].value = strdup(node_entry);
    e[2].key = strdup("drover/v1/kube/prod-a/services/default/web/http");
    e[2].value = strdup("{\"node_port\":30080,\"health_check_port\":31000,"
                        "\"load_balancer_class\":\"public\",\"backend_protocol\":\"http\","
                        "\"dns_name\":\"web.example.com\"}");
    e[3].key = strdup("drover/v1/haproxy/edge/services/zz-selecting");
    e[3].value = strdup(selecting_service);
    if (!e[0].key || !e[0].value || !e[1].key || !e[1].value || !e[2].key || !e[2].value ||
        !e[3].key || !e[3].value) {
        snapshot_entries_free(e, 4);
        return 0;
    }
    memcpy(e[0].key, "drover/v1/", 10);
    memcpy(e[0].key + 10, data, klen);
    e[0].key[10 + klen] = '\0';
    e[0].len = size - klen - 1;
    memcpy(e[0].value, nl + 1, e[0].len);
    e[0].value[e[0].len] = '\0';
    e[1].len = strlen(e[1].value);
    e[2].len = strlen(e[2].value);
    e[3].len = strlen(e[3].value);
    if (strlen(e[0].key) != 10 + klen) { /* a NUL in the key */
        snapshot_entries_free(e, 4);
        return 0;
    }
    if (snapshot_build(&opts, e, 4, 1795438800, NULL, &snap) < 0)
        return 0;
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct snapshot_service *svc = &snap->services[i];
        for (size_t f = 0; f < svc->def->n_frontends; f++)
            check_crt_list(&svc->def->frontends[f]);
        for (int structure = 0; structure < 2; structure++) {
            json_t *d = NULL;
            struct template_buf out = {0};
            struct template_error terr;
            if (snapshot_service_json(snap, svc, &ro, NULL, NULL, structure, &d) < 0)
                continue; /* out of memory only */
            const char *tpl =
                template_set_has(set, svc->def->template_name) ? svc->def->template_name : "http";
            if (render_seen(structure, tpl, d)) {
                json_decref(d);
                continue;
            }
            int rc = template_render(set, tpl, d, &out, &terr);
            if (rc == -EINVAL) {
                char msg[512];
                fprintf(stderr, "accepted service does not render: %s\n",
                        template_error_format(&terr, msg, sizeof(msg)));
                abort();
            }
            template_buf_free(&out);
            json_decref(d);
        }
    }
    char *agent = NULL;
    if (snapshot_agent_state(snap, NULL, NULL, 1795438800, &agent) == 0)
        free(agent);
    snapshot_free(snap);
    return 0;
}
