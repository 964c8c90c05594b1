/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_answers: the pure parsers of what HAProxy 2.6 answers on its
 * stats socket and master CLI, and the server-state filter. No I/O, no
 * loop: text in, typed records or a verdict out, every error a message
 * naming the line or field. haproxy_runtime feeds them the answers it
 * reads; tests and the fuzz target (tests/fuzz/watcher/
 * fuzz_haproxy_answers.c) feed them captured or arbitrary bytes. Owns:
 *
 *   - framing of a prompt-mode answer stream into one answer per command;
 *   - whether an answer to a command is a success (HAProxy answers errors
 *     as text);
 *   - `show servers state` (columns found by their header names);
 *   - `show proc` (master, workers, reload and failed-reload counters);
 *   - `show stat` (the error counters a canary watch compares);
 *   - the server-state file filter used before a placed reload.
 */
#ifndef DROVER_WATCHER_HAPROXY_ANSWERS_H
#define DROVER_WATCHER_HAPROXY_ANSWERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slots.h"

/*
 * Split a prompt-mode stream (buf[0..len), modified in place) into
 * answers. Each answer ends with "\n> " right at its start (empty answer)
 * or after a blank line ("\n\n> "); an answer keeps its last "\n" and is
 * NUL-terminated in buf. answers[0..want) receive pointers into buf.
 * Returns how many answers were complete (a stream cut short has fewer).
 */
size_t haproxy_split_prompt_answers(char *buf, size_t len, char **answers, size_t want);

/* 0 if `answer` to `cmd` is a success (empty, or the known informational
 * answers of set/enable/disable commands), else -EINVAL with err
 * "haproxy: `CMD`: ANSWER" (first line of the answer). */
int haproxy_runtime_check_answer(const char *cmd, const char *answer, char *err, size_t errlen);

/* ---- show servers state ---- */

/* Parse the answer of `show servers state [backend]` (format version 1;
 * columns found by their names in the "#" header, so added columns do not
 * matter). Only servers of `backend` are kept (NULL: the servers of every
 * backend; struct slot_live does not say which). *out is
 * malloc'd (caller frees), *n its length. 0, -EINVAL (err says which line)
 * or -ENOMEM. */
int haproxy_parse_servers_state(const char *text, size_t len, const char *backend,
                                struct slot_live **out, size_t *n, char *err, size_t errlen);

/* The answer to cmd = `show servers state <backend>`: "Can't find
 * backend." / "No such backend." is -ENOENT, other HAProxy errors -EINVAL
 * (haproxy_runtime_check_answer), else haproxy_parse_servers_state of
 * backend's servers. Same ownership as haproxy_parse_servers_state. */
int haproxy_parse_servers_state_answer(const char *cmd, const char *answer, const char *backend,
                                       struct slot_live **live, size_t *n, char *err,
                                       size_t errlen);

/* The placement a backend's slots were rendered from in the config that is
 * about to be loaded. */
struct haproxy_placement {
    const char *backend;
    const struct slot_assignment *a;
};

/* The state-file filter of haproxy_runtime_reload_placed, on the text of
 * `show servers state`: *out (malloc'd, caller frees) is text without the
 * lines to drop, *dropped how many were dropped. 0, -EINVAL (not a state
 * dump) or -ENOMEM. */
int haproxy_state_filter(const char *text, size_t len, const struct haproxy_placement *p, size_t n,
                         char **out, size_t *dropped);

/* The admin state a server must have when HAProxy starts from the state
 * file (haproxy_state_set_admin). */
enum haproxy_admin {
    HAPROXY_ADMIN_KEEP = -1, /* leave the line as HAProxy wrote it */
    HAPROXY_ADMIN_READY,     /* forced maintenance and forced drain cleared */
    HAPROXY_ADMIN_DRAIN,     /* forced drain (what agent `drain` sets) */
    HAPROXY_ADMIN_MAINT,     /* forced maintenance (what agent `maint` sets) */
};
typedef enum haproxy_admin (*haproxy_admin_fn)(void *arg, const char *backend, const char *server);

/* The text of `show servers state` with each server's srv_admin_state
 * set to what fn says (the forced maintenance and drain bits only; every
 * other bit and column as HAProxy wrote them), so that a HAProxy started
 * cold from it has the drains and maintenance in force from its first
 * packet. *out (malloc'd, caller frees); *changed: lines rewritten. 0,
 * -EINVAL (not a state dump) or -ENOMEM. */
int haproxy_state_set_admin(const char *text, size_t len, haproxy_admin_fn fn, void *arg,
                            char **out, size_t *changed);

/* ---- show proc ---- */

struct haproxy_proc {
    int pid;
    int reloads;        /* master: reloads so far; worker: reloads it has lived through */
    int failed_reloads; /* master only ("[failed: N]"), else 0 */
    int relative_pid;   /* 0 when the column is absent (2.6 has none) */
    char type[16];      /* "master", "worker" */
    char uptime[32];
    char version[64];
};
struct haproxy_proc_list {
    struct haproxy_proc master;
    struct haproxy_proc *workers; /* current and old (draining) workers */
    size_t n_workers;
};
void haproxy_proc_list_free(struct haproxy_proc_list *l);
/* Parse `show proc` (workers and programs sections; columns by header
 * names). 0, -EINVAL (no master line, bad number) or -ENOMEM. */
int haproxy_parse_show_proc(const char *text, size_t len, struct haproxy_proc_list *out, char *err,
                            size_t errlen);

/* ---- show stat (error counters) ---- */

/* HAProxy's own error counters of one instance, summed over its proxies
 * (the "errors" of a status service, docs/kv-schema.md). They count since
 * the worker started: a reload or restart sets them back to 0. */
struct haproxy_error_counters {
    uint64_t requests;    /* req_tot of FRONTEND rows: HTTP requests received */
    uint64_t req_errors;  /* ereq of FRONTEND rows: requests that failed to parse or read */
    uint64_t conn_errors; /* econ of BACKEND rows: failed connects to a server */
    uint64_t resp_errors; /* eresp of BACKEND rows: bad or aborted server responses */
    uint64_t http_5xx;    /* hrsp_5xx of FRONTEND rows: 5xx answers sent to clients */
};

/* The command whose answer haproxy_parse_stat_errors reads: frontend and
 * backend rows only (types 1|2), so the answer stays small with many
 * server slots. */
#define HAPROXY_STAT_ERRORS_CMD "show stat -1 3 -1"

/* Sum the counters of a `show stat` CSV answer (columns found by their
 * header names; an empty field counts 0: TCP proxies have no HTTP
 * columns filled). 0, or -EINVAL (no header, a column missing, a field
 * that is not a number; err names it) or -ENOMEM. */
int haproxy_parse_stat_errors(const char *text, size_t len, struct haproxy_error_counters *out,
                              char *err, size_t errlen);

#endif
