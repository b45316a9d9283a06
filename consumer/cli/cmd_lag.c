/*
 * drover - consumer/cli/cmd_lag.c: 'drover lag'.
 *
 * Per partition of the tasks topic: the group's committed offset, the log
 * start and the log end (the last stable offset: watermarks are queried
 * from a read_committed consumer, whose ListOffsets carries that
 * isolation level), the lag, totals, and the replicas an autoscaler
 * should run.  The rule is KEDA's Kafka scaler without its known
 * pitfalls:
 *   - a partition with no committed offset lags by end - start (what the
 *     group would have to read from the earliest retained offset), not by
 *     the whole end offset, which counts deleted records too;
 *   - a committed offset beyond the end (after truncation) lags 0, never
 *     negative;
 *   - replicas = ceil(total lag / threshold), 0 when nothing lags, capped
 *     at the partition count (at the number of lagging partitions with
 *     --only-lagging), since more consumers than partitions sit idle.
 * It reads only: it never joins the group nor commits.
 */
#include "cli_kafka.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAG_TIMEOUT_MS 10000

typedef struct lag_opts_s {
        const char *brokers;
        const char *topic;
        const char *group;
        long threshold;
        int json;
        int only_lagging;
} lag_opts_t;

typedef struct lag_row_s {
        int32_t partition;
        int64_t committed; /* < 0: none */
        int64_t start;
        int64_t end;
        int64_t lag;
} lag_row_t;

static void usage(FILE *fp) {
        fprintf(fp, "usage: drover lag [--group G] [--topic T] [--brokers B] "
                    "[--json]\n"
                    "                  [--lag-threshold N] [--only-lagging]\n\n"
                    "Per-partition committed offset, log end (last stable "
                    "offset), lag,\n"
                    "totals and the suggested replica count = ceil(total lag / "
                    "N),\n"
                    "capped at the partition count (at the lagging partitions "
                    "with\n"
                    "--only-lagging).  N defaults to 10 (KEDA's default "
                    "lagThreshold).\n"
                    "Defaults: DROVER_GROUP or drover, DROVER_TOPIC or "
                    "dataset-migrations,\nDROVER_BROKERS or 127.0.0.1:9092.\n");
}

enum {
        LAG_GROUP = DRV_CLI_LONG,
        LAG_TOPIC,
        LAG_BROKERS,
        LAG_THRESHOLD,
        LAG_JSON,
        LAG_ONLY_LAGGING,
        LAG_HELP
};

static const struct option lag_options[] = {
    {"group", required_argument, NULL, LAG_GROUP},
    {"topic", required_argument, NULL, LAG_TOPIC},
    {"brokers", required_argument, NULL, LAG_BROKERS},
    {"lag-threshold", required_argument, NULL, LAG_THRESHOLD},
    {"json", no_argument, NULL, LAG_JSON},
    {"only-lagging", no_argument, NULL, LAG_ONLY_LAGGING},
    {"help", no_argument, NULL, LAG_HELP},
    {NULL, 0, NULL, 0},
};

/* The flags as given; lag_opts_t gets the defaults filled in. */
typedef struct lag_args_s {
        lag_opts_t *o;
        const char *group, *topic, *brokers, *threshold;
} lag_args_t;

/* drv_cli_opt_fn: 0, 1 (help printed) or -1 (usage error printed). */
static int lag_opt(void *opaque, int opt, const char *arg) {
        lag_args_t *a = opaque;

        switch (opt) {
        case 'h':
        case LAG_HELP:
                usage(stdout);
                return 1;
        case LAG_JSON:
                return a->o->json = 1, 0;
        case LAG_ONLY_LAGGING:
                return a->o->only_lagging = 1, 0;
        case LAG_GROUP:
                return a->group = arg, 0;
        case LAG_TOPIC:
                return a->topic = arg, 0;
        case LAG_BROKERS:
                return a->brokers = arg, 0;
        case LAG_THRESHOLD:
                return a->threshold = arg, 0;
        case ':':
                drv_cli_error("option %s needs a value", arg);
                return -1;
        default: /* '?', an operand */
                drv_cli_error("unknown option \"%s\" for lag (see 'drover "
                              "lag --help')",
                              arg);
                return -1;
        }
}

