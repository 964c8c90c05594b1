/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "kube_watch_stream.h"
#include "log.h"
#include "../common/suite_main.h"

#define MAX_EV 16

struct seen {
    size_t n;
    enum kube_event_type type[MAX_EV];
    char rv[MAX_EV][32];
    char name[MAX_EV][64];
    char desc[MAX_EV][128];
    long code[MAX_EV];
    char reason[MAX_EV][32];
    bool expired[MAX_EV];
    unsigned long long line[MAX_EV];
    int node_port[MAX_EV];
    int stop_after; /* return -ECANCELED after this many events (0 = never) */
};

static int collect(const struct kube_event *ev, void *arg)
{
    struct seen *s = arg;
    ck_assert_uint_lt(s->n, MAX_EV);
    size_t i = s->n++;
    s->type[i] = ev->type;
    snprintf(s->rv[i], sizeof(s->rv[i]), "%s", ev->resource_version ? ev->resource_version : "");
    json_t *meta = json_object_get(ev->object, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    snprintf(s->name[i], sizeof(s->name[i]), "%s", name ? name : "");
    const char *desc =
        json_string_value(json_object_get(json_object_get(meta, "annotations"), "description"));
    snprintf(s->desc[i], sizeof(s->desc[i]), "%s", desc ? desc : "");
    json_t *ports = json_object_get(json_object_get(ev->object, "spec"), "ports");
    s->node_port[i] =
        (int)json_integer_value(json_object_get(json_array_get(ports, 0), "nodePort"));
    s->code[i] = ev->status.code;
    snprintf(s->reason[i], sizeof(s->reason[i]), "%s", ev->status.reason ? ev->status.reason : "");
    s->expired[i] = kube_status_is_expired(&ev->status);
    s->line[i] = (unsigned long long)ev->line_no;
    if (s->stop_after && (int)s->n >= s->stop_after)
        return -ECANCELED;
    return 0;
}

static const char *UTF8_DESC = "Z\xc3\xbcrich \xe2\x80\x93 \xe6\x9d\xb1\xe4\xba\xac storefront "
                               "\xe2\x9c\x93";

static const char *UTF8_DESC_SMALL =
    "Z\xc3\xbcrich \xe2\x80\x93 \xe6\x9d\xb1\xe4\xba\xac \xe2\x9c\x93";

static void check_service_events(const struct seen *s)
{
    ck_assert_uint_eq(s->n, 4);
    ck_assert_int_eq(s->type[0], KUBE_EVENT_ADDED);
    ck_assert_int_eq(s->type[1], KUBE_EVENT_MODIFIED);
    ck_assert_int_eq(s->type[2], KUBE_EVENT_BOOKMARK);
    ck_assert_int_eq(s->type[3], KUBE_EVENT_DELETED);
    ck_assert_str_eq(s->rv[0], "184467");
    ck_assert_str_eq(s->rv[1], "184480");
    ck_assert_str_eq(s->rv[2], "184490");
    ck_assert_str_eq(s->rv[3], "184501");
    ck_assert_str_eq(s->name[0], "web");
    ck_assert_str_eq(s->name[3], "web");
    ck_assert_str_eq(s->desc[0], UTF8_DESC);
    ck_assert_str_eq(s->desc[1], UTF8_DESC);
    ck_assert_int_eq(s->node_port[0], 30080);
    ck_assert_int_eq(s->node_port[1], 30081);
    for (size_t i = 0; i < 4; i++)
        ck_assert_uint_eq(s->line[i], i + 1);
}

/* Every split point of a multi-event buffer (all five event types, and
 * multi-byte UTF-8 that some splits cut through). */
START_TEST(test_every_split_point)
{
    size_t len;
    char *buf = fixture_read("watch-small.jsonl", &len);
    ck_assert_ptr_nonnull(strstr(buf, "\xe6\x9d\xb1"));
    for (size_t cut = 0; cut <= len; cut++) {
        struct seen s = {0};
        struct kube_watch_stream *ws = kube_watch_stream_new("services", 0, collect, &s);
        ck_assert_int_eq(kube_watch_stream_feed(ws, buf, cut), 0);
        ck_assert_int_eq(kube_watch_stream_feed(ws, buf + cut, len - cut), 0);
        ck_assert_int_eq(kube_watch_stream_finish(ws), 0);
        ck_assert_uint_eq(s.n, 5);
        static const enum kube_event_type want[] = {KUBE_EVENT_ADDED, KUBE_EVENT_MODIFIED,
                                                    KUBE_EVENT_BOOKMARK, KUBE_EVENT_DELETED,
                                                    KUBE_EVENT_ERROR};
        static const char *const rv[] = {"11", "12", "13", "14", ""};
        for (size_t i = 0; i < 5; i++) {
            ck_assert_int_eq(s.type[i], want[i]);
            ck_assert_str_eq(s.rv[i], rv[i]);
            ck_assert_uint_eq(s.line[i], i + 1);
        }
        ck_assert_str_eq(s.desc[0], UTF8_DESC_SMALL);
        ck_assert_str_eq(s.desc[3], UTF8_DESC_SMALL);
        ck_assert_int_eq(s.node_port[1], 30081);
        ck_assert_int_eq(s.code[4], 410);
        ck_assert(s.expired[4]);
        ck_assert_uint_eq(kube_watch_stream_stats(ws)->bad_lines, 0);
        ck_assert_uint_eq(kube_watch_stream_stats(ws)->bytes, len);
        kube_watch_stream_free(ws);
    }
    free(buf);
}
END_TEST

/* The full API-shaped stream, split at every 7th byte. */
START_TEST(test_full_stream_splits)
{
    size_t len;
    char *buf = fixture_read("watch-services.jsonl", &len);
    ck_assert_ptr_nonnull(strstr(buf, "\xe6\x9d\xb1"));
    for (size_t cut = 0; cut <= len; cut += 7) {
        struct seen s = {0};
        struct kube_watch_stream *ws = kube_watch_stream_new("services", 0, collect, &s);
        ck_assert_int_eq(kube_watch_stream_feed(ws, buf, cut), 0);
        ck_assert_int_eq(kube_watch_stream_feed(ws, buf + cut, len - cut), 0);
        ck_assert_int_eq(kube_watch_stream_finish(ws), 0);
        check_service_events(&s);
        kube_watch_stream_free(ws);
    }
    free(buf);
}
END_TEST

START_TEST(test_three_way_splits_and_bytewise)
{
    size_t len;
    char *buf = fixture_read("watch-services.jsonl", &len);
    /* two cuts, stepping through the buffer coarsely but hitting every
     * line boundary region */
    for (size_t a = 0; a <= len; a += 211) {
        for (size_t b = a; b <= len; b += 199) {
            struct seen s = {0};
            struct kube_watch_stream *ws = kube_watch_stream_new("services", 0, collect, &s);
            ck_assert_int_eq(kube_watch_stream_feed(ws, buf, a), 0);
            ck_assert_int_eq(kube_watch_stream_feed(ws, buf + a, b - a), 0);
            ck_assert_int_eq(kube_watch_stream_feed(ws, buf + b, len - b), 0);
            check_service_events(&s);
            kube_watch_stream_free(ws);
        }
    }
    struct seen s = {0};
    struct kube_watch_stream *ws = kube_watch_stream_new("services", 0, collect, &s);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(kube_watch_stream_feed(ws, buf + i, 1), 0);
    ck_assert_uint_eq(kube_watch_stream_pending(ws), 0);
    check_service_events(&s);
    kube_watch_stream_free(ws);
    free(buf);
}
END_TEST

START_TEST(test_410_in_stream)
{
    size_t len1, len2;
    char *events = fixture_read("watch-services.jsonl", &len1);
    char *gone = fixture_read("watch-410.jsonl", &len2);
    struct seen s = {0};
    struct kube_watch_stream *ws = kube_watch_stream_new("services", 0, collect, &s);
    /* the first event, then the ERROR split in its middle */
    const char *nl = strchr(events, '\n');
    ck_assert_int_eq(kube_watch_stream_feed(ws, events, (size_t)(nl - events) + 1), 0);
    ck_assert_int_eq(kube_watch_stream_feed(ws, gone, len2 / 2), 0);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_int_eq(kube_watch_stream_feed(ws, gone + len2 / 2, len2 - len2 / 2), 0);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_int_eq(s.type[1], KUBE_EVENT_ERROR);
    ck_assert_int_eq(s.code[1], 410);
    ck_assert_str_eq(s.reason[1], "Expired");
    ck_assert(s.expired[1]);
    ck_assert(!s.expired[0]);
    ck_assert_uint_eq(s.line[1], 2);
    kube_watch_stream_free(ws);
    free(events);
    free(gone);
}
END_TEST

static char *capture_start(FILE **mem, size_t *len, char **buf)
{
    *mem = open_memstream(buf, len);
    log_set_stream(*mem);
    return *buf;
}

START_TEST(test_bad_lines_are_skipped_and_named)
{
    const char *ok = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\","
                     "\"resourceVersion\":\"5\"}}}\n";
    char input[2048];
    snprintf(input, sizeof(input),
             "%s"                                        /* line 1 */
             "{\"type\":\"ADDED\",\"object\":{oops}\n"   /* line 2: bad JSON */
             "\r\n"                                      /* line 3: blank (CRLF) */
             "{\"object\":{}}\n"                         /* line 4: no type */
             "{\"type\":\"RENAMED\",\"object\":{}}\n"    /* line 5: unknown type */
             "[1,2]\n"                                   /* line 6: not an object */
             "{\"type\":\"DELETED\",\"object\":\"x\"}\n" /* line 7: object not object */
             "\"\xff\xfe\"\n"                            /* line 8: invalid UTF-8 */
             "%s",                                       /* line 9 */
             ok, ok);
    size_t off_line2 = strlen(ok);
    FILE *mem;
    char *logbuf = NULL;
    size_t loglen = 0;
    capture_start(&mem, &loglen, &logbuf);
    struct seen s = {0};
    struct kube_watch_stream *ws = kube_watch_stream_new("services", 0, collect, &s);
    ck_assert_int_eq(kube_watch_stream_feed(ws, input, strlen(input)), 0);
    log_set_stream(NULL);
    fclose(mem);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_uint_eq(s.line[0], 1);
    ck_assert_uint_eq(s.line[1], 9);
    const struct kube_watch_stats *st = kube_watch_stream_stats(ws);
    ck_assert_uint_eq(st->bad_lines, 6);
    ck_assert_uint_eq(st->lines, 9);
    ck_assert_uint_eq(st->events, 2);
    char expect[128];
    snprintf(expect, sizeof(expect), "line 2 (byte offset %zu): invalid JSON", off_line2);
    ck_assert_msg(strstr(logbuf, expect), "log lacks \"%s\": %s", expect, logbuf);
    ck_assert_ptr_nonnull(strstr(logbuf, "line 4 "));
    ck_assert_ptr_nonnull(strstr(logbuf, "unknown event type \\\"RENAMED\\\""));
    ck_assert_ptr_nonnull(strstr(logbuf, "line 8 "));
    ck_assert_ptr_null(strstr(logbuf, "line 3 "));
    ck_assert_ptr_nonnull(strstr(logbuf, "skipping the line"));
    free(logbuf);
    kube_watch_stream_free(ws);
}
END_TEST

START_TEST(test_oversized_line)
{
    const char *ok =
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\n";
    char big[400];
    memset(big, 'x', sizeof(big));
    struct seen s = {0};
    FILE *mem;
    char *logbuf = NULL;
    size_t loglen = 0;
    capture_start(&mem, &loglen, &logbuf);
    struct kube_watch_stream *ws = kube_watch_stream_new("nodes", 128, collect, &s);
    /* the long line arrives in pieces: the error comes once, when it
     * crosses the limit; the rest of it up to '\n' is discarded */
    ck_assert_int_eq(kube_watch_stream_feed(ws, big, 100), 0);
    ck_assert_int_eq(kube_watch_stream_feed(ws, big, 100), -EMSGSIZE);
    ck_assert_int_eq(kube_watch_stream_feed(ws, big, 200), 0);
    ck_assert_uint_eq(kube_watch_stream_pending(ws), 0);
    ck_assert_int_eq(kube_watch_stream_feed(ws, "xx\n", 3), 0);
    ck_assert_int_eq(kube_watch_stream_feed(ws, ok, strlen(ok)), 0);
    /* a line exactly at the limit passes */
    char exact[130];
    int pad = 128 - (int)strlen(ok) + 1;
    snprintf(exact, sizeof(exact), "%*s%s", pad, "", ok);
    ck_assert_uint_eq(strlen(exact), 129);
    ck_assert_int_eq(kube_watch_stream_feed(ws, exact, strlen(exact)), 0);
    /* oversized line inside one chunk together with good ones */
    char chunk[1024];
    snprintf(chunk, sizeof(chunk), "%s%.300s\n%s", ok, big, ok);
    ck_assert_int_eq(kube_watch_stream_feed(ws, chunk, strlen(chunk)), -EMSGSIZE);
    log_set_stream(NULL);
    fclose(mem);
    ck_assert_uint_eq(s.n, 4);
    ck_assert_uint_eq(s.line[0], 2);
    ck_assert_uint_eq(s.line[1], 3);
    ck_assert_uint_eq(s.line[3], 6);
    ck_assert_uint_eq(kube_watch_stream_stats(ws)->oversized_lines, 2);
    ck_assert_ptr_nonnull(strstr(logbuf, "line 1 (byte offset 0) is longer than the limit of 128"));
    free(logbuf);
    kube_watch_stream_free(ws);
}
END_TEST

START_TEST(test_finish_and_reset)
{
    const char *ok = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}";
    struct seen s = {0};
    struct kube_watch_stream *ws = kube_watch_stream_new(NULL, 0, collect, &s);
    /* complete event without its newline at the end of the body */
    ck_assert_int_eq(kube_watch_stream_feed(ws, ok, strlen(ok)), 0);
    ck_assert_uint_eq(s.n, 0);
    ck_assert_int_eq(kube_watch_stream_finish(ws), 0);
    ck_assert_uint_eq(s.n, 1);
    /* truncated event at the end of the body */
    ck_assert_int_eq(kube_watch_stream_feed(ws, ok, 20), 0);
    ck_assert_int_eq(kube_watch_stream_finish(ws), -EPIPE);
    ck_assert_uint_eq(s.n, 1);
    /* reset drops a partial line */
    ck_assert_int_eq(kube_watch_stream_feed(ws, ok, 20), 0);
    kube_watch_stream_reset(ws);
    ck_assert_uint_eq(kube_watch_stream_pending(ws), 0);
    ck_assert_int_eq(kube_watch_stream_feed(ws, ok, strlen(ok)), 0);
    ck_assert_int_eq(kube_watch_stream_feed(ws, "\n", 1), 0);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_uint_eq(s.line[1], 1);
    kube_watch_stream_free(ws);
}
END_TEST

