/* SPDX-License-Identifier: Apache-2.0 */
/*
 * curl_uv: libcurl multi interface on a libuv loop. See curl_uv.h.
 *
 * Lifetimes: one struct sock_ctx per socket libcurl asks us to watch,
 * created on the first CURL_POLL_* for that socket and closed on
 * CURL_POLL_REMOVE. uv_close() is asynchronous, so struct curl_uv counts
 * its open uv handles and is only freed after the last close callback.
 * Done callbacks may call curl_uv_free(); the free is then deferred until
 * the dispatch loop unwinds (cu->depth).
 */
#include "curl_uv.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define CU_CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    int events; /* UV_READABLE / UV_WRITABLE libcurl asked for */
    struct curl_uv *cu;
    struct sock_ctx *next, *prev;
};

struct transfer {
    CURL *easy;
    curl_uv_done_cb done;
    void *arg;
    struct transfer *next, *prev;
};

struct curl_uv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct sock_ctx *socks;
    struct transfer *transfers; /* running, for curl_uv_free() */
    unsigned open_handles;      /* uv handles not yet closed (timer + polls) */
    unsigned active;
    int depth;  /* > 0 while dispatching libcurl results */
    bool dying; /* curl_uv_free() was called */
};

static void on_timer(uv_timer_t *t);

static void maybe_release(struct curl_uv *cu)
{
    if (cu->dying && cu->open_handles == 0 && cu->depth == 0)
        free(cu);
}

static void handle_closed(uv_handle_t *h)
{
    struct curl_uv *cu = h->data;
    if (h->type == UV_POLL)
        free(CU_CONTAINER((uv_poll_t *)h, struct sock_ctx, poll));
    cu->open_handles--;
    maybe_release(cu);
}

static void sock_close(struct sock_ctx *sc)
{
    struct curl_uv *cu = sc->cu;
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        cu->socks = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    uv_poll_stop(&sc->poll);
    uv_close((uv_handle_t *)&sc->poll, handle_closed);
}

