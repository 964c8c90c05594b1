/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sleep_ms: block the calling thread for a given time, resuming after a
 * signal. Tests use it to stall a loop on purpose (as SIGSTOP or a long
 * table build would) or to pace a polling wait.
 */
#ifndef DROVER_TEST_SLEEP_H
#define DROVER_TEST_SLEEP_H

#include <time.h>

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

#endif
