/*
 * drover - consumer/cli/cmd_submit.c: 'drover submit'.
 *
 * Produces Avro migration tasks (key = dataset) with an idempotent
 * producer, waits for every delivery report and prints the task ids, one
 * per line, only once all were acknowledged.  The entity ref, dataset and
 * a given task id are checked first (drv_task_fields_check, exit 65), and
 * a given task id must be new to drover.task_runs (exit 65 too).
 */
#include "cli_kafka.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *fp) {
        fprintf(fp,
                "usage: drover submit --entity REF --dataset D [--dry-run]\n"
                "                     [--param k=v]... [--count N] "
                "[--priority N]\n"
                "                     [--brokers B] [--topic T] "
                "[--requested-by WHO]\n"
                "                     [--task-id UUID [--database URL]]\n\n"
                "Produce migration tasks for plan REF on dataset D and print "
                "their ids.\n"
                "  --entity REF      the plan's entity ref, e.g.\n"
                "                    component:default/"
                "customer-dataset-v2-migration\n"
                "  --dataset D       the dataset (also the record key)\n"
                "  --dry-run         run each step and roll back\n"
                "  --param k=v       a task parameter (repeatable)\n"
                "  --count N         submit N tasks (default 1)\n"
                "  --priority N      run before lower priorities waiting "
                "on the same\n"
                "                    worker (default 0; schema v2)\n"
                "  --task-id UUID    the task's id (default a new uuid); "
                "refused if\n"
                "                    drover.task_runs has it already\n"
                "  --database URL    for --task-id, default DATABASE_URL\n"
                "  --brokers B       default DROVER_BROKERS or "
                "127.0.0.1:9092\n"
                "  --topic T         default DROVER_TOPIC or "
                "dataset-migrations\n"
                "Registry: SCHEMA_REGISTRY_URL (Confluent framing); "
                "default single-object encoding.\n"
                "Exit codes: 0 ok, 2 usage, 65 bad or duplicate input, "
                "69 unavailable.\n");
}

typedef struct submit_s {
        const char *entity, *dataset, *brokers, *topic, *requested_by;
        const char *task_id, *database;
        int dry_run;
        long count;
        long priority;
        drv_task_t *proto; /* params collected here */
        int failed;
        rd_kafka_resp_err_t first_err;
} submit_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        submit_t *s = opaque;

        (void)rk;
        if (m->err) {
                if (!s->failed)
                        s->first_err = m->err;
                s->failed++;
        }
}

enum {
        SUBMIT_DRY_RUN = DRV_CLI_LONG,
        SUBMIT_ENTITY,
        SUBMIT_DATASET,
        SUBMIT_BROKERS,
        SUBMIT_TOPIC,
        SUBMIT_REQUESTED_BY,
        SUBMIT_COUNT,
        SUBMIT_PARAM,
        SUBMIT_TASK_ID,
        SUBMIT_DATABASE,
        SUBMIT_PRIORITY
};

static const struct option submit_options[] = {
    {"dry-run", no_argument, NULL, SUBMIT_DRY_RUN},
    {"entity", required_argument, NULL, SUBMIT_ENTITY},
    {"dataset", required_argument, NULL, SUBMIT_DATASET},
    {"brokers", required_argument, NULL, SUBMIT_BROKERS},
    {"topic", required_argument, NULL, SUBMIT_TOPIC},
    {"requested-by", required_argument, NULL, SUBMIT_REQUESTED_BY},
    {"count", required_argument, NULL, SUBMIT_COUNT},
    {"param", required_argument, NULL, SUBMIT_PARAM},
    {"task-id", required_argument, NULL, SUBMIT_TASK_ID},
    {"database", required_argument, NULL, SUBMIT_DATABASE},
    {"priority", required_argument, NULL, SUBMIT_PRIORITY},
    {NULL, 0, NULL, 0},
};

