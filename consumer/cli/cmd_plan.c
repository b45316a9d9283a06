/*
 * drover - consumer/cli/cmd_plan.c: 'drover plan check | show | run'.
 *
 *   drover plan check [--no-sql] [--queue TOPIC] FILE...
 *       validate plan files; prints "FILE: ok ..." per file, or
 *       "file:line: message" on stderr and exits 65.  --queue refuses a
 *       plan annotated (drover.io/queue) for another queue.
 *   drover plan show REF|FILE [--catalog DIR] [--backstage URL] [--json]
 *       print a plan: ref, dataset, versions, steps with fingerprints.
 *   drover plan run ...   (consumer/cli/cmd_plan_run.c)
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char plan_usage[] =
    "usage: drover plan check [--no-sql] [--queue TOPIC] FILE...\n"
    "       drover plan show REF|FILE [--catalog DIR] [--backstage URL] "
    "[--json]\n"
    "       drover plan run REF|FILE --dataset D [--dry-run] ...\n"
    "\n"
    "check  validate plan files statically (exit 0, or 65 with\n"
    "       \"file:line: message\"); --no-sql refuses raw sql steps;\n"
    "       --queue (or --topic) refuses a plan annotated drover.io/queue\n"
    "       for another queue (a worker's tasks topic)\n"
    "show   print a plan from a file or a catalog: the catalog directory\n"
    "       (--catalog, DROVER_CATALOG_DIR) or a Backstage backend\n"
    "       (--backstage, BACKSTAGE_URL; token from BACKSTAGE_TOKEN)\n"
    "run    run one plan now against PostgreSQL (see 'drover plan run -h')\n";

static int plan_check_file(const char *path, int allow_sql, const char *queue) {
        char errstr[512], why[400], a[2048], b[1024], c[1024], q[256];
        drv_plan_t **plans;
        size_t cnt, i;
        drv_err_t err;

        err = drv_plan_load_file(path, &plans, &cnt, errstr, sizeof(errstr));
        for (i = 0; !err && i < cnt; i++)
                if (!(err = drv_plan_validate(plans[i], allow_sql, errstr,
                                              sizeof(errstr))) &&
                    queue &&
                    (err = drv_plan_queue_check(plans[i], queue, why,
                                                sizeof(why))))
                        snprintf(errstr, sizeof(errstr), "%s:%d: %s", path,
                                 plans[i]->line, why);
        if (!err && cnt == 0)
                err = drv_err_set(errstr, sizeof(errstr), DRV_ERR_INVALID_PLAN,
                                  "%s: no migration plan in file (kind "
                                  "Component with spec.type migration-plan)",
                                  path);
        if (err) {
                /* compiler style, so editors and CI annotations can jump */
                fprintf(stderr, "%s\n", drv_text_escape(errstr, a, sizeof(a)));
                drv_plan_array_free(plans, cnt);
                return drv_err_exit_code(err);
        }
        for (i = 0; i < cnt; i++)
                printf("%s: ok: %s (%s, %d -> %d, %zu steps, queue %s%s)\n",
                       drv_text_escape(path, a, sizeof(a)),
                       drv_text_escape(plans[i]->ref, b, sizeof(b)),
                       drv_text_escape(plans[i]->dataset, c, sizeof(c)),
                       plans[i]->from_version, plans[i]->to_version,
                       plans[i]->steps_cnt,
                       drv_text_escape(drv_plan_queue(plans[i])
                                           ? drv_plan_queue(plans[i])
                                           : "any",
                                       q, sizeof(q)),
                       plans[i]->requires_staging ? ", requires staging" : "");
        drv_plan_array_free(plans, cnt);
        return DRV_EXIT_OK;
}

enum { CHECK_NO_SQL = DRV_CLI_LONG, CHECK_QUEUE };

static const struct option check_options[] = {
    {"no-sql", no_argument, NULL, CHECK_NO_SQL},
    {"queue", required_argument, NULL, CHECK_QUEUE},
    {"topic", required_argument, NULL, CHECK_QUEUE},
    {NULL, 0, NULL, 0},
};

