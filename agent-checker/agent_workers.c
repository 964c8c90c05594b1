/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_workers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_wait.h"
#include "log.h"

#define MAX_ADDRS 16

/* One answering thread: blocks in accept4 on its own listeners. */
struct worker {
    unsigned id;
    struct agent_server *srv;
    struct agent_reader *reader;
    pthread_t thread;
    bool running;
};

struct agent_workers {
    struct agent_checker *ck;
    unsigned n;
    size_t naddrs;
    int ports[MAX_ADDRS];
    size_t active; /* connections open over all threads (max_connections) */
    struct worker *w;
    /* The waiting thread: one libuv loop for the connections of every
     * answering thread that must wait for their line. */
    uv_loop_t loop;
    bool loop_ok;
    struct agent_wait *wait;
    struct agent_reader *wait_reader;
    uv_async_t stop;
    bool stop_ok;
    pthread_t wait_thread;
    bool wait_running;
};

unsigned agent_workers_default_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    return 1;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "agent-%u", w->id);
    pthread_setname_np(pthread_self(), name);
    agent_server_serve(w->srv);
    return NULL;
}

static void on_stop(uv_async_t *a)
{
    struct agent_workers *ws = a->data;
    agent_wait_close(ws->wait);
    uv_close((uv_handle_t *)&ws->stop, NULL);
}

static void *wait_main(void *arg)
{
    struct agent_workers *ws = arg;
    pthread_setname_np(pthread_self(), "agent-wait");
    uv_run(&ws->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int wait_init(struct agent_workers *ws, const struct agent_server_config *cfg)
{
    int rc = uv_loop_init(&ws->loop);
    if (rc < 0)
        return rc;
    ws->loop_ok = true;
    if ((rc = agent_checker_reader_new(ws->ck, &ws->wait_reader)) < 0)
        return rc;
    if ((rc = agent_wait_new(&ws->loop, cfg->request_timeout_ms, agent_reader_answer,
                             ws->wait_reader, &ws->wait)) < 0)
        return rc;
    if ((rc = uv_async_init(&ws->loop, &ws->stop, on_stop)) < 0)
        return rc;
    ws->stop.data = ws;
    ws->stop_ok = true;
    return 0;
}

static int worker_init(struct agent_workers *ws, struct worker *w, unsigned id,
                       const struct agent_server_config *cfg)
{
    w->id = id;
    int rc = agent_checker_reader_new(ws->ck, &w->reader);
    if (rc < 0)
        return rc;
    return agent_server_new(cfg, agent_reader_answer, w->reader, &w->srv);
}

/* The first thread binds each address (a free port for port 0), the
 * others join the same address and port. */
static int listen_all(struct agent_workers *ws, char *const *addrs, char *err, size_t errlen)
{
    for (size_t a = 0; a < ws->naddrs; a++) {
        struct sockaddr_storage ss;
        if (agent_server_parse_addr(addrs[a], &ss) < 0) {
            snprintf(err, errlen, "--listen %s: not IPv4:port or [IPv6]:port", addrs[a]);
            return -EINVAL;
        }
        for (unsigned i = 0; i < ws->n; i++) {
            int rc = agent_server_listen_sa(ws->w[i].srv, &ss, i > 0);
            if (rc == 0 && i == 0)
                rc = agent_server_sockname(ws->w[0].srv, a, &ss);
            if (rc < 0) {
                snprintf(err, errlen, "--listen %s (thread %u): %s", addrs[a], i,
                         rc == -ENOENT ? "no bound address" : uv_strerror(rc));
                return rc;
            }
        }
        ws->ports[a] = agent_server_port(ws->w[0].srv, a);
    }
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
    if (naddrs == 0 || naddrs > MAX_ADDRS) {
        snprintf(err, errlen, "%zu listen addresses (1 to %d)", naddrs, MAX_ADDRS);
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
    if ((rc = wait_init(ws, cfg)) < 0) {
        snprintf(err, errlen, "setting up the waiting thread: %s", uv_strerror(rc));
        goto fail;
    }
    c.reuseport = n > 1;
    c.shared_active = &ws->active;
    c.wait = ws->wait;
    for (unsigned i = 0; i < n; i++) {
        if ((rc = worker_init(ws, &ws->w[i], i, &c)) < 0) {
            snprintf(err, errlen, "setting up thread %u: %s", i, strerror(-rc));
            goto fail;
        }
    }
    if ((rc = listen_all(ws, addrs, err, errlen)) < 0)
        goto fail;
    if ((rc = -pthread_create(&ws->wait_thread, NULL, wait_main, ws)) < 0) {
        snprintf(err, errlen, "starting the waiting thread: %s", strerror(-rc));
        goto fail;
    }
    ws->wait_running = true;
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
    if (!w)
        return;
    for (unsigned i = 0; i < w->n; i++)
        if (w->w[i].srv)
            agent_server_stats_add(w->w[i].srv, out);
    if (w->wait)
        agent_wait_stats_add(w->wait, out);
}

/* Free the waiting side; its thread has ended or never started. Handles
 * still open (a thread that never ran) are closed here. */
static void wait_release(struct agent_workers *ws)
{
    if (!ws->loop_ok)
        return;
    if (ws->wait_running) {
        uv_async_send(&ws->stop);
        pthread_join(ws->wait_thread, NULL);
        ws->wait_running = false;
        ws->stop_ok = false; /* on_stop closed it and the wait */
    }
    agent_wait_close(ws->wait); /* no-op when on_stop ran */
    if (ws->stop_ok)
        uv_close((uv_handle_t *)&ws->stop, NULL);
    ws->stop_ok = false;
    uv_run(&ws->loop, UV_RUN_DEFAULT);
    agent_wait_free(ws->wait);
    ws->wait = NULL;
    agent_checker_reader_free(ws->wait_reader);
    ws->wait_reader = NULL;
    if (uv_loop_close(&ws->loop) != 0)
        log_warn("agent-checker: the waiting thread left handles open at exit");
    ws->loop_ok = false;
}

/* The answering threads first (each wakes from accept4 when its listeners
 * are shut down): after that nothing hands connections to the wait. */
void agent_workers_stop(struct agent_workers *ws)
{
    if (!ws)
        return;
    for (unsigned i = 0; i < ws->n; i++)
        agent_server_stop(ws->w[i].srv);
    for (unsigned i = 0; i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        if (w->running) {
            pthread_join(w->thread, NULL);
            w->running = false;
        }
        agent_server_free(w->srv);
        w->srv = NULL;
        agent_checker_reader_free(w->reader);
        w->reader = NULL;
    }
    wait_release(ws);
}

void agent_workers_free(struct agent_workers *ws)
{
    if (!ws)
        return;
    free(ws->w);
    free(ws);
}