/* --param k=v into the task's params; 0 or -1 (error printed). */
static int add_param(submit_t *s, const char *v) {
        const char *eq = strchr(v, '=');
        char key[256];

        if (!eq || eq == v || (size_t)(eq - v) >= sizeof(key)) {
                drv_cli_error("--param expects k=v, not \"%s\"", v);
                return -1;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - v), v);
        return drv_task_add_param(s->proto, key, eq + 1) ? -1 : 0;
}

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int submit_opt(void *opaque, int opt, const char *arg) {
        submit_t *s = opaque;
        char *end;

        switch (opt) {
        case SUBMIT_DRY_RUN:
                return s->dry_run = 1, 0;
        case SUBMIT_ENTITY:
                return s->entity = arg, 0;
        case SUBMIT_DATASET:
                return s->dataset = arg, 0;
        case SUBMIT_BROKERS:
                return s->brokers = arg, 0;
        case SUBMIT_TOPIC:
                return s->topic = arg, 0;
        case SUBMIT_REQUESTED_BY:
                return s->requested_by = arg, 0;
        case SUBMIT_COUNT:
                s->count = strtol(arg, &end, 10);
                if (*end || s->count < 1 || s->count > 1000000) {
                        drv_cli_error("invalid --count \"%s\"", arg);
                        return -1;
                }
                return 0;
        case SUBMIT_PARAM:
                return add_param(s, arg);
        case SUBMIT_PRIORITY:
                s->priority = strtol(arg, &end, 10);
                if (!*arg || *end || s->priority < INT32_MIN ||
                    s->priority > INT32_MAX) {
                        drv_cli_error("invalid --priority \"%s\"", arg);
                        return -1;
                }
                return 0;
        case SUBMIT_TASK_ID:
                return s->task_id = arg, 0;
        case SUBMIT_DATABASE:
                return s->database = arg, 0;
        case ':':
                drv_cli_error("option \"%s\" needs a value", arg);
                return -1;
        default: /* '?', an operand */
                drv_cli_error("unknown option \"%s\" (see 'drover submit "
                              "--help')",
                              arg);
                return -1;
        }
}

static int parse_args(submit_t *s, int argc, char **argv) {
        if (drv_cli_getopt(argc, argv, "", submit_options, submit_opt, s))
                return -1;
        if (!s->entity || !s->dataset || !*s->entity || !*s->dataset) {
                drv_cli_error("--entity and --dataset are required");
                return -1;
        }
        if (s->task_id && s->count != 1) {
                drv_cli_error("--task-id names one task: drop --count");
                return -1;
        }
        return 0;
}

/* A task id given by the caller must be new to drover: DRV_EXIT_OK, or
 * the exit code (error printed). */
static int check_task_id(submit_t *s) {
        const char *url = s->database ? s->database : getenv("DATABASE_URL");
        PGconn *conn = NULL;
        char errstr[512];
        int exists = 0;
        drv_err_t err;

        if (!url || !*url) {
                drv_cli_error("--task-id needs the database to check it is "
                              "new: set DATABASE_URL or --database");
                return DRV_EXIT_USAGE;
        }
        if ((err = drv_db_connect(url, &conn, errstr, sizeof(errstr))) ||
            (err = drv_task_run_exists(conn, s->task_id, &exists, errstr,
                                       sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                PQfinish(conn);
                return drv_err_exit_code(err);
        }
        PQfinish(conn);
        if (!exists)
                return DRV_EXIT_OK;
        drv_cli_error("task \"%s\" was already submitted", s->task_id);
        return DRV_EXIT_DATAERR;
}

static rd_kafka_t *producer_new(submit_t *s) {
        char errstr[512];
        rd_kafka_conf_t *kc =
            drv_cli_kafka_conf_new(s->brokers, errstr, sizeof(errstr));
        rd_kafka_t *rk;

        if (!kc ||
            drv_cli_kafka_set(kc, "enable.idempotence", "true", errstr,
                              sizeof(errstr)) ||
            drv_cli_kafka_set(kc, "message.timeout.ms", "15000", errstr,
                              sizeof(errstr))) {
                drv_cli_error("%s", errstr);
                if (kc)
                        rd_kafka_conf_destroy(kc);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
        rd_kafka_conf_set_opaque(kc, s);
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr,
                                sizeof(errstr)))) {
                rd_kafka_conf_destroy(kc);
                drv_cli_error("cannot create kafka producer: %s", errstr);
        }
        return rk;
}

