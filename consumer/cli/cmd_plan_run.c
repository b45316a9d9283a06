/*
 * drover - consumer/cli/cmd_plan_run.c: 'drover plan run'.
 *
 *   drover plan run REF|FILE --dataset D [--dry-run] [--database URL]
 *                   [--staging] [--staging-url URL]
 *                   [--catalog DIR] [--task-id ID] [--allow-sql]
 *                   [--param k=v]... [--batch-pause-ms N] [--no-wait]
 *
 * Runs one plan now, without Kafka, through the same runner the worker
 * uses (drv_plan_run): dataset lock, version guard, ledger, per-step
 * transactions.  Progress goes to stderr: one line updated in place with
 * \r on a terminal, plain lines otherwise.  The outcome is one line on
 * stdout.  A killed run resumes from its checkpoints when run again with
 * the same --task-id (or any task id: the ledger matches the plan).
 * --staging runs it on the staging database instead (--staging-url or
 * DROVER_STAGING_DATABASE_URL), with the same ledger there: what the
 * staging gate of a spec.requiresStaging plan asks for.  Without
 * --staging, such a plan passes the same gate as on a worker first.
 */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char plan_run_usage[] =
    "usage: drover plan run REF|FILE --dataset D [options]\n"
    "  REF|FILE          an entity ref (resolved in --catalog / "
    "BACKSTAGE_URL)\n"
    "                    or a catalog-info.yaml file with one plan\n"
    "  --dataset D       the dataset to migrate (must match the plan)\n"
    "  --dry-run         check every step read-only, count rows, change "
    "nothing\n"
    "  --database URL    PostgreSQL (default DATABASE_URL)\n"
    "  --staging         run on the staging database instead: what a plan\n"
    "                    with spec.requiresStaging needs before production\n"
    "  --staging-url URL the staging database (default\n"
    "                    DROVER_STAGING_DATABASE_URL); without --staging,\n"
    "                    where a spec.requiresStaging plan must have\n"
    "                    completed before it runs (refused otherwise)\n"
    "  --catalog DIR     local catalog (default DROVER_CATALOG_DIR)\n"
    "  --task-id ID      idempotency key (default: a new uuid)\n"
    "  --allow-sql       permit raw 'sql' steps\n"
    "  --param k=v       a task param (repeatable)\n"
    "  --batch-pause-ms N  sleep between batches\n"
    "  --no-wait         fail at once if another runner holds the dataset\n";

typedef struct pr_opts_s {
        const char *target;
        const char *dataset;
        const char *url;
        const char *staging_url;
        const char *catalog;
        const char *task_id;
        int dry_run, allow_sql, no_wait, staging;
        long pause_ms;
        drv_task_t *params; /* holds the --param pairs */
} pr_opts_t;

/* Set by the signal handler: a lock-free atomic_int is async-signal-safe
 * (C11 7.14.1.1), and the executor reads it between batches. */
static atomic_int pr_cancel;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "pr_cancel is set in a handler");

static void pr_on_signal(int sig) {
        (void)sig;
        atomic_store(&pr_cancel, 1);
}

typedef struct pr_progress_s {
        int tty;
        int open_line; /* a \r line is on screen */
        int64_t last_ms;
} pr_progress_t;

static void pr_progress(void *opaque, int step, const char *op,
                        int64_t rows_done, int64_t rows_total) {
        pr_progress_t *p = opaque;
        int64_t now = drv_mono_ms();
        int finished = rows_done >= rows_total;

        /* Plain lines at most every second, plus the final one. */
        if (!p->tty && !finished && now - p->last_ms < 1000)
                return;
        p->last_ms = now;
        fprintf(stderr, "%sstep %d %-13s rows %lld/%lld (%.0f%%)%s",
                p->tty ? "\r" : "", step, op, (long long)rows_done,
                (long long)rows_total,
                rows_total > 0 ? 100.0 * (double)rows_done / (double)rows_total
                               : 100.0,
                p->tty && !finished ? "\033[K" : "\n");
        p->open_line = p->tty && !finished;
        fflush(stderr);
}

enum {
        PR_DRY_RUN = DRV_CLI_LONG,
        PR_ALLOW_SQL,
        PR_NO_WAIT,
        PR_STAGING,
        PR_STAGING_URL,
        PR_DATASET,
        PR_DATABASE,
        PR_CATALOG,
        PR_TASK_ID,
        PR_BATCH_PAUSE_MS,
        PR_PARAM
};

static const struct option pr_options[] = {
    {"dry-run", no_argument, NULL, PR_DRY_RUN},
    {"allow-sql", no_argument, NULL, PR_ALLOW_SQL},
    {"no-wait", no_argument, NULL, PR_NO_WAIT},
    {"staging", no_argument, NULL, PR_STAGING},
    {"staging-url", required_argument, NULL, PR_STAGING_URL},
    {"dataset", required_argument, NULL, PR_DATASET},
    {"database", required_argument, NULL, PR_DATABASE},
    {"catalog", required_argument, NULL, PR_CATALOG},
    {"task-id", required_argument, NULL, PR_TASK_ID},
    {"batch-pause-ms", required_argument, NULL, PR_BATCH_PAUSE_MS},
    {"param", required_argument, NULL, PR_PARAM},
    {NULL, 0, NULL, 0},
};

