/*
 * drover - consumer/cli/cmd_repair.c: 'drover repair', Flyway's repair.
 *
 * Shows a dataset's version and its unfinished ledger rows (failed,
 * running, superseded); with --execute --reason deletes those rows
 * (--clear-failed) and/or sets the version (--set-version N), writing an
 * audit row; --history lists the audit rows.  The rules and the SQL are
 * transforms/repair.c's; this file parses and prints.
 */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: drover repair --dataset D [--json] [--database URL]\n"
    "       drover repair --dataset D --execute --reason TEXT "
    "[--clear-failed]\n"
    "                     [--set-version N] [--json] [--database URL]\n"
    "       drover repair --history [--dataset D] [--limit N] [--json]\n"
    "\n"
    "Flyway's repair for a dataset whose migration failed part-way.  "
    "Without\n"
    "--execute it only shows the dataset's version (drover.datasets), its\n"
    "unfinished ledger rows (drover.step_ledger rows neither done nor "
    "skipped:\n"
    "running, superseded, failed) and what --execute would change.\n"
    "  --execute        repair, in one transaction, refused while a runner\n"
    "                   (a worker or 'drover plan run') holds the dataset\n"
    "  --reason TEXT    why (required with --execute; kept in the audit "
    "row)\n"
    "  --clear-failed   delete the unfinished ledger rows: the next run of\n"
    "                   their plan starts those steps afresh\n"
    "  --set-version N  set the dataset's version to N\n"
    "  --history        the audit rows (drover.repair_audit), newest "
    "first\n"
    "  --limit N        with --history: at most N rows (default 20)\n"
    "  --json           JSON instead of text\n"
    "  --database URL   default DATABASE_URL\n"
    "--execute needs --clear-failed and/or --set-version.  Each repair that\n"
    "changes something writes one audit row: who (cli:<user>@<host>), when,\n"
    "why, and the version and rows before and after; nothing to repair\n"
    "writes none.\n"
    "Exit codes: 0 ok, 2 usage, 65 bad input, 69 database unreachable or\n"
    "dataset held by a runner.\n";

typedef struct repair_opts_s {
        drv_repair_t rp;
        int execute, history, json;
        long limit;
        int limit_given;
        const char *url;
} repair_opts_t;

enum {
        REPAIR_DATASET = DRV_CLI_LONG,
        REPAIR_EXECUTE,
        REPAIR_REASON,
        REPAIR_CLEAR,
        REPAIR_SET_VERSION,
        REPAIR_HISTORY,
        REPAIR_LIMIT,
        REPAIR_JSON,
        REPAIR_DATABASE
};

static const struct option repair_options[] = {
    {"dataset", required_argument, NULL, REPAIR_DATASET},
    {"execute", no_argument, NULL, REPAIR_EXECUTE},
    {"reason", required_argument, NULL, REPAIR_REASON},
    {"clear-failed", no_argument, NULL, REPAIR_CLEAR},
    {"set-version", required_argument, NULL, REPAIR_SET_VERSION},
    {"history", no_argument, NULL, REPAIR_HISTORY},
    {"limit", required_argument, NULL, REPAIR_LIMIT},
    {"json", no_argument, NULL, REPAIR_JSON},
    {"database", required_argument, NULL, REPAIR_DATABASE},
    {NULL, 0, NULL, 0},
};

/* A decimal number from lo to hi into *outp; 0 or -1. */
static int parse_long(const char *s, long lo, long hi, long *outp) {
        char *end;
        long v;

        if (*s < '0' || *s > '9')
                return -1;
        v = strtol(s, &end, 10);
        if (*end || v < lo || v > hi)
                return -1;
        *outp = v;
        return 0;
}

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int repair_opt(void *opaque, int opt, const char *arg) {
        repair_opts_t *o = opaque;

        switch (opt) {
        case REPAIR_DATASET:
                return o->rp.dataset = arg, 0;
        case REPAIR_EXECUTE:
                return o->execute = 1, 0;
        case REPAIR_REASON:
                return o->rp.reason = arg, 0;
        case REPAIR_CLEAR:
                return o->rp.clear = 1, 0;
        case REPAIR_SET_VERSION:
                if (parse_long(arg, 0, INT32_MAX, &o->rp.version))
                        return drv_cli_error("invalid --set-version \"%s\" "
                                             "(want 0 to %d)",
                                             arg, INT32_MAX),
                               -1;
                return o->rp.set_version = 1, 0;
        case REPAIR_HISTORY:
                return o->history = 1, 0;
        case REPAIR_LIMIT:
                if (parse_long(arg, 1, 1000, &o->limit))
                        return drv_cli_error("invalid --limit \"%s\" (want 1 "
                                             "to 1000)",
                                             arg),
                               -1;
                return o->limit_given = 1, 0;
        case REPAIR_JSON:
                return o->json = 1, 0;
        case REPAIR_DATABASE:
                return o->url = arg, 0;
        case ':':
                drv_cli_error("option %s needs a value", arg);
                return -1;
        default: /* '?', an operand */
                drv_cli_error("unknown option \"%s\" for 'repair' (see "
                              "--help)",
                              arg);
                return -1;
        }
}

