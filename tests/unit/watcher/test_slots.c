/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slots.h"
#include "../common/suite_main.h"

/* Desired servers from "key=addr:port:weight key2=..." (key must not
 * contain '='). Strings live in a static pool reset by each call. */
#define MAXD 256
static struct slot_server dv[MAXD];
static char pool[MAXD][2][64];

static size_t desired(const char *spec)
{
    size_t n = 0;
    char *copy = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        ck_assert_ptr_nonnull(eq);
        *eq = 0;
        unsigned port = 80;
        int w = 10;
        char addr[64];
        /* IPv4 only in the spec helper; IPv6 cases build servers by hand */
        ck_assert_int_ge(sscanf(eq + 1, "%63[^:]:%u:%d", addr, &port, &w), 1);
        snprintf(pool[n][0], 64, "%s", tok);
        snprintf(pool[n][1], 64, "%s", addr);
        dv[n] = (struct slot_server){pool[n][0], pool[n][1], (uint16_t)port, w, false};
        n++;
    }
    free(copy);
    return n;
}

static const char *key_at(const struct slot_assignment *a, size_t s)
{
    return a->slots[s].used ? a->slots[s].srv.key : "-";
}

/* "a b - c": the keys by slot. */
static char *layout(const struct slot_assignment *a)
{
    static char buf[4096];
    buf[0] = 0;
    for (size_t s = 0; s < a->nslots; s++) {
        if (s)
            strcat(buf, " ");
        strcat(buf, key_at(a, s));
    }
    return buf;
}

static void assign(const struct slot_assignment *prev, const char *spec, size_t nslots,
                   struct slot_assignment *out, size_t *need)
{
    size_t n = desired(spec);
    ck_assert_int_eq(slots_assign(prev, dv, n, nslots, out, need), 0);
}

/* Zone-aware placement: servers whose key starts with 'r' are of another
 * zone (backup pool). */
static void assign_zoned(const struct slot_assignment *prev, const char *spec, size_t nslots,
                         struct slot_assignment *out, size_t *need)
{
    size_t n = desired(spec);
    for (size_t i = 0; i < n; i++)
        dv[i].backup = dv[i].key[0] == 'r';
    ck_assert_int_eq(slots_assign_zoned(prev, dv, n, nslots, out, need), 0);
}

START_TEST(test_zoned_pools)
{
    struct slot_assignment a, b, c, d;
    size_t need = 99;
    slot_assignment_init(&a);
    slot_assignment_init(&b);
    slot_assignment_init(&c);
    slot_assignment_init(&d);
    /* two pools of 3: local first, backups (rendered `backup`) second */
    assign_zoned(NULL, "r1=10.0.1.1 l1=10.0.0.1 r2=10.0.1.2 l2=10.0.0.2", 6, &a, &need);
    ck_assert_uint_eq(need, 0);
    ck_assert_uint_eq(slots_backup_from(a.nslots), 3);
    ck_assert_str_eq(layout(&a), "l1 l2 - r1 r2 -");
    ck_assert(a.slots[3].srv.backup && !a.slots[0].srv.backup);
    /* an odd count is rounded up to two equal pools */
    assign_zoned(NULL, "l1=10.0.0.1 r1=10.0.1.1", 5, &d, &need);
    ck_assert_str_eq(layout(&d), "l1 - - r1 - -");
    /* a removal frees its slot in its pool; others stay */
    assign_zoned(&a, "l2=10.0.0.2 r2=10.0.1.2 r3=10.0.1.3", 6, &b, &need);
    ck_assert_str_eq(layout(&b), "- l2 - r3 r2 -");
    /* one pool full: growth to twice the larger pool's target, kept
     * servers in place within their pool */
    assign_zoned(&b, "l2=10.0.0.2 r2=10.0.1.2 r3=10.0.1.3 r4=10.0.1.4 r5=10.0.1.5", 6, &c, &need);
    ck_assert_uint_eq(need, 2 * slots_grow_target(4));
    slot_assignment_free(&c);
    assign_zoned(&b, "l2=10.0.0.2 r2=10.0.1.2 r3=10.0.1.3 r4=10.0.1.4 r5=10.0.1.5", need, &c,
                 &need);
    ck_assert_uint_eq(need, 0);
    ck_assert_str_eq(layout(&c), "- l2 - - - - - - r3 r2 r4 r5 - - - -");
    /* a server whose node changed zone moves pool */
    slot_assignment_free(&d);
    size_t n = desired("l2=10.0.0.2 r2=10.0.1.2 r3=10.0.1.3 r4=10.0.1.4 r5=10.0.1.5");
    for (size_t i = 0; i < n; i++)
        dv[i].backup = true;
    ck_assert_int_eq(slots_assign_zoned(&c, dv, n, 16, &d, &need), 0);
    ck_assert_str_eq(layout(&d), "- - - - - - - - r3 r2 r4 r5 l2 - - -");
    slot_assignment_free(&a);
    slot_assignment_free(&b);
    slot_assignment_free(&c);
    slot_assignment_free(&d);
}
END_TEST

