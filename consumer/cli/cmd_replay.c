/*
 * drover - consumer/cli/cmd_replay.c: 'drover replay'.
 *
 * Moves the worker group's committed offsets back, so the workers read
 * the tasks again from a time or an offset.  Tasks the ledger shows done
 * are skipped; failed ones run again.  A dry run (the default) prints the
 * current and target offset of every partition; --execute refuses while
 * the group has active members (stop the workers first), or with --wait
 * waits for them to leave: static members (workers with a configured
 * instance) leave only when their session times out.
 */
#include "cli_kafka.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAIRS 256

static const char usage_text[] =
    "usage: drover replay --from TIME | --from-offset P:O [--from-offset "
    "P:O]...\n"
    "                     [--to TIME] [--group G] [--topic T] [--brokers "
    "B]\n"
    "                     [--execute [--wait SECONDS]]\n"
    "\n"
    "Resets the committed offsets of the worker group (--group, "
    "DROVER_GROUP,\n"
    "default drover) on the tasks topic (--topic, DROVER_TOPIC, default\n"
    "dataset-migrations) so its workers read the tasks again.  TIME is RFC "
    "3339,\n"
    "epoch ms, or relative (-15m, -2h, -1d).  --from-offset moves only the\n"
    "partitions it names.  --to only reports how many records fall in the\n"
    "window: the workers read on to the end, and the ledger skips tasks "
    "that\n"
    "are already done.  Without --execute nothing changes; --execute "
    "refuses\n"
    "while the group has active members.\n";

typedef struct replay_opts_s {
        const char *brokers, *topic, *group;
        int64_t from_ms, to_ms;
        int32_t parts[MAX_PAIRS];
        int64_t offsets[MAX_PAIRS];
        size_t pair_cnt;
        int execute;
        int timeout_ms;
        int wait_s; /* --wait: seconds to wait for an empty group */
} replay_opts_t;

/* "P:O" into the next pair; 0 or -1. */
static int add_pair(replay_opts_t *o, const char *v) {
        char *end;
        long p;
        long long off;

        if (o->pair_cnt >= MAX_PAIRS || *v < '0' || *v > '9')
                return -1;
        p = strtol(v, &end, 10);
        if (*end != ':' || p > INT32_MAX || end[1] < '0' || end[1] > '9')
                return -1;
        off = strtoll(end + 1, &end, 10);
        if (*end)
                return -1;
        o->parts[o->pair_cnt] = (int32_t)p;
        o->offsets[o->pair_cnt++] = off;
        return 0;
}

enum {
        REPLAY_EXECUTE = DRV_CLI_LONG,
        REPLAY_FROM_OFFSET,
        REPLAY_FROM,
        REPLAY_TO,
        REPLAY_GROUP,
        REPLAY_TOPIC,
        REPLAY_BROKERS,
        REPLAY_WAIT
};

static const struct option replay_options[] = {
    {"execute", no_argument, NULL, REPLAY_EXECUTE},
    {"from-offset", required_argument, NULL, REPLAY_FROM_OFFSET},
    {"from", required_argument, NULL, REPLAY_FROM},
    {"to", required_argument, NULL, REPLAY_TO},
    {"group", required_argument, NULL, REPLAY_GROUP},
    {"topic", required_argument, NULL, REPLAY_TOPIC},
    {"brokers", required_argument, NULL, REPLAY_BROKERS},
    {"wait", required_argument, NULL, REPLAY_WAIT},
    {NULL, 0, NULL, 0},
};

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int replay_opt(void *opaque, int opt, const char *arg) {
        replay_opts_t *o = opaque;

        switch (opt) {
        case REPLAY_EXECUTE:
                return o->execute = 1, 0;
        case REPLAY_FROM_OFFSET:
                if (add_pair(o, arg))
                        return drv_cli_error("invalid --from-offset \"%s\" "
                                             "(want PARTITION:OFFSET)",
                                             arg),
                               -1;
                return 0;
        case REPLAY_FROM:
                if (drv_parse_time(arg, &o->from_ms))
                        return drv_cli_error("invalid --from \"%s\"", arg), -1;
                return 0;
        case REPLAY_TO:
                if (drv_parse_time(arg, &o->to_ms))
                        return drv_cli_error("invalid --to \"%s\"", arg), -1;
                return 0;
        case REPLAY_GROUP:
                return o->group = arg, 0;
        case REPLAY_TOPIC:
                return o->topic = arg, 0;
        case REPLAY_BROKERS:
                return o->brokers = arg, 0;
        case REPLAY_WAIT: {
                char *end;
                long v = strtol(arg, &end, 10);

                if (*arg < '0' || *arg > '9' || *end || v > 3600)
                        return drv_cli_error("invalid --wait \"%s\" (want "
                                             "seconds, 0 to 3600)",
                                             arg),
                               -1;
                return o->wait_s = (int)v, 0;
        }
        case ':':
                drv_cli_error("option %s needs a value", arg);
                return -1;
        default: /* '?', an operand */
                drv_cli_error("unknown option \"%s\" for 'replay' (see "
                              "--help)",
                              arg);
                return -1;
        }
}

static int parse_args(replay_opts_t *o, int argc, char **argv) {
        memset(o, 0, sizeof(*o));
        o->from_ms = o->to_ms = -1;
        o->timeout_ms = 30000;
        if (drv_cli_getopt(argc, argv, "", replay_options, replay_opt, o))
                return -1;
        if ((o->from_ms >= 0) == (o->pair_cnt > 0)) {
                drv_cli_error("give either --from TIME or --from-offset P:O");
                return -1;
        }
        if (o->wait_s && !o->execute) {
                drv_cli_error("--wait needs --execute");
                return -1;
        }
        return 0;
}

