/*
 * drover - consumer/cli/cmd_status.c: 'drover status'.
 *
 * The migration table from drover.task_runs: Dataset | Status | Started |
 * Completed, plus steps, rows and the last error.  --watch redraws every
 * second (in place on a terminal); --until-done stops once nothing is
 * queued, running, throttled or retrying (and, with --expect N, at least N
 * tasks have reached a final status).  The table ends with the dataset's last
 * repairs, if any ('drover repair').
 */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *fp) {
        fprintf(fp, "usage: drover status [--watch] [--json] [--dataset D]\n"
                    "                     [--database URL] [--until-done] "
                    "[--expect N] [--limit N]\n\n"
                    "The migration table from drover.task_runs, and the "
                    "last repairs.\n"
                    "  --watch        redraw every second until interrupted\n"
                    "  --until-done   with --watch: exit once nothing is "
                    "queued/running/throttled/retrying\n"
                    "  --expect N     with --until-done: also wait for N final "
                    "tasks\n"
                    "  --json         JSON rows instead of the table\n"
                    "  --dataset D    only dataset D\n"
                    "  --limit N      at most N rows, newest first (default "
                    "50; 0: all)\n"
                    "  --database URL default DATABASE_URL\n"
                    "Exit codes: 0 ok, 2 usage, 69 database unreachable.\n");
}

typedef struct status_opts_s {
        int watch, json, until_done;
        long expect, limit;
        const char *dataset, *url;
} status_opts_t;

static volatile sig_atomic_t interrupted;
static void on_int(int sig) {
        (void)sig;
        interrupted = 1;
}

static void print_table(PGresult *res) {
        int i, n = PQntuples(res);

        printf("%-24s %-9s %-8s %-19s %-19s %7s %10s  %s\n", "DATASET",
               "STATUS", "KIND", "STARTED", "COMPLETED", "STEPS", "ROWS",
               "LAST ERROR");
        for (i = 0; i < n; i++) {
                /* task- and error-derived text: escaped for the terminal */
                char steps[32], err[128], e_err[512], e_ds[512], e_st[64];
                snprintf(steps, sizeof(steps), "%s/%s", PQgetvalue(res, i, 4),
                         PQgetvalue(res, i, 5));
                snprintf(err, sizeof(err), "%s%s%.90s", PQgetvalue(res, i, 7),
                         *PQgetvalue(res, i, 7) ? ": " : "",
                         PQgetvalue(res, i, 8));
                printf(
                    "%-24.24s %-9s %-8s %-19s %-19s %7s %10s  %s\n",
                    drv_text_escape(PQgetvalue(res, i, 0), e_ds, sizeof(e_ds)),
                    drv_text_escape(PQgetvalue(res, i, 1), e_st, sizeof(e_st)),
                    PQgetvalue(res, i, 12), PQgetvalue(res, i, 2),
                    PQgetvalue(res, i, 3), steps, PQgetvalue(res, i, 6),
                    drv_text_escape(err, e_err, sizeof(e_err)));
        }
        if (n == 0)
                printf("(no migrations yet)\n");
}

static void print_json(PGresult *res) {
        static const char *names[] = {
            "dataset",    "status",      "started_at", "completed_at",
            "steps_done", "steps_total", "rows",       "error_class",
            "error",      "task_id",     "attempts",   "worker",
            "kind"};
        json_t *arr = json_array();
        char *s;
        int i, c;

        for (i = 0; i < PQntuples(res); i++) {
                json_t *o = json_object();
                for (c = 0; c < 13; c++) {
                        const char *v = PQgetvalue(res, i, c);
                        if ((c == 4 || c == 5 || c == 6 || c == 10))
                                json_object_set_new(
                                    o, names[c],
                                    json_integer(strtoll(v, NULL, 10)));
                        else if (*v || c < 2 || c == 9)
                                json_object_set_new(o, names[c],
                                                    json_string(v));
                        else
                                json_object_set_new(o, names[c], json_null());
                }
                json_array_append_new(arr, o);
        }
        s = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", s ? s : "[]");
        free(s);
        json_decref(arr);
}

/* The last repairs (drover.repair_audit) of o->dataset (NULL: any), under
 * the table; nothing when there were none.  0 or -1 (errstr set). */
static int print_repairs(PGconn *conn, const status_opts_t *o, char *errstr,
                         size_t errstr_size) {
        json_t *arr;

        if (drv_repair_history(conn, o->dataset, 3, &arr, errstr, errstr_size))
                return -1;
        if (json_array_size(arr)) {
                printf("last repairs (drover repair --history):\n");
                drv_cli_print_repairs(arr);
        }
        json_decref(arr);
        return 0;
}

