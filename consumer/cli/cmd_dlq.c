/*
 * drover - consumer/cli/cmd_dlq.c: 'drover dlq list' and 'drover dlq redrive'.
 *
 * list reads the DLQ topic read_committed from the beginning to the end
 * of every partition and prints the dead letters.  redrive reads it from
 * the redrive group's (<group>.redrive) committed offsets and moves the
 * selected dead letters back to the tasks topic, exactly once (see
 * dlq/redrive.c); without --execute it only prints what it would do.
 */
#include "cli_kafka.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: drover dlq list [--json] [--class C] [--dataset D] [--since TIME]\n"
    "                       [--brokers B] [--topic T] [--max-redrives N]\n"
    "       drover dlq redrive [--due] [--class C] [--dataset D] [--since "
    "TIME]\n"
    "                       [--max N] [--max-redrives N] [--execute] [--json]\n"
    "                       [--brokers B] [--topic T] [--group G]\n"
    "\n"
    "Dead letters are on <topic>.dlq (topic: --topic, DROVER_TOPIC, default\n"
    "dataset-migrations).  redrive is a dry run unless --execute: it then\n"
    "moves each selected dead letter back to <topic> exactly once, in the\n"
    "group <group>.redrive (group: --group, DROVER_GROUP, default drover).\n"
    "--due selects records whose drover.retry.after.ms has passed; a record\n"
    "redriven --max-redrives times (default 5) is parked: left and reported.\n"
    "Records not selected stay in the DLQ for a later redrive.\n";

typedef struct dlq_opts_s {
        int redrive, json, due, execute;
        const char *brokers, *topic, *group;
        drv_dlq_filter_t filter;
        int timeout_ms;
} dlq_opts_t;

enum {
        DLQ_JSON = DRV_CLI_LONG,
        DLQ_DUE,
        DLQ_EXECUTE,
        DLQ_CLASS,
        DLQ_DATASET,
        DLQ_BROKERS,
        DLQ_TOPIC,
        DLQ_GROUP,
        DLQ_SINCE,
        DLQ_MAX_REDRIVES,
        DLQ_MAX
};

/* One table for list and redrive: getopt_long would take "--max" for an
 * abbreviation of "--max-redrives" in a table without "--max", so the
 * redrive-only options are refused by dlq_opt. */
static const struct option dlq_options[] = {
    {"json", no_argument, NULL, DLQ_JSON},
    {"due", no_argument, NULL, DLQ_DUE},
    {"execute", no_argument, NULL, DLQ_EXECUTE},
    {"class", required_argument, NULL, DLQ_CLASS},
    {"dataset", required_argument, NULL, DLQ_DATASET},
    {"brokers", required_argument, NULL, DLQ_BROKERS},
    {"topic", required_argument, NULL, DLQ_TOPIC},
    {"group", required_argument, NULL, DLQ_GROUP},
    {"since", required_argument, NULL, DLQ_SINCE},
    {"max-redrives", required_argument, NULL, DLQ_MAX_REDRIVES},
    {"max", required_argument, NULL, DLQ_MAX},
    {NULL, 0, NULL, 0},
};

static int dlq_unknown(const dlq_opts_t *o, const char *arg) {
        drv_cli_error("unknown option \"%s\" for 'dlq %s' (see --help)", arg,
                      o->redrive ? "redrive" : "list");
        return -1;
}

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int dlq_opt(void *opaque, int opt, const char *arg) {
        dlq_opts_t *o = opaque;
        long n;

        switch (opt) {
        case DLQ_JSON:
                return o->json = 1, 0;
        case DLQ_DUE:
                return o->redrive ? (o->filter.due = 1, 0)
                                  : dlq_unknown(o, "--due");
        case DLQ_EXECUTE:
                return o->redrive ? (o->execute = 1, 0)
                                  : dlq_unknown(o, "--execute");
        case DLQ_CLASS:
                return o->filter.error_class = arg, 0;
        case DLQ_DATASET:
                return o->filter.dataset = arg, 0;
        case DLQ_BROKERS:
                return o->brokers = arg, 0;
        case DLQ_TOPIC:
                return o->topic = arg, 0;
        case DLQ_GROUP:
                return o->group = arg, 0;
        case DLQ_SINCE:
                if (drv_parse_time(arg, &o->filter.since_ms))
                        return drv_cli_error("invalid --since \"%s\"", arg), -1;
                return 0;
        case DLQ_MAX_REDRIVES:
                if (drv_cli_parse_long(arg, &n) || n < 1 || n > 1000)
                        return drv_cli_error("invalid --max-redrives"), -1;
                return o->filter.max_redrives = (int)n, 0;
        case DLQ_MAX:
                if (!o->redrive)
                        return dlq_unknown(o, "--max");
                if (drv_cli_parse_long(arg, &n) || n < 1)
                        return drv_cli_error("invalid --max"), -1;
                return o->filter.max = n, 0;
        case ':':
                drv_cli_error("option %s needs a value", arg);
                return -1;
        default: /* '?', an operand */
                return dlq_unknown(o, arg);
        }
}

