/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_state: the parsed agent-checker state file and its lookup table.
 *
 * The watcher renders a JSON file (format in docs/agent-checker.md, the
 * contract between the two) and replaces it by atomic rename. This module
 * parses such a file into an immutable, compact table (open addressing over
 * one string arena: a few tens of bytes per entry, so 50k servers stay in a
 * few MiB) and answers lookups: exact "<backend>/<server>" entry, then the
 * server address (with port, then without), then a backend-wide entry,
 * then the file's default. Expiry is checked at lookup time, so an entry
 * stops applying the second it expires even if the file never changes.
 *
 * A file is accepted whole or not at all: any syntax or type error rejects
 * it (with line/column for syntax errors and a JSON path for the others)
 * so the caller keeps its previous state rather than half of a new one --
 * skipping a bad "maint" entry would silently put a server back in service.
 */
#ifndef DROVER_AGENT_STATE_H
#define DROVER_AGENT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "agent_reply.h"

#define AGENT_STATE_VERSION 1

struct agent_state;

/* Where the answer of a lookup came from (a metric label). */
enum agent_match {
    AGENT_MATCH_SERVER = 0, /* servers["be/srv"] */
    AGENT_MATCH_ADDRESS,    /* addresses["ip:port"] or addresses["ip"] */
    AGENT_MATCH_BACKEND,    /* backends["be"] */
    AGENT_MATCH_DEFAULT,    /* the file's "default" */
    AGENT_MATCH_NONE,       /* nothing applies: caller uses its fallback */
    AGENT_MATCH_COUNT,
};

const char *agent_match_name(enum agent_match m);

/* Why a file was rejected. line/column are 1-based and 0 when the error is
 * not a syntax error (then text names the JSON path). */
struct agent_state_error {
    int line;
    int column;
    char text[256];
};

/* Parse buf[0..len). On success *out owns a new table (free with
 * agent_state_free) and 0 is returned; otherwise a negative errno
 * (-EINVAL for a bad file, -ENOMEM) and err says why. */
int agent_state_parse(const char *buf, size_t len, struct agent_state **out,
                      struct agent_state_error *err);

/* Read and parse the file at path. -ENOENT when it does not exist (err
 * says so too), other read errors as negative errno. */
int agent_state_load(const char *path, struct agent_state **out, struct agent_state_error *err);

void agent_state_free(struct agent_state *st);

/* Answer for req at wall-clock time now (unix seconds). out->text points
 * into st and lives as long as st. Never fails: AGENT_MATCH_NONE leaves
 * *out untouched. */
enum agent_match agent_state_lookup(const struct agent_state *st, const struct agent_request *req,
                                    int64_t now, struct agent_answer *out);

/* Entries in the table (default not counted). */
size_t agent_state_count(const struct agent_state *st);
/* The file's "generated" time in unix seconds, 0 if absent. */
int64_t agent_state_generated(const struct agent_state *st);

#endif
