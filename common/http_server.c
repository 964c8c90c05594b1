/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder so the API links; the real implementation follows. */
#include "http_server.h"

#include <errno.h>
#include <stdio.h>

const char *http_request_header(const struct http_request *req, const char *name)
{
    return NULL;
}
int http_response_printf(struct http_response *resp, const char *fmt, ...)
{
    return -ENOSYS;
}
int http_response_set_body(struct http_response *resp, const void *data, size_t len)
{
    return -ENOSYS;
}
int http_server_start(uv_loop_t *loop, const struct http_server_options *opts,
                      struct http_server **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        snprintf(err, errlen, "http_server: not implemented yet");
    return -ENOSYS;
}
int http_server_port(const struct http_server *srv)
{
    return 0;
}
void http_server_set_ready(struct http_server *srv, bool ready, const char *reason)
{
}
int http_server_add_handler(struct http_server *srv, const char *prefix, http_handler_fn fn,
                            void *arg)
{
    return -ENOSYS;
}
void http_server_close(struct http_server *srv)
{
}
