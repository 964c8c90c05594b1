/* SPDX-License-Identifier: Apache-2.0 */
/* KV values as droverctl reads them: the input is split at the first
 * newline into a key (below drover/v1/) and a value, added to a model
 * that already holds a small fleet, then every query runs over it
 * (resolution of the key's last segment, shares, affected servers). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl_model.h"

#define R "drover/v1/"

static void add(struct ctl_model *m, const char *key, const char *value, size_t len)
{
    char err[256];
    ctl_model_add(m, R, "edge", key, value, len, 1, err, sizeof(err));
}

static void noop(void *arg, const char *backend, const char *server)
{
    (void)arg;
    (void)backend;
    (void)server;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    struct ctl_model m;
    char key[600], err[256];
    struct ctl_target t;
    struct ctl_share worst;

    if (!nl || (size_t)((const uint8_t *)nl - data) > 500)
        return 0;
    size_t kl = (size_t)((const uint8_t *)nl - data);
    snprintf(key, sizeof(key), R "%.*s", (int)kl, (const char *)data);
    if (strlen(key) != strlen(R) + kl)
        return 0; /* a NUL inside the key */
    ctl_model_init(&m, 1795957200);
    static const char node[] = "{\"address\":\"10.0.0.1\",\"addresses\":[\"10.0.0.1\"],"
                               "\"eligible\":true}";
    static const char port[] = "{\"node_port\":30080}";
    static const char svc[] =
        "{\"backends\":[{\"name\":\"be\",\"kube\":[{\"cluster\":\"c\",\"namespace\":\"n\","
        "\"service\":\"s\",\"port\":\"p\"}],\"servers\":[{\"name\":\"x\",\"address\":"
        "\"10.1.1.1\",\"port\":1}]}]}";
    add(&m, R "kube/c/nodes/a", node, sizeof(node) - 1);
    add(&m, R "kube/c/services/n/s/p", port, sizeof(port) - 1);
    add(&m, R "haproxy/edge/services/w", svc, sizeof(svc) - 1);
    /* the value is not NUL-terminated in the input: copy it so the parser
     * sees exactly size - kl - 1 bytes */
    size_t vl = size - kl - 1;
    char *v = malloc(vl + 1);
    if (!v) {
        ctl_model_clear(&m);
        return 0;
    }
    memcpy(v, nl + 1, vl);
    v[vl] = '\0';
    add(&m, key, v, vl);

    const char *last = strrchr(key, '/');
    if (ctl_model_resolve(&m, last + 1, NULL, 0, &t, err, sizeof(err)) == 0)
        ctl_model_affected(&m, &t, noop, NULL);
    if (ctl_model_resolve(&m, key + strlen(R), NULL, 0, &t, err, sizeof(err)) == 0)
        ctl_model_affected(&m, &t, noop, NULL);
    for (size_t i = 0; i < m.n_maint; i++) {
        struct ctl_override ov = {.id = m.maint[i].id, .entry = NULL};
        ctl_model_check_share(&m, &ov, 0.5, &worst);
        ctl_model_check_share(&m, NULL, 0.0, &worst);
        if (ctl_target_from_id(m.maint[i].id, &t) == 0)
            ctl_model_affected(&m, &t, noop, NULL);
    }
    struct ctl_maint e;
    if (ctl_maint_parse(key + strlen(R), v, vl, &e, err, sizeof(err)) == 0) {
        struct ctl_override ov = {.id = e.id, .entry = &e};
        ctl_model_check_share(&m, &ov, 0.5, &worst);
        ctl_maint_clear(&e);
    }
    free(v);
    ctl_model_clear(&m);
    return 0;
}
