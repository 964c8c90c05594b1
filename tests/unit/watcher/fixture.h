/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the watcher's director and front-door suites share: running the
 * suite, optionally with the log quieted to errors (the director suites
 * feed bad KV entries on purpose; their warnings are expected and would
 * bury a real failure).
 */
#ifndef DROVER_TEST_WATCHER_FIXTURE_H
#define DROVER_TEST_WATCHER_FIXTURE_H

#include <check.h>

#include "../common/suite_main.h"
#include "log.h"

/* suite_main_run() with only errors logged. */
static inline int fixture_run_quiet(Suite *s)
{
    log_set_level(LOGL_ERROR);
    return suite_main_run(s);
}

#endif
