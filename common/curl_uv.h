/* SPDX-License-Identifier: Apache-2.0 */
/*
 * curl_uv: drives one libcurl multi handle from one libuv loop. libcurl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> uv_poll) and
 * when to wake it (CURLMOPT_TIMERFUNCTION -> uv_timer); we hand readiness
 * back with curl_multi_socket_action(). No threads, no blocking calls.
 *
 * Callers build and own their CURL easy handles (URL, headers, write
 * function for buffered or streaming bodies, timeouts) and add them with
 * curl_uv_add(); the done callback runs once per transfer on the loop.
 * Because every transfer goes through the same multi handle, connections
 * are kept alive and reused across easy handles (one connection pool per
 * loop). Easy handles may be reused for the next request after done.
 *
 * Used by the Consul client (short requests and blocking queries) and by
 * the Kubernetes watch client (long chunked streams: set your own
 * CURLOPT_WRITEFUNCTION and consume the data as it arrives; return a short
 * count from it to abort a stream).
 */
#ifndef DROVER_CURL_UV_H
#define DROVER_CURL_UV_H

#include <curl/curl.h>
#include <stdbool.h>
#include <uv.h>

struct curl_uv;

/* Called once when a transfer added with curl_uv_add() finishes (success,
 * HTTP error or transport error: look at result and
 * CURLINFO_RESPONSE_CODE). The easy handle is already removed from the
 * multi handle; the callee may free it, reuse it, or add it again. Never
 * called for a transfer removed with curl_uv_remove(). */
typedef void (*curl_uv_done_cb)(CURL *easy, CURLcode result, void *arg);

/* Create the glue for loop. 0 or -ENOMEM/-EIO. */
int curl_uv_new(uv_loop_t *loop, struct curl_uv **out);

/* Start a transfer. The easy handle must not be in use elsewhere;
 * CURLOPT_PRIVATE is taken by curl_uv. 0, -EINVAL or -EIO. */
int curl_uv_add(struct curl_uv *cu, CURL *easy, curl_uv_done_cb done, void *arg);

/* Cancel a running transfer: removed at once, done is not called. Safe for
 * an easy handle that is not (or no longer) running. Must not be called
 * from inside a libcurl callback (write/header function) of the same
 * multi handle; abort from there by returning a short count instead. */
void curl_uv_remove(struct curl_uv *cu, CURL *easy);

/* Hand libcurl, now, whatever its sockets have ready (one poll() that
 * does not block), so that replies that already arrived are read before
 * the caller judges a deadline. libuv runs due timers before it polls for
 * I/O, so a timer that fires after the process was stopped or starved
 * would otherwise see a transfer as unanswered whose answer sits in the
 * socket. Done callbacks may run inside; not from a libcurl callback. */
void curl_uv_read_ready(struct curl_uv *cu);

/* Number of transfers in flight. */
unsigned curl_uv_active(const struct curl_uv *cu);

/* Remove every remaining transfer (no callbacks) and release the multi
 * handle. The memory is freed once libuv has closed the poll and timer
 * handles, i.e. the loop must run again (uv_run) for the free to finish.
 * NULL is a no-op. */
void curl_uv_free(struct curl_uv *cu);

/* Growable byte buffer for buffered bodies: a CURLOPT_WRITEFUNCTION that
 * appends to a struct curl_uv_buf given as CURLOPT_WRITEDATA. The data
 * is always NUL-terminated (not counted in len) so JSON parsers can take
 * it directly. max caps the size (0 = CURL_UV_BUF_DEFAULT_MAX); beyond it
 * the transfer fails with CURLE_WRITE_ERROR and overflow is set: the body
 * is then truncated and must not be parsed. curl_uv_buf_reset clears it. */
#define CURL_UV_BUF_DEFAULT_MAX ((size_t)64 << 20)
struct curl_uv_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool overflow;
};
size_t curl_uv_buf_write(char *ptr, size_t size, size_t nmemb, void *userdata);
void curl_uv_buf_reset(struct curl_uv_buf *buf);
void curl_uv_buf_free(struct curl_uv_buf *buf);

#endif