/* One frame.  Returns 1 when --until-done is satisfied, 0 to go on, -1
 * on a database error (errstr set). */
static int frame(PGconn *conn, const status_opts_t *o, char *errstr,
                 size_t errstr_size) {
        PGresult *res;
        long active, final;

        if (drv_task_runs_status(conn, o->dataset, o->limit, &res, errstr,
                                 errstr_size))
                return -1;
        if (o->watch && isatty(STDOUT_FILENO))
                printf("\033[H\033[2J");
        if (o->json)
                print_json(res);
        else
                print_table(res);
        PQclear(res);
        if (drv_task_runs_counts(conn, o->dataset, &active, &final, errstr,
                                 errstr_size))
                return -1;
        if (!o->json) {
                printf("%ld active, %ld finished\n", active, final);
                if (print_repairs(conn, o, errstr, errstr_size))
                        return -1;
        }
        fflush(stdout);
        return o->until_done && active == 0 && final > 0 && final >= o->expect;
}

enum {
        STATUS_WATCH = DRV_CLI_LONG,
        STATUS_JSON,
        STATUS_UNTIL_DONE,
        STATUS_DATASET,
        STATUS_DATABASE,
        STATUS_EXPECT,
        STATUS_LIMIT
};

static const struct option status_options[] = {
    {"watch", no_argument, NULL, STATUS_WATCH},
    {"json", no_argument, NULL, STATUS_JSON},
    {"until-done", no_argument, NULL, STATUS_UNTIL_DONE},
    {"dataset", required_argument, NULL, STATUS_DATASET},
    {"database", required_argument, NULL, STATUS_DATABASE},
    {"expect", required_argument, NULL, STATUS_EXPECT},
    {"limit", required_argument, NULL, STATUS_LIMIT},
    {NULL, 0, NULL, 0},
};

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int status_opt(void *opaque, int opt, const char *arg) {
        status_opts_t *o = opaque;

        switch (opt) {
        case STATUS_WATCH:
                return o->watch = 1, 0;
        case STATUS_JSON:
                return o->json = 1, 0;
        case STATUS_UNTIL_DONE:
                return o->until_done = o->watch = 1, 0;
        case STATUS_DATASET:
                return o->dataset = arg, 0;
        case STATUS_DATABASE:
                return o->url = arg, 0;
        case STATUS_EXPECT:
                return o->expect = atol(arg), 0;
        case STATUS_LIMIT:
                return o->limit = atol(arg), 0;
        default: /* '?', ':', an operand */
                drv_cli_error("unknown option \"%s\" (see 'drover status "
                              "--help')",
                              arg);
                return -1;
        }
}

static int parse_args(status_opts_t *o, int argc, char **argv) {
        return drv_cli_getopt(argc, argv, "", status_options, status_opt, o)
                   ? -1
                   : 0;
}

int drv_cmd_status(int argc, char **argv) {
        status_opts_t o = {0};
        char errstr[512];
        PGconn *conn = NULL;
        drv_err_t err;
        int r;

        if (drv_cli_wants_help(argc, argv)) {
                usage(stdout);
                return DRV_EXIT_OK;
        }
        o.limit = 50;
        if (parse_args(&o, argc, argv))
                return DRV_EXIT_USAGE;
        if (!o.url)
                o.url = getenv("DATABASE_URL");
        if (!o.url || !*o.url) {
                drv_cli_error("no database: set DATABASE_URL or --database");
                return DRV_EXIT_USAGE;
        }
        if ((err = drv_db_connect(o.url, &conn, errstr, sizeof(errstr))) ||
            (err = drv_db_migrate(conn, errstr, sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                PQfinish(conn);
                return drv_err_exit_code(err);
        }
        signal(SIGINT, on_int);
        signal(SIGTERM, on_int);
        for (;;) {
                r = frame(conn, &o, errstr, sizeof(errstr));
                if (r < 0) {
                        drv_cli_error("cannot read drover.task_runs: %s",
                                      errstr);
                        PQfinish(conn);
                        return DRV_EXIT_UNAVAILABLE;
                }
                if (r == 1 || !o.watch || interrupted)
                        break;
                sleep(1);
                if (interrupted)
                        break;
        }
        PQfinish(conn);
        return DRV_EXIT_OK;
}