/* argv[1] is "list" or "redrive", its options follow. */
static int parse_args(dlq_opts_t *o, int argc, char **argv) {
        memset(o, 0, sizeof(*o));
        o->filter.max_redrives = 5;
        o->filter.now_ms = drv_now_ms();
        o->timeout_ms = 30000;
        o->redrive = !strcmp(argv[1], "redrive");
        return drv_cli_getopt(argc - 1, argv + 1, "", dlq_options, dlq_opt, o)
                   ? -1
                   : 0;
}

/*
 * ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------
 */
static void fmt_time(int64_t ms, char *out, size_t size) {
        if (ms > 0)
                drv_format_time(ms, out, size);
        else
                snprintf(out, size, "-");
}

/* What a row's state is called to an operator. */
static const char *status_of(const dlq_opts_t *o, const drv_dlq_rec_t *rec) {
        if (!o->redrive && rec->state == DRV_DLQ_PENDING &&
            rec->info.redrive_count >= o->filter.max_redrives)
                return "parked";
        if (o->redrive && rec->state == DRV_DLQ_SELECTED)
                return o->execute ? "failed" : "would-redrive";
        if (o->redrive && rec->state == DRV_DLQ_REDRIVEN && o->execute)
                return "redriven";
        return drv_dlq_state_name(rec->state);
}

static void print_header(void) {
        printf("%-14s %-24s %-20s %-16s %8s %8s %-24s %-13s %s\n",
               "PARTITION:OFF", "TIME", "CLASS", "DATASET", "ATTEMPTS",
               "REDRIVES", "RETRY-AFTER", "STATUS", "ERROR");
}

static void print_row(const dlq_opts_t *o, const drv_dlq_rec_t *rec) {
        /* record-derived text is escaped for the terminal */
        char po[40], ts[40], ra[40], cls[256], ds[512], msg[2048];
        const drv_dlq_info_t *in = &rec->info;

        snprintf(po, sizeof(po), "%d:%lld", (int)rec->partition,
                 (long long)rec->offset);
        fmt_time(rec->timestamp_ms, ts, sizeof(ts));
        fmt_time(in->retry_after_ms, ra, sizeof(ra));
        printf(
            "%-14s %-24s %-20s %-16s %8d %8d %-24s %-13s %s\n", po, ts,
            drv_text_escape(in->error_class[0] ? in->error_class : "-", cls,
                            sizeof(cls)),
            drv_text_escape(in->dataset[0] ? in->dataset : "-", ds, sizeof(ds)),
            in->attempts, in->redrive_count, ra, status_of(o, rec),
            drv_text_escape(rec->state == DRV_DLQ_UNREADABLE
                                ? rec->parse_error
                                : in->error_message,
                            msg, sizeof(msg)));
}

static json_t *row_json_info(const dlq_opts_t *o, const drv_dlq_rec_t *rec) {
        const drv_dlq_info_t *in = &rec->info;

        return json_pack(
            "{s:i, s:I, s:I, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:i, "
            "s:I, s:I, s:I, s:I, s:s, s:i, s:I, s:I, s:s, s:s, s:i, s:s}",
            "partition", (int)rec->partition, "offset", (json_int_t)rec->offset,
            "timestamp_ms", (json_int_t)rec->timestamp_ms, "status",
            status_of(o, rec), "error_class", in->error_class, "error_message",
            rec->state == DRV_DLQ_UNREADABLE ? rec->parse_error
                                             : in->error_message,
            "retryable", in->retryable, "step", in->step, "sqlstate",
            in->sqlstate, "task_id", in->task_id, "attempts", in->attempts,
            "first_failure_ms", (json_int_t)in->first_failure_ms,
            "last_failure_ms", (json_int_t)in->last_failure_ms, "backoff_ms",
            (json_int_t)in->backoff_ms, "retry_after_ms",
            (json_int_t)in->retry_after_ms, "original_topic",
            in->original_topic, "original_partition",
            (int)in->original_partition, "original_offset",
            (json_int_t)in->original_offset, "original_timestamp_ms",
            (json_int_t)in->original_timestamp_ms, "worker", in->worker,
            "consumer_group", in->consumer_group, "redrive_count",
            in->redrive_count, "dataset", in->dataset);
}

