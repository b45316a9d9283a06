/*
 * The local catalog: refs resolve case-insensitively with defaults,
 * unknown and invalid plans are told apart, new files are picked up on a
 * miss, a large unchanged catalog is not re-parsed, duplicates are
 * refused, and concurrent resolves are safe.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static const char *fixtures(void) {
        static char path[1024];
        const char *src = getenv("DROVER_SOURCE_DIR");

        snprintf(path, sizeof(path), "%s/tests/fixtures/catalog",
                 src ? src : "../..");
        return path;
}

static void test_fixture_catalog_resolves(void **state) {
        drv_catalog_conf_t conf = {.dir = fixtures()};
        char errstr[512];
        drv_catalog_t *cat = drv_catalog_new(&conf, errstr, sizeof(errstr));
        drv_plan_t *plan, *again;

        (void)state;
        assert_non_null(cat);
        assert_int_equal(drv_catalog_resolve(cat,
                                             "customer-dataset-v2-migration",
                                             &plan, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(plan->dataset, "customer");
        assert_int_equal(drv_catalog_resolve(
                             cat,
                             "Component:Default/Customer-Dataset-V2-Migration",
                             &again, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_ptr_equal(plan, again); /* one shared, refcounted plan */
        drv_plan_release(again);
        assert_int_equal(drv_catalog_resolve(cat,
                                             "inventory-dataset-v3-migration",
                                             &again, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(again->dataset, "inventory");
        drv_plan_release(again);

        assert_int_equal(drv_catalog_resolve(cat, "no-such-plan", &again,
                                             errstr, sizeof(errstr)),
                         DRV_ERR_UNKNOWN_PLAN);
        assert_null(again);
        assert_non_null(strstr(errstr, "component:default/no-such-plan"));
        /* a component that is not a plan is not a plan */
        assert_int_equal(drv_catalog_resolve(cat, "source-dataset", &again,
                                             errstr, sizeof(errstr)),
                         DRV_ERR_UNKNOWN_PLAN);
        assert_int_equal(drv_catalog_resolve(cat, "broken-dataset-migration",
                                             &again, errstr, sizeof(errstr)),
                         DRV_ERR_INVALID_PLAN);
        assert_non_null(strstr(errstr, "broken-dataset-migration.yaml:15: "));
        assert_non_null(strstr(errstr, "unknown op \"truncate_everything\""));
        assert_int_equal(drv_catalog_resolve(cat, "bad ref!", &again, errstr,
                                             sizeof(errstr)),
                         DRV_ERR_UNKNOWN_PLAN);
        drv_catalog_destroy(cat);
        /* the plan outlives the catalog while referenced */
        assert_string_equal(plan->steps[1].fingerprint,
                            plan->steps[1].fingerprint);
        assert_int_equal(plan->steps_cnt, 3);
        drv_plan_release(plan);
        drv_catalog_destroy(NULL);
}

static void write_file(const char *path, const char *name, const char *ds) {
        FILE *fp = fopen(path, "w");

        assert_non_null(fp);
        fprintf(fp,
                "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
                "metadata: {name: %s}\nspec:\n  type: migration-plan\n"
                "  dataset: %s\n  schemaVersion: {from: 1, to: 2}\n"
                "  steps: [{op: drop_column, table: t, column: c}]\n",
                name, ds);
        fclose(fp);
}

static void test_new_files_duplicates_and_bad_yaml(void **state) {
        char dir[] = "/tmp/drv-catalog-XXXXXX", path[256], errstr[512];
        drv_catalog_conf_t conf = {.dir = dir, .cache_ttl_ms = 600000};
        drv_catalog_t *cat;
        drv_plan_t *plan;
        FILE *fp;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/a.yaml", dir);
        write_file(path, "p1", "one");
        assert_non_null(cat = drv_catalog_new(&conf, errstr, sizeof(errstr)));
        assert_int_equal(
            drv_catalog_resolve(cat, "p2", &plan, errstr, sizeof(errstr)),
            DRV_ERR_UNKNOWN_PLAN);
        snprintf(path, sizeof(path), "%s/sub", dir);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof(path), "%s/sub/b.yml", dir);
        write_file(path, "p2", "two");
        snprintf(path, sizeof(path), "%s/sub/broken.yaml", dir);
        assert_non_null(fp = fopen(path, "w"));
        fputs("a: [\n", fp);
        fclose(fp);
        sleep_ms(1100); /* a miss rescans at most once a second */
        assert_int_equal(
            drv_catalog_resolve(cat, "p2", &plan, errstr, sizeof(errstr)),
            DRV_OK);
        assert_string_equal(plan->dataset, "two");
        drv_plan_release(plan);
        snprintf(path, sizeof(path), "%s/sub/c.yaml", dir);
        write_file(path, "p1", "again");
        sleep_ms(1100);
        assert_int_equal(
            drv_catalog_resolve(cat, "p3", &plan, errstr, sizeof(errstr)),
            DRV_ERR_UNKNOWN_PLAN);
        assert_non_null(strstr(errstr, "1 file(s) failed to parse"));
        assert_non_null(strstr(errstr, "broken.yaml:2: yaml:"));
        assert_int_equal(
            drv_catalog_resolve(cat, "p1", &plan, errstr, sizeof(errstr)),
            DRV_ERR_INVALID_PLAN);
        assert_non_null(
            strstr(errstr, "duplicate entity ref component:default/p1"));
        drv_catalog_destroy(cat);
        snprintf(path, sizeof(path), "rm -rf '%s'", dir);
        assert_int_equal(system(path), 0);
}

