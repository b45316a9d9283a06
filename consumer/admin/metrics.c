/*
 * drover - consumer/admin/metrics.c: process-wide metrics, rendered as
 * Prometheus text exposition format (version 0.0.4).
 *
 * Fixed counters and gauges are atomics.  Labelled series (outcome,
 * dead-letter class, per-partition lag) live in small tables under one
 * mutex held only for a lookup or a copy: workers update them from any
 * thread, the admin server renders them from its own.
 */
#include "admin.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Upper bounds of drover_task_duration_seconds, seconds (+Inf implied).
 * Migrations run from milliseconds (no-op) to hours (large backfills). */
static const double duration_buckets[] = {0.01, 0.05, 0.1, 0.5, 1,   5,
                                          10,   30,   60,  300, 900, 3600};
#define DURATION_BUCKETS_CNT \
        (sizeof(duration_buckets) / sizeof(duration_buckets[0]))

#define LABEL_MAX      128
#define SERIES_MAX     64 /* distinct outcomes / classes */
#define LAG_SERIES_MAX 4096

typedef struct counter_series_s {
        char label[LABEL_MAX];
        uint64_t value;
} counter_series_t;

typedef struct lag_series_s {
        char topic[LABEL_MAX];
        int32_t partition;
        int64_t lag;
} lag_series_t;

static struct {
        pthread_mutex_t lock;
        counter_series_t outcomes[SERIES_MAX];
        size_t outcomes_cnt;
        counter_series_t dlq[SERIES_MAX];
        size_t dlq_cnt;
        counter_series_t throttled_ms[SERIES_MAX]; /* by check kind */
        size_t throttled_cnt;
        lag_series_t *lag;
        size_t lag_cnt;
        size_t lag_size;
        uint64_t dur_buckets[DURATION_BUCKETS_CNT];
        uint64_t dur_count;
        double dur_sum;
} m = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Lock-free scalars. */
static uint64_t step_rows_total, txn_commits_total, txn_aborts_total;
static int64_t inflight_tasks, paused_partitions;

/*
 * ------------------------------------------------------------------------
 * Updates
 * ------------------------------------------------------------------------
 */

/* Add `n` to the series labelled `label` in `tab`, creating it; a label
 * beyond the table's capacity is counted under "other" so memory stays
 * bounded whatever callers pass.  Called with m.lock held. */
static void counter_add(counter_series_t *tab, size_t *cntp, const char *label,
                        uint64_t n) {
        size_t i;

        if (!label || !*label)
                label = "unknown";
        for (i = 0; i < *cntp; i++)
                if (!strcmp(tab[i].label, label)) {
                        tab[i].value += n;
                        return;
                }
        if (*cntp >= SERIES_MAX - 1 && strcmp(label, "other"))
                label = "other";
        for (i = 0; i < *cntp; i++)
                if (!strcmp(tab[i].label, label)) {
                        tab[i].value += n;
                        return;
                }
        snprintf(tab[*cntp].label, sizeof(tab[*cntp].label), "%s", label);
        tab[*cntp].value = n;
        (*cntp)++;
}

static int outcome_is_final(const char *outcome) {
        return outcome && strcmp(outcome, "retry") != 0;
}

void drv_metrics_task(const char *outcome, double seconds) {
        size_t i;

        pthread_mutex_lock(&m.lock);
        counter_add(m.outcomes, &m.outcomes_cnt, outcome, 1);
        if (outcome_is_final(outcome) && seconds >= 0) {
                for (i = 0; i < DURATION_BUCKETS_CNT; i++)
                        if (seconds <= duration_buckets[i])
                                m.dur_buckets[i]++;
                m.dur_count++;
                m.dur_sum += seconds;
        }
        pthread_mutex_unlock(&m.lock);
}

void drv_metrics_step_rows(int64_t rows) {
        if (rows > 0)
                __atomic_add_fetch(&step_rows_total, (uint64_t)rows,
                                   __ATOMIC_RELAXED);
}

void drv_metrics_dlq(const char *error_class) {
        pthread_mutex_lock(&m.lock);
        counter_add(m.dlq, &m.dlq_cnt, error_class, 1);
        pthread_mutex_unlock(&m.lock);
}

void drv_metrics_throttled(const char *kind, double seconds) {
        if (!(seconds > 0))
                return;
        pthread_mutex_lock(&m.lock);
        counter_add(m.throttled_ms, &m.throttled_cnt, kind,
                    (uint64_t)(seconds * 1000.0 + 0.5));
        pthread_mutex_unlock(&m.lock);
}

void drv_metrics_txn_commit(void) {
        __atomic_add_fetch(&txn_commits_total, 1, __ATOMIC_RELAXED);
}

void drv_metrics_txn_abort(void) {
        __atomic_add_fetch(&txn_aborts_total, 1, __ATOMIC_RELAXED);
}

