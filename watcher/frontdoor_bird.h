/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frontdoor_bird: the BIRD 2 side of the front door (docs/frontdoor.md).
 * drover owns exactly one file, an include of the operator's bird.conf:
 *
 *   protocol static drover_vips  { ipv4; route VIP/32 blackhole; ... }
 *   protocol static drover_vips6 { ipv6; route VIP/128 blackhole; ... }
 *
 * (a route in graceful shutdown carries the community 65535:0). The file
 * is checked with `bird -p -c` through a wrapper config before it is
 * written atomically over the old one; BIRD then rereads its config
 * through its control socket (the `configure` command, spoken directly:
 * the birdc protocol). The operator's bird.conf is never written.
 *
 * Errors name the file or socket and carry BIRD's own words; what happens
 * next is the caller's to say.
 */
#ifndef DROVER_WATCHER_FRONTDOOR_BIRD_H
#define DROVER_WATCHER_FRONTDOOR_BIRD_H

#include <stdbool.h>
#include <stddef.h>

struct frontdoor_bird_route {
    const char *address; /* IPv4 or IPv6 text */
    bool shutdown;       /* add the graceful-shutdown community 65535:0 */
};

/* The include file for routes r[0..n). *out is malloc'd (caller frees).
 * 0, -EINVAL (an address that is not an IP address: nothing is rendered),
 * -ENOMEM. */
int frontdoor_bird_render(const struct frontdoor_bird_route *r, size_t n, char **out);

/* Check text with `bird_bin -p -c` and install it at path (atomic rename),
 * unless path already holds exactly text (*changed false). 0, or -errno
 * with err "<what failed>: <bird's words>"; the installed file is left as
 * it was on any failure. */
int frontdoor_bird_install(const char *bird_bin, const char *path, const char *text, bool *changed,
                           char *err, size_t errlen);

/* One reply of BIRD's control socket: numbered lines "CODE-text" (more
 * follow), " text" (continues the previous code), "CODE text" (last line);
 * lines starting with '+' are asynchronous notices and are skipped. */
struct frontdoor_bird_reply {
    int code;        /* code of the last line; 0 until complete */
    bool complete;   /* the last line was seen */
    char text[1024]; /* the lines' texts joined with "; " (truncated) */
};

/* Parse one reply from buf[0..len): *used gets the bytes it took (through
 * the last line) once complete. 0 (complete or not yet), -EPROTO when a
 * line is not BIRD's protocol. */
int frontdoor_bird_parse(const char *buf, size_t len, struct frontdoor_bird_reply *r, size_t *used);

/* A reply code that means failure (BIRD's 8xxx runtime and 9xxx parse
 * errors). */
bool frontdoor_bird_failed(int code);

/* Connect to the control socket, read the greeting, send cmd, read the
 * reply (within timeout_ms overall). 0 with *r when BIRD answered success;
 * -EREMOTEIO when it answered an error (its words in r->text); -ENOENT,
 * -ECONNREFUSED, -ETIMEDOUT, -EPROTO, ... for the socket. err says what
 * failed in either case. */
int frontdoor_bird_command(const char *socket_path, const char *cmd, int timeout_ms,
                           struct frontdoor_bird_reply *r, char *err, size_t errlen);

#endif