/* n plans p<first>..p<first+n-1> of dataset ds, as one multi-document file */
static void write_plans(const char *path, int first, int n, const char *ds) {
        FILE *fp = fopen(path, "w");
        int i;

        assert_non_null(fp);
        for (i = first; i < first + n; i++)
                fprintf(fp,
                        "---\napiVersion: backstage.io/v1alpha1\n"
                        "kind: Component\nmetadata: {name: p%d}\nspec:\n"
                        "  type: migration-plan\n  dataset: %s\n"
                        "  schemaVersion: {from: 1, to: 2}\n"
                        "  steps: [{op: drop_column, table: t, column: c}]\n",
                        i, ds);
        fclose(fp);
}

/* A miss (after the once-a-second limit) checks the directory; then the
 * counters are as given, and p3999 resolves (a new reference). */
static drv_plan_t *miss_then_p3999(drv_catalog_t *cat, uint64_t fetches,
                                   uint64_t revalidated) {
        char errstr[512];
        drv_catalog_stats_t st;
        drv_plan_t *plan;

        sleep_ms(1100);
        assert_int_equal(
            drv_catalog_resolve(cat, "p4000", &plan, errstr, sizeof(errstr)),
            DRV_ERR_UNKNOWN_PLAN);
        drv_catalog_stats(cat, &st);
        assert_int_equal(st.fetches, fetches);
        assert_int_equal(st.revalidated, revalidated);
        assert_int_equal(
            drv_catalog_resolve(cat, "p3999", &plan, errstr, sizeof(errstr)),
            DRV_OK);
        return plan;
}

static void test_large_catalog_reparsed_only_when_changed(void **state) {
        char dir[] = "/tmp/drv-catalog-XXXXXX", path[256], errstr[512];
        drv_catalog_conf_t conf = {.dir = dir, .cache_ttl_ms = 600000};
        drv_catalog_t *cat;
        drv_plan_t *first, *plan;
        int f;

        (void)state;
        assert_non_null(mkdtemp(dir));
        for (f = 0; f < 20; f++) { /* 4,000 plans */
                snprintf(path, sizeof(path), "%s/f%02d.yaml", dir, f);
                write_plans(path, f * 200, 200, "one");
        }
        assert_non_null(cat = drv_catalog_new(&conf, errstr, sizeof(errstr)));
        assert_int_equal(
            drv_catalog_resolve(cat, "p3999", &first, errstr, sizeof(errstr)),
            DRV_OK);
        /* nothing changed: no re-parse, the very same plan object */
        plan = miss_then_p3999(cat, 2, 1);
        assert_ptr_equal(plan, first);
        drv_plan_release(plan);
        /* the same file rewritten, same size, new content: re-parsed */
        snprintf(path, sizeof(path), "%s/f19.yaml", dir);
        write_plans(path, 19 * 200, 200, "two");
        plan = miss_then_p3999(cat, 3, 1);
        assert_ptr_not_equal(plan, first);
        assert_string_equal(plan->dataset, "two");
        assert_string_equal(first->dataset, "one"); /* still valid */
        drv_plan_release(plan);
        assert_int_equal(
            drv_catalog_resolve(cat, "p0", &plan, errstr, sizeof(errstr)),
            DRV_OK);
        assert_string_equal(plan->dataset, "one");
        drv_plan_release(plan);
        drv_plan_release(first);
        drv_catalog_destroy(cat);
        snprintf(path, sizeof(path), "rm -rf '%s'", dir);
        assert_int_equal(system(path), 0);
}

static void test_bad_configuration(void **state) {
        drv_catalog_conf_t none = {0};
        drv_catalog_conf_t missing = {.dir = "/nonexistent/drover-catalog"};
        char errstr[256];

        (void)state;
        assert_null(drv_catalog_new(&none, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "no catalog"));
        assert_null(drv_catalog_new(NULL, errstr, sizeof(errstr)));
        assert_null(drv_catalog_new(&missing, errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, "/nonexistent/drover-catalog"));
}

static void *resolver(void *opaque) {
        drv_catalog_t *cat = opaque;
        static const char *refs[] = {"customer-dataset-v2-migration",
                                     "orders-dataset-v5-migration",
                                     "inventory-dataset-v3-migration"};
        char errstr[256];
        drv_plan_t *plan;
        long i, bad = 0;

        for (i = 0; i < 3000; i++) {
                if (drv_catalog_resolve(cat, refs[i % 3], &plan, errstr,
                                        sizeof(errstr)) ||
                    plan->steps_cnt < 3)
                        bad++;
                drv_plan_release(plan);
        }
        return (void *)bad;
}

static void test_concurrent_resolves_share_plans_safely(void **state) {
        /* a 5 ms TTL: the index is swapped under the readers' feet */
        drv_catalog_conf_t conf = {.dir = fixtures(), .cache_ttl_ms = 5};
        char errstr[256];
        drv_catalog_t *cat = drv_catalog_new(&conf, errstr, sizeof(errstr));
        drv_catalog_stats_t st;
        pthread_t th[4];
        void *bad;
        int i;

        (void)state;
        assert_non_null(cat);
        for (i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&th[i], NULL, resolver, cat),
                                 0);
        for (i = 0; i < 4; i++) {
                assert_int_equal(pthread_join(th[i], &bad), 0);
                assert_int_equal((long)bad, 0);
        }
        drv_catalog_stats(cat, &st);
        assert_true(st.hits + st.fetches >= 12000);
        drv_catalog_destroy(cat);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fixture_catalog_resolves),
            cmocka_unit_test(test_new_files_duplicates_and_bad_yaml),
            cmocka_unit_test(test_large_catalog_reparsed_only_when_changed),
            cmocka_unit_test(test_bad_configuration),
            cmocka_unit_test(test_concurrent_resolves_share_plans_safely),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
