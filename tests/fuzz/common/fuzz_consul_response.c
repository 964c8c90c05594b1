/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz the Consul answer parsers. The first byte picks the parser
 * ('0' KV list, '1' key list, '2' health list, '3' session id, '4' txn
 * answer, '5' base64 + bool + X-Consul-Index), the rest is the body. Seeds
 * in corpus/consul_response/ are real answers of consul 1.8.7 (-dev).
 * Every successful parse is also hashed and freed so ASan sees the whole
 * lifetime of the structures. KV lists also go through the watches'
 * delta parser, which must agree with the whole parse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consul.h"

/* a and b hold the same entries (keys, values, flags, indexes, sessions) */
static void same_lists(const struct consul_kv_list *a, const struct consul_kv_list *b)
{
    if (a->n != b->n)
        abort();
    for (size_t i = 0; i < a->n; i++) {
        const struct consul_kv *x = &a->items[i], *y = &b->items[i];
        if (strcmp(x->key, y->key) != 0 || x->value_len != y->value_len || !x->value != !y->value ||
            (x->value && memcmp(x->value, y->value, x->value_len)) || x->flags != y->flags ||
            x->create_index != y->create_index || x->modify_index != y->modify_index ||
            x->lock_index != y->lock_index || !x->session != !y->session ||
            (x->session && strcmp(x->session, y->session) != 0))
            abort();
    }
}

/* The delta parser agrees with the whole parse: without a previous
 * answer, and against the same body parsed before (everything reused). */
static void check_delta(const char *body, size_t len, const struct consul_kv_list *whole)
{
    struct consul_kv_list *d1 = NULL, *d2 = NULL;
    struct consul_kv_text *t1 = NULL, *t2 = NULL;
    size_t reused = 0;
    char err[256];
    int rc1 =
        consul_parse_kv_list_delta(body, len, NULL, NULL, &d1, &t1, &reused, err, sizeof(err));
    if ((rc1 == 0) != (whole != NULL))
        abort(); /* accepts exactly what the whole parse accepts */
    if (rc1 != 0)
        return;
    same_lists(whole, d1);
    if (consul_parse_kv_list_delta(body, len, d1, t1, &d2, &t2, &reused, err, sizeof(err)) != 0)
        abort();
    same_lists(whole, d2);
    if (t1 && reused != d2->n)
        abort(); /* identical text is never parsed twice */
    consul_kv_list_free(d1);
    consul_kv_list_free(d2);
    consul_kv_text_free(t1);
    consul_kv_text_free(t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[256];
    switch (data[0] % 6) {
    case 0: {
        struct consul_kv_list *l = NULL;
        if (consul_parse_kv_list(body, len, &l, err, sizeof(err)) == 0) {
            (void)consul_kv_list_hash(l);
            for (size_t i = 0; i < l->n; i++) {
                if (l->items[i].value && l->items[i].value[l->items[i].value_len] != '\0')
                    abort(); /* values must stay NUL-terminated */
            }
        }
        check_delta(body, len, l);
        consul_kv_list_free(l);
        break;
    }
    case 1: {
        struct consul_key_list *l = NULL;
        if (consul_parse_keys(body, len, &l, err, sizeof(err)) == 0)
            consul_key_list_free(l);
        break;
    }
    case 2: {
        struct consul_health_list *l = NULL;
        if (consul_parse_health(body, len, &l, err, sizeof(err)) == 0) {
            (void)consul_health_list_hash(l);
            consul_health_list_free(l);
        }
        break;
    }
    case 3: {
        char *id = NULL;
        if (consul_parse_session_id(body, len, &id, err, sizeof(err)) == 0)
            free(id);
        break;
    }
    case 4: {
        struct consul_txn_result r = {0};
        (void)consul_parse_txn(body, len, 64, &r, err, sizeof(err));
        consul_txn_result_clear(&r); /* partial results are freed too */
        break;
    }
    default: {
        unsigned char *out = NULL;
        size_t out_len = 0;
        bool b;
        uint64_t idx;
        if (consul_base64_decode(body, len, &out, &out_len) == 0) {
            if (out_len > len)
                abort();
            free(out);
        }
        (void)consul_parse_bool(body, len, &b);
        (void)consul_parse_index(body, len, &idx);
        break;
    }
    }
    return 0;
}
