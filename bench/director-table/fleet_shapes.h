/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet_shapes: the fleets of bench/director-table's worst-case sweep
 * (unequal weights, draining and filling proxies, unhealthy tiers, the
 * fuzz seeds that found a blow-up, the typical fleet), as data. The bench
 * times them; tests/unit/xdp-lb/test_director_table.c builds some of them,
 * by name, with one thread and with more. Both name and address the
 * proxies of a shape alike ("proxy-NNNN", 10.1.x.y), so a table of either
 * is the same table.
 */
#ifndef DROVER_BENCH_FLEET_SHAPES_H
#define DROVER_BENCH_FLEET_SHAPES_H

#include <stdbool.h>
#include <stdint.h>

#include "director_table.h"

#define FLEET_SHAPE_MAX_GROUPS 12

/* A group of `count` proxies with the same state, health and weight. */
struct fleet_group {
    unsigned count;
    enum director_proxy_state state;
    bool healthy;
    uint32_t weight;
};

struct fleet_shape {
    const char *name;
    unsigned load_permille, draw_per_row;
    const char *seed; /* NULL: the bench seed */
    struct fleet_group g[FLEET_SHAPE_MAX_GROUPS];
};

#define A DIRECTOR_PROXY_ACTIVE
#define D DIRECTOR_PROXY_DRAINING
#define F DIRECTOR_PROXY_FILLING
#define I DIRECTOR_PROXY_INACTIVE
static const struct fleet_shape fleet_shapes[] = {
    {"typical: 1000 active w100", 0, 0, NULL, {{1000, A, true, 100}}},
    {"1024 active w100", 0, 0, NULL, {{1024, A, true, 100}}},
    {"2 active", 0, 0, NULL, {{2, A, true, 100}}},
    {"3 active", 0, 0, NULL, {{3, A, true, 100}}},
    {"5 active", 0, 0, NULL, {{5, A, true, 100}}},
    {"fuzz seed 1 (active w1 + draining w63, unhealthy)",
     0,
     1,
     "cluster-key-0001",
     {{1, A, false, 1}, {1, D, false, 63}}},
    {"fuzz seed 2 (2 draining, load 2160)",
     2160,
     1,
     "",
     {{1, I, true, 101}, {1, D, false, 49}, {1, A, false, 1}, {1, D, false, 1}}},
    {"active w1 + draining w255", 0, 0, NULL, {{1, A, true, 1}, {1, D, true, 255}}},
    {"active w1 + draining w65535", 0, 0, NULL, {{1, A, true, 1}, {1, D, true, 65535}}},
    {"active w1 + filling w65535", 0, 0, NULL, {{1, A, true, 1}, {1, F, true, 65535}}},
    {"1000 active w1 + 24 draining w65535", 0, 0, NULL, {{1000, A, true, 1}, {24, D, true, 65535}}},
    {"1000 active w1 + 24 filling w65535", 0, 0, NULL, {{1000, A, true, 1}, {24, F, true, 65535}}},
    {"1 active w65535 + 40 w1", 0, 0, NULL, {{1, A, true, 65535}, {40, A, true, 1}}},
    {"1 active w65535 + 1023 w1", 0, 0, NULL, {{1, A, true, 65535}, {1023, A, true, 1}}},
    {"2 active w65535 + 1022 w1", 0, 0, NULL, {{2, A, true, 65535}, {1022, A, true, 1}}},
    {"512 w1 + 512 w3, load 1001", 1001, 0, NULL, {{512, A, true, 1}, {512, A, true, 3}}},
    {"1024 active, load 1001", 1001, 0, NULL, {{1024, A, true, 100}}},
    {"12 active w1..2048 (x2), load 1001",
     1001,
     0,
     NULL,
     {{1, A, true, 1},
      {1, A, true, 2},
      {1, A, true, 4},
      {1, A, true, 8},
      {1, A, true, 16},
      {1, A, true, 32},
      {1, A, true, 64},
      {1, A, true, 128},
      {1, A, true, 256},
      {1, A, true, 512},
      {1, A, true, 1024},
      {1, A, true, 2048}}},
    {"512 healthy + 512 unhealthy", 0, 0, NULL, {{512, A, true, 100}, {512, A, false, 100}}},
    {"1024 unhealthy (fail open)", 0, 0, NULL, {{1024, A, false, 100}}},
    {"1 healthy draining w65535 + 1023 unhealthy active",
     0,
     0,
     NULL,
     {{1, D, true, 65535}, {1023, A, false, 1}}},
    {"300 active, 300 filling, 300 draining",
     0,
     0,
     NULL,
     {{300, A, true, 100}, {300, F, true, 100}, {300, D, true, 100}}},
};
#undef A
#undef D
#undef F
#undef I

#endif