typedef struct check_opts_s {
        int allow_sql;
        const char *queue;  /* --queue: refuse plans for another */
        const char **files; /* the operands, in order */
        int files_cnt;
} check_opts_t;

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int check_opt(void *opaque, int opt, const char *arg) {
        check_opts_t *o = opaque;

        switch (opt) {
        case CHECK_NO_SQL:
                return o->allow_sql = 0, 0;
        case CHECK_QUEUE:
                return o->queue = arg, 0;
        case 1:
                return o->files[o->files_cnt++] = arg, 0;
        default: /* '?' */
                drv_cli_error("plan check: unknown option \"%s\"", arg);
                return -1;
        }
}

static int plan_check(int argc, char **argv) {
        check_opts_t o = {1, NULL, NULL, 0};
        int i, rc = DRV_EXIT_OK, frc;

        if (!(o.files = calloc((size_t)argc, sizeof(*o.files))))
                return DRV_EXIT_SOFTWARE;
        if (drv_cli_getopt(argc, argv, "", check_options, check_opt, &o)) {
                free(o.files);
                return DRV_EXIT_USAGE;
        }
        for (i = 0; i < o.files_cnt; i++)
                if ((frc = plan_check_file(o.files[i], o.allow_sql, o.queue)) !=
                        0 &&
                    rc == DRV_EXIT_OK)
                        rc = frc;
        free(o.files);
        if (!o.files_cnt) {
                fputs(plan_usage, stderr);
                return DRV_EXIT_USAGE;
        }
        return rc;
}

/*
 * ------------------------------------------------------------------------
 * show
 * ------------------------------------------------------------------------
 */
static void plan_print(const drv_plan_t *plan) {
        /* catalog text is escaped for the terminal */
        char e[4096], e2[256], *thr;
        const json_t *throttle;
        size_t i;

        printf("plan         %s\n", drv_text_escape(plan->ref, e, sizeof(e)));
        drv_text_escape(plan->source, e, sizeof(e));
        if (plan->line > 0)
                printf("source       %s:%d\n", e, plan->line);
        else
                printf("source       %s\n", e);
        printf("dataset      %s\n",
               drv_text_escape(plan->dataset, e, sizeof(e)));
        printf("version      %d -> %d\n", plan->from_version, plan->to_version);
        printf(
            "queue        %s\n",
            drv_text_escape(drv_plan_queue(plan) ? drv_plan_queue(plan) : "any",
                            e, sizeof(e)));
        printf("etag         %s\n",
               drv_text_escape(plan->etag ? plan->etag : "-", e, sizeof(e)));
        printf("staging      %s\n",
               plan->requires_staging ? "required" : "not required");
        throttle =
            json_object_get(json_object_get(plan->entity, "spec"), "throttle");
        thr = throttle ? json_dumps(throttle, JSON_SORT_KEYS | JSON_COMPACT)
                       : NULL;
        printf("throttle     %s\n",
               thr ? drv_text_escape(thr, e, sizeof(e)) : "the worker's");
        free(thr);
        printf("fingerprint  %s\n", plan->fingerprint);
        printf("steps        %zu\n", plan->steps_cnt);
        for (i = 0; i < plan->steps_cnt; i++) {
                const drv_step_t *st = &plan->steps[i];
                char *def = json_dumps(st->def, JSON_SORT_KEYS | JSON_COMPACT);
                printf("  %2d  %-13s  %s  %s\n", st->index, drv_op_name(st->op),
                       drv_text_escape(st->fingerprint, e2, sizeof(e2)),
                       drv_text_escape(def, e, sizeof(e)));
                free(def);
        }
}

typedef struct show_opts_s {
        const char *ref;
        const char *dir;
        const char *url;
        int json;
} show_opts_t;

enum { SHOW_JSON = DRV_CLI_LONG, SHOW_CATALOG, SHOW_BACKSTAGE };

