/*
 * drover - consumer/cli/cmd_rollback.c: 'drover rollback', undoing a
 * dataset's migrations down to a version.
 *
 * Without --execute it reads the ledger (transforms/rollback.c) and
 * prints the steps a rollback would undo, newest first, with each one's
 * inverse; it refuses (exit 65, one line) when one of them cannot be
 * undone or the target is not below the version.  --execute checks the
 * same, then submits a rollback task through 'drover submit' (the same
 * producer, encoding and key), which a worker runs with the ledger and
 * exactly-once guarantees of any task.  The task carries params
 * drover.rollback_to and drover.rollback_from (docs/plans.md).
 */
#include "cli_kafka.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: drover rollback --dataset D --to-version N [--json]\n"
    "                       [--database URL]\n"
    "       drover rollback --dataset D --to-version N --execute\n"
    "                       [--task-id UUID] [--brokers B] [--topic T]\n"
    "                       [--requested-by WHO] [--database URL]\n"
    "\n"
    "Undo dataset D's migrations down to version N through each done "
    "step's\n"
    "inverse, as recorded in the ledger when it ran.  Without --execute it\n"
    "only prints the steps that would be undone, newest first.  Refused\n"
    "(exit 65) when N is not below the dataset's version or a step on the\n"
    "way cannot be undone (drop_column; a backfill or copy_rows without a\n"
    "declared revert; a sql step without revert; a step that ran before\n"
    "rollback support).\n"
    "  --execute        submit a rollback task (printing its id); a worker\n"
    "                   runs it in one transaction and moves the version "
    "to N\n"
    "  --json           the dry run as JSON\n"
    "  --database URL   default DATABASE_URL\n"
    "  --task-id, --brokers, --topic, --requested-by: as 'drover submit'\n"
    "Exit codes: 0 ok, 2 usage, 65 refused or bad input, 69 unavailable.\n";

typedef struct rollback_opts_s {
        const char *dataset, *url, *task_id, *brokers, *topic, *who;
        long to;
        int to_given, execute, json;
} rollback_opts_t;

enum {
        RB_DATASET = DRV_CLI_LONG,
        RB_TO,
        RB_EXECUTE,
        RB_JSON,
        RB_DATABASE,
        RB_TASK_ID,
        RB_BROKERS,
        RB_TOPIC,
        RB_WHO
};

static const struct option rollback_options[] = {
    {"dataset", required_argument, NULL, RB_DATASET},
    {"to-version", required_argument, NULL, RB_TO},
    {"execute", no_argument, NULL, RB_EXECUTE},
    {"json", no_argument, NULL, RB_JSON},
    {"database", required_argument, NULL, RB_DATABASE},
    {"task-id", required_argument, NULL, RB_TASK_ID},
    {"brokers", required_argument, NULL, RB_BROKERS},
    {"topic", required_argument, NULL, RB_TOPIC},
    {"requested-by", required_argument, NULL, RB_WHO},
    {NULL, 0, NULL, 0},
};

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int rollback_opt(void *opaque, int opt, const char *arg) {
        rollback_opts_t *o = opaque;

        switch (opt) {
        case RB_DATASET:
                return o->dataset = arg, 0;
        case RB_TO:
                if (drv_cli_parse_long(arg, &o->to) || o->to > INT32_MAX)
                        return drv_cli_error("invalid --to-version \"%s\" "
                                             "(want 0 to %d)",
                                             arg, INT32_MAX),
                               -1;
                return o->to_given = 1, 0;
        case RB_EXECUTE:
                return o->execute = 1, 0;
        case RB_JSON:
                return o->json = 1, 0;
        case RB_DATABASE:
                return o->url = arg, 0;
        case RB_TASK_ID:
                return o->task_id = arg, 0;
        case RB_BROKERS:
                return o->brokers = arg, 0;
        case RB_TOPIC:
                return o->topic = arg, 0;
        case RB_WHO:
                return o->who = arg, 0;
        case ':':
                drv_cli_error("option %s needs a value", arg);
                return -1;
        default: /* '?', an operand */
                drv_cli_error("unknown option \"%s\" for 'rollback' (see "
                              "--help)",
                              arg);
                return -1;
        }
}

static int parse_args(rollback_opts_t *o, int argc, char **argv) {
        if (drv_cli_getopt(argc, argv, "", rollback_options, rollback_opt, o))
                return -1;
        if (!o->dataset || !o->to_given) {
                drv_cli_error("--dataset and --to-version are required");
                return -1;
        }
        if (o->execute && o->json) {
                drv_cli_error("--json is for the dry run: drop --execute");
                return -1;
        }
        if (!o->execute && (o->task_id || o->brokers || o->topic || o->who)) {
                drv_cli_error("--task-id, --brokers, --topic and "
                              "--requested-by need --execute");
                return -1;
        }
        return 0;
}

