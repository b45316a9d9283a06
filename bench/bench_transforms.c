/*
 * drover - bench/bench_transforms.c: batched steps vs one native statement.
 *
 *   bench_transforms [--rows N] [--batch B] [--quick]     (DATABASE_URL)
 *
 * On identical fresh tables of N rows (default 1,000,000; --quick
 * 100,000): `backfill` through drv_plan_run (range-bounded keyset batches
 * of B, each batch + checkpoint one transaction) against one native
 * UPDATE (the limit), and `copy_rows` against one INSERT ... SELECT.
 * Ratio = native time / drover time (1.0 = as fast as the limit).  The
 * longest batch transaction (row locks held) is measured from the
 * progress callbacks.  Prints one JSON line on stdout.
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
}

typedef struct prog_s {
        int64_t last_ms, max_ms;
} prog_t;

static void on_progress(void *opaque, int step, const char *op, int64_t done,
                        int64_t total) {
        prog_t *p = opaque;
        int64_t now = drv_mono_ms();

        if (p->last_ms && now - p->last_ms > p->max_ms)
                p->max_ms = now - p->last_ms;
        p->last_ms = now;
}

static double run_plan(const char *steps, const char *dataset,
                       int64_t *max_batch_ms) {
        char text[2048], errstr[512], task[64];
        drv_run_opts_t o = {0};
        drv_run_result_t res;
        drv_plan_t *plan;
        prog_t prog = {0, 0};
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
        *max_batch_ms = prog.max_ms;
        drv_plan_release(plan);
        return (double)(drv_mono_ms() - t0) / 1000.0;
}

int main(int argc, char **argv) {
        const char *url = getenv("DATABASE_URL");
        long rows = 1000000, batch = 5000;
        char errstr[512], steps[1024], ds[64], sql[512];
        double nat_bf, drv_bf, nat_cp, drv_cp;
        int64_t max_bf, max_cp;
        int i, pid = (int)getpid();

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick"))
                        rows = 100000;
                else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
                        rows = atol(argv[++i]);
                else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
                        batch = atol(argv[++i]);
        }
        if (drv_db_connect(url, &conn, errstr, sizeof(errstr)) ||
            drv_db_migrate(conn, errstr, sizeof(errstr))) {
                fprintf(stderr, "bench_transforms: %s\n", errstr);
                return 69;
        }
        x("SET client_min_messages = warning");
        snprintf(ds, sizeof(ds), "bt%d", pid);
        /* backfill */
        snprintf(sql, sizeof(sql), "%s_nat", ds);
        make_table(sql, rows);
        snprintf(sql, sizeof(sql), "%s_drv", ds);
        make_table(sql, rows);
        snprintf(sql, sizeof(sql),
                 "UPDATE %s_nat SET domain = split_part(email, '@', 2)", ds);
        nat_bf = timed(sql);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"backfill\",\"table\":\"%s_drv\",\"set\":"
                 "{\"domain\":\"split_part(email, '@', 2)\"},"
                 "\"batch_size\":%ld}]",
                 ds, batch);
        drv_bf = run_plan(steps, ds, &max_bf);
        /* copy_rows: from the backfilled table into fresh empty ones */
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE %1$s_cn (id bigint PRIMARY KEY, domain text);"
                 "CREATE TABLE %1$s_cd (id bigint PRIMARY KEY, domain text)",
                 ds);
        x(sql);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO %1$s_cn (id, domain) SELECT id,"
                 " split_part(email, '@', 2) FROM %1$s_nat",
                 ds);
        nat_cp = timed(sql);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"copy_rows\",\"from\":\"%1$s_drv\",\"to\":"
                 "\"%1$s_cd\",\"key\":\"id\",\"columns\":{\"id\":\"id\","
                 "\"domain\":\"split_part(email, '@', 2)\"},"
                 "\"batch_size\":%2$ld}]",
                 ds, batch);
        snprintf(sql, sizeof(sql), "%s_c", ds);
        drv_cp = run_plan(steps, sql, &max_cp);
        printf("{\"bench\":\"transforms\",\"rows\":%ld,\"batch\":%ld,"
               "\"backfill\":{\"limit_s\":%.3f,\"drover_s\":%.3f,"
               "\"ratio\":%.3f,\"max_batch_ms\":%lld},"
               "\"copy_rows\":{\"limit_s\":%.3f,\"drover_s\":%.3f,"
               "\"ratio\":%.3f,\"max_batch_ms\":%lld},"
               "\"peer\":{\"name\":\"pgroll\",\"available\":false,"
               "\"reason\":\"go module proxy refuses github.com/xataio/"
               "pgroll (403)\"}}\n",
               rows, batch, nat_bf, drv_bf, nat_bf / drv_bf, (long long)max_bf,
               nat_cp, drv_cp, nat_cp / drv_cp, (long long)max_cp);
        snprintf(sql, sizeof(sql),
                 "DROP TABLE %1$s_nat, %1$s_drv, %1$s_cn, %1$s_cd", ds);
        x(sql);
        PQfinish(conn);
        return 0;
}
