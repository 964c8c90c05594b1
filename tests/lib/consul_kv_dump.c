/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consul-kv-dump: read every key under a prefix through libdrover's Consul
 * client (the same code the watcher uses) and print key=value lines.
 * Non-printable bytes and newlines in values are escaped as \xNN / \n so
 * one key is always one line.
 *
 *   consul-kv-dump [--token-file F] [--ca-file F] [--tls-server-name N] ADDR PREFIX
 *
 * Exit status: 0 (found or empty prefix), 1 on a Consul error, 2 on usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consul.h"
#include "log.h"

static int status = 1;

static void print_value(const unsigned char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '\n')
            fputs("\\n", stdout);
        else if (v[i] == '\\')
            fputs("\\\\", stdout);
        else if (v[i] < 0x20 || v[i] >= 0x7f)
            printf("\\x%02x", v[i]);
        else
            putchar(v[i]);
    }
}

static void on_read(void *arg, struct consul_response *resp)
{
    if (resp->err) {
        fprintf(stderr, "consul-kv-dump: %s\n", resp->errmsg);
        return;
    }
    for (size_t i = 0; i < resp->kv->n; i++) {
        const struct consul_kv *kv = &resp->kv->items[i];
        printf("%s=", kv->key);
        print_value(kv->value, kv->value ? kv->value_len : 0);
        putchar('\n');
    }
    status = 0;
}

int main(int argc, char **argv)
{
    struct consul_config cfg = {0};
    int i = 1;
    log_set_component("consul-kv-dump");
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--token-file") == 0)
            cfg.token_file = argv[i + 1];
        else if (strcmp(argv[i], "--ca-file") == 0)
            cfg.ca_file = argv[i + 1];
        else if (strcmp(argv[i], "--tls-server-name") == 0)
            cfg.tls_server_name = argv[i + 1];
        else
            break;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: consul-kv-dump [--token-file F] [--ca-file F] "
                        "[--tls-server-name N] ADDR PREFIX\n");
        return 2;
    }
    cfg.address = argv[i];
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct consul_client *c = NULL;
    int rc = consul_client_new(&loop, &cfg, &c);
    if (rc) {
        fprintf(stderr, "consul-kv-dump: cannot create client for %s: %s\n", cfg.address,
                strerror(-rc));
        return 1;
    }
    rc = consul_kv_get_prefix(c, argv[i + 1], on_read, NULL);
    if (rc == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    consul_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT); /* let libuv close the client's handles */
    uv_loop_close(&loop);
    return status;
}