static void print_plan(const drv_rollback_t *rb) {
        size_t i;

        printf("dataset \"%s\": version %ld -> %ld, %zu step(s) to undo, "
               "newest first\n",
               rb->dataset, rb->version, rb->to_version, rb->undo_cnt);
        for (i = 0; i < rb->undo_cnt; i++) {
                const drv_rollback_step_t *st = &rb->steps[i];
                char *inv = st->inverse
                                ? json_dumps(st->inverse,
                                             JSON_COMPACT | JSON_PRESERVE_ORDER)
                                : NULL;

                printf("  %d -> %d  %s  step %d:%s  %s%s\n", st->to, st->from,
                       st->plan, st->step, st->op, inv ? "undo " : "",
                       inv ? inv : st->why);
                free(inv);
        }
}

/* Submit the rollback task through 'drover submit'. */
static int submit(const rollback_opts_t *o, const drv_rollback_t *rb,
                  const char *url) {
        char ref[400], to[48], from[48], errstr[256];
        char *argv[24];
        int argc = 0;

        if (drv_rollback_entity_ref(rb, ref, sizeof(ref), errstr,
                                    sizeof(errstr))) {
                drv_cli_error("rollback: %s", errstr);
                return DRV_EXIT_DATAERR;
        }
        snprintf(to, sizeof(to), "%s=%ld", DRV_ROLLBACK_TO_PARAM,
                 rb->to_version);
        snprintf(from, sizeof(from), "%s=%ld", DRV_ROLLBACK_FROM_PARAM,
                 rb->version);
#define RB_ARG(a) (argv[argc++] = (char *)(a))
        RB_ARG("submit");
        RB_ARG("--entity");
        RB_ARG(ref);
        RB_ARG("--dataset");
        RB_ARG(o->dataset);
        RB_ARG("--param");
        RB_ARG(to);
        RB_ARG("--param");
        RB_ARG(from);
        if (o->task_id && RB_ARG("--task-id") && RB_ARG(o->task_id) && url &&
            RB_ARG("--database"))
                RB_ARG(url);
        if (o->brokers && RB_ARG("--brokers"))
                RB_ARG(o->brokers);
        if (o->topic && RB_ARG("--topic"))
                RB_ARG(o->topic);
        if (o->who && RB_ARG("--requested-by"))
                RB_ARG(o->who);
#undef RB_ARG
        argv[argc] = NULL;
        return drv_cmd_submit(argc, argv);
}

int drv_cmd_rollback(int argc, char **argv) {
        rollback_opts_t o;
        drv_rollback_t *rb = NULL;
        char errstr[1024];
        PGconn *conn = NULL;
        drv_err_t err;
        json_t *j;
        char *s;
        int rc = DRV_EXIT_OK;

        if (drv_cli_wants_help(argc, argv)) {
                fputs(usage_text, stdout);
                return DRV_EXIT_OK;
        }
        memset(&o, 0, sizeof(o));
        if (parse_args(&o, argc, argv))
                return DRV_EXIT_USAGE;
        /* bad input before the database: no connection needed to say so */
        if ((err = drv_dataset_check(o.dataset, errstr, sizeof(errstr)))) {
                drv_cli_error("rollback: %s", errstr);
                return drv_err_exit_code(err);
        }
        if (!o.url)
                o.url = getenv("DATABASE_URL");
        if ((err = drv_db_connect(o.url, &conn, errstr, sizeof(errstr))) ||
            (err = drv_db_migrate(conn, errstr, sizeof(errstr))) ||
            (err = drv_rollback_plan(conn, o.dataset, o.to, &rb, errstr,
                                     sizeof(errstr)))) {
                drv_cli_error("rollback: %s", errstr);
                PQfinish(conn);
                return drv_err_exit_code(err);
        }
        PQfinish(conn);
        if (o.json) {
                j = drv_rollback_json(rb);
                s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                      : NULL;
                printf("%s\n", s ? s : "null");
                free(s);
                json_decref(j);
        }
        if ((err = drv_rollback_check(rb, errstr, sizeof(errstr)))) {
                drv_cli_error("rollback: %s", errstr);
                rc = drv_err_exit_code(err);
        } else if (o.execute) {
                rc = submit(&o, rb, o.url);
        } else if (!o.json) {
                print_plan(rb);
        }
        drv_rollback_destroy(rb);
        return rc;
}
