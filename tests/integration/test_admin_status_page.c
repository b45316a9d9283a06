/*
 * drover - tests/integration/test_admin_status_page.c: the status page in
 * a real browser.  task_runs holds rows (some running, with progress);
 * headless Chromium loads http://.../ and runs its JavaScript; the DOM it
 * dumps must show every row and the running ones' progress bars, a
 * rollback task's kind, and the dataset's repairs from
 * drover.repair_audit.  A
 * screenshot is kept as tests/artifacts/status_page.png.
 */
#include "admin.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static drv_admin_t *admin;
static PGconn *conn;
static char dataset[128];
static char url[256];

static const char *chromium(void) {
        static const char *paths[] = {"/usr/bin/chromium",
                                      "/usr/bin/chromium-browser",
                                      "/usr/bin/google-chrome"};
        size_t i;

        for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

static void seed(void) {
        static const char *ins =
            "INSERT INTO drover.task_runs (task_id, entity_ref, dataset,"
            " status, attempts, started_at, completed_at, steps_total,"
            " steps_done, rows_done, worker, last_error)"
            " VALUES ($1, 'component:default/customer-dataset-v2-migration',"
            " $2, $3, 1, now(), NULL, 4, $4::int, $5::bigint, 'worker-a', "
            " $6::jsonb)";
        static const struct {
                const char *suffix, *status, *done, *rows, *err;
        } rows[] = {
            {"run1", "running", "2", "12345", NULL},
            {"run2", "running", "1", "500", NULL},
            {"done", "done", "4", "100000", NULL},
            {"dead", "dead", "1", "0",
             "{\"class\":\"version_conflict\",\"message\":\"dataset at "
             "version 3\"}"},
        };
        char id[192];
        const char *v[6];
        PGresult *res;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                snprintf(id, sizeof(id), "%s-%s", dataset, rows[i].suffix);
                v[0] = id;
                v[1] = dataset;
                v[2] = rows[i].status;
                v[3] = rows[i].done;
                v[4] = rows[i].rows;
                v[5] = rows[i].err;
                res = PQexecParams(conn, ins, 6, NULL, v, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_COMMAND_OK)
                        fail_msg("insert: %s", PQerrorMessage(conn));
                PQclear(res);
        }
        /* a rollback task of the dataset: its kind shows */
        snprintf(id, sizeof(id), "%s-rollback", dataset);
        v[0] = id;
        v[1] = dataset;
        res = PQexecParams(conn,
                           "INSERT INTO drover.task_runs (task_id, entity_ref,"
                           " dataset, status, attempts, started_at,"
                           " completed_at, steps_total, steps_done) VALUES"
                           " ($1, 'rollback:default/customer-dataset-v2-"
                           "migration', $2, 'done', 1, now(), now(), 3, 3)",
                           2, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                fail_msg("insert: %s", PQerrorMessage(conn));
        PQclear(res);
        /* a repair of the dataset (drover.repair_audit, as
         * transforms/repair.c writes it): version 1 -> 2, two rows
         * cleared */
        v[0] = dataset;
        res = PQexecParams(
            conn,
            "INSERT INTO drover.repair_audit (dataset, who, reason, before,"
            " after) VALUES ($1, 'cli:tester@page', 'fixed by hand, page"
            " test', '{\"version\": 1, \"rows\": [{}, {}]}', '{\"version\":"
            " 2, \"rows\": []}')",
            1, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                fail_msg("insert audit: %s", PQerrorMessage(conn));
        PQclear(res);
}

static int setup(void **state) {
        drv_admin_conf_t ac = {.listen = "127.0.0.1:0"};
        char errstr[512];

        snprintf(dataset, sizeof(dataset), "%s", drv_test_unique("page_ds"));
        assert_int_equal(drv_db_connect(drv_test_database_url(), &conn, errstr,
                                        sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_db_migrate(conn, errstr, sizeof(errstr)), DRV_OK);
        seed();
        ac.database_url = drv_test_database_url();
        if (!(admin = drv_admin_start(&ac, errstr, sizeof(errstr))))
                fail_msg("drv_admin_start: %s", errstr);
        /* the filter keeps other tests' rows off this page */
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/?dataset=%s",
                 drv_admin_port(admin), dataset);
        return 0;
}

static int teardown(void **state) {
        drv_admin_stop(admin);
        PQfinish(conn);
        return 0;
}

/* Run chromium headless with `what` ("--dump-dom" or "--screenshot=F")
 * on url; returns its stdout (malloc'ed). */
static char *run_chromium(const char *what) {
        char cmd[2048], profile[] = "/tmp/drover-chromium-XXXXXX";
        char *out = NULL;
        size_t len = 0, n;
        char buf[4096];
        FILE *fp;

        assert_non_null(mkdtemp(profile));
        snprintf(cmd, sizeof(cmd),
                 "timeout 90 %s --headless --no-sandbox --disable-gpu "
                 "--disable-quic --no-first-run --disable-background-"
                 "networking --disable-component-update --disable-sync "
                 "--disable-dev-shm-usage --user-data-dir=%s "
                 "--window-size=1200,800 --virtual-time-budget=6000 "
                 "%s '%s' 2>/dev/null; rm -rf %s",
                 chromium(), profile, what, url, profile);
        fp = popen(cmd, "r");
        assert_non_null(fp);
        while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
                out = realloc(out, len + n + 1);
                memcpy(out + len, buf, n);
                len += n;
                out[len] = '\0';
        }
        pclose(fp);
        return out ? out : strdup("");
}

static void test_page_shows_rows_and_progress_after_js_ran(void **state) {
        char *dom = run_chromium("--dump-dom");
        char needle[256];

        /* every seeded row, rendered by app.js from /api/migrations */
        snprintf(needle, sizeof(needle), "data-task-id=\"%s-run1\"", dataset);
        if (!strstr(dom, needle))
                fail_msg("no row for run1 in the DOM:\n%.4000s", dom);
        snprintf(needle, sizeof(needle), "data-task-id=\"%s-dead\"", dataset);
        assert_non_null(strstr(dom, needle));
        snprintf(needle, sizeof(needle), "data-task-id=\"%s-done\"", dataset);
        assert_non_null(strstr(dom, needle));
        /* progress bars of the running migrations: steps and rows */
        assert_non_null(strstr(dom, "2/4 steps (50%)"));
        assert_non_null(strstr(dom, "1/4 steps (25%)"));
        assert_non_null(strstr(dom, "width: 50%"));
        assert_non_null(strstr(dom, "12,345"));
        assert_non_null(strstr(dom, "version_conflict: dataset at version 3"));
        assert_non_null(strstr(dom, "5 migrations"));
        /* the rollback task is marked as one */
        assert_non_null(strstr(dom, "plan kind-rollback"));
        assert_non_null(
            strstr(dom, "title=\"rollback task: rollback:default/"));
        assert_null(strstr(dom, "cannot load migrations"));
        /* the repairs table, from /api/repair/audit (filtered by the
         * page's dataset) */
        assert_non_null(strstr(dom, "fixed by hand, page test"));
        assert_non_null(strstr(dom, "cli:tester@page"));
        assert_non_null(strstr(dom, "1 \xe2\x86\x92 2"));
        assert_null(strstr(dom, "cannot load repairs"));
        free(dom);
}

static void test_screenshot_is_kept_as_an_artefact(void **state) {
        char dir[1024], arg[1200], path[1100];
        const char *src = getenv("DROVER_SOURCE_DIR");
        struct stat st;
        char *out;

        snprintf(dir, sizeof(dir), "%s/tests/artifacts", src ? src : ".");
        mkdir(dir, 0755);
        snprintf(path, sizeof(path), "%s/status_page.png", dir);
        unlink(path);
        snprintf(arg, sizeof(arg), "--screenshot=%s", path);
        out = run_chromium(arg);
        free(out);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size > 10000); /* a rendered page, not blank */
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_page_shows_rows_and_progress_after_js_ran),
            cmocka_unit_test(test_screenshot_is_kept_as_an_artefact),
        };
        const char *req = getenv("DROVER_REQUIRE_STACK");

        drv_test_database_url();
        if (!chromium()) {
                fprintf(stderr,
                        "chromium not installed (apt-get install "
                        "chromium): %s\n",
                        req && !strcmp(req, "1") ? "failing" : "skipping");
                return req && !strcmp(req, "1") ? 1 : 77;
        }
        return cmocka_run_group_tests(tests, setup, teardown);
}
