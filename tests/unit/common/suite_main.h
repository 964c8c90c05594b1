/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a unit test's main() does once its suite is built: run every test
 * (forked, as check does by default, so a crash fails one test, not the
 * program) and turn the failures into the exit status CTest reads.
 * Suites elsewhere include it directly or through their directory's
 * fixture header (watcher/fixture.h).
 */
#ifndef DROVER_TEST_SUITE_MAIN_H
#define DROVER_TEST_SUITE_MAIN_H

#include <check.h>
#include <stdlib.h>

/* Run s (freed here); EXIT_SUCCESS when no test failed. */
static inline int suite_main_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