static void transfer_unlink(struct curl_uv *cu, struct transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        cu->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static void finish_transfers(struct curl_uv *cu)
{
    CURLMsg *msg;
    int left;
    while (!cu->dying && (msg = curl_multi_info_read(cu->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct transfer *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(cu->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        cu->active--;
        if (t) {
            transfer_unlink(cu, t);
            curl_uv_done_cb done = t->done;
            void *arg = t->arg;
            free(t);
            done(easy, result, arg);
        }
    }
}

static void socket_action(struct curl_uv *cu, curl_socket_t fd, int events)
{
    int running;
    cu->depth++;
    CURLMcode rc = curl_multi_socket_action(cu->multi, fd, events, &running);
    if (rc != CURLM_OK)
        log_error("curl_uv: curl_multi_socket_action: %s, transfers continue on next event",
                  curl_multi_strerror(rc));
    finish_transfers(cu);
    /* libcurl only calls the timer function when its next expiry changes;
     * a transfer that finishes inside this call can leave our one-shot
     * timer fired while curl still thinks it is armed. Re-arm from
     * curl_multi_timeout() so no transfer is ever left without a wake-up. */
    if (!cu->dying && cu->active > 0 && !uv_is_active((uv_handle_t *)&cu->timer)) {
        long ms = -1;
        if (curl_multi_timeout(cu->multi, &ms) == CURLM_OK && ms >= 0)
            uv_timer_start(&cu->timer, on_timer, (uint64_t)ms, 0);
    }
    cu->depth--;
    if (cu->dying && cu->depth == 0) {
        /* curl_uv_free() ran inside a done callback: finish it now. */
        curl_uv_free(cu);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_ctx *sc = CU_CONTAINER(p, struct sock_ctx, poll);
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(sc->cu, sc->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int cb_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct curl_uv *cu = userp;
    struct sock_ctx *sc = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            curl_multi_assign(cu->multi, fd, NULL);
            sock_close(sc);
        }
        return 0;
    }
    if (!sc) {
        sc = calloc(1, sizeof(*sc));
        if (!sc)
            return -1;
        if (uv_poll_init_socket(cu->loop, &sc->poll, fd) != 0) {
            free(sc);
            return -1;
        }
        sc->fd = fd;
        sc->cu = cu;
        sc->poll.data = cu;
        sc->next = cu->socks;
        if (cu->socks)
            cu->socks->prev = sc;
        cu->socks = sc;
        cu->open_handles++;
        curl_multi_assign(cu->multi, fd, sc);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    sc->events = events;
    uv_poll_start(&sc->poll, events, on_poll);
    return 0;
}

static int cb_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct curl_uv *cu = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&cu->timer);
    else
        uv_timer_start(&cu->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* Sockets libcurl watches, as pollfds; *n of them. NULL with *n = 0 when
 * there are none or on ENOMEM (the caller then reads nothing early, which
 * is what happened before this existed). */
static struct pollfd *watched_fds(const struct curl_uv *cu, size_t *n)
{
    size_t count = 0, i = 0;

    for (const struct sock_ctx *sc = cu->socks; sc; sc = sc->next)
        count++;
    struct pollfd *fds = count ? calloc(count, sizeof(*fds)) : NULL;
    *n = fds ? count : 0;
    for (const struct sock_ctx *sc = cu->socks; fds && sc; sc = sc->next, i++) {
        fds[i].fd = sc->fd;
        fds[i].events = (short)(((sc->events & UV_READABLE) ? POLLIN : 0) |
                                ((sc->events & UV_WRITABLE) ? POLLOUT : 0));
    }
    return fds;
}

static int poll_flags(short revents)
{
    int flags = 0;

    if (revents & (POLLERR | POLLNVAL))
        flags |= CURL_CSELECT_ERR;
    if (revents & (POLLIN | POLLHUP))
        flags |= CURL_CSELECT_IN;
    if (revents & POLLOUT)
        flags |= CURL_CSELECT_OUT;
    return flags;
}

void curl_uv_read_ready(struct curl_uv *cu)
{
    size_t n = 0;

    if (!cu || cu->dying)
        return;
    struct pollfd *fds = watched_fds(cu, &n);
    if (n && poll(fds, (nfds_t)n, 0) > 0) {
        /* socket_action may close sockets and run done callbacks (which may
         * free cu): hold the free off until every ready fd was handed on.
         * libcurl ignores an fd it no longer knows. */
        cu->depth++;
        for (size_t i = 0; i < n && !cu->dying; i++)
            if (fds[i].revents)
                socket_action(cu, fds[i].fd, poll_flags(fds[i].revents));
        cu->depth--;
        if (cu->dying && cu->depth == 0)
            curl_uv_free(cu);
    }
    free(fds);
}

int curl_uv_new(uv_loop_t *loop, struct curl_uv **out)
{
    /* Thread-safe since libcurl 7.84; drover has one loop per process
     * anyway. Repeated calls are reference-counted by libcurl. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    struct curl_uv *cu = calloc(1, sizeof(*cu));
    if (!cu)
        return -ENOMEM;
    cu->loop = loop;
    cu->multi = curl_multi_init();
    if (!cu->multi) {
        free(cu);
        return -ENOMEM;
    }
    uv_timer_init(loop, &cu->timer);
    cu->timer.data = cu;
    cu->open_handles = 1;
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, cb_socket);
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, cb_timer);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
    *out = cu;
    return 0;
}

int curl_uv_add(struct curl_uv *cu, CURL *easy, curl_uv_done_cb done, void *arg)
{
    if (!cu || !easy || !done || cu->dying)
        return -EINVAL;
    struct transfer *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->easy = easy;
    t->done = done;
    t->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    CURLMcode rc = curl_multi_add_handle(cu->multi, easy);
    if (rc != CURLM_OK) {
        log_error("curl_uv: curl_multi_add_handle: %s, request not started",
                  curl_multi_strerror(rc));
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(t);
        return -EIO;
    }
    cu->active++;
    /* Kick the transfer off from the loop even if libcurl decided its
     * timer did not change (see socket_action()). */
    uv_timer_start(&cu->timer, on_timer, 0, 0);
    t->next = cu->transfers;
    if (cu->transfers)
        cu->transfers->prev = t;
    cu->transfers = t;
    return 0;
}

void curl_uv_remove(struct curl_uv *cu, CURL *easy)
{
    struct transfer *t = NULL;
    if (!cu || !easy)
        return;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    if (!t)
        return; /* not running */
    curl_multi_remove_handle(cu->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    transfer_unlink(cu, t);
    free(t);
    cu->active--;
}

unsigned curl_uv_active(const struct curl_uv *cu)
{
    return cu ? cu->active : 0;
}

void curl_uv_free(struct curl_uv *cu)
{
    if (!cu)
        return;
    if (cu->depth > 0) {
        cu->dying = true; /* finished by socket_action() when it unwinds */
        return;
    }
    if (cu->multi) {
        while (cu->transfers)
            curl_uv_remove(cu, cu->transfers->easy);
        curl_multi_cleanup(cu->multi);
        cu->multi = NULL;
    }
    cu->dying = true;
    while (cu->socks)
        sock_close(cu->socks);
    if (!uv_is_closing((uv_handle_t *)&cu->timer)) {
        uv_timer_stop(&cu->timer);
        uv_close((uv_handle_t *)&cu->timer, handle_closed);
    }
}

size_t curl_uv_buf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct curl_uv_buf *b = userdata;
    size_t n = size * nmemb;
    size_t max = b->max ? b->max : CURL_UV_BUF_DEFAULT_MAX;
    if (b->len + n + 1 > max) {
        b->overflow = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

void curl_uv_buf_reset(struct curl_uv_buf *b)
{
    b->len = 0;
    b->overflow = false;
    if (b->data)
        b->data[0] = '\0';
}

void curl_uv_buf_free(struct curl_uv_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
