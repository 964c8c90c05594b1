/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_time: see ctl_time.h. */
#include "ctl_time.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int ctl_time_parse(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
    const char *p;

    if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    p = s + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if ((*p == 'Z' || *p == 'z') && !p[1]) {
        sign = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && !digits(p + 1, 2, &oh) &&
               p[3] == ':' && !digits(p + 4, 2, &om) && oh < 24 && om < 60) {
        sign = *p == '+' ? 1 : -1;
    } else {
        return -EINVAL;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *out = (int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60);
    return 0;
}

void ctl_time_format(int64_t t, char *buf, size_t buflen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, buflen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ctl_time_stamp(int64_t ms, char *buf, size_t buflen)
{
    time_t tt = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];

    gmtime_r(&tt, &tm);
    strftime(base, sizeof(base), "%Y%m%dT%H%M%S", &tm);
    snprintf(buf, buflen, "%s.%03dZ", base, (int)(ms % 1000));
}
