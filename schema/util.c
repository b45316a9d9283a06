/*
 * drover - schema/util.c: errors, clocks, ids and times shared by every
 * module.
 */
#include "schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------
 */
const char *drv_err_name(drv_err_t err) {
        switch (err) {
        case DRV_OK:
                return "ok";
        case DRV_ERR_REGISTRY_UNAVAILABLE:
                return "registry_unavailable";
        case DRV_ERR_CATALOG_UNAVAILABLE:
                return "catalog_unavailable";
        case DRV_ERR_DB_UNAVAILABLE:
                return "db_unavailable";
        case DRV_ERR_KAFKA_RETRIABLE:
                return "kafka_retriable";
        case DRV_ERR_LOCKED:
                return "locked";
        case DRV_ERR_TIMEOUT:
                return "timeout";
        case DRV_ERR_DECODE:
                return "decode";
        case DRV_ERR_UNKNOWN_SCHEMA:
                return "unknown_schema";
        case DRV_ERR_UNKNOWN_PLAN:
                return "unknown_plan";
        case DRV_ERR_INVALID_PLAN:
                return "invalid_plan";
        case DRV_ERR_VERSION_CONFLICT:
                return "version_conflict";
        case DRV_ERR_LEDGER_CONFLICT:
                return "ledger_conflict";
        case DRV_ERR_SQL_REFUSED:
                return "sql_refused";
        case DRV_ERR_INVALID_PARAM:
                return "invalid_param";
        case DRV_ERR_SQL:
                return "sql";
        case DRV_ERR_WRONG_QUEUE:
                return "wrong_queue";
        case DRV_ERR_STAGING_REQUIRED:
                return "staging_required";
        case DRV_ERR_KAFKA_FATAL:
                return "kafka_fatal";
        case DRV_ERR_INTERNAL:
                return "internal";
        case DRV_ERR_NOMEM:
                return "nomem";
        case DRV_ERR_USAGE:
                return "usage";
        case DRV_ERR_CONFIG:
                return "config";
        case DRV_ERR_IO:
                return "io";
        }
        return "unknown";
}

drv_err_t drv_err_set(char *errstr, size_t errstr_size, drv_err_t err,
                      const char *fmt, ...) {
        va_list ap;

        if (errstr && errstr_size > 0) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return err;
}

int drv_err_exit_code(drv_err_t err) {
        if (err == DRV_OK)
                return DRV_EXIT_OK;
        if (err == DRV_ERR_USAGE)
                return DRV_EXIT_USAGE;
        switch (DRV_ERR_FAMILY(err)) {
        case DRV_ERR_FAMILY_TRANSIENT:
                return DRV_EXIT_UNAVAILABLE;
        case DRV_ERR_FAMILY_PERMANENT:
        case DRV_ERR_FAMILY_USAGE:
                return DRV_EXIT_DATAERR;
        default:
                return DRV_EXIT_SOFTWARE;
        }
}

/*
 * ------------------------------------------------------------------------
 * Clocks, ids, times
 * ------------------------------------------------------------------------
 */
int64_t drv_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t drv_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void drv_uuid4(char out[37]) {
        unsigned char b[16];
        size_t got = 0;
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

        while (fd >= 0 && got < sizeof(b)) {
                ssize_t r = read(fd, b + got, sizeof(b) - got);
                if (r <= 0)
                        break;
                got += (size_t)r;
        }
        if (fd >= 0)
                close(fd);
        /* /dev/urandom cannot fail on Linux; if it somehow does, mix the
         * clock and pid rather than hand out a constant id. */
        for (; got < sizeof(b); got++)
                b[got] = (unsigned char)((drv_mono_ms() * 2654435761u) ^
                                         (getpid() << (got % 8)) ^ rand());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        snprintf(out, 37,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                 b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so parsing never depends on the TZ environment. */
static int64_t days_from_civil(int64_t y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static int parse_relative(const char *s, int64_t *msp) {
        char *end;
        long long n = strtoll(s + 1, &end, 10);
        int64_t unit;

        if (end == s + 1 || n < 0)
                return -1;
        if (!strcmp(end, "s"))
                unit = 1000;
        else if (!strcmp(end, "m"))
                unit = 60 * 1000;
        else if (!strcmp(end, "h"))
                unit = 3600 * 1000;
        else if (!strcmp(end, "d"))
                unit = 86400 * 1000;
        else
                return -1;
        *msp = drv_now_ms() - (int64_t)n * unit;
        return 0;
}

int drv_parse_time(const char *s, int64_t *msp) {
        int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, frac_ms = 0;
        char *end;

        if (!s || !*s)
                return -1;
        if (s[0] == '-')
                return parse_relative(s, msp);
        if (strlen(s) >= 10 && s[4] == '-') {
                if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
                        return -1;
                s += n;
                if (*s == 'T' || *s == ' ') {
                        if (sscanf(s + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) !=
                            3)
                                return -1;
                        s += 1 + n;
                        if (*s == '.') {
                                int digits = 0;
                                for (s++; *s >= '0' && *s <= '9'; s++)
                                        if (digits++ < 3)
                                                frac_ms =
                                                    frac_ms * 10 + (*s - '0');
                                for (; digits < 3; digits++)
                                        frac_ms *= 10;
                        }
                }
                if (*s == 'Z')
                        s++;
                if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
                    mi > 59 || sec > 60)
                        return -1;
                *msp = ((days_from_civil(y, mo, d) * 86400) + h * 3600 +
                        mi * 60 + sec) *
                           1000 +
                       frac_ms;
                return 0;
        }
        long long v = strtoll(s, &end, 10);
        if (*end || v < 0)
                return -1;
        *msp = (int64_t)v;
        return 0;
}

void drv_format_time(int64_t ms, char *out, size_t out_size) {
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;

        gmtime_r(&secs, &tm);
        snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}
