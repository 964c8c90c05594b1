/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_checker: what the daemon answers, and the state it answers from.
 *
 * Owns the current agent_state table and swaps it for a new one when the
 * state file changes (inotify on the file's directory through
 * uv_fs_event, because the watcher replaces the file by rename; SIGHUP;
 * and a slow stat() poll as a safety net for missed events). A file that
 * is missing or fails to parse never replaces a good table: the previous
 * one stays, the error is logged with file/line/column and counted.
 * Until a first good file is loaded -- or when the loaded one is older
 * than the configured staleness limit -- every check gets the configured
 * fallback answer and readiness is false with the reason.
 *
 * agent_checker_answer() is the agent_server callback: request line ->
 * lookup (server, address, backend, default, fallback) -> reply line.
 *
 * Threads: the checker (reloads, readiness, watching) lives on one loop.
 * Answering threads each get an agent_reader and answer through
 * agent_reader_answer; they need no loop. A loaded state is one immutable,
 * reference-counted view shared by all: a reload publishes a new view (one
 * atomic pointer store), and each reader compares that pointer with its
 * own at every answer and, when it changed, takes a reference on the new
 * view and drops the old one; the last reference frees it. The checker
 * drops its own reference on a replaced view only after a grace (no
 * reader between loading the pointer and taking its reference). So every
 * answer comes from one complete file, the previous or the new one, and a
 * thread answers from the new one from its first answer after the
 * reload; an idle thread keeps the previous view until its next answer.
 * The hot path never takes a lock or allocates: one atomic load to see
 * whether the view changed, its reader's counters (relaxed atomics,
 * summed by agent_checker_counters).
 */
#ifndef DROVER_AGENT_CHECKER_H
#define DROVER_AGENT_CHECKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent_reply.h"
#include "agent_server.h"
#include "agent_state.h"

struct agent_checker_config {
    const char *state_path;    /* borrowed; must outlive the checker */
    const char *fallback;      /* reply words, e.g. "ready up" (see agent_reply_parse) */
    int64_t stale_after_s;     /* 0 = a loaded state never goes stale */
    uint64_t poll_interval_ms; /* stat() safety-net poll; 0 = off */
};

enum agent_reload_result {
    AGENT_RELOAD_OK = 0,
    AGENT_RELOAD_MISSING, /* file absent: previous state kept */
    AGENT_RELOAD_INVALID, /* parse/type error: previous state kept */
    AGENT_RELOAD_ERROR,   /* read error, out of memory: previous state kept */
    AGENT_RELOAD_COUNT,
};

struct agent_checker_counters {
    uint64_t replies[AGENT_ADMIN_COUNT][AGENT_HEALTH_COUNT];
    uint64_t matches[AGENT_MATCH_COUNT]; /* NONE = configured fallback used */
    uint64_t bad_requests;               /* garbage, oversize, partial at timeout */
    uint64_t fallback_no_state;          /* answered with no good state loaded */
    uint64_t fallback_stale;             /* answered while the state was stale */
    uint64_t reloads[AGENT_RELOAD_COUNT];
    uint64_t parse_errors; /* == reloads[INVALID] */
};

/* Readiness changed: called with the new value and a reason ("" when
 * ready). */
typedef void (*agent_ready_fn)(void *arg, bool ready, const char *reason);

struct agent_checker;

/* Create the checker, parse cfg->fallback, and load the state file once
 * (missing or bad is not an error here: the fallback applies). With a
 * loop, also start watching the file and SIGHUP. 0, -EINVAL (bad
 * fallback words) or -ENOMEM. */
int agent_checker_new(uv_loop_t *loop, const struct agent_checker_config *cfg,
                      agent_ready_fn ready_fn, void *ready_arg, struct agent_checker **out);

/* Re-read the state file now (why: "sighup", "inotify", "poll", "start"
 * for the log line). */
enum agent_reload_result agent_checker_reload(struct agent_checker *ck, const char *why);

/* agent_answer_fn for agent_server on the checker's own loop; ctx is the
 * checker. */
int agent_checker_answer(void *ctx, const char *req, size_t len, enum agent_req_end end, char *out,
                         size_t cap);

struct agent_reader;

/* A reader for one answering thread: call on the checker's thread.
 * 0 or -ENOMEM. */
int agent_checker_reader_new(struct agent_checker *ck, struct agent_reader **out);
/* agent_answer_fn for the thread that owns the reader (one thread at a
 * time); ctx is the reader. */
int agent_reader_answer(void *ctx, const char *req, size_t len, enum agent_req_end end, char *out,
                        size_t cap);
/* On the checker's thread once the reader's thread no longer answers,
 * before agent_checker_free. */
void agent_checker_reader_free(struct agent_reader *r);

/* Answer for one parsed request at time now into *out (text borrowed
 * from the checker/state until the next reload); returns where it came
 * from. Used by agent_checker_answer and the tests. */
enum agent_match agent_checker_lookup(struct agent_checker *ck, const struct agent_request *req,
                                      int64_t now, struct agent_answer *out);

/* Totals over every reader (answers) and the checker (reloads); the
 * pointer is valid until the next call. Checker's thread. */
const struct agent_checker_counters *agent_checker_counters(struct agent_checker *ck);
bool agent_checker_ready(const struct agent_checker *ck, const char **reason);
/* Seconds since the state's "generated" time (or since the file's mtime
 * when it has none); -1 with no state. */
double agent_checker_state_age(const struct agent_checker *ck);
size_t agent_checker_state_entries(const struct agent_checker *ck);
const char *agent_reload_result_name(enum agent_reload_result r);

/* Stop watching (handles close as the loop runs), then free after the
 * loop has run. */
void agent_checker_close(struct agent_checker *ck);
void agent_checker_free(struct agent_checker *ck);

#endif
