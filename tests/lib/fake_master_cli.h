/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_master_cli: HAProxy 2.6's master CLI for the tests of the runtime
 * client and the engine, on a thread of its own so that it answers
 * whatever the test's loop does (runs, or is blocked on purpose by
 * loop_stall.h). One command per connection, as the client sends them:
 * the request is read until the client shuts its side, the test's answer
 * function picks the answer (NULL: none, as 2.6 answers `reload`), and
 * the connection closes after it.
 */
#ifndef DROVER_FAKE_MASTER_CLI_H
#define DROVER_FAKE_MASTER_CLI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* The answer to cmd (the request as read, NUL-terminated), on the fake's
 * thread; it must stay valid until written. NULL: close without one. */
typedef const char *(*fake_master_cli_answer_fn)(void *arg, const char *cmd);

struct fake_master_cli {
    int lfd;
    char path[108];
    fake_master_cli_answer_fn answer;
    void *arg;
    atomic_bool stop;
    pthread_t thread;
};

/* Listen on the unix socket path (replacing a stale one) and serve from a
 * new thread: 0 or a negative errno (-ENAMETOOLONG for a path beyond
 * sun_path). m must stay where it is until fake_master_cli_stop. */
int fake_master_cli_start(struct fake_master_cli *m, const char *path,
                          fake_master_cli_answer_fn answer, void *arg);

/* Stop serving (within one 10 ms poll), close and remove the socket. */
void fake_master_cli_stop(struct fake_master_cli *m);

#endif