START_TEST(test_initial_lowest_free_in_key_order)
{
    struct slot_assignment a;
    size_t need = 99;
    slot_assignment_init(&a);
    assign(NULL, "c=10.0.0.3 a=10.0.0.1 b=10.0.0.2", 5, &a, &need);
    ck_assert_uint_eq(need, 0);
    ck_assert_str_eq(layout(&a), "a b c - -");
    ck_assert_uint_eq(slot_assignment_used(&a), 3);
    ck_assert_str_eq(a.slots[2].srv.address, "10.0.0.3");
    ck_assert_int_eq(slot_assignment_find(&a, "b"), 1);
    ck_assert_int_eq(slot_assignment_find(&a, "zz"), -1);
    slot_assignment_free(&a);
}
END_TEST

START_TEST(test_staying_servers_keep_their_slot)
{
    struct slot_assignment a, b, c;
    size_t need;
    slot_assignment_init(&a);
    slot_assignment_init(&b);
    slot_assignment_init(&c);
    assign(NULL, "a=10.0.0.1 b=10.0.0.2 c=10.0.0.3 d=10.0.0.4", 6, &a, &need);
    ck_assert_str_eq(layout(&a), "a b c d - -");
    /* b removed: its slot is free, the others do not move */
    assign(&a, "a=10.0.0.1 c=10.0.0.3 d=10.0.0.4", 6, &b, &need);
    ck_assert_str_eq(layout(&b), "a - c d - -");
    /* new servers take the lowest free slots: 0 goes where b was */
    assign(&b, "a=10.0.0.1 c=10.0.0.3 d=10.0.0.4 0=10.0.0.9 z=10.0.0.8", 6, &c, &need);
    ck_assert_str_eq(layout(&c), "a 0 c d z -");
    slot_assignment_free(&a);
    slot_assignment_free(&b);
    slot_assignment_free(&c);
}
END_TEST

START_TEST(test_changed_address_and_weight_keep_slot)
{
    struct slot_assignment a, b;
    size_t need;
    slot_assignment_init(&a);
    slot_assignment_init(&b);
    assign(NULL, "web1=10.0.0.1:80:10 web2=10.0.0.2:80:10", 4, &a, &need);
    assign(&a, "web2=10.0.0.7:8080:50 web1=10.0.0.1:80:10", 4, &b, &need);
    ck_assert_str_eq(layout(&b), "web1 web2 - -");
    ck_assert_str_eq(b.slots[1].srv.address, "10.0.0.7");
    ck_assert_uint_eq(b.slots[1].srv.port, 8080);
    ck_assert_int_eq(b.slots[1].srv.weight, 50);
    slot_assignment_free(&a);
    slot_assignment_free(&b);
}
END_TEST

START_TEST(test_input_order_does_not_matter)
{
    struct slot_assignment a, b;
    size_t need;
    slot_assignment_init(&a);
    slot_assignment_init(&b);
    assign(NULL, "d=1.1.1.4 b=1.1.1.2 a=1.1.1.1 c=1.1.1.3", 4, &a, &need);
    assign(NULL, "a=1.1.1.1 c=1.1.1.3 b=1.1.1.2 d=1.1.1.4", 4, &b, &need);
    char la[256];
    snprintf(la, sizeof(la), "%s", layout(&a));
    ck_assert_str_eq(la, layout(&b));
    slot_assignment_free(&a);
    slot_assignment_free(&b);
}
END_TEST

START_TEST(test_exhaustion_reports_growth_and_keeps_kept)
{
    struct slot_assignment a, b;
    size_t need;
    slot_assignment_init(&a);
    slot_assignment_init(&b);
    assign(NULL, "m=1.0.0.1 n=1.0.0.2 o=1.0.0.3 p=1.0.0.4", 4, &a, &need);
    ck_assert_uint_eq(need, 0);
    /* "a" sorts first but is new: the kept servers win the slots */
    assign(&a, "a=1.0.0.9 m=1.0.0.1 n=1.0.0.2 o=1.0.0.3 p=1.0.0.4", 4, &b, &need);
    ck_assert_str_eq(layout(&b), "m n o p");
    ck_assert_uint_eq(need, slots_grow_target(5));
    ck_assert_uint_eq(need, 8);
    slot_assignment_free(&b);
    /* with the grown count everything fits and nothing moves */
    assign(&a, "a=1.0.0.9 m=1.0.0.1 n=1.0.0.2 o=1.0.0.3 p=1.0.0.4", need, &b, &need);
    ck_assert_uint_eq(need, 0);
    ck_assert_str_eq(layout(&b), "m n o p a - - -");
    slot_assignment_free(&a);
    slot_assignment_free(&b);
}
END_TEST

