/*
 * drover - bench/bench_transforms.c: batched steps vs one native statement.
 *
 *   bench_transforms [--rows N] [--batch B] [--quick] [--reps R]
 *                    [--only native|drover]                (DATABASE_URL)
 *
 * `backfill` through drv_plan_run (range-bounded keyset batches of B, each
 * batch + checkpoint one transaction) against one native UPDATE (the
 * limit), and `copy_rows` against one INSERT ... SELECT, N rows (default
 * 1,000,000; --quick 100,000).
 *
 * Fairness: every contender works on its own fresh table, created right
 * before its run by the same statements (CREATE, INSERT ... SELECT
 * generate_series, VACUUM ANALYZE, CHECKPOINT), so all start with set hint
 * bits, a full visibility map, fresh statistics and no dirty buffers of
 * another contender to write back.  The order alternates across the R
 * repetitions (default 3); the figures are medians.  --only runs one
 * contender once (bench/harness.py interleaves it with the Python peer).
 *
 * Lock time: a native statement holds its row locks for its whole run;
 * drover holds them per batch.  The batch times are the intervals between
 * progress callbacks after the first one; the first interval also holds
 * the step's start (ledger row, count(*) of the source for the progress
 * total, which runs outside any batch transaction) and is reported apart
 * as first_ms.  Prints one JSON line on stdout.
 */
#include "transforms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PGconn *conn;

static void x(const char *sql) {
        PGresult *res = PQexec(conn, sql);

        if (PQresultStatus(res) != PGRES_COMMAND_OK &&
            PQresultStatus(res) != PGRES_TUPLES_OK) {
                fprintf(stderr, "bench_transforms: %s: %s", sql,
                        PQerrorMessage(conn));
                exit(1);
        }
        PQclear(res);
}

static double timed(const char *sql) {
        int64_t t0 = drv_mono_ms();

        x(sql);
        return (double)(drv_mono_ms() - t0) / 1000.0;
}

/* The one way every contender's table is made (bench/harness.py's peer
 * uses the same statements). */
static void make_table(const char *name, long rows) {
        char sql[512];

        snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", name);
        x(sql);
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE %s (id bigint PRIMARY KEY, email text,"
                 " domain text)",
                 name);
        x(sql);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO %s (id, email) SELECT g, 'user' || g || '@d'"
                 " || (g %% 97) || '.example' FROM generate_series(1, %ld) g",
                 name, rows);
        x(sql);
        snprintf(sql, sizeof(sql), "VACUUM ANALYZE %s", name);
        x(sql);
        x("CHECKPOINT");
}

/* Batch intervals of one drover run. */
typedef struct prog_s {
        int64_t last_ms, first_ms;
        int64_t *ms;
        size_t n, cap;
} prog_t;

static void on_progress(void *opaque, int step, const char *op, int64_t done,
                        int64_t total) {
        prog_t *p = opaque;
        int64_t now = drv_mono_ms();

        (void)step, (void)op, (void)done, (void)total;
        if (p->first_ms < 0) {
                p->first_ms = now - p->last_ms;
        } else {
                if (p->n == p->cap) {
                        p->cap = p->cap ? 2 * p->cap : 1024;
                        p->ms = realloc(p->ms, p->cap * sizeof(*p->ms));
                        if (!p->ms) {
                                fprintf(stderr, "bench_transforms: oom\n");
                                exit(1);
                        }
                }
                p->ms[p->n++] = now - p->last_ms;
        }
        p->last_ms = now;
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x1 = *(const int64_t *)a, x2 = *(const int64_t *)b;

        return (x1 > x2) - (x1 < x2);
}

/* One contender's figures for one op. */
typedef struct fig_s {
        double s;
        int64_t first_ms, med_ms, p99_ms, max_ms, batches;
} fig_t;

static void fig_from_prog(fig_t *f, prog_t *p) {
        f->first_ms = p->first_ms;
        f->batches = (int64_t)p->n + 1;
        if (!p->n) {
                f->med_ms = f->p99_ms = f->max_ms = p->first_ms;
                return;
        }
        qsort(p->ms, p->n, sizeof(*p->ms), cmp_i64);
        f->med_ms = p->ms[p->n / 2];
        f->p99_ms = p->ms[(p->n * 99) / 100];
        f->max_ms = p->ms[p->n - 1];
}

