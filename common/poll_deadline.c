/* SPDX-License-Identifier: Apache-2.0 */
/* poll_deadline: see poll_deadline.h. */
#include "poll_deadline.h"

#include <errno.h>

#include "log.h"

int poll_deadline(struct pollfd *p, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = log_monotonic_ms();
        /* past the deadline: still look once, without waiting */
        int wait = now >= deadline_ms ? 0 : (int)(deadline_ms - now);
        int rc = poll(p, 1, wait);
        if (rc > 0)
            return 1;
        if (rc == 0 && wait == 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
        /* rc == 0 with time left (woken early) or EINTR: go round */
    }
}