/* --param k=v into o->params; 0 or -1 (error printed). */
static int pr_param(pr_opts_t *o, const char *v) {
        const char *eq = strchr(v, '=');
        char key[256];

        if (!eq || eq == v || (size_t)(eq - v) >= sizeof(key)) {
                drv_cli_error("plan run: --param wants k=v");
                return -1;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - v), v);
        return drv_task_add_param(o->params, key, eq + 1) ? -1 : 0;
}

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int pr_opt(void *opaque, int opt, const char *arg) {
        pr_opts_t *o = opaque;

        switch (opt) {
        case PR_DRY_RUN:
                return o->dry_run = 1, 0;
        case PR_ALLOW_SQL:
                return o->allow_sql = 1, 0;
        case PR_NO_WAIT:
                return o->no_wait = 1, 0;
        case PR_STAGING:
                return o->staging = 1, 0;
        case PR_STAGING_URL:
                return o->staging_url = arg, 0;
        case PR_DATASET:
                return o->dataset = arg, 0;
        case PR_DATABASE:
                return o->url = arg, 0;
        case PR_CATALOG:
                return o->catalog = arg, 0;
        case PR_TASK_ID:
                return o->task_id = arg, 0;
        case PR_BATCH_PAUSE_MS:
                return o->pause_ms = atol(arg), 0;
        case PR_PARAM:
                return pr_param(o, arg);
        case '?':
                drv_cli_error("plan run: unknown option \"%s\"", arg);
                return -1;
        case 1:
                if (!o->target)
                        return o->target = arg, 0;
                break; /* a second REF|FILE */
        default:       /* ':' */
                break;
        }
        drv_cli_error("plan run: unexpected argument \"%s\"", arg);
        return -1;
}

static int pr_parse(int argc, char **argv, pr_opts_t *o) {
        if (drv_cli_getopt(argc, argv, "", pr_options, pr_opt, o))
                return -1;
        if (!o->target || !o->dataset) {
                drv_cli_error("plan run: %s is required",
                              !o->target ? "a plan (REF or FILE)"
                                         : "--dataset");
                return -1;
        }
        /* one database per run: which one must never be a guess */
        if (o->staging && o->url) {
                drv_cli_error("plan run: --staging runs on the staging "
                              "database, not --database");
                return -1;
        }
        return 0;
}

/* The database of the run: --database / DATABASE_URL, or with --staging
 * the staging database (--staging-url / DROVER_STAGING_DATABASE_URL,
 * into o->staging_url too), which must be set and differ from
 * DATABASE_URL.  DRV_OK or DRV_ERR_CONFIG. */
static drv_err_t pr_url(pr_opts_t *o, char *errstr, size_t errstr_size) {
        const char *prod = getenv("DATABASE_URL");

        if (!o->staging_url || !*o->staging_url)
                o->staging_url = getenv("DROVER_STAGING_DATABASE_URL");
        if (o->staging_url && !*o->staging_url)
                o->staging_url = NULL;
        if (!o->staging) {
                if (!o->url)
                        o->url = prod;
                return DRV_OK;
        }
        o->url = o->staging_url;
        if (!o->url)
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "no staging database (set --staging-url "
                                   "or DROVER_STAGING_DATABASE_URL)");
        if (prod && !strcmp(o->url, prod))
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "the staging database is DATABASE_URL: "
                                   "refusing to run a staging run there");
        return DRV_OK;
}

/* A file path (exists) or an entity ref resolved in the catalog. */
static drv_err_t pr_load(const pr_opts_t *o, drv_plan_t **planp, char *errstr,
                         size_t errstr_size) {
        drv_catalog_conf_t cc = {0};
        drv_plan_t **plans = NULL;
        drv_catalog_t *cat;
        size_t cnt = 0, i;
        drv_err_t err;

        *planp = NULL;
        if (access(o->target, F_OK) == 0) {
                err = drv_plan_load_file(o->target, &plans, &cnt, errstr,
                                         errstr_size);
                if (!err && cnt != 1)
                        err = drv_err_set(errstr, errstr_size,
                                          DRV_ERR_INVALID_PLAN,
                                          "%s: want exactly one migration "
                                          "plan, found %zu",
                                          o->target, cnt);
                if (!err)
                        *planp = drv_plan_retain(plans[0]);
                for (i = 0; i < cnt; i++)
                        drv_plan_release(plans[i]);
                free(plans);
                return err;
        }
        cc.dir = o->catalog ? o->catalog : getenv("DROVER_CATALOG_DIR");
        cc.backstage_url = getenv("BACKSTAGE_URL");
        cc.backstage_token = getenv("BACKSTAGE_TOKEN");
        if (!(cat = drv_catalog_new(&cc, errstr, errstr_size)))
                return DRV_ERR_CONFIG;
        err = drv_catalog_resolve(cat, o->target, planp, errstr, errstr_size);
        drv_catalog_destroy(cat);
        return err;
}