/* 0, 1 (help printed) or -1 (usage error printed). */
static int parse_args(int argc, char **argv, lag_opts_t *o) {
        lag_args_t a = {o, NULL, NULL, NULL, NULL};
        int r;

        if ((r = drv_cli_getopt(argc, argv, "h", lag_options, lag_opt, &a)))
                return r;
        o->group = drv_cli_group(a.group);
        o->topic = drv_cli_topic(a.topic);
        o->brokers = drv_cli_brokers(a.brokers);
        o->threshold = 10;
        if (a.threshold && (drv_cli_parse_long(a.threshold, &o->threshold) ||
                            o->threshold < 1)) {
                drv_cli_error("--lag-threshold must be a positive integer, "
                              "not \"%s\"",
                              a.threshold);
                return -1;
        }
        return 0;
}

/* Lag of one partition (see the file comment). */
static int64_t row_lag(const lag_row_t *r) {
        if (r->committed < 0)
                return r->end > r->start ? r->end - r->start : 0;
        return r->end > r->committed ? r->end - r->committed : 0;
}

int64_t drv_lag_suggested_replicas(int64_t total_lag, long threshold,
                                   int64_t cap) {
        int64_t n;

        if (total_lag <= 0 || threshold < 1 || cap <= 0)
                return 0;
        n = (total_lag + threshold - 1) / threshold;
        return n < cap ? n : cap;
}

/* A read_committed consumer of the group that never joins it. */
static rd_kafka_t *lag_consumer(const lag_opts_t *o, char *errstr,
                                size_t errstr_size) {
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        char kerr[256];

        if (!(conf = drv_cli_kafka_conf_new(o->brokers, errstr, errstr_size)))
                return NULL;
        if (drv_cli_kafka_set(conf, "group.id", o->group, errstr,
                              errstr_size) ||
            drv_cli_kafka_set(conf, "isolation.level", "read_committed", errstr,
                              errstr_size) ||
            drv_cli_kafka_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            drv_cli_kafka_set(conf, "allow.auto.create.topics", "false", errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr)))) {
                rd_kafka_conf_destroy(conf);
                snprintf(errstr, errstr_size, "cannot create a consumer: %s",
                         kerr);
        }
        return rk;
}

/* Fill rows[0..cnt) with committed offsets and watermarks. */
static rd_kafka_resp_err_t fill_rows(rd_kafka_t *rk, const lag_opts_t *o,
                                     lag_row_t *rows, int cnt) {
        rd_kafka_topic_partition_list_t *tp;
        rd_kafka_resp_err_t err;
        int p;

        tp = rd_kafka_topic_partition_list_new(cnt);
        for (p = 0; p < cnt; p++)
                rd_kafka_topic_partition_list_add(tp, o->topic, p);
        err = rd_kafka_committed(rk, tp, LAG_TIMEOUT_MS);
        for (p = 0; !err && p < cnt; p++) {
                rows[p].partition = p;
                rows[p].committed = tp->elems[p].err ? -1 : tp->elems[p].offset;
                err = rd_kafka_query_watermark_offsets(
                    rk, o->topic, p, &rows[p].start, &rows[p].end,
                    LAG_TIMEOUT_MS);
                rows[p].lag = row_lag(&rows[p]);
        }
        rd_kafka_topic_partition_list_destroy(tp);
        return err;
}

static void print_table(const lag_opts_t *o, const lag_row_t *rows, int cnt,
                        int64_t total, int lagging, int64_t replicas) {
        char committed[32];
        int p;

        printf("%-30s %-9s %14s %14s %12s\n", "TOPIC", "PARTITION",
               "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG");
        for (p = 0; p < cnt; p++) {
                if (o->only_lagging && rows[p].lag == 0)
                        continue;
                if (rows[p].committed < 0)
                        snprintf(committed, sizeof(committed), "-");
                else
                        snprintf(committed, sizeof(committed), "%" PRId64,
                                 rows[p].committed);
                printf("%-30s %-9d %14s %14" PRId64 " %12" PRId64 "\n",
                       o->topic, (int)rows[p].partition, committed, rows[p].end,
                       rows[p].lag);
        }
        printf("\ngroup %s: total lag %" PRId64 " over %d of %d partitions\n"
               "suggested replicas: %" PRId64 " (lag threshold %ld)\n",
               o->group, total, lagging, cnt, replicas, o->threshold);
}

