/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the config unit tests share: a temporary directory with a config
 * file path, environment variables cleared before each test, and the
 * argument vector a parse call builds from a NULL-terminated list.
 */
#ifndef DROVER_TEST_CONFIG_FIXTURE_H
#define DROVER_TEST_CONFIG_FIXTURE_H

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];
static char cfgpath[128]; /* tmpdir/drover.json, not written until write_cfg */

/* Unset vars[0..n), make tmpdir and name cfgpath in it. */
static void fixture_setup(const char *const *vars, size_t n)
{
    for (size_t i = 0; i < n; i++)
        unsetenv(vars[i]);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/drover-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(cfgpath, sizeof(cfgpath), "%s/drover.json", tmpdir);
}

static void fixture_teardown(void)
{
    unlink(cfgpath);
    rmdir(tmpdir);
}

static void write_cfg(const char *json)
{
    FILE *f = fopen(cfgpath, "w");
    ck_assert_ptr_nonnull(f);
    fputs(json, f);
    fclose(f);
}

/* argv[0] = "drover-test", then the arguments of ap up to NULL (at most
 * 30); returns argc. */
static int fixture_argv(char *argv[32], va_list ap)
{
    int argc = 0;
    argv[argc++] = "drover-test";
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    argv[argc] = NULL;
    return argc;
}

#endif