void drv_metrics_set_inflight(int n) {
        __atomic_store_n(&inflight_tasks, (int64_t)n, __ATOMIC_RELAXED);
}

void drv_metrics_set_paused(int n) {
        __atomic_store_n(&paused_partitions, (int64_t)n, __ATOMIC_RELAXED);
}

/* Index of (topic, partition) in m.lag, or -1.  m.lock held. */
static ssize_t lag_find(const char *topic, int32_t partition) {
        size_t i;

        for (i = 0; i < m.lag_cnt; i++)
                if (m.lag[i].partition == partition &&
                    !strcmp(m.lag[i].topic, topic))
                        return (ssize_t)i;
        return -1;
}

void drv_metrics_set_lag(const char *topic, int32_t partition, int64_t lag) {
        ssize_t i;

        if (!topic || partition < 0)
                return;
        pthread_mutex_lock(&m.lock);
        i = lag_find(topic, partition);
        if (lag < 0) {
                if (i >= 0)
                        m.lag[i] = m.lag[--m.lag_cnt];
        } else if (i >= 0) {
                m.lag[i].lag = lag;
        } else if (m.lag_cnt < LAG_SERIES_MAX) {
                if (m.lag_cnt == m.lag_size) {
                        size_t size = m.lag_size ? m.lag_size * 2 : 32;
                        lag_series_t *n = realloc(m.lag, size * sizeof(*n));
                        if (!n)
                                goto out; /* dropped: metrics never fail */
                        m.lag = n;
                        m.lag_size = size;
                }
                snprintf(m.lag[m.lag_cnt].topic, LABEL_MAX, "%s", topic);
                m.lag[m.lag_cnt].partition = partition;
                m.lag[m.lag_cnt].lag = lag;
                m.lag_cnt++;
        }
out:
        pthread_mutex_unlock(&m.lock);
}

void drv_metrics_reset(void) {
        pthread_mutex_lock(&m.lock);
        free(m.lag);
        m.lag = NULL;
        m.lag_cnt = m.lag_size = 0;
        m.outcomes_cnt = m.dlq_cnt = m.throttled_cnt = 0;
        memset(m.dur_buckets, 0, sizeof(m.dur_buckets));
        m.dur_count = 0;
        m.dur_sum = 0;
        pthread_mutex_unlock(&m.lock);
        __atomic_store_n(&step_rows_total, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&txn_commits_total, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&txn_aborts_total, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&inflight_tasks, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&paused_partitions, 0, __ATOMIC_RELAXED);
}

/*
 * ------------------------------------------------------------------------
 * Rendering
 * ------------------------------------------------------------------------
 */

/* A growing output buffer; `failed` sticks after an allocation failure. */
typedef struct out_s {
        char *buf;
        size_t len, size;
        int failed;
} out_t;

static void out_printf(out_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_printf(out_t *o, const char *fmt, ...) {
        va_list ap;
        int n;

        if (o->failed)
                return;
        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        o->failed = 1;
                        return;
                }
                if ((size_t)n < o->size - o->len) {
                        o->len += (size_t)n;
                        return;
                }
                size_t size = (o->size + (size_t)n + 1) * 2;
                char *nb = realloc(o->buf, size);
                if (!nb) {
                        o->failed = 1;
                        return;
                }
                o->buf = nb;
                o->size = size;
        }
}

size_t drv_metrics_escape_label(const char *value, char *out, size_t out_size) {
        size_t n = 0;

        if (!out_size)
                return 0;
        for (; value && *value && n + 3 < out_size; value++) {
                switch (*value) {
                case '\\':
                        out[n++] = '\\';
                        out[n++] = '\\';
                        break;
                case '"':
                        out[n++] = '\\';
                        out[n++] = '"';
                        break;
                case '\n':
                        out[n++] = '\\';
                        out[n++] = 'n';
                        break;
                default:
                        out[n++] = *value;
                }
        }
        out[n] = '\0';
        return n;
}