/* Usage errors the rules of transforms/repair.c do not see. */
static int parse_args(repair_opts_t *o, int argc, char **argv) {
        o->limit = 20;
        if (drv_cli_getopt(argc, argv, "", repair_options, repair_opt, o))
                return -1;
        if (o->history &&
            (o->execute || o->rp.clear || o->rp.set_version || o->rp.reason)) {
                drv_cli_error("--history takes only --dataset, --limit, "
                              "--json and --database");
                return -1;
        }
        if (!o->history && !o->rp.dataset) {
                drv_cli_error("--dataset is required");
                return -1;
        }
        if (o->limit_given && !o->history) {
                drv_cli_error("--limit needs --history");
                return -1;
        }
        if (!o->execute && o->rp.reason) {
                drv_cli_error("--reason needs --execute");
                return -1;
        }
        return 0;
}

/* "cli:<user>@<host>", the audit row's who. */
static void cli_who(char *out, size_t out_size) {
        const struct passwd *pw = getpwuid(geteuid());
        const char *user = pw && pw->pw_name ? pw->pw_name : getenv("USER");
        char host[256] = "";

        if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
                snprintf(host, sizeof(host), "unknown");
        snprintf(out, out_size, "cli:%s@%s", user && *user ? user : "unknown",
                 host);
}

/*
 * ------------------------------------------------------------------------
 * Printing
 * ------------------------------------------------------------------------
 */

/* A JSON value as text ("-" for null or absent); an ISO timestamp as
 * "YYYY-MM-DD HH:MM:SS". */
static const char *jtext(const json_t *v, char *buf, size_t size) {
        char *s;

        if (!v || json_is_null(v))
                return "-";
        if (json_is_string(v)) {
                snprintf(buf, size, "%s", json_string_value(v));
                if (strlen(buf) >= 19 && buf[10] == 'T') {
                        buf[10] = ' ';
                        buf[19] = '\0';
                }
        } else {
                s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                snprintf(buf, size, "%s", s ? s : "?");
                free(s);
        }
        return buf;
}

/* jtext of obj[key], escaped for the terminal. */
static const char *field(const json_t *obj, const char *key, char *buf,
                         size_t size) {
        char raw[512];

        return drv_text_escape(
            jtext(json_object_get(obj, key), raw, sizeof(raw)), buf, size);
}

static void print_rows(const json_t *rows) {
        char t[600], o[600], st[600], r[600], c[600], s[600], f[600], n[16];
        const json_t *row;
        size_t i;

        if (!json_array_size(rows)) {
                printf("no unfinished ledger rows\n");
                return;
        }
        printf("%-36s %4s %-13s %-10s %10s %-16s %-19s %s\n", "TASK", "STEP",
               "OP", "STATUS", "ROWS", "CHECKPOINT", "STARTED", "FINISHED");
        json_array_foreach(rows, i, row) {
                snprintf(n, sizeof(n), "%lld",
                         (long long)json_integer_value(
                             json_object_get(row, "step")));
                printf("%-36.36s %4s %-13.13s %-10.10s %10s %-16.40s "
                       "%-19s %s\n",
                       field(row, "task_id", t, sizeof(t)), n,
                       field(row, "op", o, sizeof(o)),
                       field(row, "status", st, sizeof(st)),
                       field(row, "rows", r, sizeof(r)),
                       field(row, "checkpoint", c, sizeof(c)),
                       field(row, "started_at", s, sizeof(s)),
                       field(row, "finished_at", f, sizeof(f)));
        }
}