static json_t *row_json(const dlq_opts_t *o, const drv_dlq_rec_t *rec) {
        json_t *obj = row_json_info(o, rec), *key = NULL;

        if (!obj) /* a header that is not valid UTF-8 */
                obj = json_pack(
                    "{s:i, s:I, s:s, s:s}", "partition", (int)rec->partition,
                    "offset", (json_int_t)rec->offset, "status",
                    status_of(o, rec), "error", "headers are not valid utf-8");

        /* a key that is not UTF-8 text is shown as null */
        if (obj && rec->key)
                key = json_stringn((const char *)rec->key, rec->key_len);
        if (obj)
                json_object_set_new(obj, "key", key ? key : json_null());
        return obj;
}

/* 1 if a row belongs in the output.  touched: redriven by this run. */
static int shown(const dlq_opts_t *o, const drv_dlq_rec_t *rec, int touched) {
        if (rec->state == DRV_DLQ_MARKER)
                return 0;
        if (o->redrive)
                return rec->state == DRV_DLQ_REDRIVEN
                           ? touched
                           : rec->state != DRV_DLQ_UNSELECTED;
        return drv_dlq_filter_match(&o->filter, rec);
}

/* Print the rows (text table or one JSON array); returns rows printed. */
static size_t print_rows(const dlq_opts_t *o, const drv_dlq_scan_t *scan,
                         const int *touched) {
        json_t *arr = o->json ? json_array() : NULL;
        size_t i, n = 0;

        if (!o->json)
                print_header();
        for (i = 0; i < scan->cnt; i++) {
                const drv_dlq_rec_t *rec = &scan->recs[i];
                if (!shown(o, rec, touched ? touched[i] : 0))
                        continue;
                n++;
                if (arr)
                        json_array_append_new(arr, row_json(o, rec));
                else
                        print_row(o, rec);
        }
        if (arr) {
                json_dumpf(arr, stdout, JSON_INDENT(2));
                putchar('\n');
                json_decref(arr);
        }
        return n;
}

/*
 * ------------------------------------------------------------------------
 * Kafka handles
 * ------------------------------------------------------------------------
 */
static rd_kafka_t *new_consumer(const dlq_opts_t *o, const char *group,
                                char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *conf =
            drv_cli_kafka_conf_new(o->brokers, errstr, errstr_size);
        rd_kafka_t *rk;

        if (!conf ||
            drv_cli_kafka_set(conf, "group.id", group, errstr, errstr_size) ||
            drv_cli_kafka_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            drv_cli_kafka_set(conf, "isolation.level", "read_committed", errstr,
                              errstr_size) ||
            drv_cli_kafka_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size)) {
                if (conf)
                        rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(conf);
        return rk;
}

/* The redrive producer: one transactional.id per redrive group, so two
 * redrives of one group at once fence each other instead of both moving
 * the same records. */