static void render_header(out_t *o, const char *name, const char *type,
                          const char *help) {
        out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_labelled(out_t *o, const char *name, const char *label,
                            const counter_series_t *tab, size_t cnt) {
        char esc[LABEL_MAX * 2 + 1];
        size_t i;

        for (i = 0; i < cnt; i++) {
                drv_metrics_escape_label(tab[i].label, esc, sizeof(esc));
                out_printf(o, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, esc,
                           tab[i].value);
        }
}

static void render_histogram(out_t *o) {
        size_t i;

        render_header(o, "drover_task_duration_seconds", "histogram",
                      "Processing time of tasks that reached a final "
                      "outcome.");
        for (i = 0; i < DURATION_BUCKETS_CNT; i++)
                out_printf(o,
                           "drover_task_duration_seconds_bucket{le=\"%g\"} "
                           "%" PRIu64 "\n",
                           duration_buckets[i], m.dur_buckets[i]);
        out_printf(o,
                   "drover_task_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64
                   "\n"
                   "drover_task_duration_seconds_sum %.6f\n"
                   "drover_task_duration_seconds_count %" PRIu64 "\n",
                   m.dur_count, m.dur_sum, m.dur_count);
}

static void render_lag(out_t *o) {
        char esc[LABEL_MAX * 2 + 1];
        size_t i;

        render_header(o, "drover_consumer_lag", "gauge",
                      "Messages between the committed offset and the last "
                      "stable offset, per assigned partition.");
        for (i = 0; i < m.lag_cnt; i++) {
                drv_metrics_escape_label(m.lag[i].topic, esc, sizeof(esc));
                out_printf(o,
                           "drover_consumer_lag{topic=\"%s\",partition=\"%d\"}"
                           " %" PRId64 "\n",
                           esc, (int)m.lag[i].partition, m.lag[i].lag);
        }
}

/* Everything behind m.lock, rendered while holding it (a copy would cost
 * as much as the formatting). */
static void render_locked(out_t *o) {
        char esc[LABEL_MAX * 2 + 1];
        size_t i;

        pthread_mutex_lock(&m.lock);
        render_header(o, "drover_tasks_total", "counter",
                      "Tasks by outcome (done, skipped, dry_run, dead, "
                      "retry).");
        render_labelled(o, "drover_tasks_total", "outcome", m.outcomes,
                        m.outcomes_cnt);
        render_histogram(o);
        render_header(o, "drover_dlq_total", "counter",
                      "Dead letters committed, by error class.");
        render_labelled(o, "drover_dlq_total", "class", m.dlq, m.dlq_cnt);
        render_header(o, "drover_throttled_seconds_total", "counter",
                      "Seconds batched steps waited for their throttle, by "
                      "the check that said throttle.");
        for (i = 0; i < m.throttled_cnt; i++) {
                drv_metrics_escape_label(m.throttled_ms[i].label, esc,
                                         sizeof(esc));
                out_printf(o,
                           "drover_throttled_seconds_total{reason=\"%s\"} "
                           "%.3f\n",
                           esc, (double)m.throttled_ms[i].value / 1000.0);
        }
        render_lag(o);
        pthread_mutex_unlock(&m.lock);
}

char *drv_metrics_render(void) {
        out_t o = {.size = 4096};

        if (!(o.buf = malloc(o.size)))
                return NULL;
        o.buf[0] = '\0';
        render_locked(&o);
        render_header(&o, "drover_step_rows_total", "counter",
                      "Rows written by migration steps.");
        out_printf(&o, "drover_step_rows_total %" PRIu64 "\n",
                   __atomic_load_n(&step_rows_total, __ATOMIC_RELAXED));
        render_header(&o, "drover_txn_commits_total", "counter",
                      "Kafka transactions committed.");
        out_printf(&o, "drover_txn_commits_total %" PRIu64 "\n",
                   __atomic_load_n(&txn_commits_total, __ATOMIC_RELAXED));
        render_header(&o, "drover_txn_aborts_total", "counter",
                      "Kafka transactions aborted.");
        out_printf(&o, "drover_txn_aborts_total %" PRIu64 "\n",
                   __atomic_load_n(&txn_aborts_total, __ATOMIC_RELAXED));
        render_header(&o, "drover_inflight_tasks", "gauge",
                      "Tasks being processed now.");
        out_printf(&o, "drover_inflight_tasks %" PRId64 "\n",
                   __atomic_load_n(&inflight_tasks, __ATOMIC_RELAXED));
        render_header(&o, "drover_paused_partitions", "gauge",
                      "Assigned partitions paused (task in flight or "
                      "backing off).");
        out_printf(&o, "drover_paused_partitions %" PRId64 "\n",
                   __atomic_load_n(&paused_partitions, __ATOMIC_RELAXED));
        if (o.failed) {
                free(o.buf);
                return NULL;
        }
        return o.buf;
}

/*
 * ------------------------------------------------------------------------
 * Readiness, as reported by the worker
 * ------------------------------------------------------------------------
 */
static int ready_assignment, ready_db;

void drv_admin_set_ready(int has_assignment, int db_ok) {
        __atomic_store_n(&ready_assignment, !!has_assignment, __ATOMIC_RELAXED);
        __atomic_store_n(&ready_db, !!db_ok, __ATOMIC_RELAXED);
}

void drv_admin_get_ready(int *has_assignmentp, int *db_okp) {
        if (has_assignmentp)
                *has_assignmentp =
                    __atomic_load_n(&ready_assignment, __ATOMIC_RELAXED);
        if (db_okp)
                *db_okp = __atomic_load_n(&ready_db, __ATOMIC_RELAXED);
}
