/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sdnotify: tell systemd about our state (Type=notify units) through
 * libsystemd's sd_notify: READY=1 once the daemon serves, STATUS=... for
 * `systemctl status`, STOPPING=1, and WATCHDOG=1 pings from a libuv timer
 * at half the interval systemd asked for (WatchdogSec=). Everything is a
 * no-op outside systemd (no $NOTIFY_SOCKET / $WATCHDOG_USEC).
 */
#ifndef DROVER_SDNOTIFY_H
#define DROVER_SDNOTIFY_H

#include <stdint.h>
#include <uv.h>

/* Each returns 1 if a message was sent, 0 if not under systemd, or a
 * negative errno from sd_notify (also logged as a warning). */
int sdnotify_ready(void);
int sdnotify_stopping(void);
int sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct sdnotify_watchdog;

/*
 * If systemd enabled the watchdog for this process, start a timer on loop
 * that sends WATCHDOG=1 every interval/2 and store it in *out (return 1).
 * Otherwise *out = NULL and return 0. Negative errno on failure.
 * The timer only fires while the loop runs, so a stuck loop gets the
 * daemon restarted, which is the point.
 */
int sdnotify_watchdog_start(uv_loop_t *loop, struct sdnotify_watchdog **out);
/* Interval between pings in microseconds (0 for NULL). */
uint64_t sdnotify_watchdog_interval_usec(const struct sdnotify_watchdog *wd);
/* Stop and free (asynchronously: the loop must run once more). NULL ok. */
void sdnotify_watchdog_stop(struct sdnotify_watchdog *wd);

#endif
