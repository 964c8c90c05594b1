/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_workers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct worker {
    struct agent_workers *ws;
    unsigned id;
    uv_loop_t loop;
    bool loop_ok;
    struct agent_server *srv;
    struct agent_reader *reader;
    uv_async_t stop;
    bool stop_ok;
    pthread_t thread;
    bool running;
};

struct agent_workers {
    struct agent_checker *ck;
    unsigned n;
    size_t naddrs;
    int ports[16];
    size_t active; /* connections open over all threads (max_connections) */
    struct worker *w;
};

unsigned agent_workers_default_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    return 1;
}

static void on_stop(uv_async_t *a)
{
    struct worker *w = a->data;
    agent_server_close(w->srv);
    agent_checker_reader_close(w->reader);
    uv_close((uv_handle_t *)&w->stop, NULL);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "agent-%u", w->id);
    pthread_setname_np(pthread_self(), name);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Free everything of w that exists; its thread has ended or never
 * started. Handles still open (a thread that never ran) are closed here. */
static void worker_release(struct worker *w)
{
    if (!w->loop_ok)
        return;
    agent_server_close(w->srv);
    agent_checker_reader_close(w->reader);
    if (w->stop_ok)
        uv_close((uv_handle_t *)&w->stop, NULL);
    w->stop_ok = false;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    agent_server_free(w->srv);
    w->srv = NULL;
    agent_checker_reader_free(w->reader);
    w->reader = NULL;
    if (uv_loop_close(&w->loop) != 0)
        log_warn("agent-checker: thread %u left handles open at exit", w->id);
    w->loop_ok = false;
}

static int worker_init(struct agent_workers *ws, struct worker *w, unsigned id,
                       const struct agent_server_config *cfg)
{
    w->ws = ws;
    w->id = id;
    int rc = uv_loop_init(&w->loop);
    if (rc < 0)
        return rc;
    w->loop_ok = true;
    if ((rc = agent_checker_reader_new(ws->ck, &w->loop, &w->reader)) < 0)
        return rc;
    if ((rc = agent_server_new(&w->loop, cfg, agent_reader_answer, w->reader, &w->srv)) < 0)
        return rc;
    if ((rc = uv_async_init(&w->loop, &w->stop, on_stop)) < 0)
        return rc;
    w->stop.data = w;
    w->stop_ok = true;
    return 0;
}

int agent_workers_start(struct agent_checker *ck, const struct agent_server_config *cfg,
                        char *const *addrs, size_t naddrs, unsigned n, struct agent_workers **out,
                        char *err, size_t errlen)
{
    struct agent_server_config c = *cfg;
    int rc;

    err[0] = '\0';
    if (n == 0)
        n = 1;
    if (naddrs == 0 || naddrs > 16) {
        snprintf(err, errlen, "%zu listen addresses (1 to 16)", naddrs);
        return -EINVAL;
    }
    struct agent_workers *ws = calloc(1, sizeof(*ws));
    if (!ws || !(ws->w = calloc(n, sizeof(*ws->w)))) {
        free(ws);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ws->ck = ck;
    ws->n = n;
    ws->naddrs = naddrs;
    c.reuseport = n > 1;
    c.shared_active = &ws->active;

    for (unsigned i = 0; i < n; i++) {
        if ((rc = worker_init(ws, &ws->w[i], i, &c)) < 0) {
            snprintf(err, errlen, "setting up thread %u: %s", i, uv_strerror(rc));
            goto fail;
        }
    }
    /* The first thread binds each address (a free port for port 0), the
     * others join the same address and port. */
    for (size_t a = 0; a < naddrs; a++) {
        struct sockaddr_storage ss;
        if (agent_server_parse_addr(addrs[a], &ss) < 0) {
            snprintf(err, errlen, "--listen %s: not IPv4:port or [IPv6]:port", addrs[a]);
            rc = -EINVAL;
            goto fail;
        }
        for (unsigned i = 0; i < n; i++) {
            rc = agent_server_listen_sa(ws->w[i].srv, &ss, i > 0);
            if (rc == 0 && i == 0)
                rc = agent_server_sockname(ws->w[0].srv, a, &ss);
            if (rc < 0) {
                snprintf(err, errlen, "--listen %s (thread %u): %s", addrs[a], i,
                         rc == -ENOENT ? "no bound address" : uv_strerror(rc));
                goto fail;
            }
        }
        ws->ports[a] = agent_server_port(ws->w[0].srv, a);
    }
    for (unsigned i = 0; i < n; i++) {
        if ((rc = -pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i])) < 0) {
            snprintf(err, errlen, "starting thread %u: %s", i, strerror(-rc));
            goto fail;
        }
        ws->w[i].running = true;
    }
    *out = ws;
    return 0;
fail:
    agent_workers_stop(ws);
    agent_workers_free(ws);
    return rc;
}

int agent_workers_port(const struct agent_workers *w, size_t i)
{
    return i < w->naddrs ? w->ports[i] : 0;
}

unsigned agent_workers_count(const struct agent_workers *w)
{
    return w ? w->n : 0;
}

void agent_workers_stats(const struct agent_workers *w, struct agent_server_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; w && i < w->n; i++)
        if (w->w[i].srv)
            agent_server_stats_add(w->w[i].srv, out);
}

void agent_workers_stop(struct agent_workers *ws)
{
    if (!ws)
        return;
    for (unsigned i = 0; i < ws->n; i++)
        if (ws->w[i].running)
            uv_async_send(&ws->w[i].stop);
    for (unsigned i = 0; i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        if (w->running) {
            pthread_join(w->thread, NULL);
            w->running = false;
            w->stop_ok = false; /* on_stop closed every handle */
        }
        worker_release(w);
    }
}

void agent_workers_free(struct agent_workers *ws)
{
    if (!ws)
        return;
    free(ws->w);
    free(ws);
}
