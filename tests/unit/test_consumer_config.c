/*
 * drover - tests/unit/test_consumer_config.c: drover.yaml, environment
 * and flags; errors name file:line.
 */
#include "testutil.h"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write `text` to a temp file; the path into path[64]. */
static void write_yaml(char path[64], const char *text) {
        int fd;

        snprintf(path, 64, "/tmp/drover-config-XXXXXX");
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
        close(fd);
}

static drv_err_t load(const char *text, drv_config_t **confp, char *errstr,
                      size_t errstr_size, char path[64]) {
        drv_err_t err;

        write_yaml(path, text);
        *confp = drv_config_new();
        assert_non_null(*confp);
        err = drv_config_load_file(*confp, path, errstr, errstr_size);
        unlink(path);
        return err;
}

static void test_defaults_work_against_the_local_stack(void **state) {
        drv_config_t *conf = drv_config_new();
        char errstr[256];

        (void)state;
        assert_int_equal(drv_config_finish(conf, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(conf->brokers, "127.0.0.1:9092");
        assert_string_equal(conf->topic, "dataset-migrations");
        assert_string_equal(conf->status_topic, "dataset-migrations.status");
        assert_string_equal(conf->dlq_topic, "dataset-migrations.dlq");
        assert_string_equal(conf->group, "drover");
        assert_string_equal(conf->assignment_strategy, "cooperative-sticky");
        assert_string_equal(conf->http_listen, "127.0.0.1:9464");
        assert_int_equal(conf->concurrency, 4);
        assert_int_equal(conf->commit_interval_ms, 100);
        assert_int_equal(conf->drain_timeout_ms, 30000);
        assert_non_null(strstr(conf->instance, "-0"));
        assert_int_equal(conf->backoff.max_attempts, 8);
        drv_config_destroy(conf);
        drv_config_destroy(NULL);
}

static void test_file_sets_nested_and_passthrough_keys(void **state) {
        drv_config_t *conf;
        char errstr[256], path[64];

        (void)state;
        assert_int_equal(load("brokers: 10.0.0.1:9092\n"
                              "concurrency: 7\n"
                              "allow_sql: true\n"
                              "backoff:\n"
                              "  initial_ms: 50\n"
                              "  multiplier: 1.5\n"
                              "http:\n"
                              "  listen: \"\"\n"
                              "kafka:\n"
                              "  max.poll.interval.ms: 6000\n"
                              "kafka.session.timeout.ms: 7000\n"
                              "kafka.partitioner: murmur2_random\n",
                              &conf, errstr, sizeof(errstr), path),
                         DRV_OK);
        assert_string_equal(conf->brokers, "10.0.0.1:9092");
        assert_int_equal(conf->concurrency, 7);
        assert_int_equal(conf->allow_sql, 1);
        assert_int_equal(conf->backoff.initial_ms, 50);
        assert_true(conf->backoff.multiplier > 1.49 &&
                    conf->backoff.multiplier < 1.51);
        assert_string_equal(conf->http_listen, "");
        assert_string_equal(drv_config_kafka_get(conf, "max.poll.interval.ms"),
                            "6000");
        assert_string_equal(drv_config_kafka_get(conf, "session.timeout.ms"),
                            "7000");
        /* the partitioner drover sets anyway is accepted */
        assert_string_equal(drv_config_kafka_get(conf, "partitioner"),
                            "murmur2_random");
        assert_null(drv_config_kafka_get(conf, "linger.ms"));
        drv_config_destroy(conf);
}

/* Each bad file: the error must name file:line and the culprit. */
static void test_bad_files_name_file_and_line(void **state) {
        static const struct {
                const char *yaml;
                int line;
                const char *needle;
        } cases[] = {
            {"topic: t\nconcurency: 4\n", 2,
             "unknown configuration key "
             "\"concurency\""},
            {"concurrency: many\n", 1, "invalid value \"many\""},
            {"concurrency: 0\n", 1, "expected a number from 1"},
            {"topic: t\nkafka:\n  no.such.property: 1\n", 3,
             "no.such.property"},
            {"kafka.max.poll.interval.ms: soon\n", 1, "max.poll.interval.ms"},
            {"allow_sql: maybe\n", 1, "expected true or false"},
            {"assignment_strategy: roundrobin\n", 1, "cooperative-sticky"},
            {"kafka:\n  partition.assignment.strategy: range\n", 2,
             "kafka.partition.assignment.strategy is set by drover: use "
             "\"assignment_strategy\""},
            {"kafka.isolation.level: read_uncommitted\n", 1,
             "set by drover for exactly-once"},
            {"kafka:\n  group.id: other\n", 2, "use \"group\""},
            {"kafka:\n  partitioner: consistent_random\n", 2,
             "kafka.partitioner is set by drover (\"murmur2_random\""},
            {"brokers: [a, b]\n", 1, "a list is not a valid value"},
            {"topic: t\n  bad: indentation\n", 2, ""},
            {"throttle:\n  max_replica_lag_ms: -1\n", 2,
             "\"throttle.max_replica_lag_ms\" (expected a number from 0 to "
             "86400000)"},
            {"throttle: {max_active_connections: lots}\n", 1,
             "\"throttle.max_active_connections\""},
            {"throttle:\n  query: \"DELETE FROM t\"\n", 2,
             "invalid value for \"throttle.query\": must be a single "
             "SELECT"},
            {"throttle:\n  query: \"SELECT 1; SELECT 2\"\n", 2,
             "invalid value for \"throttle.query\""},
            {"throttle:\n  max_lag_ms: 5\n", 2,
             "unknown configuration key \"throttle.max_lag_ms\""},
        };
        char errstr[512], path[64], want[96];
        drv_config_t *conf;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                assert_int_equal(
                    load(cases[i].yaml, &conf, errstr, sizeof(errstr), path),
                    DRV_ERR_CONFIG);
                snprintf(want, sizeof(want), "%s:%d: ", path, cases[i].line);
                if (strncmp(errstr, want, strlen(want)))
                        fail_msg("case %zu: \"%s\" does not start with "
                                 "\"%s\"",
                                 i, errstr, want);
                if (!strstr(errstr, cases[i].needle))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, errstr,
                                 cases[i].needle);
                assert_null(strchr(errstr, '\n'));
                drv_config_destroy(conf);
        }
}

