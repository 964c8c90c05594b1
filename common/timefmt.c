/* SPDX-License-Identifier: Apache-2.0 */
/* timefmt: see timefmt.h. */
#include "timefmt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil): exact for every year, no timegm()/TZ dependency. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap_year(y) ? 29 : mdays[m - 1];
}

/* n decimal digits at s, or -1 (a NUL stops it, so short text is safe). */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int timefmt_parse_rfc3339_ms(const char *s, int64_t *unix_ms)
{
    int y, mo, d, h, mi, se, ms = 0, offset = 0;
    const char *p;

    if (!s)
        return -EINVAL;
    /* Each check stops at the first mismatch, so no read passes the NUL. */
    if ((y = digits(s, 4)) < 0 || s[4] != '-' || (mo = digits(s + 5, 2)) < 0 || s[7] != '-' ||
        (d = digits(s + 8, 2)) < 0 || (s[10] != 'T' && s[10] != 't') ||
        (h = digits(s + 11, 2)) < 0 || s[13] != ':' || (mi = digits(s + 14, 2)) < 0 ||
        s[16] != ':' || (se = digits(s + 17, 2)) < 0)
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    p = s + 19;
    if (*p == '.') {
        int nd = 0;
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
        for (; nd < 3; nd++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2), om = oh < 0 || p[3] != ':' ? -1 : digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -EINVAL;
        offset = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    *unix_ms = secs * 1000 + ms;
    return 0;
}

int timefmt_parse_rfc3339(const char *text, int64_t *unix_s)
{
    int64_t ms;
    int rc = timefmt_parse_rfc3339_ms(text, &ms);
    if (rc == 0)
        *unix_s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    return rc;
}

struct civil {
    int64_t year;
    int mon, day, hour, min, sec, ms;
};

/* Split unix milliseconds into UTC fields; -ERANGE outside years 0..9999
 * (the range the four-digit formats can write). */
static int split_ms(int64_t unix_ms, struct civil *c)
{
    /* Beyond ±2^53 ms the year is far outside 0..9999 anyway; bounding
     * first keeps the arithmetic below from overflowing. */
    if (unix_ms < -(INT64_C(1) << 53) || unix_ms > (INT64_C(1) << 53))
        return -ERANGE;
    int64_t ms = unix_ms % 1000, s = unix_ms / 1000;
    if (ms < 0) {
        ms += 1000;
        s--;
    }
    int64_t days = s / 86400, sod = s % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    civil_from_days(days, &c->year, &c->mon, &c->day);
    if (c->year < 0 || c->year > 9999)
        return -ERANGE;
    c->hour = (int)(sod / 3600);
    c->min = (int)(sod / 60 % 60);
    c->sec = (int)(sod % 60);
    c->ms = (int)ms;
    return 0;
}

enum style { STYLE_RFC3339, STYLE_RFC3339_MS, STYLE_STAMP_MS };

/* The formatters' one body; buf is "" on any failure. */
static int format_ms(int64_t unix_ms, enum style style, char *buf, size_t buflen)
{
    struct civil c;
    int n = -1, rc = split_ms(unix_ms, &c);
    if (rc < 0)
        goto fail;
    switch (style) {
    case STYLE_RFC3339:
        n = snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)c.year, c.mon, c.day,
                     c.hour, c.min, c.sec);
        break;
    case STYLE_RFC3339_MS:
        n = snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)c.year, c.mon, c.day,
                     c.hour, c.min, c.sec, c.ms);
        break;
    case STYLE_STAMP_MS:
        n = snprintf(buf, buflen, "%04d%02d%02dT%02d%02d%02d.%03dZ", (int)c.year, c.mon, c.day,
                     c.hour, c.min, c.sec, c.ms);
        break;
    }
    if (n >= 0 && (size_t)n < buflen)
        return 0;
    rc = -ENOSPC;
fail:
    if (buflen)
        buf[0] = '\0';
    return rc;
}

int timefmt_format_rfc3339(int64_t unix_s, char *buf, size_t buflen)
{
    /* bounded first so the conversion to ms cannot overflow */
    if (unix_s < -(INT64_C(1) << 43) || unix_s > (INT64_C(1) << 43)) {
        if (buflen)
            buf[0] = '\0';
        return -ERANGE;
    }
    return format_ms(unix_s * 1000, STYLE_RFC3339, buf, buflen);
}

int timefmt_format_rfc3339_ms(int64_t unix_ms, char *buf, size_t buflen)
{
    return format_ms(unix_ms, STYLE_RFC3339_MS, buf, buflen);
}

int timefmt_format_stamp_ms(int64_t unix_ms, char *buf, size_t buflen)
{
    return format_ms(unix_ms, STYLE_STAMP_MS, buf, buflen);
}
