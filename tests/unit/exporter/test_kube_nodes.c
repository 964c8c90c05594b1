/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "kube_objects.h"
#include "../common/suite_main.h"

static const char *const NODE_LABELS[] = {"topology.kubernetes.io/zone", "absent/label"};

static void to_record(json_t *node, const struct node_options *o, struct node_record *r)
{
    struct kube_reason why;
    int rc = kube_node_to_record(node, o, r, &why);
    ck_assert_msg(rc == 0, "%d %s %s", rc, why.reason, why.message);
}

START_TEST(test_dual_stack_node)
{
    json_t *node = fixture_json("node-dualstack.json");
    struct node_options o = {.label_keys = NODE_LABELS, .n_label_keys = 2};
    struct node_record r;
    to_record(node, &o, &r);
    ck_assert_str_eq(r.name, "worker-a1.dc1.example.net");
    ck_assert_uint_eq(r.n_addresses, 2);
    ck_assert_str_eq(r.addresses[0], "10.20.1.11");
    ck_assert_str_eq(r.addresses[1], "fd00:20:1::11");
    ck_assert(r.ready);
    ck_assert(r.schedulable);
    ck_assert(!r.excluded);
    ck_assert(r.selected);
    ck_assert(r.eligible);
    ck_assert(r.effective_eligible);
    ck_assert_uint_eq(json_object_size(r.labels), 1);
    ck_assert_str_eq(json_string_value(json_object_get(r.labels, "topology.kubernetes.io/zone")),
                     "dc1-a");
    ck_assert_str_eq(r.zone, "dc1-a"); /* topology.kubernetes.io/zone */
    node_record_clear(&r);

    o.address_type = "ExternalIP";
    to_record(node, &o, &r);
    ck_assert_uint_eq(r.n_addresses, 1);
    ck_assert_str_eq(r.addresses[0], "203.0.113.11");
    node_record_clear(&r);

    o.address_type = "Hostname";
    to_record(node, &o, &r);
    ck_assert_uint_eq(r.n_addresses, 1);
    ck_assert_str_eq(r.addresses[0], "worker-a1.dc1.example.net");
    node_record_clear(&r);

    /* no address of the type: visible but not eligible */
    o.address_type = "InternalDNS";
    to_record(node, &o, &r);
    ck_assert_uint_eq(r.n_addresses, 0);
    ck_assert(r.ready && r.schedulable && r.selected);
    ck_assert(!r.eligible);
    node_record_clear(&r);
    json_decref(node);
}
END_TEST

/* A node name Kubernetes would never accept is refused before it can
 * become a KV key. */
START_TEST(test_node_name_rules)
{
    static const char *const bad[] = {"%2e%2e%2f", "a b", "x?y=1&z", "..", "Worker", "-a"};
    json_t *node = fixture_json("node-dualstack.json");
    json_t *meta = json_object_get(node, "metadata");
    struct node_options o = {0};
    struct node_record r;
    struct kube_reason why;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object_set_new(meta, "name", json_string(bad[i]));
        ck_assert_int_eq(kube_node_to_record(node, &o, &r, &why), -EINVAL);
        ck_assert_str_eq(why.reason, "InvalidObject");
        ck_assert_msg(strstr(why.message, "is not a DNS-1123 subdomain") != NULL, "%s",
                      why.message);
    }
    json_object_set_new(meta, "name", json_string("ip-10-0-0-1.ec2.internal"));
    to_record(node, &o, &r);
    node_record_clear(&r);
    json_decref(node);
}
END_TEST

START_TEST(test_bad_and_duplicate_addresses)
{
    json_t *node = fixture_json("node-dualstack.json");
    json_t *addrs = json_object_get(json_object_get(node, "status"), "addresses");
    json_array_append_new(addrs,
                          json_pack("{s:s,s:s}", "type", "InternalIP", "address", "not-an-ip"));
    json_array_append_new(addrs,
                          json_pack("{s:s,s:s}", "type", "InternalIP", "address", "10.20.1.11"));
    json_array_append_new(addrs, json_pack("{s:s}", "type", "InternalIP"));
    struct node_record r;
    to_record(node, NULL, &r);
    ck_assert_uint_eq(r.n_addresses, 2);
    node_record_clear(&r);

    json_object_del(json_object_get(node, "metadata"), "name");
    struct kube_reason why;
    ck_assert_int_eq(kube_node_to_record(node, NULL, &r, &why), -EINVAL);
    ck_assert_str_eq(why.reason, "InvalidObject");
    ck_assert_ptr_null(r.name);
    json_decref(node);
}
END_TEST