/* Encode and produce one task; its id into id[37]. */
static int produce_one(submit_t *s, rd_kafka_t *rk, drv_schema_store_t *store,
                       char id[37]) {
        drv_task_t *t = s->proto;
        char errstr[512];
        void *buf = NULL;
        size_t len = 0;
        rd_kafka_resp_err_t err;

        if (s->task_id)
                snprintf(id, 37, "%s", s->task_id);
        else
                drv_uuid4(id);
        t->task_id = id;
        t->requested_at = drv_now_ms();
        if (drv_task_encode(store, t, &buf, &len, errstr, sizeof(errstr))) {
                t->task_id = NULL;
                drv_cli_error("cannot encode task: %s", errstr);
                return -1;
        }
        t->task_id = NULL;
        do {
                err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(s->topic),
                    RD_KAFKA_V_KEY(s->dataset, strlen(s->dataset)),
                    RD_KAFKA_V_VALUE(buf, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rk, 100);
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err) {
                free(buf);
                drv_cli_error("cannot produce to \"%s\": %s", s->topic,
                              rd_kafka_err2str(err));
                return -1;
        }
        rd_kafka_poll(rk, 0);
        return 0;
}

static int submit_all(submit_t *s, rd_kafka_t *rk, drv_schema_store_t *store) {
        char(*ids)[37] = calloc((size_t)s->count, 37);
        rd_kafka_resp_err_t ferr;
        long i;

        if (!ids)
                return DRV_EXIT_SOFTWARE;
        for (i = 0; i < s->count; i++)
                if (produce_one(s, rk, store, ids[i])) {
                        free(ids);
                        return DRV_EXIT_SOFTWARE;
                }
        ferr = rd_kafka_flush(rk, 30000);
        if (ferr || s->failed) {
                rd_kafka_resp_err_t e = s->failed ? s->first_err : ferr;
                drv_cli_error("cannot reach kafka at %s: %s (%d of %ld "
                              "task(s) not delivered)",
                              s->brokers, rd_kafka_err2str(e),
                              s->failed ? s->failed : rd_kafka_outq_len(rk),
                              s->count);
                free(ids);
                return drv_cli_kafka_exit_code(e);
        }
        for (i = 0; i < s->count; i++)
                printf("%s\n", ids[i]);
        free(ids);
        return DRV_EXIT_OK;
}

int drv_cmd_submit(int argc, char **argv) {
        submit_t s = {0};
        drv_schema_conf_t sc = {0};
        drv_schema_store_t *store = NULL;
        rd_kafka_t *rk = NULL;
        char errstr[512], subject[300];
        int rc = DRV_EXIT_USAGE;

        if (drv_cli_wants_help(argc, argv)) {
                usage(stdout);
                return DRV_EXIT_OK;
        }
        s.count = 1;
        if (!(s.proto = drv_task_new()))
                return DRV_EXIT_SOFTWARE;
        if (parse_args(&s, argc, argv))
                goto out;
        if (drv_task_fields_check(s.task_id, s.entity, s.dataset, errstr,
                                  sizeof(errstr))) {
                drv_cli_error("%s", errstr);
                rc = DRV_EXIT_DATAERR;
                goto out;
        }
        if (s.task_id && (rc = check_task_id(&s)) != DRV_EXIT_OK)
                goto out;
        s.brokers = drv_cli_brokers(s.brokers);
        s.topic = drv_cli_topic(s.topic);
        s.proto->entity_ref = strdup(s.entity);
        s.proto->dataset = strdup(s.dataset);
        s.proto->requested_by = strdup(
            s.requested_by ? s.requested_by
                           : (getenv("USER") ? getenv("USER") : "drover"));
        s.proto->dry_run = s.dry_run;
        s.proto->priority = (int32_t)s.priority;
        sc.registry_url = getenv("SCHEMA_REGISTRY_URL");
        if (sc.registry_url && !*sc.registry_url)
                sc.registry_url = NULL;
        /* the Confluent TopicNameStrategy: the topic's value subject */
        snprintf(subject, sizeof(subject), "%s-value", s.topic);
        sc.subject = subject;
        rc = DRV_EXIT_SOFTWARE;
        if (!(store = drv_schema_store_new(&sc, errstr, sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                goto out;
        }
        if (!(rk = producer_new(&s)))
                goto out;
        rc = submit_all(&s, rk, store);
out:
        if (rk)
                rd_kafka_destroy(rk);
        drv_schema_store_destroy(store);
        drv_task_destroy(s.proto);
        return rc;
}