static void run_plan(const char *steps, const char *dataset, fig_t *f) {
        char text[2048], errstr[512], task[64];
        drv_run_opts_t o = {0};
        drv_run_result_t res;
        drv_plan_t *plan;
        prog_t prog = {0, -1, NULL, 0, 0};
        json_t *entity;
        int64_t t0;

        snprintf(text, sizeof(text),
                 "{\"apiVersion\":\"backstage.io/v1alpha1\",\"kind\":"
                 "\"Component\",\"metadata\":{\"name\":\"%s\"},\"spec\":{"
                 "\"type\":\"migration-plan\",\"dataset\":\"%s\","
                 "\"schemaVersion\":{\"from\":1,\"to\":2},\"steps\":%s}}",
                 dataset, dataset, steps);
        entity = json_loads(text, 0, NULL);
        if (!entity || drv_plan_from_json(entity, "bench", &plan, errstr,
                                          sizeof(errstr))) {
                fprintf(stderr, "bench_transforms: plan: %s\n", errstr);
                exit(1);
        }
        json_decref(entity);
        drv_uuid4(task);
        o.task_id = task;
        o.wait_for_lock = 1;
        o.progress = on_progress;
        o.progress_opaque = &prog;
        t0 = drv_mono_ms();
        prog.last_ms = t0;
        if (drv_plan_run(conn, plan, &o, &res)) {
                fprintf(stderr, "bench_transforms: run: %s\n", res.errmsg);
                exit(1);
        }
        f->s = (double)(drv_mono_ms() - t0) / 1000.0;
        drv_plan_release(plan);
        fig_from_prog(f, &prog);
        free(prog.ms);
}

static void native_fig(fig_t *f, const char *sql) {
        f->s = timed(sql);
        f->first_ms = f->med_ms = f->p99_ms = f->max_ms =
            (int64_t)(f->s * 1000.0);
        f->batches = 1;
}

/* backfill (bf) and copy_rows (cp) by one contender, each on a fresh
 * table; `tag` makes the names unique within the process. */
static void contender(int drover, const char *tag, long rows, long batch,
                      fig_t *bf, fig_t *cp) {
        char t[96], sql[1024], steps[1024];

        snprintf(t, sizeof(t), "bt%d_%s", (int)getpid(), tag);
        make_table(t, rows);
        if (!drover) {
                snprintf(sql, sizeof(sql),
                         "UPDATE %s SET domain = split_part(email, '@', 2)", t);
                native_fig(bf, sql);
        } else {
                snprintf(steps, sizeof(steps),
                         "[{\"op\":\"backfill\",\"table\":\"%s\",\"set\":"
                         "{\"domain\":\"split_part(email, '@', 2)\"},"
                         "\"batch_size\":%ld}]",
                         t, batch);
                run_plan(steps, t, bf);
        }
        /* copy_rows: from a fresh source into a fresh empty table */
        make_table(t, rows);
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE %1$s_to (id bigint PRIMARY KEY, domain text)",
                 t);
        x(sql);
        if (!drover) {
                snprintf(sql, sizeof(sql),
                         "INSERT INTO %1$s_to (id, domain) SELECT id,"
                         " split_part(email, '@', 2) FROM %1$s",
                         t);
                native_fig(cp, sql);
        } else {
                snprintf(steps, sizeof(steps),
                         "[{\"op\":\"copy_rows\",\"from\":\"%1$s\",\"to\":"
                         "\"%1$s_to\",\"key\":\"id\",\"columns\":{\"id\":"
                         "\"id\",\"domain\":\"split_part(email, '@', 2)\"},"
                         "\"batch_size\":%2$ld}]",
                         t, batch);
                snprintf(sql, sizeof(sql), "%s_c", t);
                run_plan(steps, sql, cp);
        }
        snprintf(sql, sizeof(sql), "DROP TABLE %1$s, %1$s_to", t);
        x(sql);
}

static void print_fig(const char *name, const fig_t *f, int comma) {
        printf("\"%s\":{\"s\":%.3f,\"first_ms\":%lld,\"batch_ms_median\":"
               "%lld,\"batch_ms_p99\":%lld,\"batch_ms_max\":%lld,"
               "\"batches\":%lld}%s",
               name, f->s, (long long)f->first_ms, (long long)f->med_ms,
               (long long)f->p99_ms, (long long)f->max_ms,
               (long long)f->batches, comma ? "," : "");
}