/* The dry run, as text. */
static void print_show(const json_t *st) {
        const json_t *would = json_object_get(st, "would");
        const json_t *to = json_object_get(would, "set_version");
        char ds[600], ver[600], at[600];
        long long active =
            json_integer_value(json_object_get(st, "active_tasks"));

        field(st, "dataset", ds, sizeof(ds));
        if (json_is_true(json_object_get(st, "known")))
                printf("dataset \"%s\": version %s (set %s UTC)\n", ds,
                       field(st, "version", ver, sizeof(ver)),
                       field(st, "updated_at", at, sizeof(at)));
        else
                printf("dataset \"%s\": no version (no plan has run on it)\n",
                       ds);
        print_rows(json_object_get(st, "rows"));
        if (active)
                printf("warning: %lld task(s) of this dataset are queued, "
                       "running, throttled or retrying: a repair may race "
                       "them\n",
                       active);
        if (json_is_true(json_object_get(would, "nothing"))) {
                printf("nothing to repair\n");
                return;
        }
        printf("dry run: --execute would");
        if (json_integer_value(json_object_get(would, "delete_rows")))
                printf(" delete %lld ledger row(s)%s",
                       (long long)json_integer_value(
                           json_object_get(would, "delete_rows")),
                       json_is_integer(to) ? " and" : "");
        if (json_is_integer(to))
                printf(" set the version from %s to %lld",
                       field(st, "version", ver, sizeof(ver)),
                       (long long)json_integer_value(to));
        printf("\n");
}

/* The version and row count of a before/after state, as "v N, R rows". */
static void state_brief(const json_t *st, char *out, size_t size) {
        char ver[600];

        snprintf(out, size, "version %s, %zu unfinished row(s)",
                 field(st, "version", ver, sizeof(ver)),
                 json_array_size(json_object_get(st, "rows")));
}

static void print_execute(const json_t *out) {
        char ds[600], b[700], a[700];

        field(out, "dataset", ds, sizeof(ds));
        if (!json_is_true(json_object_get(out, "repaired"))) {
                printf("dataset \"%s\": nothing to repair\n", ds);
                return;
        }
        state_brief(json_object_get(out, "before"), b, sizeof(b));
        state_brief(json_object_get(out, "after"), a, sizeof(a));
        printf("repaired dataset \"%s\": %s -> %s (audit id %lld)\n", ds, b, a,
               (long long)json_integer_value(json_object_get(out, "id")));
}

void drv_cli_print_repairs(const json_t *arr) {
        char at[600], ds[600], who[600], why[600], b[700], a[700];
        const json_t *row;
        size_t i;

        json_array_foreach(arr, i, row) {
                state_brief(json_object_get(row, "before"), b, sizeof(b));
                state_brief(json_object_get(row, "after"), a, sizeof(a));
                printf(
                    "#%lld %s UTC %s by %s: %s -> %s; reason: %s\n",
                    (long long)json_integer_value(json_object_get(row, "id")),
                    field(row, "at", at, sizeof(at)),
                    field(row, "dataset", ds, sizeof(ds)),
                    field(row, "who", who, sizeof(who)), b, a,
                    field(row, "reason", why, sizeof(why)));
        }
}

/*
 * ------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------
 */
static drv_err_t run(repair_opts_t *o, PGconn *conn, char *errstr,
                     size_t errstr_size) {
        json_t *out = NULL;
        drv_err_t err;
        char *s;

        if (o->history)
                err = drv_repair_history(conn, o->rp.dataset, (int)o->limit,
                                         &out, errstr, errstr_size);
        else if (o->execute)
                err =
                    drv_repair_execute(conn, &o->rp, &out, errstr, errstr_size);
        else
                err = drv_repair_show(conn, &o->rp, &out, errstr, errstr_size);
        if (err)
                return err;
        if (o->json) {
                s = json_dumps(out, JSON_INDENT(2));
                printf("%s\n", s ? s : "null");
                free(s);
        } else if (o->history && !json_array_size(out))
                printf("(no repairs)\n");
        else if (o->history)
                drv_cli_print_repairs(out);
        else if (o->execute)
                print_execute(out);
        else
                print_show(out);
        json_decref(out);
        return DRV_OK;
}

int drv_cmd_repair(int argc, char **argv) {
        repair_opts_t o;
        char errstr[512], who[300];
        PGconn *conn = NULL;
        drv_err_t err;

        if (drv_cli_wants_help(argc, argv)) {
                fputs(usage_text, stdout);
                return DRV_EXIT_OK;
        }
        memset(&o, 0, sizeof(o));
        if (parse_args(&o, argc, argv))
                return DRV_EXIT_USAGE;
        cli_who(who, sizeof(who));
        o.rp.who = who;
        /* bad input before the database: no connection needed to say so */
        if (o.rp.dataset && (err = drv_repair_check(&o.rp, o.execute, errstr,
                                                    sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                return drv_err_exit_code(err);
        }
        if (!o.url)
                o.url = getenv("DATABASE_URL");
        if ((err = drv_db_connect(o.url, &conn, errstr, sizeof(errstr))) ||
            (err = drv_db_migrate(conn, errstr, sizeof(errstr))) ||
            (err = run(&o, conn, errstr, sizeof(errstr))))
                drv_cli_error("repair: %s", errstr);
        PQfinish(conn);
        return err ? drv_err_exit_code(err) : DRV_EXIT_OK;
}