static const struct option show_options[] = {
    {"json", no_argument, NULL, SHOW_JSON},
    {"catalog", required_argument, NULL, SHOW_CATALOG},
    {"backstage", required_argument, NULL, SHOW_BACKSTAGE},
    {NULL, 0, NULL, 0},
};

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int show_opt(void *opaque, int opt, const char *arg) {
        show_opts_t *o = opaque;

        switch (opt) {
        case SHOW_JSON:
                return o->json = 1, 0;
        case SHOW_CATALOG:
                return o->dir = arg, 0;
        case SHOW_BACKSTAGE:
                return o->url = arg, 0;
        case 1:
                if (!o->ref)
                        return o->ref = arg, 0;
                break; /* a second REF */
        default:       /* '?', ':' */
                break;
        }
        drv_cli_error("plan show: unexpected argument \"%s\"", arg);
        return -1;
}

static int show_parse(int argc, char **argv, show_opts_t *o) {
        if (drv_cli_getopt(argc, argv, "", show_options, show_opt, o))
                return -1;
        if (!o->ref) {
                fputs(plan_usage, stderr);
                return -1;
        }
        if (!o->dir && !o->url) {
                o->url = getenv("BACKSTAGE_URL");
                if (!o->url || !*o->url) {
                        o->url = NULL;
                        o->dir = getenv("DROVER_CATALOG_DIR");
                }
        }
        return 0;
}

/* REF names a plan file when it exists as a regular file. */
static drv_err_t show_load(const show_opts_t *o, drv_plan_t **planp,
                           char *errstr, size_t errstr_size) {
        drv_catalog_conf_t conf = {.dir = o->dir, .backstage_url = o->url};
        struct stat st;
        drv_catalog_t *cat;
        drv_plan_t **plans;
        size_t cnt;
        drv_err_t err;

        if (stat(o->ref, &st) == 0 && S_ISREG(st.st_mode)) {
                err = drv_plan_load_file(o->ref, &plans, &cnt, errstr,
                                         errstr_size);
                if (!err && cnt == 0)
                        err = drv_err_set(
                            errstr, errstr_size, DRV_ERR_UNKNOWN_PLAN,
                            "%s: no migration plan in file", o->ref);
                *planp = err ? NULL : drv_plan_retain(plans[0]);
                drv_plan_array_free(plans, cnt);
                return err;
        }
        if (o->url)
                conf.backstage_token = getenv("BACKSTAGE_TOKEN");
        if (!(cat = drv_catalog_new(&conf, errstr, errstr_size)))
                return DRV_ERR_CONFIG;
        err = drv_catalog_resolve(cat, o->ref, planp, errstr, errstr_size);
        drv_catalog_destroy(cat);
        return err;
}

static int plan_show(int argc, char **argv) {
        show_opts_t o = {0};
        char errstr[768];
        drv_plan_t *plan;
        drv_err_t err;

        if (show_parse(argc, argv, &o))
                return DRV_EXIT_USAGE;
        if (!o.dir && !o.url && access(o.ref, F_OK) != 0) {
                drv_cli_error("plan show: no catalog: pass --catalog DIR or "
                              "--backstage URL (or set DROVER_CATALOG_DIR / "
                              "BACKSTAGE_URL)");
                return DRV_EXIT_USAGE;
        }
        if ((err = show_load(&o, &plan, errstr, sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                return drv_err_exit_code(err);
        }
        if (o.json) {
                json_t *j = drv_plan_to_json(plan);
                char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
                printf("%s\n", text ? text : "null");
                free(text);
                json_decref(j);
        } else {
                plan_print(plan);
        }
        drv_plan_release(plan);
        return DRV_EXIT_OK;
}

int drv_cmd_plan(int argc, char **argv) {
        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                fputs(plan_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? DRV_EXIT_USAGE : DRV_EXIT_OK;
        }
        if (!strcmp(argv[1], "run"))
                return drv_cmd_plan_run(argc - 1, argv + 1);
        if (drv_cli_wants_help(argc - 1, argv + 1)) {
                fputs(plan_usage, stdout);
                return DRV_EXIT_OK;
        }
        if (!strcmp(argv[1], "check"))
                return plan_check(argc - 1, argv + 1);
        if (!strcmp(argv[1], "show"))
                return plan_show(argc - 1, argv + 1);
        drv_cli_error("plan: unknown subcommand \"%s\" (check, show, run)",
                      argv[1]);
        return DRV_EXIT_USAGE;
}