static void set_ready(json_t *node, const char *status)
{
    json_t *conds = json_object_get(json_object_get(node, "status"), "conditions");
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), "Ready") == 0) {
            if (status)
                json_object_set_new(c, "status", json_string(status));
            else
                json_array_remove(conds, i);
            return;
        }
    }
    ck_abort_msg("fixture has no Ready condition");
}

/* Every combination of the inputs of eligibility. */
START_TEST(test_eligibility_matrix)
{
    static const char *const ready_v[] = {"True", "False", "Unknown", NULL};
    static const int unsched_v[] = {-1, 0, 1}; /* absent, false, true */
    static const char *const excl_v[] = {NULL, "false", "true", "", "yes"};
    struct label_selector *sel;
    char err[128];
    ck_assert_int_eq(
        label_selector_parse("topology.kubernetes.io/zone in (dc1-a)", &sel, err, sizeof(err)), 0);
    size_t cases = 0, eligible = 0;
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < 5; c++)
                for (int zone_ok = 0; zone_ok < 2; zone_ok++) {
                    json_t *node = fixture_json("node-dualstack.json");
                    set_ready(node, ready_v[a]);
                    json_t *spec = json_object_get(node, "spec");
                    if (unsched_v[b] >= 0)
                        json_object_set_new(spec, "unschedulable", json_boolean(unsched_v[b]));
                    json_t *labels = json_object_get(json_object_get(node, "metadata"), "labels");
                    if (excl_v[c])
                        json_object_set_new(labels, KUBE_NODE_EXCLUDE_LABEL,
                                            json_string(excl_v[c]));
                    if (!zone_ok)
                        json_object_set_new(labels, "topology.kubernetes.io/zone",
                                            json_string("dc1-b"));
                    struct node_options o = {.selector = sel};
                    struct node_record r;
                    to_record(node, &o, &r);

                    bool want_ready = a == 0;
                    bool want_sched = b != 2;
                    bool want_excl = c >= 2; /* present with any value but "false" */
                    ck_assert_int_eq(r.ready, want_ready);
                    ck_assert_int_eq(r.schedulable, want_sched);
                    ck_assert_int_eq(r.excluded, want_excl);
                    ck_assert_int_eq(r.selected, zone_ok);
                    bool want = want_ready && want_sched && !want_excl && zone_ok;
                    ck_assert_msg(r.eligible == want, "ready=%s unsched=%d excl=%s zone_ok=%d",
                                  ready_v[a] ? ready_v[a] : "(none)", unsched_v[b],
                                  excl_v[c] ? excl_v[c] : "(none)", zone_ok);
                    ck_assert_int_eq(r.effective_eligible, r.eligible);
                    cases++;
                    eligible += r.eligible;
                    node_record_clear(&r);
                    json_decref(node);
                }
    ck_assert_uint_eq(cases, 120);
    /* ready(1) x schedulable(2) x not excluded(2) x selected(1) */
    ck_assert_uint_eq(eligible, 4);
    label_selector_free(sel);
}
END_TEST

/* A node record with the given flags (the grace logic reads only these). */
static struct node_record flags(bool ready, bool sched, bool excluded)
{
    static char addr[] = "10.0.0.1";
    static char *addrs[] = {addr};
    struct node_record r = {.ready = ready,
                            .schedulable = sched,
                            .excluded = excluded,
                            .selected = true,
                            .addresses = addrs,
                            .n_addresses = 1};
    r.eligible = ready && sched && !excluded;
    r.effective_eligible = r.eligible;
    return r;
}

START_TEST(test_grace_keeps_flapping_node)
{
    const int64_t grace = 30000;
    struct node_grace_state st = {0};
    int64_t recheck;
    struct node_record up = flags(true, true, false), down = flags(false, true, false);

    ck_assert(node_grace_apply(&st, &up, 1000, grace, &recheck));
    ck_assert_int_eq(recheck, INT64_MAX);
    /* turns NotReady at t=5000: stays eligible until 35000 */
    ck_assert(node_grace_apply(&st, &down, 5000, grace, &recheck));
    ck_assert_int_eq(recheck, 35000);
    ck_assert(node_grace_apply(&st, &down, 20000, grace, &recheck));
    ck_assert_int_eq(recheck, 35000); /* the start does not move */
    ck_assert(node_grace_apply(&st, &down, 34999, grace, &recheck));
    /* expired */
    ck_assert(!node_grace_apply(&st, &down, 35000, grace, &recheck));
    ck_assert_int_eq(recheck, INT64_MAX);
    ck_assert(!node_grace_apply(&st, &down, 36000, grace, NULL));
    /* Ready again: at once */
    ck_assert(node_grace_apply(&st, &up, 40000, grace, NULL));
    /* a second flap gets a fresh grace period */
    ck_assert(node_grace_apply(&st, &down, 50000, grace, &recheck));
    ck_assert_int_eq(recheck, 80000);
    ck_assert(node_grace_apply(&st, &up, 51000, grace, NULL));
    ck_assert(node_grace_apply(&st, &down, 90000, grace, &recheck));
    ck_assert_int_eq(recheck, 120000);
}
END_TEST

