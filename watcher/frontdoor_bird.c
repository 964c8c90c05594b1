/* SPDX-License-Identifier: Apache-2.0 */
/* frontdoor_bird: drover's BIRD include file and BIRD's control socket
 * (see frontdoor_bird.h). */
#include "frontdoor_bird.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errmsg.h"
#include "log.h"
#include "poll_deadline.h"
#include "render.h"

/* ---- the include file ---- */

static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t c = (*cap ? *cap * 2 : 1024) + n;
        char *p = realloc(*buf, c);
        if (!p)
            return -ENOMEM;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return 0;
}

int frontdoor_bird_render(const struct frontdoor_bird_route *r, size_t n, char **out)
{
    static const char *const head[2] = {
        "protocol static drover_vips {\n    ipv4;\n",
        "protocol static drover_vips6 {\n    ipv6;\n",
    };
    char *buf = NULL, line[256];
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    /* only addresses reach BIRD's config: anything else is refused whole */
    for (size_t i = 0; i < n; i++) {
        unsigned char a[16];
        if (!r[i].address ||
            (inet_pton(AF_INET, r[i].address, a) != 1 && inet_pton(AF_INET6, r[i].address, a) != 1))
            return -EINVAL;
    }
    rc = append(&buf, &len, &cap,
                "# Written by drover-watcher (front door, docs/frontdoor.md): the VIPs this\n"
                "# host announces. Rewritten whole on every change; do not edit.\n");
    for (int fam = 0; fam < 2 && rc == 0; fam++) {
        rc = append(&buf, &len, &cap, head[fam]);
        for (size_t i = 0; i < n && rc == 0; i++) {
            unsigned char a[16];
            bool v6 = inet_pton(AF_INET, r[i].address, a) != 1;
            if (v6 != (fam == 1))
                continue;
            snprintf(line, sizeof(line), "    route %s/%d blackhole%s;\n", r[i].address,
                     v6 ? 128 : 32, r[i].shutdown ? " { bgp_community.add((65535, 0)); }" : "");
            rc = append(&buf, &len, &cap, line);
        }
        if (rc == 0)
            rc = append(&buf, &len, &cap, "}\n");
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

static int read_whole(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    *out = NULL;
    if (!f)
        return -errno;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *p = realloc(buf, cap += 65536);
            if (!p) {
                free(buf);
                fclose(f);
                return -ENOMEM;
            }
            buf = p;
        }
        size_t k = fread(buf + len, 1, cap - len - 1, f);
        len += k;
        if (k == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    *out = buf;
    return 0;
}

int frontdoor_bird_install(const char *bird_bin, const char *path, const char *text, bool *changed,
                           char *err, size_t errlen)
{
    char dir[] = "/tmp/drover-bird.XXXXXX", cand[PATH_MAX], main_conf[PATH_MAX], *old = NULL;
    char wrapper[PATH_MAX + 64];
    int rc;

    *changed = false;
    if (read_whole(path, &old) == 0 && strcmp(old, text) == 0) {
        free(old);
        return 0;
    }
    free(old);
    if (!mkdtemp(dir)) {
        rc = -errno;
        errmsg_set(err, errlen, "BIRD include %s: cannot create a check directory: %s", path,
                   strerror(errno));
        return rc;
    }
    snprintf(cand, sizeof(cand), "%s/drover-vips.conf", dir);
    snprintf(main_conf, sizeof(main_conf), "%s/bird.conf", dir);
    /* the candidate alone, included as the operator's config includes it */
    snprintf(wrapper, sizeof(wrapper), "router id 192.0.2.1;\ninclude \"%s\";\n", cand);
    if ((rc = atomic_file_write(cand, text, strlen(text), 0644)) < 0 ||
        (rc = atomic_file_write(main_conf, wrapper, strlen(wrapper), 0644)) < 0) {
        errmsg_set(err, errlen, "BIRD include %s: cannot stage it in %s: %s", path, dir,
                   strerror(-rc));
        goto out;
    }
    char *argv[] = {(char *)bird_bin, "-p", "-c", main_conf, NULL};
    char why[1536];
    if ((rc = render_run_checker(argv, why, sizeof(why))) < 0) {
        errmsg_set(err, errlen, "BIRD include %s not installed: %s", path, why);
        goto out;
    }
    if ((rc = atomic_file_write(path, text, strlen(text), 0644)) < 0) {
        errmsg_set(err, errlen, "BIRD include %s: cannot write it: %s", path, strerror(-rc));
        goto out;
    }
    *changed = true;
out:
    unlink(cand);
    unlink(main_conf);
    rmdir(dir);
    return rc;
}

/* ---- the control socket ---- */

bool frontdoor_bird_failed(int code)
{
    return code >= 8000;
}

static void add_text(struct frontdoor_bird_reply *r, const char *s, size_t n)
{
    size_t have = strlen(r->text);
    if (have && have + 2 < sizeof(r->text)) {
        memcpy(r->text + have, "; ", 3);
        have += 2;
    }
    if (have + n >= sizeof(r->text))
        n = sizeof(r->text) - 1 - have;
    for (size_t i = 0; i < n; i++) /* one line in logs: no control characters */
        r->text[have + i] = (unsigned char)s[i] < 0x20 ? ' ' : s[i];
    r->text[have + n] = '\0';
}

int frontdoor_bird_parse(const char *buf, size_t len, struct frontdoor_bird_reply *r, size_t *used)
{
    size_t pos = 0;

    memset(r, 0, sizeof(*r));
    *used = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            return 0; /* a partial line: more to come */
        const char *line = buf + pos;
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        if (n > 0 && line[0] == '+')
            continue; /* asynchronous notice */
        if (n > 0 && line[0] == ' ') {
            add_text(r, line + 1, n - 1);
            continue;
        }
        if (n < 5 || line[0] < '0' || line[0] > '9' || line[1] < '0' || line[1] > '9' ||
            line[2] < '0' || line[2] > '9' || line[3] < '0' || line[3] > '9' ||
            (line[4] != '-' && line[4] != ' '))
            return -EPROTO;
        int code =
            (line[0] - '0') * 1000 + (line[1] - '0') * 100 + (line[2] - '0') * 10 + (line[3] - '0');
        add_text(r, line + 5, n - 5);
        if (line[4] == ' ') {
            r->code = code;
            r->complete = true;
            *used = pos;
            return 0;
        }
    }
    return 0;
}

/* Read one complete reply from fd into r by deadline. */
static int read_reply(int fd, uint64_t deadline, struct frontdoor_bird_reply *r)
{
    char buf[8192];
    size_t len = 0, used;
    int rc;

    for (;;) {
        if ((rc = frontdoor_bird_parse(buf, len, r, &used)) < 0)
            return rc;
        if (r->complete)
            return 0;
        if (len == sizeof(buf))
            return -EMSGSIZE;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if ((rc = poll_deadline(&p, deadline)) < 0)
            return rc;
        if (rc == 0)
            return -ETIMEDOUT;
        ssize_t k = read(fd, buf + len, sizeof(buf) - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            return -ECONNRESET;
        len += (size_t)k;
    }
}

int frontdoor_bird_command(const char *socket_path, const char *cmd, int timeout_ms,
                           struct frontdoor_bird_reply *r, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    uint64_t deadline = log_monotonic_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int fd, rc;
    const char *stage = "connect";

    memset(r, 0, sizeof(*r));
    if (strlen(socket_path) >= sizeof(sa.sun_path)) {
        errmsg_set(err, errlen, "BIRD socket %s: path too long", socket_path);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        errmsg_set(err, errlen, "BIRD socket %s: socket: %s", socket_path, strerror(errno));
        return rc;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        goto fail;
    }
    stage = "greeting";
    if ((rc = read_reply(fd, deadline, r)) < 0)
        goto fail;
    if (frontdoor_bird_failed(r->code)) {
        rc = -EREMOTEIO;
        errmsg_set(err, errlen, "BIRD socket %s refused us: %d %s", socket_path, r->code, r->text);
        goto out;
    }
    stage = "send";
    char line[512];
    int n = snprintf(line, sizeof(line), "%s\n", cmd);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        rc = -EINVAL;
        goto fail;
    }
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t k = send(fd, line + off, (size_t)n - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = -errno;
            goto fail;
        }
        off += (size_t)k;
    }
    stage = "reply";
    if ((rc = read_reply(fd, deadline, r)) < 0)
        goto fail;
    if (frontdoor_bird_failed(r->code)) {
        rc = -EREMOTEIO;
        errmsg_set(err, errlen, "BIRD (%s) answered %s: %d %s", socket_path, cmd, r->code, r->text);
        goto out;
    }
    rc = 0;
    goto out;
fail:
    errmsg_set(err, errlen, "BIRD socket %s: %s: %s", socket_path, stage, strerror(-rc));
out:
    close(fd);
    return rc;
}