/* The staging gate of a run that is not one (a production run of a
 * spec.requiresStaging plan): drv_plan_staging_check on o->staging_url,
 * as a worker would.  DRV_OK for other runs and plans; else
 * DRV_ERR_STAGING_REQUIRED (exit 65), DRV_ERR_CONFIG when the staging
 * database is the database of the run, or the staging database's
 * error (unreachable: exit 69). */
static drv_err_t pr_gate(const pr_opts_t *o, const drv_plan_t *plan,
                         char *errstr, size_t errstr_size) {
        PGconn *staging = NULL;
        char why[400];
        drv_err_t err;

        if (o->staging || o->dry_run || !plan->requires_staging)
                return DRV_OK;
        if (o->staging_url && o->url && !strcmp(o->staging_url, o->url))
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "the staging database is the database "
                                   "of the run");
        if (o->staging_url &&
            (err = drv_db_connect(o->staging_url, &staging, why, sizeof(why))))
                return drv_err_set(errstr, errstr_size, err,
                                   "staging database: %s", why);
        err = drv_plan_staging_check(staging, plan, NULL, errstr, errstr_size);
        PQfinish(staging);
        return err;
}

static const char *pr_outcome(drv_run_outcome_t oc) {
        switch (oc) {
        case DRV_RUN_DONE:
                return "done";
        case DRV_RUN_SKIPPED:
                return "skipped";
        case DRV_RUN_DRY_RUN:
                return "dry_run";
        default:
                return "failed";
        }
}

static int pr_run(const pr_opts_t *o, PGconn *conn, const drv_plan_t *plan) {
        pr_progress_t prog = {isatty(STDERR_FILENO), 0, 0};
        drv_run_opts_t ro = {0};
        drv_run_result_t res;
        char ref[1024], ds[512], id[512];
        drv_err_t err;

        ro.task_id = o->task_id;
        ro.dataset = o->dataset;
        ro.dry_run = o->dry_run;
        ro.params = o->params->params;
        ro.params_cnt = o->params->params_cnt;
        ro.allow_sql = o->allow_sql;
        ro.worker = "drover plan run";
        ro.batch_pause_ms = o->pause_ms;
        ro.wait_for_lock = !o->no_wait;
        ro.cancel = &pr_cancel;
        ro.progress = pr_progress;
        ro.progress_opaque = &prog;
        err = drv_plan_run(conn, plan, &ro, &res);
        if (prog.open_line)
                fputc('\n', stderr);
        if (err) {
                drv_cli_error("plan run: %s", res.errmsg);
                return drv_err_exit_code(err);
        }
        printf("%s: %s%s %s task %s, %d/%d steps, %lld rows%s",
               drv_text_escape(plan->ref, ref, sizeof(ref)),
               pr_outcome(res.outcome), o->staging ? " on staging" : "",
               drv_text_escape(plan->dataset, ds, sizeof(ds)),
               drv_text_escape(o->task_id, id, sizeof(id)), res.steps_done,
               res.steps_total, (long long)res.rows,
               res.outcome == DRV_RUN_DRY_RUN ? " (would visit)" : "");
        if (res.dry_unchecked)
                printf(", %d steps unchecked (they need an earlier step's "
                       "changes)",
                       res.dry_unchecked);
        putchar('\n');
        return DRV_EXIT_OK;
}

int drv_cmd_plan_run(int argc, char **argv) {
        pr_opts_t o = {0};
        drv_plan_t *plan = NULL;
        PGconn *conn = NULL;
        char errstr[512], uuid[37];
        drv_err_t err;
        int rc;

        if (drv_cli_wants_help(argc, argv)) {
                fputs(plan_run_usage, stdout);
                return DRV_EXIT_OK;
        }
        if (!(o.params = drv_task_new()))
                return DRV_EXIT_SOFTWARE;
        if (pr_parse(argc, argv, &o)) {
                fputs(plan_run_usage, stderr);
                drv_task_destroy(o.params);
                return DRV_EXIT_USAGE;
        }
        if (!o.task_id) {
                drv_uuid4(uuid);
                o.task_id = uuid;
        }
        signal(SIGINT, pr_on_signal);
        signal(SIGTERM, pr_on_signal);
        if ((err = pr_url(&o, errstr, sizeof(errstr))) ||
            (err = pr_load(&o, &plan, errstr, sizeof(errstr))) ||
            (err = pr_gate(&o, plan, errstr, sizeof(errstr))) ||
            (err = drv_db_connect(o.url, &conn, errstr, sizeof(errstr))) ||
            (err = drv_db_migrate(conn, errstr, sizeof(errstr)))) {
                drv_cli_error("plan run: %s", errstr);
                rc = drv_err_exit_code(err);
        } else {
                rc = pr_run(&o, conn, plan);
        }
        PQfinish(conn);
        drv_plan_release(plan);
        drv_task_destroy(o.params);
        return rc;
}