static void test_missing_file_is_an_io_error(void **state) {
        drv_config_t *conf = drv_config_new();
        char errstr[256];

        (void)state;
        assert_int_equal(drv_config_load_file(conf, "/nonexistent/drover.yaml",
                                              errstr, sizeof(errstr)),
                         DRV_ERR_IO);
        assert_non_null(strstr(errstr, "/nonexistent/drover.yaml"));
        drv_config_destroy(conf);
}

static void test_environment_wins_over_file(void **state) {
        drv_config_t *conf;
        char errstr[256], path[64];

        (void)state;
        assert_int_equal(load("topic: from-file\ngroup: g-file\n", &conf,
                              errstr, sizeof(errstr), path),
                         DRV_OK);
        setenv("DROVER_TOPIC", "from-env", 1);
        setenv("DROVER_HTTP_LISTEN", "", 1);
        setenv("DROVER_INSTANCE", "w-7", 1);
        assert_int_equal(drv_config_load_env(conf, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_config_finish(conf, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(conf->topic, "from-env");
        assert_string_equal(conf->status_topic, "from-env.status");
        assert_string_equal(conf->group, "g-file");
        assert_string_equal(conf->http_listen, "");
        assert_string_equal(conf->instance, "w-7");
        setenv("DROVER_CONCURRENCY", "x", 1);
        assert_int_equal(drv_config_load_env(conf, errstr, sizeof(errstr)),
                         DRV_ERR_CONFIG);
        assert_non_null(strstr(errstr, "environment DROVER_CONCURRENCY"));
        unsetenv("DROVER_CONCURRENCY");
        unsetenv("DROVER_TOPIC");
        unsetenv("DROVER_HTTP_LISTEN");
        unsetenv("DROVER_INSTANCE");
        drv_config_destroy(conf);
}

static void test_passthrough_applies_to_librdkafka(void **state) {
        drv_config_t *conf = drv_config_new();
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        char errstr[256], val[64];
        size_t sz = sizeof(val);

        (void)state;
        assert_int_equal(drv_config_set(conf, "kafka.fetch.wait.max.ms", "42",
                                        "flag -X", errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(
            drv_config_apply_kafka(conf, kc, errstr, sizeof(errstr)), DRV_OK);
        assert_int_equal(rd_kafka_conf_get(kc, "fetch.wait.max.ms", val, &sz),
                         RD_KAFKA_CONF_OK);
        assert_string_equal(val, "42");
        assert_int_equal(drv_config_set(conf, "status_topic",
                                        "dataset-migrations", "flag --set",
                                        errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_config_finish(conf, errstr, sizeof(errstr)),
                         DRV_ERR_CONFIG);
        rd_kafka_conf_destroy(kc);
        drv_config_destroy(conf);
}

/* group.instance.id only for an instance someone configured: never for
 * the <hostname>-0 default (a random pod name under a Deployment). */
static void test_static_membership_follows_explicit_instance(void **state) {
        static const struct {
                const char *yaml;
                drv_err_t err;
                int static_member;
        } cases[] = {
            {"topic: t\n", DRV_OK, 0},
            {"instance: w-1\n", DRV_OK, 0}, /* off unless asked for */
            {"instance: w-1\nstatic_membership: auto\n", DRV_OK, 1},
            {"instance: w-1\nstatic_membership: off\n", DRV_OK, 0},
            {"instance: w-1\nstatic_membership: on\n", DRV_OK, 1},
            {"static_membership: auto\n", DRV_OK, 0},
            {"static_membership: on\n", DRV_ERR_CONFIG, 0},
        };
        drv_config_t *conf;
        char errstr[256], path[64];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                assert_int_equal(
                    load(cases[i].yaml, &conf, errstr, sizeof(errstr), path),
                    DRV_OK);
                assert_int_equal(
                    drv_config_finish(conf, errstr, sizeof(errstr)),
                    cases[i].err);
                if (cases[i].err)
                        assert_non_null(strstr(errstr, "DROVER_INSTANCE"));
                else
                        assert_int_equal(conf->static_member,
                                         cases[i].static_member);
                drv_config_destroy(conf);
        }
        conf = drv_config_new();
        assert_int_equal(drv_config_set(conf, "static_membership", "yes",
                                        "flag --set", errstr, sizeof(errstr)),
                         DRV_ERR_CONFIG);
        assert_non_null(strstr(errstr, "auto, on or off"));
        assert_int_equal(drv_config_set(conf, "kafka.group.instance.id", "x",
                                        "flag -X", errstr, sizeof(errstr)),
                         DRV_ERR_CONFIG);
        assert_non_null(strstr(errstr, "static_membership"));
        drv_config_destroy(conf);
}

/* staging.database_url: unset by default, from the file, overridden by
 * DROVER_STAGING_DATABASE_URL; the production database is refused as
 * the staging one. */
static void test_staging_database_url(void **state) {
        drv_config_t *conf = drv_config_new();
        char errstr[256], path[64];

        (void)state;
        assert_null(conf->staging_database_url);
        drv_config_destroy(conf);
        assert_int_equal(load("staging:\n  database_url: postgresql://s/a\n",
                              &conf, errstr, sizeof(errstr), path),
                         DRV_OK);
        assert_string_equal(conf->staging_database_url, "postgresql://s/a");
        setenv("DROVER_STAGING_DATABASE_URL", "postgresql://s/b", 1);
        assert_int_equal(drv_config_load_env(conf, errstr, sizeof(errstr)),
                         DRV_OK);
        unsetenv("DROVER_STAGING_DATABASE_URL");
        assert_string_equal(conf->staging_database_url, "postgresql://s/b");
        assert_int_equal(drv_config_finish(conf, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_config_set(conf, "staging.database_url",
                                        conf->database_url, "flag --set",
                                        errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_config_finish(conf, errstr, sizeof(errstr)),
                         DRV_ERR_CONFIG);
        assert_non_null(strstr(errstr, "staging.database_url must name "
                                       "another database"));
        drv_config_destroy(conf);
}

/* The shipped example must load as it is. */
static void test_throttle_block(void **state) {
        drv_config_t *conf = drv_config_new();
        char errstr[512], path[64];

        (void)state;
        /* off by default */
        assert_false(drv_throttle_is_set(&conf->throttle));
        drv_config_destroy(conf);
        assert_int_equal(load("throttle: {max_replica_lag_ms: 1500,"
                              " max_active_connections: 40,"
                              " query: \"SELECT paused FROM ops.flags\"}\n",
                              &conf, errstr, sizeof(errstr), path),
                         DRV_OK);
        assert_int_equal(conf->throttle.max_replica_lag_ms, 1500);
        assert_int_equal(conf->throttle.max_active_connections, 40);
        assert_string_equal(conf->throttle.query,
                            "SELECT paused FROM ops.flags");
        assert_true(drv_throttle_is_set(&conf->throttle));
        drv_config_destroy(conf);
}

static void test_example_config_loads(void **state) {
        const char *src = getenv("DROVER_SOURCE_DIR");
        drv_config_t *conf = drv_config_new();
        char path[1024], errstr[512];

        (void)state;
        snprintf(path, sizeof(path), "%s/examples/drover.yaml",
                 src ? src : ".");
        if (drv_config_load_file(conf, path, errstr, sizeof(errstr)))
                fail_msg("%s", errstr);
        assert_int_equal(drv_config_finish(conf, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(conf->assignment_strategy, "cooperative-sticky");
        assert_string_equal(drv_config_kafka_get(conf, "session.timeout.ms"),
                            "45000");
        drv_config_destroy(conf);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults_work_against_the_local_stack),
            cmocka_unit_test(test_file_sets_nested_and_passthrough_keys),
            cmocka_unit_test(test_bad_files_name_file_and_line),
            cmocka_unit_test(test_missing_file_is_an_io_error),
            cmocka_unit_test(test_environment_wins_over_file),
            cmocka_unit_test(test_passthrough_applies_to_librdkafka),
            cmocka_unit_test(test_static_membership_follows_explicit_instance),
            cmocka_unit_test(test_staging_database_url),
            cmocka_unit_test(test_throttle_block),
            cmocka_unit_test(test_example_config_loads),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