START_TEST(test_callback_error_stops)
{
    size_t len;
    char *buf = fixture_read("watch-services.jsonl", &len);
    struct seen s = {.stop_after = 2};
    struct kube_watch_stream *ws = kube_watch_stream_new("services", 0, collect, &s);
    ck_assert_int_eq(kube_watch_stream_feed(ws, buf, len), -ECANCELED);
    ck_assert_uint_eq(s.n, 2);
    kube_watch_stream_free(ws);
    free(buf);
}
END_TEST

START_TEST(test_event_type_names)
{
    enum kube_event_type t;
    for (int i = KUBE_EVENT_ADDED; i <= KUBE_EVENT_ERROR; i++) {
        ck_assert_int_eq(kube_event_type_parse(kube_event_type_name(i), &t), 0);
        ck_assert_int_eq(t, i);
    }
    ck_assert_int_eq(kube_event_type_parse("added", &t), -EINVAL);
    ck_assert_int_eq(kube_event_type_parse(NULL, &t), -EINVAL);
}
END_TEST

START_TEST(test_list_parse)
{
    size_t len;
    char err[256];
    char *body = fixture_read("service-list.json", &len);
    struct kube_list l;
    ck_assert_int_eq(kube_list_parse(body, len, &l, err, sizeof(err)), 0);
    ck_assert_str_eq(l.kind, "ServiceList");
    ck_assert_str_eq(l.resource_version, "184470");
    ck_assert_ptr_nonnull(l.continue_token);
    ck_assert(strncmp(l.continue_token, "eyJ2Ijoi", 8) == 0);
    ck_assert_int_eq(l.remaining_items, 3);
    ck_assert_uint_eq(json_array_size(l.items), 2);
    kube_list_clear(&l);
    free(body);

    const char *last = "{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":"
                       "{\"resourceVersion\":\"77\",\"continue\":\"\"},\"items\":null}";
    ck_assert_int_eq(kube_list_parse(last, strlen(last), &l, err, sizeof(err)), 0);
    ck_assert_ptr_null(l.continue_token);
    ck_assert_int_eq(l.remaining_items, -1);
    ck_assert_uint_eq(json_array_size(l.items), 0);
    kube_list_clear(&l);

    const char *norv = "{\"kind\":\"NodeList\",\"metadata\":{},\"items\":[]}";
    ck_assert_int_eq(kube_list_parse(norv, strlen(norv), &l, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "metadata.resourceVersion"));
    ck_assert_ptr_null(l.root);

    body = fixture_read("status-410.json", &len);
    ck_assert_int_eq(kube_list_parse(body, len, &l, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "Status (code 410, reason Expired)"));
    free(body);

    ck_assert_int_eq(kube_list_parse("{\"items\":", 9, &l, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not JSON"));
    const char *bad_items = "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":{}}";
    ck_assert_int_eq(kube_list_parse(bad_items, strlen(bad_items), &l, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "\"items\" is not an array"));
}
END_TEST

START_TEST(test_status_parse)
{
    size_t len;
    char *body = fixture_read("status-410.json", &len);
    struct kube_status st;
    ck_assert_int_eq(kube_status_parse(body, len, &st), 0);
    ck_assert_int_eq(st.code, 410);
    ck_assert_str_eq(st.reason, "Expired");
    ck_assert_str_eq(st.status, "Failure");
    ck_assert_ptr_nonnull(strstr(st.message, "continue parameter is too old"));
    ck_assert(kube_status_is_expired(&st));
    kube_status_clear(&st);
    free(body);

    const char *unauth = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                         "\"status\":\"Failure\",\"message\":\"Unauthorized\","
                         "\"reason\":\"Unauthorized\",\"code\":401}";
    ck_assert_int_eq(kube_status_parse(unauth, strlen(unauth), &st), 0);
    ck_assert_int_eq(st.code, 401);
    ck_assert(!kube_status_is_expired(&st));
    kube_status_clear(&st);

    const char *gone = "{\"kind\":\"Status\",\"reason\":\"Gone\"}";
    ck_assert_int_eq(kube_status_parse(gone, strlen(gone), &st), 0);
    ck_assert(kube_status_is_expired(&st));
    kube_status_clear(&st);

    ck_assert_int_eq(kube_status_parse("<html>502</html>", 16, &st), -EINVAL);
    ck_assert_ptr_null(st.root);
    ck_assert_int_eq(kube_status_parse("{\"kind\":\"Service\"}", 18, &st), -EINVAL);
    ck_assert(!kube_status_is_expired(NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kube_watch_stream");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_every_split_point);
    tcase_add_test(tc, test_full_stream_splits);
    tcase_add_test(tc, test_three_way_splits_and_bytewise);
    tcase_add_test(tc, test_410_in_stream);
    tcase_add_test(tc, test_bad_lines_are_skipped_and_named);
    tcase_add_test(tc, test_oversized_line);
    tcase_add_test(tc, test_finish_and_reset);
    tcase_add_test(tc, test_callback_error_stops);
    tcase_add_test(tc, test_event_type_names);
    tcase_add_test(tc, test_list_parse);
    tcase_add_test(tc, test_status_parse);
    suite_add_tcase(s, tc);
    return suite_main_run(s);
}
