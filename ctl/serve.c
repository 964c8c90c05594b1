/* SPDX-License-Identifier: Apache-2.0 */
/* serve: see serve.h. */
#include "serve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_args.h"
#include "errmsg.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "slack.h"

#define SLACK_PATH "/slack/command"

struct ctl_serve {
    uv_loop_t *loop;
    struct http_server *http;
    unsigned char *secret;
    size_t secret_len;
    struct ctl_serve_opts o;
    struct slack_replay replay;
    struct log_ratelimit refuse_log; /* unsigned/stale/replayed requests */
    struct metrics_registry *metrics;
    unsigned jobs;
    bool stopping;
};

struct job {
    uv_work_t work;
    struct ctl_serve *srv;
    struct http_pending *pending;
    struct ctl_command cmd;
    struct ctl_result res;
    char user[128];
    int rc;
};

static void count(struct ctl_serve *s, const char *result)
{
    char labels[64];

    if (!s->metrics)
        return;
    snprintf(labels, sizeof(labels), "result=\"%s\"", result);
    metrics_counter_inc(metrics_counter(s->metrics, "drover_ctl_slack_requests_total",
                                        "Slack slash-command requests by outcome.", labels));
}

/* Requests refused before their signature is trusted come from anyone who
 * can reach the port: one line per 10 s at most (counted in full in
 * drover_ctl_slack_requests_total). */
static void warn_refused(struct ctl_serve *s, const char *from, const char *why)
{
    uint64_t swallowed = 0;

    if (log_ratelimit_allow(&s->refuse_log, log_monotonic_ms(), &swallowed))
        log_warn("droverctl serve: refusing request from %s: %s (%llu more refused since the last "
                 "such line)",
                 from, why, (unsigned long long)swallowed);
}

static void answer(struct http_response *resp, int status, bool in_channel, const char *text)
{
    char *j = slack_answer_json(in_channel, text);

    resp->status = status;
    resp->content_type = "application/json";
    if (!j) /* text that jansson refuses (invalid UTF-8) */
        j = slack_answer_json(false, "droverctl: the answer could not be encoded");
    if (j) {
        http_response_set_body(resp, j, strlen(j));
        free(j);
    }
}

static void job_work(uv_work_t *w)
{
    struct job *j = w->data;
    struct ctl_kv *kv = NULL;
    char err[512];
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if ((j->rc = ctl_kv_open(j->srv->o.consul, &kv, err, sizeof(err))) < 0) {
        j->res.outcome = CTL_FAILED;
        j->res.text = strdup(err);
        return;
    }
    j->rc = ctl_execute(kv, j->srv->o.settings, &j->cmd, now_ms, &j->res);
    ctl_kv_close(kv);
}

static void serve_maybe_free(struct ctl_serve *s)
{
    if (!s->stopping || s->jobs)
        return;
    slack_replay_free(&s->replay);
    free(s->secret);
    free(s);
}

static void job_done(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct ctl_serve *s = j->srv;
    struct http_response resp = {0};
    const char *text = j->res.text ? j->res.text : "droverctl: out of memory";
    char *msg = NULL;
    bool listing = j->cmd.verb == CTL_VERB_STATUS || j->cmd.verb == CTL_VERB_HISTORY ||
                   j->cmd.verb == CTL_VERB_HELP ||
                   (j->cmd.verb == CTL_VERB_CONFIG && j->cmd.config_action == CTL_CONFIG_HISTORY);

    if (status == UV_ECANCELED)
        text = "droverctl: shutting down, the command did not run";
    if (j->res.outcome == CTL_OK && j->res.changed) {
        if (asprintf(&msg, "%s: %s", j->user, text) < 0)
            msg = NULL;
        log_info("droverctl serve: %s via Slack: %s", j->user, text);
        count(s, "applied");
    } else if (j->res.outcome == CTL_OK) {
        if (asprintf(&msg, listing ? "```\n%s```" : "%s", text) < 0)
            msg = NULL;
        count(s, "ok");
    } else {
        log_info("droverctl serve: %s's %s refused or failed: %s", j->user,
                 ctl_verb_name(j->cmd.verb), text);
        count(s, j->res.outcome == CTL_REFUSED ? "refused" : "failed");
    }
    answer(&resp, 200, j->res.outcome == CTL_OK && j->res.changed, msg ? msg : text);
    free(msg);
    http_request_complete(j->pending, &resp);
    ctl_command_free(&j->cmd);
    ctl_result_free(&j->res);
    free(j);
    s->jobs--;
    serve_maybe_free(s);
}