static rd_kafka_t *new_producer(const dlq_opts_t *o, const char *txn_id,
                                char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *conf =
            drv_cli_kafka_conf_new(o->brokers, errstr, errstr_size);
        rd_kafka_error_t *error;
        rd_kafka_t *rkp;
        int tries = 0;

        if (!conf ||
            drv_cli_kafka_set(conf, "transactional.id", txn_id, errstr,
                              errstr_size) ||
            drv_cli_kafka_set(conf, "linger.ms", "1", errstr, errstr_size)) {
                if (conf)
                        rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rkp = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
        if (!rkp) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        while ((error = rd_kafka_init_transactions(rkp, o->timeout_ms))) {
                int retry = rd_kafka_error_is_retriable(error) && ++tries < 5;
                if (!retry)
                        snprintf(errstr, errstr_size,
                                 "cannot start the redrive producer at %s: "
                                 "%s",
                                 drv_cli_brokers(o->brokers),
                                 rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                if (!retry) {
                        rd_kafka_destroy(rkp);
                        return NULL;
                }
        }
        return rkp;
}

/*
 * ------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------
 */
static int cmd_list(const dlq_opts_t *o, const char *dlq_topic) {
        char errstr[512], group[300];
        drv_dlq_scan_t *scan = NULL;
        rd_kafka_t *rk;
        drv_err_t err;

        /* a group id for the consumer API only: nothing is committed */
        snprintf(group, sizeof(group), "%s.dlq-list", drv_cli_group(o->group));
        rk = new_consumer(o, group, errstr, sizeof(errstr));
        if (!rk) {
                drv_cli_error("%s", errstr);
                return DRV_EXIT_USAGE;
        }
        err = drv_dlq_scan(rk, dlq_topic, 0, o->timeout_ms, &scan, errstr,
                           sizeof(errstr));
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        if (err) {
                drv_cli_error("%s (brokers %s)", errstr,
                              drv_cli_brokers(o->brokers));
                return drv_err_exit_code(err);
        }
        print_rows(o, scan, NULL);
        drv_dlq_scan_destroy(scan);
        return DRV_EXIT_OK;
}

static void count_states(const drv_dlq_scan_t *scan, size_t *sel,
                         size_t *parked, size_t *left) {
        size_t i;

        *sel = *parked = *left = 0;
        for (i = 0; i < scan->cnt; i++)
                switch (scan->recs[i].state) {
                case DRV_DLQ_SELECTED:
                        (*sel)++;
                        break;
                case DRV_DLQ_PARKED:
                        (*parked)++;
                        break;
                case DRV_DLQ_UNSELECTED:
                case DRV_DLQ_UNREADABLE:
                case DRV_DLQ_PENDING:
                        (*left)++;
                        break;
                default:
                        break;
                }
}

/* Run the redrive on an open scan; returns the exit code. */
static int redrive_scan(const dlq_opts_t *o, rd_kafka_t *rk, rd_kafka_t *rkp,
                        drv_dlq_scan_t *scan, const char *dlq_topic) {
        size_t sel, parked, left, moved = 0, i;
        int *touched = calloc(scan->cnt + 1, sizeof(int));
        char errstr[512];
        drv_err_t err = DRV_OK;

        drv_dlq_select(scan, &o->filter);
        count_states(scan, &sel, &parked, &left);
        for (i = 0; touched && i < scan->cnt; i++)
                touched[i] = scan->recs[i].state == DRV_DLQ_SELECTED;
        if (rkp)
                err = drv_dlq_redrive(rk, rkp, scan, dlq_topic,
                                      drv_cli_topic(o->topic), 100, &moved,
                                      errstr, sizeof(errstr));
        print_rows(o, scan, touched);
        free(touched);
        if (!o->json)
                printf("%s %zu record(s) to \"%s\"; parked %zu; left %zu "
                       "for later%s\n",
                       rkp ? "redrove" : "dry run: would redrive",
                       rkp ? moved : sel, drv_cli_topic(o->topic), parked, left,
                       rkp ? "" : " (add --execute to redrive)");
        if (err) {
                drv_cli_error("%s", errstr);
                return drv_err_exit_code(err);
        }
        return DRV_EXIT_OK;
}

static int cmd_redrive(const dlq_opts_t *o, const char *dlq_topic) {
        char errstr[512], group[300], txn_id[320];
        drv_dlq_scan_t *scan = NULL;
        rd_kafka_t *rk = NULL, *rkp = NULL;
        drv_err_t err;
        int rc;

        drv_cli_suffixed(drv_cli_group(o->group), ".redrive", group,
                         sizeof(group));
        snprintf(txn_id, sizeof(txn_id), "drover-redrive-%s", group);
        /* init_transactions first: it fences an older redrive of this
         * group and waits for its open transaction to end, so the scan
         * below sees its markers and offsets */
        if (o->execute &&
            !(rkp = new_producer(o, txn_id, errstr, sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                return DRV_EXIT_UNAVAILABLE;
        }
        rk = new_consumer(o, group, errstr, sizeof(errstr));
        if (!rk) {
                drv_cli_error("%s", errstr);
                rd_kafka_destroy(rkp);
                return DRV_EXIT_USAGE;
        }
        err = drv_dlq_scan(rk, dlq_topic, 1, o->timeout_ms, &scan, errstr,
                           sizeof(errstr));
        if (err) {
                drv_cli_error("%s (brokers %s)", errstr,
                              drv_cli_brokers(o->brokers));
                rc = drv_err_exit_code(err);
        } else
                rc = redrive_scan(o, rk, rkp, scan, dlq_topic);
        drv_dlq_scan_destroy(scan);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        if (rkp)
                rd_kafka_destroy(rkp);
        return rc;
}

int drv_cmd_dlq(int argc, char **argv) {
        char dlq_topic[300];
        dlq_opts_t o;

        if (argc < 2 || drv_cli_wants_help(argc, argv)) {
                fputs(usage_text, argc < 2 ? stderr : stdout);
                return argc < 2 ? DRV_EXIT_USAGE : DRV_EXIT_OK;
        }
        if (strcmp(argv[1], "list") && strcmp(argv[1], "redrive")) {
                drv_cli_error("unknown dlq command \"%s\" (list or redrive)",
                              argv[1]);
                return DRV_EXIT_USAGE;
        }
        if (parse_args(&o, argc, argv))
                return DRV_EXIT_USAGE;
        drv_cli_suffixed(drv_cli_topic(o.topic), ".dlq", dlq_topic,
                         sizeof(dlq_topic));
        return o.redrive ? cmd_redrive(&o, dlq_topic) : cmd_list(&o, dlq_topic);
}