START_TEST(test_shrink_moves_only_the_displaced)
{
    struct slot_assignment a, b;
    size_t need;
    slot_assignment_init(&a);
    slot_assignment_init(&b);
    assign(NULL, "a=1.0.0.1 b=1.0.0.2 c=1.0.0.3", 8, &a, &need);
    struct slot_assignment moved;
    slot_assignment_init(&moved);
    ck_assert_int_eq(slot_assignment_copy(&moved, &a), 0);
    /* put c into slot 7 by hand, as an older placement might have */
    moved.slots[7] = moved.slots[2];
    moved.slots[2].used = false;
    moved.slots[2].srv = (struct slot_server){0};
    assign(&moved, "a=1.0.0.1 b=1.0.0.2 c=1.0.0.3", 4, &b, &need);
    ck_assert_str_eq(layout(&b), "a b c -");
    slot_assignment_free(&a);
    slot_assignment_free(&b);
    slot_assignment_free(&moved);
}
END_TEST

START_TEST(test_bad_input_refused)
{
    struct slot_assignment a;
    size_t need;
    slot_assignment_init(&a);
    size_t n = desired("a=1.0.0.1 a=1.0.0.2");
    ck_assert_int_eq(slots_assign(NULL, dv, n, 4, &a, &need), -EINVAL);
    ck_assert_uint_eq(a.nslots, 0);
    n = desired("a=1.0.0.1:80:257");
    ck_assert_int_eq(slots_assign(NULL, dv, n, 4, &a, &need), -EINVAL);
    n = desired("a=1.0.0.1:80:-1");
    ck_assert_int_eq(slots_assign(NULL, dv, n, 4, &a, &need), -EINVAL);
    struct slot_server empty = {"", "1.0.0.1", 80, 1, false};
    ck_assert_int_eq(slots_assign(NULL, &empty, 1, 4, &a, &need), -EINVAL);
    ck_assert_int_eq(slots_assign(NULL, NULL, 0, SLOTS_MAX + 1, &a, &need), -EINVAL);
    /* nothing desired, zero slots: fine */
    ck_assert_int_eq(slots_assign(NULL, NULL, 0, 0, &a, &need), 0);
    ck_assert_uint_eq(need, 0);
    slot_assignment_free(&a);
}
END_TEST

START_TEST(test_grow_target)
{
    ck_assert_uint_eq(slots_grow_target(0), 8);
    ck_assert_uint_eq(slots_grow_target(1), 8);
    ck_assert_uint_eq(slots_grow_target(6), 8);
    ck_assert_uint_eq(slots_grow_target(7), 16);
    ck_assert_uint_eq(slots_grow_target(16), 32);
    ck_assert_uint_eq(slots_grow_target(25), 32);
    ck_assert_uint_eq(slots_grow_target(26), 64);
    ck_assert_uint_eq(slots_grow_target(100), 128);
    ck_assert_uint_eq(slots_grow_target(1000000), SLOTS_MAX);
    for (size_t n = 1; n < 5000; n++) {
        size_t t = slots_grow_target(n);
        ck_assert_uint_ge(t * 4, n * 5);
        ck_assert_uint_eq(t & (t - 1), 0);
    }
}
END_TEST