START_TEST(test_grace_not_for_other_causes)
{
    const int64_t grace = 30000;
    struct node_record up = flags(true, true, false);
    struct node_record cordoned = flags(true, false, false);
    struct node_record excluded = flags(true, true, true);
    struct node_record down_and_cordoned = flags(false, false, false);
    struct node_record down = flags(false, true, false);

    struct node_grace_state st = {0};
    node_grace_apply(&st, &up, 0, grace, NULL);
    ck_assert(!node_grace_apply(&st, &cordoned, 1, grace, NULL));

    st = (struct node_grace_state){0};
    node_grace_apply(&st, &up, 0, grace, NULL);
    ck_assert(!node_grace_apply(&st, &excluded, 1, grace, NULL));

    st = (struct node_grace_state){0};
    node_grace_apply(&st, &up, 0, grace, NULL);
    ck_assert(!node_grace_apply(&st, &down_and_cordoned, 1, grace, NULL));

    /* deselected by the node selector */
    struct node_record desel = flags(false, true, false);
    desel.selected = false;
    st = (struct node_grace_state){0};
    node_grace_apply(&st, &up, 0, grace, NULL);
    ck_assert(!node_grace_apply(&st, &desel, 1, grace, NULL));

    /* first seen NotReady: never was eligible, no grace */
    st = (struct node_grace_state){0};
    ck_assert(!node_grace_apply(&st, &down, 0, grace, NULL));
    ck_assert(!node_grace_apply(&st, &down, 1, grace, NULL));

    /* NotReady during grace, then cordoned: out at once */
    st = (struct node_grace_state){0};
    node_grace_apply(&st, &up, 0, grace, NULL);
    ck_assert(node_grace_apply(&st, &down, 1, grace, NULL));
    ck_assert(!node_grace_apply(&st, &down_and_cordoned, 2, grace, NULL));
    ck_assert(!node_grace_apply(&st, &down, 3, grace, NULL));

    /* grace 0 disables it */
    st = (struct node_grace_state){0};
    node_grace_apply(&st, &up, 0, 0, NULL);
    ck_assert(!node_grace_apply(&st, &down, 1, 0, NULL));
}
END_TEST

static void same_node(json_t *full)
{
    json_t *slim = kube_node_slim(full);
    ck_assert_ptr_nonnull(slim);
    struct node_record a, b;
    to_record(full, NULL, &a);
    to_record(slim, NULL, &b);
    ck_assert_str_eq(a.name, b.name);
    ck_assert_uint_eq(a.n_addresses, b.n_addresses);
    for (size_t i = 0; i < a.n_addresses; i++)
        ck_assert_str_eq(a.addresses[i], b.addresses[i]);
    ck_assert_int_eq(a.ready, b.ready);
    ck_assert_int_eq(a.schedulable, b.schedulable);
    ck_assert_int_eq(a.excluded, b.excluded);
    ck_assert_int_eq(a.eligible, b.eligible);
    node_record_clear(&a);
    node_record_clear(&b);
    char *ts = json_dumps(slim, JSON_COMPACT);
    ck_assert_ptr_null(strstr(ts, "images"));
    ck_assert_ptr_null(strstr(ts, "lastHeartbeatTime"));
    free(ts);
    json_decref(slim);
}

START_TEST(test_slim_copy_same_record)
{
    json_t *node = fixture_json("node-dualstack.json");
    same_node(node);
    set_ready(node, "False");
    json_object_set_new(json_object_get(node, "spec"), "unschedulable", json_true());
    json_object_set_new(json_object_get(json_object_get(node, "metadata"), "labels"),
                        KUBE_NODE_EXCLUDE_LABEL, json_string(""));
    same_node(node);
    set_ready(node, NULL);
    same_node(node);
    json_decref(node);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kube_nodes");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_dual_stack_node);
    tcase_add_test(tc, test_bad_and_duplicate_addresses);
    tcase_add_test(tc, test_eligibility_matrix);
    tcase_add_test(tc, test_grace_keeps_flapping_node);
    tcase_add_test(tc, test_grace_not_for_other_causes);
    tcase_add_test(tc, test_slim_copy_same_record);
    tcase_add_test(tc, test_node_name_rules);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