static void print_plan(const replay_opts_t *o, const drv_replay_plan_t *plan,
                       const char *topic, const char *group) {
        char cur[32], tgt[32], to[32], n[32];
        int32_t p;

        printf("group \"%s\", topic \"%s\"%s\n", group, topic,
               o->execute ? "" : " (dry run)");
        printf("%-9s %12s %12s %12s %12s %12s\n", "PARTITION", "CURRENT",
               "TARGET", "END", "TO", "RECORDS");
        for (p = 0; p < plan->cnt; p++) {
                const drv_replay_part_t *pp = &plan->parts[p];
                int64_t stop = pp->to >= 0 ? pp->to : pp->high;

                snprintf(cur, sizeof(cur), "%lld", (long long)pp->committed);
                snprintf(tgt, sizeof(tgt), "%lld", (long long)pp->target);
                snprintf(to, sizeof(to), "%lld", (long long)pp->to);
                snprintf(
                    n, sizeof(n), "%lld",
                    (long long)(stop > pp->target ? stop - pp->target : 0));
                printf("%-9d %12s %12s %12lld %12s %12s\n", (int)p,
                       pp->committed >= 0 ? cur : "-",
                       pp->selected ? tgt : "(unchanged)", (long long)pp->high,
                       pp->to >= 0 ? to : "-", pp->selected ? n : "-");
        }
}

static rd_kafka_t *new_client(const replay_opts_t *o, const char *group,
                              char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *conf =
            drv_cli_kafka_conf_new(o->brokers, errstr, errstr_size);
        rd_kafka_t *rk;

        /* in the group only to read its offsets: never subscribes, never
         * commits, so it never becomes a member */
        if (!conf ||
            drv_cli_kafka_set(conf, "group.id", group, errstr, errstr_size) ||
            drv_cli_kafka_set(conf, "enable.auto.commit", "false", errstr,
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

/* Until the group has no members or --wait runs out; 0 when empty, else
 * the exit code (the error printed). */
static int wait_empty(const replay_opts_t *o, rd_kafka_t *rk,
                      const char *group) {
        int64_t deadline = drv_mono_ms() + (int64_t)o->wait_s * 1000;
        char errstr[512], state[64];
        int members = 0, last = -1;
        drv_err_t err;

        for (;;) {
                err = drv_replay_group_members(rk, group, o->timeout_ms,
                                               &members, state, sizeof(state),
                                               errstr, sizeof(errstr));
                if (err) {
                        drv_cli_error("%s", errstr);
                        return drv_err_exit_code(err);
                }
                if (members == 0)
                        return 0;
                if (drv_mono_ms() >= deadline)
                        break;
                if (members != last)
                        fprintf(stderr,
                                "drover: waiting up to %d s for %d member(s) "
                                "of group \"%s\" to leave\n",
                                o->wait_s, members, group);
                last = members;
                rd_kafka_poll(rk, 1000);
        }
        drv_cli_error("group \"%s\" has %d active member(s) (state %s): stop "
                      "its workers before replaying (a stopped worker with a "
                      "configured instance is a static member and stays "
                      "until its session times out: add --wait SECONDS)",
                      group, members, state);
        return DRV_EXIT_UNAVAILABLE;
}

/* Refuse while the group is active, else reset; returns the exit code. */
static int execute(const replay_opts_t *o, rd_kafka_t *rk,
                   const drv_replay_plan_t *plan, const char *topic,
                   const char *group) {
        char errstr[512];
        drv_err_t err;
        int rc;

        if ((rc = wait_empty(o, rk, group)))
                return rc;
        err = drv_replay_apply(rk, group, topic, plan, o->timeout_ms, errstr,
                               sizeof(errstr));
        if (err) {
                drv_cli_error("%s", errstr);
                return drv_err_exit_code(err);
        }
        printf("reset the offsets of group \"%s\" on \"%s\"\n", group, topic);
        return DRV_EXIT_OK;
}

int drv_cmd_replay(int argc, char **argv) {
        drv_replay_plan_t *plan = NULL;
        const char *topic, *group;
        char errstr[512];
        replay_opts_t o;
        rd_kafka_t *rk;
        drv_err_t err;
        int rc;

        if (drv_cli_wants_help(argc, argv)) {
                fputs(usage_text, stdout);
                return DRV_EXIT_OK;
        }
        if (parse_args(&o, argc, argv))
                return DRV_EXIT_USAGE;
        topic = drv_cli_topic(o.topic);
        group = drv_cli_group(o.group);
        if (!(rk = new_client(&o, group, errstr, sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                return DRV_EXIT_USAGE;
        }
        err = drv_replay_plan(rk, topic, o.from_ms, o.parts, o.offsets,
                              o.pair_cnt, o.to_ms, o.timeout_ms, &plan, errstr,
                              sizeof(errstr));
        if (err) {
                if (err == DRV_ERR_USAGE)
                        drv_cli_error("%s", errstr);
                else
                        drv_cli_error("%s (brokers %s)", errstr,
                                      drv_cli_brokers(o.brokers));
                rc = drv_err_exit_code(err);
        } else {
                print_plan(&o, plan, topic, group);
                rc = o.execute ? execute(&o, rk, plan, topic, group)
                               : DRV_EXIT_OK;
        }
        drv_replay_plan_destroy(plan);
        rd_kafka_destroy(rk);
        return rc;
}