START_TEST(test_names)
{
    char buf[16];
    size_t i;
    ck_assert_int_eq(slots_name(0, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "slot1");
    ck_assert_int_eq(slots_name(41, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "slot42");
    ck_assert_int_eq(slots_name(41, buf, 5), -ENOSPC);
    ck_assert_int_eq(slots_parse_name("slot1", &i), 0);
    ck_assert_uint_eq(i, 0);
    ck_assert_int_eq(slots_parse_name("slot65536", &i), 0);
    ck_assert_uint_eq(i, 65535);
    const char *bad[] = {"slot0", "slot01", "slot",      "slotx",  "slot1a",
                         "Slot1", "web1",   "slot65537", "slot-1", "slot99999999999999999999"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        ck_assert_msg(slots_parse_name(bad[k], &i) == -EINVAL, "%s accepted", bad[k]);
}
END_TEST

/* Random churn: every step keeps the servers that stay in their slots,
 * never places a key twice, fills min(n, nslots) slots and puts new servers
 * into the lowest free ones. */
START_TEST(test_random_churn_invariants)
{
    struct slot_assignment prev, cur;
    slot_assignment_init(&prev);
    slot_assignment_init(&cur);
    srandom(12345);
    char keys[64][16];
    for (int k = 0; k < 64; k++)
        snprintf(keys[k], sizeof(keys[k]), "k%02d", k);
    bool in[64] = {0};
    for (int step = 0; step < 2000; step++) {
        for (int flips = random() % 6; flips > 0; flips--)
            in[random() % 64] ^= 1;
        size_t nslots = 16 + (size_t)(random() % 3) * 8; /* 16, 24 or 32 */
        struct slot_server d[64];
        size_t n = 0;
        for (int k = 0; k < 64; k++)
            if (in[k])
                d[n++] = (struct slot_server){keys[k], "10.1.1.1", 80, k % 257, false};
        size_t need;
        ck_assert_int_eq(slots_assign(&prev, d, n, nslots, &cur, &need), 0);
        size_t used = slot_assignment_used(&cur);
        ck_assert_uint_eq(used, n < nslots ? n : nslots);
        ck_assert_uint_eq(need, n > nslots ? slots_grow_target(n) : 0);
        for (size_t s = 0; s < nslots; s++) {
            if (!cur.slots[s].used)
                continue;
            const char *key = cur.slots[s].srv.key;
            ck_assert_int_eq(slot_assignment_find(&cur, key), (long)s); /* no duplicate */
            long was = slot_assignment_find(&prev, key);
            if (was >= 0 && (size_t)was < nslots)
                ck_assert_int_eq(was, (long)s); /* stayed */
        }
        /* a new server never sits above a free slot */
        for (size_t s = 0; s < nslots; s++) {
            if (!cur.slots[s].used)
                continue;
            long was = slot_assignment_find(&prev, cur.slots[s].srv.key);
            if (was >= 0 && (size_t)was < nslots)
                continue;
            for (size_t f = 0; f < s; f++)
                ck_assert_msg(cur.slots[f].used, "step %d: new %s in %zu above free %zu", step,
                              cur.slots[s].srv.key, s, f);
        }
        slot_assignment_free(&prev);
        prev = cur;
        slot_assignment_init(&cur);
    }
    slot_assignment_free(&prev);
}
END_TEST

/* ---- diff ---- */

/* Live state of n slots as HAProxy shows free slots written `disabled` at
 * 0.0.0.0:0 right after a start (FMAINT|CMAINT, agent configured+enabled). */
static void live_free(struct slot_live *l, size_t n, int weight)
{
    for (size_t i = 0; i < n; i++) {
        memset(&l[i], 0, sizeof(l[i]));
        slots_name(i, l[i].name, sizeof(l[i].name));
        strcpy(l[i].address, "0.0.0.0");
        l[i].port = 0;
        l[i].admin = SLOTS_ADMF_FMAINT | SLOTS_ADMF_CMAINT;
        l[i].uweight = l[i].iweight = weight;
        l[i].agent_state = 0x10 | SLOTS_CHK_CONFIGURED | SLOTS_CHK_ENABLED;
    }
}

/* Apply cmds to the simulated live state, as HAProxy would. */
static void simulate(struct slot_live *l, size_t n, const struct slot_cmds *c)
{
    for (size_t i = 0; i < c->n; i++) {
        char b[64], s[64], arg[64];
        unsigned port;
        int w;
        size_t idx;
        const char *t = c->v[i].text;
        if (sscanf(t, "set server %63[^/]/%63s addr %63s port %u", b, s, arg, &port) == 4) {
            ck_assert_int_eq(slots_parse_name(s, &idx), 0);
            strcpy(l[idx].address, arg);
            l[idx].port = (uint16_t)port;
        } else if (sscanf(t, "set server %63[^/]/%63s weight %d", b, s, &w) == 3) {
            ck_assert_int_eq(slots_parse_name(s, &idx), 0);
            l[idx].uweight = w;
        } else if (sscanf(t, "set server %63[^/]/%63s state %63s", b, s, arg) == 3) {
            ck_assert_int_eq(slots_parse_name(s, &idx), 0);
            if (strcmp(arg, "ready") == 0)
                l[idx].admin &= ~(unsigned)(SLOTS_ADMF_FMAINT | SLOTS_ADMF_FDRAIN);
            else if (strcmp(arg, "maint") == 0)
                l[idx].admin |= SLOTS_ADMF_FMAINT;
            else
                ck_abort_msg("unexpected state %s", arg);
        } else if (sscanf(t, "enable agent %63[^/]/%63s", b, s) == 2) {
            ck_assert_int_eq(slots_parse_name(s, &idx), 0);
            l[idx].agent_state |= SLOTS_CHK_ENABLED;
        } else if (sscanf(t, "disable agent %63[^/]/%63s", b, s) == 2) {
            ck_assert_int_eq(slots_parse_name(s, &idx), 0);
            l[idx].agent_state &= ~(unsigned)SLOTS_CHK_ENABLED;
        } else {
            ck_abort_msg("unexpected command %s", t);
        }
        ck_assert_str_eq(b, "be");
    }
}

static char *cmds_text(const struct slot_cmds *c)
{
    static char buf[8192];
    buf[0] = 0;
    for (size_t i = 0; i < c->n; i++) {
        strcat(buf, c->v[i].text);
        strcat(buf, "\n");
    }
    return buf;
}

START_TEST(test_diff_fill_from_fresh_start)
{
    struct slot_live l[4];
    struct slot_assignment a;
    struct slot_cmds c = {0};
    char err[256];
    size_t need;
    slot_assignment_init(&a);
    live_free(l, 4, 10);
    assign(NULL, "a=10.0.0.1:8080:10 b=10.0.0.2:8081:20", 4, &a, &need);
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 4, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(cmds_text(&c), "set server be/slot1 addr 10.0.0.1 port 8080\n"
                                    "set server be/slot1 state ready\n"
                                    "set server be/slot2 addr 10.0.0.2 port 8081\n"
                                    "set server be/slot2 weight 20\n"
                                    "set server be/slot2 state ready\n"
                                    "disable agent be/slot3\n"
                                    "disable agent be/slot4\n");
    simulate(l, 4, &c);
    /* minimality: once applied, the same assignment needs nothing */
    slot_cmds_free(&c);
    ck_assert_int_eq(slots_diff("be", &a, &a, l, 4, &c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 4, &c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.n, 0);
    slot_cmds_free(&c);
    slot_assignment_free(&a);
}
END_TEST

START_TEST(test_diff_remove_and_reuse)
{
    struct slot_live l[3];
    struct slot_assignment a, b, c2;
    struct slot_cmds c = {0};
    char err[256];
    size_t need;
    slot_assignment_init(&a);
    slot_assignment_init(&b);
    slot_assignment_init(&c2);
    live_free(l, 3, 10);
    assign(NULL, "a=10.0.0.1 b=10.0.0.2 c=10.0.0.3", 3, &a, &need);
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 3, &c, err, sizeof(err)), 0);
    simulate(l, 3, &c);
    slot_cmds_free(&c);
    /* b goes: agent off first, then maint; nothing else is touched */
    assign(&a, "a=10.0.0.1 c=10.0.0.3", 3, &b, &need);
    ck_assert_int_eq(slots_diff("be", &b, &a, l, 3, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(cmds_text(&c), "disable agent be/slot2\nset server be/slot2 state maint\n");
    simulate(l, 3, &c);
    slot_cmds_free(&c);
    /* d arrives in b's old slot: readdress, agent back on, ready */
    assign(&b, "a=10.0.0.1 c=10.0.0.3 d=10.0.0.4", 3, &c2, &need);
    ck_assert_str_eq(layout(&c2), "a d c");
    ck_assert_int_eq(slots_diff("be", &c2, &b, l, 3, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(cmds_text(&c), "set server be/slot2 addr 10.0.0.4 port 80\n"
                                    "enable agent be/slot2\n"
                                    "set server be/slot2 state ready\n");
    slot_cmds_free(&c);
    /* the same server coming back to its address is still a new occupant
     * (its agent is off): not just the address decides */
    assign(&b, "a=10.0.0.1 c=10.0.0.3 b=10.0.0.2", 3, &c2, &need);
    ck_assert_int_eq(slots_diff("be", &c2, &b, l, 3, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(cmds_text(&c), "enable agent be/slot2\nset server be/slot2 state ready\n");
    slot_cmds_free(&c);
    slot_assignment_free(&a);
    slot_assignment_free(&b);
    slot_assignment_free(&c2);
}
END_TEST

START_TEST(test_diff_leaves_agent_owned_state_alone)
{
    struct slot_live l[2];
    struct slot_assignment a, b;
    struct slot_cmds c = {0};
    char err[256];
    size_t need;
    slot_assignment_init(&a);
    slot_assignment_init(&b);
    live_free(l, 2, 10);
    assign(NULL, "a=10.0.0.1:80:10 b=10.0.0.2:80:10", 2, &a, &need);
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 2, &c, err, sizeof(err)), 0);
    simulate(l, 2, &c);
    slot_cmds_free(&c);
    /* the agent-checker drains a and answers 50% for b */
    l[0].admin |= SLOTS_ADMF_FDRAIN;
    l[1].uweight = 5;
    ck_assert_int_eq(slots_diff("be", &a, &a, l, 2, &c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.n, 0);
    /* a kept static server moving address keeps its drain */
    assign(&a, "a=10.0.0.9:81:10 b=10.0.0.2:80:10", 2, &b, &need);
    ck_assert_int_eq(slots_diff("be", &b, &a, l, 2, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(cmds_text(&c), "set server be/slot1 addr 10.0.0.9 port 81\n");
    slot_cmds_free(&c);
    /* an operator weight change is sent even though uweight is agent-scaled */
    slot_assignment_free(&b);
    assign(&a, "a=10.0.0.1:80:10 b=10.0.0.2:80:30", 2, &b, &need);
    ck_assert_int_eq(slots_diff("be", &b, &a, l, 2, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(cmds_text(&c), "set server be/slot2 weight 30\n");
    slot_cmds_free(&c);
    slot_assignment_free(&a);
    slot_assignment_free(&b);
}
END_TEST

START_TEST(test_diff_errors_and_ipv6)
{
    struct slot_live l[3];
    struct slot_assignment a;
    struct slot_cmds c = {0};
    char err[256];
    size_t need;
    slot_assignment_init(&a);
    live_free(l, 3, 10);
    strcpy(l[2].name, "web-static"); /* not a slot: ignored */
    struct slot_server v6 = {"n@v6", "2001:DB8:0::1", 443, 10, false};
    ck_assert_int_eq(slots_assign(NULL, &v6, 1, 2, &a, &need), 0);
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 3, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(c.v[0].text, "set server be/slot1 addr 2001:db8::1 port 443");
    simulate(l, 3, &c);
    slot_cmds_free(&c);
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 3, &c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.n, 0);
    /* injection attempts through a value or the backend name */
    free(a.slots[0].srv.address);
    a.slots[0].srv.address = strdup("10.0.0.1;shutdown sessions");
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 3, &c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "n@v6"));
    ck_assert_uint_eq(c.n, 0);
    free(a.slots[0].srv.address);
    a.slots[0].srv.address = strdup("10.0.0.1\nshutdown frontend fe");
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 3, &c, err, sizeof(err)), -EINVAL);
    free(a.slots[0].srv.address);
    a.slots[0].srv.address = strdup("10.0.0.1");
    ck_assert_int_eq(slots_diff("be;show info", &a, NULL, l, 3, &c, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(slots_diff("be\n", &a, NULL, l, 3, &c, err, sizeof(err)), -EINVAL);
    /* a slot HAProxy does not have: only a reload can add it */
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 1, &c, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "slot2"));
    ck_assert_uint_eq(c.n, 0);
    slot_cmds_free(&c);
    slot_assignment_free(&a);
}
END_TEST

START_TEST(test_diff_port_mapping_after_reload)
{
    /* after a reload: state file restored port, weight, admin and agent,
     * but not the address of a slot rendered free at 0.0.0.0:0 */
    struct slot_live l[2];
    struct slot_assignment a;
    struct slot_cmds c = {0};
    char err[256];
    size_t need;
    slot_assignment_init(&a);
    live_free(l, 2, 10);
    assign(NULL, "a=10.0.0.1:8080:10 b=10.0.0.2:1:10", 2, &a, &need);
    for (int i = 0; i < 2; i++)
        l[i].admin = SLOTS_ADMF_CMAINT;
    l[0].port = 8080;
    l[1].port = 1;
    ck_assert_int_eq(slots_diff("be", &a, &a, l, 2, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(cmds_text(&c), "set server be/slot1 addr 10.0.0.1 port 1\n"
                                    "set server be/slot1 addr 10.0.0.1 port 8080\n"
                                    "set server be/slot2 addr 10.0.0.2 port 2\n"
                                    "set server be/slot2 addr 10.0.0.2 port 1\n");
    slot_cmds_free(&c);
    /* a real address with the same port: no detour */
    strcpy(l[0].address, "10.0.0.9");
    strcpy(l[1].address, "10.0.0.2");
    ck_assert_int_eq(slots_diff("be", &a, &a, l, 2, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(cmds_text(&c), "set server be/slot1 addr 10.0.0.1 port 8080\n");
    slot_cmds_free(&c);
    slot_assignment_free(&a);
}
END_TEST

START_TEST(test_diff_failure_keeps_earlier_commands)
{
    struct slot_live l[2];
    struct slot_assignment a;
    struct slot_cmds c = {0};
    char err[256];
    size_t need;
    slot_assignment_init(&a);
    live_free(l, 2, 10);
    assign(NULL, "a=10.0.0.1", 2, &a, &need);
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 2, &c, err, sizeof(err)), 0);
    size_t n1 = c.n;
    ck_assert_uint_gt(n1, 0);
    /* a failing second diff appends nothing */
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 1, &c, err, sizeof(err)), -ENOENT);
    ck_assert_uint_eq(c.n, n1);
    slot_cmds_free(&c);
    slot_assignment_free(&a);
}
END_TEST

START_TEST(test_adopt_keeps_serving_slots)
{
    /* a previous watcher placed c, a, b into slots 1..3 and freed slot 4
     * (which still carries d's old address); a new watcher adopts that */
    struct slot_live l[5];
    struct slot_assignment prev, a;
    struct slot_cmds c = {0};
    char err[256];
    size_t need;
    slot_assignment_init(&prev);
    slot_assignment_init(&a);
    live_free(l, 5, 10);
    const char *addrs[] = {"10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.4"};
    for (int i = 0; i < 4; i++) {
        strcpy(l[i].address, addrs[i]);
        l[i].port = 80;
        l[i].admin = 0;
    }
    l[3].admin = SLOTS_ADMF_FMAINT; /* freed: maint + agent off */
    l[3].agent_state &= ~(unsigned)SLOTS_CHK_ENABLED;
    l[1].admin = SLOTS_ADMF_FDRAIN; /* drained by the agent: still serving */
    strcpy(l[4].name, "other");     /* not a slot */
    strcpy(l[4].address, "10.0.0.5");
    l[4].port = 80;
    size_t n = desired("a=10.0.0.1 b=10.0.0.2 c=10.0.0.3 d=10.0.0.4 e=10.0.0.5");
    ck_assert_int_eq(slots_adopt(l, 5, dv, n, 4, &prev), 0);
    ck_assert_str_eq(layout(&prev), "c a b -");
    ck_assert_int_eq(slots_assign(&prev, dv, n, 5, &a, &need), 0);
    ck_assert_str_eq(layout(&a), "c a b d e");
    slot_assignment_free(&a);
    ck_assert_int_eq(slots_assign(&prev, dv, n, 4, &a, &need), 0);
    ck_assert_str_eq(layout(&a), "c a b d");
    ck_assert_uint_eq(need, 8);
    /* with prev adopted, the diff leaves the serving slots alone (the
     * drained one keeps its drain) and only moves d into slot 4 */
    ck_assert_int_eq(slots_diff("be", &a, NULL, l, 4, &c, err, sizeof(err)), 0);
    ck_assert_str_eq(cmds_text(&c), "enable agent be/slot4\nset server be/slot4 state ready\n");
    slot_cmds_free(&c);
    slot_assignment_free(&a);
    slot_assignment_free(&prev);
    /* IPv6 written differently still matches; nslots too large refused */
    strcpy(l[0].address, "2001:db8::1");
    struct slot_server v6 = {"v6", "2001:DB8:0:0::1", 80, 1, false};
    ck_assert_int_eq(slots_adopt(l, 1, &v6, 1, 4, &prev), 0);
    ck_assert_str_eq(key_at(&prev, 0), "v6");
    ck_assert_int_eq(slots_adopt(l, 1, &v6, 1, SLOTS_MAX + 1, &prev), -EINVAL);
    slot_assignment_free(&prev);
}
END_TEST

/* ---- guard ---- */

START_TEST(test_guard_thresholds)
{
    struct slots_guard_result r;
    r = slots_guard(4, 2, 2, 0.5, false);
    ck_assert(!r.hold); /* exactly half may go */
    r = slots_guard(4, 3, 1, 0.5, false);
    ck_assert(r.hold);
    ck_assert_uint_eq(r.removed, 3);
    ck_assert_uint_eq(r.active, 4);
    r = slots_guard(4, 3, 1, 0.5, true);
    ck_assert(!r.hold);
    r = slots_guard(10, 6, 4, 0.6, false);
    ck_assert(!r.hold);
    r = slots_guard(10, 7, 3, 0.6, false);
    ck_assert(r.hold);
    /* replacements count: 4 removed + 4 new is still 4 removed */
    r = slots_guard(4, 4, 4, 0.5, false);
    ck_assert(r.hold);
    r = slots_guard(100, 51, 49, SLOTS_DEFAULT_MAX_REMOVAL_SHARE, false);
    ck_assert(r.hold);
    r = slots_guard(100, 50, 50, SLOTS_DEFAULT_MAX_REMOVAL_SHARE, false);
    ck_assert(!r.hold);
}
END_TEST

START_TEST(test_guard_tiny_and_edges)
{
    struct slots_guard_result r;
    r = slots_guard(1, 1, 0, 0.5, false); /* the only server */
    ck_assert(r.hold);
    ck_assert_ptr_nonnull(strstr(r.reason, "without servers"));
    r = slots_guard(1, 1, 0, 0.5, true);
    ck_assert(!r.hold);
    r = slots_guard(1, 1, 1, 0.5, false); /* replaced by a new one: 1 > 0.5 */
    ck_assert(r.hold);
    r = slots_guard(2, 1, 1, 0.5, false);
    ck_assert(!r.hold);
    r = slots_guard(2, 2, 0, 0.5, false);
    ck_assert(r.hold);
    r = slots_guard(0, 0, 3, 0.5, false); /* filling an empty backend */
    ck_assert(!r.hold);
    r = slots_guard(5, 0, 5, 0.0, false);
    ck_assert(!r.hold);
    r = slots_guard(5, 1, 4, 0.0, false); /* share 0: any removal holds */
    ck_assert(r.hold);
    r = slots_guard(10, 9, 1, 1.0, false); /* share 1: only emptying holds */
    ck_assert(!r.hold);
    r = slots_guard(10, 10, 0, 1.0, false);
    ck_assert(r.hold);
    r = slots_guard(10, 9, 1, 7.0, false); /* > 1 is 1 */
    ck_assert(!r.hold);
    r = slots_guard(10, 1, 9, -0.5, false); /* < 0 is 1 */
    ck_assert(!r.hold);
    r = slots_guard(4, 3, 1, NAN, false); /* NaN is the default */
    ck_assert(r.hold);
    r = slots_guard(4, 2, 2, NAN, false);
    ck_assert(!r.hold);
}
END_TEST

START_TEST(test_count_removed)
{
    struct slot_assignment a, b;
    size_t need;
    slot_assignment_init(&a);
    slot_assignment_init(&b);
    assign(NULL, "a=1.0.0.1 b=1.0.0.2 c=1.0.0.3 d=1.0.0.4", 4, &a, &need);
    assign(&a, "a=1.0.0.9 c=1.0.0.3 x=1.0.0.5", 4, &b, &need);
    ck_assert_uint_eq(slots_count_removed(&a, &b), 2); /* b, d; a only moved */
    ck_assert_uint_eq(slots_count_removed(NULL, &b), 0);
    ck_assert_uint_eq(slots_count_removed(&b, &b), 0);
    slot_assignment_free(&a);
    slot_assignment_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("slots");
    TCase *tc = tcase_create("assign");
    tcase_add_test(tc, test_initial_lowest_free_in_key_order);
    tcase_add_test(tc, test_zoned_pools);
    tcase_add_test(tc, test_staying_servers_keep_their_slot);
    tcase_add_test(tc, test_changed_address_and_weight_keep_slot);
    tcase_add_test(tc, test_input_order_does_not_matter);
    tcase_add_test(tc, test_exhaustion_reports_growth_and_keeps_kept);
    tcase_add_test(tc, test_shrink_moves_only_the_displaced);
    tcase_add_test(tc, test_bad_input_refused);
    tcase_add_test(tc, test_grow_target);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_random_churn_invariants);
    suite_add_tcase(s, tc);
    tc = tcase_create("diff");
    tcase_add_test(tc, test_diff_fill_from_fresh_start);
    tcase_add_test(tc, test_diff_remove_and_reuse);
    tcase_add_test(tc, test_diff_leaves_agent_owned_state_alone);
    tcase_add_test(tc, test_diff_errors_and_ipv6);
    tcase_add_test(tc, test_diff_port_mapping_after_reload);
    tcase_add_test(tc, test_adopt_keeps_serving_slots);
    tcase_add_test(tc, test_diff_failure_keeps_earlier_commands);
    suite_add_tcase(s, tc);
    tc = tcase_create("guard");
    tcase_add_test(tc, test_guard_thresholds);
    tcase_add_test(tc, test_guard_tiny_and_edges);
    tcase_add_test(tc, test_count_removed);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