static int cmp_fig(const void *a, const void *b) {
        double x1 = ((const fig_t *)a)->s, x2 = ((const fig_t *)b)->s;

        return (x1 > x2) - (x1 < x2);
}

/* The figure of the median time (its batch times come with it). */
static fig_t median(fig_t *v, int n) {
        int64_t worst = 0;
        fig_t m;
        int i;

        for (i = 0; i < n; i++)
                if (v[i].max_ms > worst)
                        worst = v[i].max_ms;
        qsort(v, (size_t)n, sizeof(*v), cmp_fig);
        m = v[n / 2];
        m.max_ms = worst; /* the longest batch over every repetition */
        return m;
}

static void print_op(const char *name, fig_t *nat, fig_t *drv, int reps) {
        double r[16];
        fig_t n, d;
        int i;

        for (i = 0; i < reps; i++) /* per repetition, before sorting */
                r[i] = nat[i].s / drv[i].s;
        n = median(nat, reps), d = median(drv, reps);
        printf("\"%s\":{\"limit_s\":%.3f,\"drover_s\":%.3f,\"ratio\":%.3f,"
               "\"max_batch_ms\":%lld,",
               name, n.s, d.s, n.s / d.s, (long long)d.max_ms);
        print_fig("native", &n, 1);
        print_fig("drover", &d, 1);
        printf("\"ratios\":[");
        for (i = 0; i < reps; i++)
                printf("%s%.3f", i ? "," : "", r[i]);
        printf("]}");
}

int main(int argc, char **argv) {
        const char *url = getenv("DATABASE_URL"), *only = NULL;
        long rows = 1000000, batch = 5000;
        int i, reps = 3;
        char errstr[512], tag[32];
        fig_t bf[2][16], cp[2][16];

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick"))
                        rows = 100000;
                else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
                        rows = atol(argv[++i]);
                else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
                        batch = atol(argv[++i]);
                else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
                        reps = atoi(argv[++i]);
                else if (!strcmp(argv[i], "--only") && i + 1 < argc)
                        only = argv[++i];
                else {
                        fprintf(stderr,
                                "bench_transforms: unknown option "
                                "\"%s\"\n",
                                argv[i]);
                        return 2;
                }
        }
        if (reps < 1 || reps > 16 || rows < 1 || batch < 1 ||
            (only && strcmp(only, "native") && strcmp(only, "drover"))) {
                fprintf(stderr, "bench_transforms: --reps 1..16, --rows and"
                                " --batch > 0, --only native|drover\n");
                return 2;
        }
        if (drv_db_connect(url, &conn, errstr, sizeof(errstr)) ||
            drv_db_migrate(conn, errstr, sizeof(errstr))) {
                fprintf(stderr, "bench_transforms: %s\n", errstr);
                return 69;
        }
        x("SET client_min_messages = warning");
        if (only) {
                int d = !strcmp(only, "drover");

                contender(d, only, rows, batch, &bf[0][0], &cp[0][0]);
                printf("{\"bench\":\"transforms\",\"rows\":%ld,\"batch\":%ld,"
                       "\"contender\":\"%s\",",
                       rows, batch, only);
                print_fig("backfill", &bf[0][0], 1);
                print_fig("copy_rows", &cp[0][0], 0);
                printf("}\n");
                PQfinish(conn);
                return 0;
        }
        for (i = 0; i < reps; i++) { /* order alternates: N D, D N, ... */
                int first = i % 2, k;

                for (k = 0; k < 2; k++) {
                        int d = k ? !first : first;

                        snprintf(tag, sizeof(tag), "%s%d", d ? "d" : "n", i);
                        contender(d, tag, rows, batch, &bf[d][i], &cp[d][i]);
                }
        }
        printf("{\"bench\":\"transforms\",\"rows\":%ld,\"batch\":%ld,"
               "\"reps\":%d,\"fresh_tables\":true,",
               rows, batch, reps);
        print_op("backfill", bf[0], bf[1], reps);
        printf(",");
        print_op("copy_rows", cp[0], cp[1], reps);
        printf(",\"peer\":{\"name\":\"pgroll\",\"available\":false,"
               "\"reason\":\"go module proxy refuses github.com/xataio/"
               "pgroll (403)\"}}\n");
        PQfinish(conn);
        return 0;
}