static void on_slack(const struct http_request *req, struct http_response *resp, void *arg)
{
    struct ctl_serve *s = arg;
    struct slack_form form;
    char err[512];
    char **words = NULL;
    int nwords = 0, rc;
    int64_t now = (int64_t)time(NULL);

    if (strcmp(req->path, SLACK_PATH) != 0) {
        answer(resp, 404, false, "not found");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        http_response_add_header(resp, "Allow", "POST");
        answer(resp, 405, false, "POST only");
        return;
    }
    const char *ts = http_request_header(req, "X-Slack-Request-Timestamp");
    const char *sig = http_request_header(req, "X-Slack-Signature");
    rc = slack_verify(s->secret, s->secret_len, ts, sig, req->body, req->body_len, now, err,
                      sizeof(err));
    if (rc < 0) {
        warn_refused(s, req->remote_addr, err);
        count(s, rc == -ETIME ? "stale" : "bad_signature");
        answer(resp, 401, false, err);
        return;
    }
    rc = slack_replay_check(&s->replay, sig, strtoll(ts, NULL, 10), now);
    if (rc < 0) {
        snprintf(err, sizeof(err), "%s",
                 rc == -EALREADY ? "replayed request: this signature was already used"
                                 : "too many requests within the replay window, try again later");
        warn_refused(s, req->remote_addr, err);
        count(s, rc == -EALREADY ? "replay" : "busy");
        answer(resp, rc == -EALREADY ? 401 : 503, false, err);
        return;
    }
    if (slack_form_parse(req->body, req->body_len, &form, err, sizeof(err)) < 0) {
        slack_form_free(&form);
        count(s, "bad_request");
        answer(resp, 400, false, err);
        return;
    }
    if (slack_form_get(&form, "ssl_check")) {
        /* Slack's periodic certificate check of the URL: signed, no command */
        slack_form_free(&form);
        count(s, "ssl_check");
        answer(resp, 200, false, "");
        return;
    }
    const char *user_id = slack_form_get(&form, "user_id");
    const char *user_name = slack_form_get(&form, "user_name");
    const char *channel = slack_form_get(&form, "channel_id");
    const char *text = slack_form_get(&form, "text");
    if (!slack_allowed(s->o.allow_users, s->o.n_allow_users, user_id) ||
        !slack_allowed(s->o.allow_channels, s->o.n_allow_channels, channel)) {
        snprintf(err, sizeof(err),
                 "refused: user %.40s in channel %.40s is not allowed to use droverctl",
                 user_id ? user_id : "(none)", channel ? channel : "(none)");
        log_warn("droverctl serve: %s", err);
        count(s, "forbidden");
        answer(resp, 403, false, err);
        slack_form_free(&form);
        return;
    }
    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        answer(resp, 500, false, "droverctl: out of memory");
        slack_form_free(&form);
        return;
    }
    j->srv = s;
    /* Slack user names are display-ish; the ID is what the allow-list
     * checked, so keep both in the audit author. */
    snprintf(j->user, sizeof(j->user), "%.60s", user_name && *user_name ? user_name : user_id);
    /* the author ends up in agent-check reply lines: one line, no controls */
    for (char *p = j->user; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
            *p = '_';
    /* a name cut inside a UTF-8 sequence (or not UTF-8 at all) would make
     * the JSON entries unwritable: fall back to the ID the allow-list
     * matched */
    if (ctl_reason_check(j->user, err, sizeof(err)) < 0 || !j->user[0])
        snprintf(j->user, sizeof(j->user), "%.60s", user_id);
    rc = ctl_split_words(text ? text : "", text ? strlen(text) : 0, &words, &nwords, err,
                         sizeof(err));
    if (rc == 0)
        rc = ctl_command_parse(nwords, words, CTL_SOURCE_SLACK, s->o.limits, &j->cmd, err,
                               sizeof(err));
    ctl_words_free(words);
    slack_form_free(&form);
    if (rc < 0) {
        char *t = NULL;
        if (asprintf(&t, "%s\n%s", err, ctl_usage()) < 0)
            t = NULL;
        count(s, "bad_command");
        answer(resp, 200, false, t ? t : err);
        free(t);
        ctl_command_free(&j->cmd);
        free(j);
        return;
    }
    if (j->cmd.verb == CTL_VERB_HELP) {
        answer(resp, 200, false, ctl_usage_of(j->cmd.help_verb));
        ctl_command_free(&j->cmd);
        free(j);
        return;
    }
    j->cmd.json = false;
    if (!(j->cmd.author = strdup(j->user)) || !(j->pending = http_response_defer(req))) {
        answer(resp, 500, false, "droverctl: out of memory");
        ctl_command_free(&j->cmd);
        free(j);
        return;
    }
    j->work.data = j;
    if ((rc = uv_queue_work(s->loop, &j->work, job_work, job_done)) < 0) {
        struct http_response r = {0};
        answer(&r, 500, false, "droverctl: cannot queue the command");
        http_request_complete(j->pending, &r);
        ctl_command_free(&j->cmd);
        free(j);
        return;
    }
    s->jobs++;
}

int ctl_serve_start(uv_loop_t *loop, const struct ctl_serve_opts *o, struct ctl_serve **out,
                    char *err, size_t errlen)
{
    struct ctl_serve *s = calloc(1, sizeof(*s));
    struct http_server_options ho = {.listen = o->listen,
                                     .metrics = o->metrics,
                                     .max_request_bytes = 64 * 1024,
                                     /* Slack waits 3 s for an answer; the
                                      * deferred reply must come well before */
                                     .read_timeout_ms = 10000};
    int rc;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    if (!o->secret_len) {
        errmsg_set(err, errlen, "the Slack signing secret is empty");
        free(s);
        return -EINVAL;
    }
    s->loop = loop;
    s->o = *o;
    s->metrics = o->metrics;
    s->secret = malloc(o->secret_len);
    if (!s->secret) {
        free(s);
        return -ENOMEM;
    }
    memcpy(s->secret, o->secret, o->secret_len);
    s->secret_len = o->secret_len;
    if ((rc = http_server_start(loop, &ho, &s->http, err, errlen)) < 0 ||
        (rc = http_server_add_handler(s->http, "/slack/", on_slack, s)) < 0) {
        http_server_close(s->http);
        free(s->secret);
        free(s);
        return rc;
    }
    http_server_set_ready(s->http, true, NULL);
    *out = s;
    return 0;
}

int ctl_serve_port(const struct ctl_serve *s)
{
    return http_server_port(s->http);
}

void ctl_serve_stop(struct ctl_serve *s)
{
    if (!s)
        return;
    http_server_close(s->http);
    s->http = NULL;
    s->stopping = true;
    serve_maybe_free(s);
}