static int print_json(const lag_opts_t *o, const lag_row_t *rows, int cnt,
                      int64_t total, int lagging, int64_t replicas) {
        json_t *root, *arr = json_array();
        char *text;
        int p;

        for (p = 0; p < cnt; p++) {
                if (o->only_lagging && rows[p].lag == 0)
                        continue;
                json_array_append_new(
                    arr, json_pack("{sisosIsIsI}", "partition",
                                   (int)rows[p].partition, "committed",
                                   rows[p].committed < 0
                                       ? json_null()
                                       : json_integer(rows[p].committed),
                                   "log_start", (json_int_t)rows[p].start,
                                   "log_end", (json_int_t)rows[p].end, "lag",
                                   (json_int_t)rows[p].lag));
        }
        root = json_pack("{sssssosIsisisIsI}", "group", o->group, "topic",
                         o->topic, "partitions", arr, "total_lag",
                         (json_int_t)total, "partition_count", cnt,
                         "lagging_partitions", lagging, "lag_threshold",
                         (json_int_t)o->threshold, "suggested_replicas",
                         (json_int_t)replicas);
        if (!root || !(text = json_dumps(root, JSON_INDENT(2)))) {
                json_decref(root);
                return -1;
        }
        printf("%s\n", text);
        free(text);
        json_decref(root);
        return 0;
}

static int report(const lag_opts_t *o, const lag_row_t *rows, int cnt) {
        int64_t total = 0, replicas;
        int lagging = 0, p;

        for (p = 0; p < cnt; p++) {
                total += rows[p].lag;
                lagging += rows[p].lag > 0;
        }
        replicas = drv_lag_suggested_replicas(total, o->threshold,
                                              o->only_lagging ? lagging : cnt);
        if (o->json)
                return print_json(o, rows, cnt, total, lagging, replicas)
                           ? DRV_EXIT_SOFTWARE
                           : DRV_EXIT_OK;
        print_table(o, rows, cnt, total, lagging, replicas);
        return DRV_EXIT_OK;
}

int drv_cmd_lag(int argc, char **argv) {
        lag_opts_t o = {0};
        char errstr[512];
        rd_kafka_resp_err_t err;
        lag_row_t *rows = NULL;
        rd_kafka_t *rk;
        int cnt, rc, r;

        if ((r = parse_args(argc, argv, &o)))
                return r > 0 ? DRV_EXIT_OK : DRV_EXIT_USAGE;
        if (!(rk = lag_consumer(&o, errstr, sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                return DRV_EXIT_USAGE;
        }
        if ((cnt = drv_kafka_partition_count(rk, o.topic, LAG_TIMEOUT_MS, &err,
                                             NULL, 0)) < 0) {
                drv_cli_error("cannot read topic \"%s\" at %s: %s", o.topic,
                              o.brokers, rd_kafka_err2str(err));
                rc = err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                         ? DRV_EXIT_DATAERR
                         : drv_cli_kafka_exit_code(err);
                goto out;
        }
        if (!(rows = calloc((size_t)cnt + 1, sizeof(*rows)))) {
                drv_cli_error("out of memory");
                rc = DRV_EXIT_SOFTWARE;
                goto out;
        }
        if ((err = fill_rows(rk, &o, rows, cnt))) {
                drv_cli_error("cannot read offsets of group \"%s\" on \"%s\" "
                              "at %s: %s",
                              o.group, o.topic, o.brokers,
                              rd_kafka_err2str(err));
                rc = drv_cli_kafka_exit_code(err);
                goto out;
        }
        rc = report(&o, rows, cnt);
out:
        free(rows);
        rd_kafka_destroy(rk);
        return rc;
}
