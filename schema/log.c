/*
 * drover - schema/log.c: one JSON object per line on stderr.
 *
 * Each line is assembled in a local buffer and written with a single
 * write(2), so lines from different threads never interleave.
 */
#include "schema.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static int log_level = -1; /* -1: not yet read from the environment */

static _Thread_local struct {
        int set;
        char task_id[64];
        char dataset[128];
        int step;
        int32_t partition;
        int64_t offset;
} log_ctx;

void drv_log_set_level(drv_log_level_t level) {
        __atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
}

drv_log_level_t drv_log_get_level(void) {
        int lvl = __atomic_load_n(&log_level, __ATOMIC_RELAXED);
        const char *env;

        if (lvl >= 0)
                return (drv_log_level_t)lvl;
        lvl = DRV_LOG_INFO;
        if ((env = getenv("DROVER_LOG_LEVEL"))) {
                if (!strcasecmp(env, "debug"))
                        lvl = DRV_LOG_DEBUG;
                else if (!strcasecmp(env, "warn"))
                        lvl = DRV_LOG_WARN;
                else if (!strcasecmp(env, "error"))
                        lvl = DRV_LOG_ERROR;
        }
        __atomic_store_n(&log_level, lvl, __ATOMIC_RELAXED);
        return (drv_log_level_t)lvl;
}

void drv_log_set_ctx(const drv_log_ctx_t *ctx) {
        memset(&log_ctx, 0, sizeof(log_ctx));
        if (!ctx)
                return;
        log_ctx.set = 1;
        if (ctx->task_id)
                snprintf(log_ctx.task_id, sizeof(log_ctx.task_id), "%s",
                         ctx->task_id);
        if (ctx->dataset)
                snprintf(log_ctx.dataset, sizeof(log_ctx.dataset), "%s",
                         ctx->dataset);
        log_ctx.step = ctx->step;
        log_ctx.partition = ctx->partition;
        log_ctx.offset = ctx->offset;
}

/* Append `s` as JSON string contents (escaped) to buf at *pos. */
static void put_escaped(char *buf, size_t size, size_t *pos, const char *s) {
        for (; *s && *pos + 8 < size; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        buf[(*pos)++] = '\\';
                        buf[(*pos)++] = (char)c;
                } else if (c == '\n') {
                        buf[(*pos)++] = '\\';
                        buf[(*pos)++] = 'n';
                } else if (c < 0x20) {
                        *pos += (size_t)snprintf(buf + *pos, size - *pos,
                                                 "\\u%04x", c);
                } else {
                        buf[(*pos)++] = (char)c;
                }
        }
}

static void put_raw(char *buf, size_t size, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put_raw(char *buf, size_t size, size_t *pos, const char *fmt, ...) {
        va_list ap;
        int n;

        if (*pos >= size)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
        va_end(ap);
        if (n > 0)
                *pos = *pos + (size_t)n < size ? *pos + (size_t)n : size - 1;
}

static const char *level_name(drv_log_level_t level) {
        switch (level) {
        case DRV_LOG_DEBUG:
                return "debug";
        case DRV_LOG_INFO:
                return "info";
        case DRV_LOG_WARN:
                return "warn";
        default:
                return "error";
        }
}

void drv_logv(drv_log_level_t level, const char *fmt, va_list ap) {
        char msg[LOG_LINE_MAX / 2], line[LOG_LINE_MAX], ts[40];
        size_t pos = 0;

        if ((int)level > (int)drv_log_get_level())
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        drv_format_time(drv_now_ms(), ts, sizeof(ts));

        put_raw(line, sizeof(line), &pos,
                "{\"ts\":\"%s\",\"level\":\"%s\","
                "\"msg\":\"",
                ts, level_name(level));
        put_escaped(line, sizeof(line), &pos, msg);
        put_raw(line, sizeof(line), &pos, "\"");
        if (log_ctx.set) {
                if (log_ctx.task_id[0]) {
                        put_raw(line, sizeof(line), &pos, ",\"task_id\":\"");
                        put_escaped(line, sizeof(line), &pos, log_ctx.task_id);
                        put_raw(line, sizeof(line), &pos, "\"");
                }
                if (log_ctx.dataset[0]) {
                        put_raw(line, sizeof(line), &pos, ",\"dataset\":\"");
                        put_escaped(line, sizeof(line), &pos, log_ctx.dataset);
                        put_raw(line, sizeof(line), &pos, "\"");
                }
                if (log_ctx.step >= 0)
                        put_raw(line, sizeof(line), &pos, ",\"step\":%d",
                                log_ctx.step);
                if (log_ctx.partition >= 0)
                        put_raw(line, sizeof(line), &pos, ",\"partition\":%d",
                                (int)log_ctx.partition);
                if (log_ctx.offset >= 0)
                        put_raw(line, sizeof(line), &pos, ",\"offset\":%lld",
                                (long long)log_ctx.offset);
        }
        if (pos > sizeof(line) - 3)
                pos = sizeof(line) - 3;
        line[pos++] = '}';
        line[pos++] = '\n';
        /* one write: lines from different threads never interleave */
        if (write(STDERR_FILENO, line, pos) < 0) {
                /* nowhere left to report to */
        }
}

void drv_log(drv_log_level_t level, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        drv_logv(level, fmt, ap);
        va_end(ap);
}
