/*
 * drover - tests/integration/test_admin_endpoints.c: every endpoint of the
 * admin server against the real PostgreSQL and Kafka the scripts start,
 * driven over HTTP with libcurl.
 */
#include "admin.h"
#include "testutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "s3cret-admin-token-for-tests"

static drv_admin_t *admin;
static char base[64];
static char topic[128];
static char dataset_a[128], dataset_b[128];
static PGconn *conn;

/*
 * ------------------------------------------------------------------------
 * HTTP client
 * ------------------------------------------------------------------------
 */
typedef drv_test_resp_t resp_t;

/* method "GET"/"POST"/...; auth NULL for none; body NULL for none. */
static resp_t http(const char *method, const char *path, const char *auth,
                   const char *body, size_t body_len) {
        char url[512];

        snprintf(url, sizeof(url), "%s%s", base, path);
        return drv_test_http(method, url, auth, body, body_len);
}

static resp_t get(const char *path) {
        return http("GET", path, NULL, NULL, 0);
}

static resp_t post(const char *auth, const char *body) {
        return http("POST", "/api/tasks", auth, body, strlen(body));
}

/* The body as JSON (caller decrefs); fails the test if it is not. */
static json_t *body_json(const resp_t *r) {
        json_error_t jerr;
        json_t *j = json_loads(r->body, 0, &jerr);

        if (!j)
                fail_msg("not json: %s", r->body);
        return j;
}

/*
 * ------------------------------------------------------------------------
 * Fixtures
 * ------------------------------------------------------------------------
 */
static void seed_task_runs(void) {
        static const char *ins =
            "INSERT INTO drover.task_runs (task_id, entity_ref, dataset,"
            " status, attempts, started_at, completed_at, steps_total,"
            " steps_done, rows_done, worker, kafka_partition, kafka_offset)"
            " VALUES ($1, 'component:default/plan-x', $2, $3, 1, now(),"
            " CASE WHEN $3 = 'running' THEN NULL ELSE now() END, 4, $4::int,"
            " $5::bigint, 'w-0', 0, 1)";
        char id[192];
        const char *v[5];
        int i;

        for (i = 0; i < 3; i++) {
                snprintf(id, sizeof(id), "%s-t%d", dataset_a, i);
                v[0] = id;
                v[1] = dataset_a;
                v[2] = i == 0 ? "running" : "done";
                v[3] = i == 0 ? "2" : "4";
                v[4] = i == 0 ? "12345" : "100";
                drv_test_exec(conn, ins, 5, v);
        }
        snprintf(id, sizeof(id), "%s-t0", dataset_b);
        v[0] = id;
        v[1] = dataset_b;
        v[2] = "dead";
        v[3] = "1";
        v[4] = "0";
        drv_test_exec(conn, ins, 5, v);
}

static int setup(void **state) {
        drv_admin_conf_t ac = {0};
        char errstr[512];

        snprintf(topic, sizeof(topic), "%s", drv_test_unique("admin-tasks"));
        snprintf(dataset_a, sizeof(dataset_a), "%s", drv_test_unique("ds_a"));
        snprintf(dataset_b, sizeof(dataset_b), "%s", drv_test_unique("ds_b"));
        assert_int_equal(drv_db_connect(drv_test_database_url(), &conn, errstr,
                                        sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_db_migrate(conn, errstr, sizeof(errstr)), DRV_OK);
        seed_task_runs();
        drv_test_create_topic(topic, 3);
        ac.listen = "127.0.0.1:0";
        ac.token = TOKEN;
        ac.database_url = drv_test_database_url();
        ac.brokers = drv_test_brokers();
        ac.topic = topic;
        admin = drv_admin_start(&ac, errstr, sizeof(errstr));
        if (!admin)
                fail_msg("drv_admin_start: %s", errstr);
        snprintf(base, sizeof(base), "http://127.0.0.1:%d",
                 drv_admin_port(admin));
        return 0;
}

static int teardown(void **state) {
        drv_admin_stop(admin);
        PQfinish(conn);
        return 0;
}

/*
 * ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------
 */
static void test_healthz_answers_ok(void **state) {
        resp_t r = get("/healthz");

        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"ok\""));
        free(r.body);
}

static void test_readyz_follows_assignment_and_database(void **state) {
        resp_t r;

        drv_admin_set_ready(0, 1);
        r = get("/readyz");
        assert_int_equal(r.status, 503);
        assert_non_null(strstr(r.body, "\"assignment\":false"));
        free(r.body);
        drv_admin_set_ready(1, 1);
        r = get("/readyz");
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"ready\":true"));
        free(r.body);
        drv_admin_set_ready(1, 0); /* the worker lost its database */
        r = get("/readyz");
        assert_int_equal(r.status, 503);
        free(r.body);
}

static void test_metrics_are_prometheus_text(void **state) {
        resp_t r;

        drv_metrics_reset();
        drv_metrics_task("done", 1.5);
        drv_metrics_set_lag(topic, 2, 42);
        r = get("/metrics");
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.content_type, "text/plain"));
        assert_non_null(strstr(r.body, "# TYPE drover_tasks_total counter\n"));
        assert_non_null(
            strstr(r.body, "drover_tasks_total{outcome=\"done\"} 1\n"));
        assert_non_null(strstr(r.body, "partition=\"2\"} 42\n"));
        free(r.body);
}

/* Rows of /api/migrations for `query`; asserts 200. */
static json_t *migrations(const char *query) {
        char path[512];
        json_t *j, *rows;
        resp_t r;

        snprintf(path, sizeof(path), "/api/migrations%s", query);
        r = get(path);
        if (r.status != 200)
                fail_msg("%s: %ld %s", path, r.status, r.body);
        j = body_json(&r);
        free(r.body);
        rows = json_incref(json_object_get(j, "migrations"));
        json_decref(j);
        assert_true(json_is_array(rows));
        return rows;
}

static void test_migrations_lists_and_filters_rows(void **state) {
        char q[256];
        json_t *rows, *first;

        snprintf(q, sizeof(q), "?dataset=%s", dataset_a);
        rows = migrations(q);
        assert_int_equal(json_array_size(rows), 3);
        first = json_array_get(rows, 0); /* running rows come first */
        assert_string_equal(json_string_value(json_object_get(first, "status")),
                            "running");
        assert_int_equal(
            json_integer_value(json_object_get(first, "steps_done")), 2);
        assert_int_equal(
            json_integer_value(json_object_get(first, "rows_done")), 12345);
        json_decref(rows);

        snprintf(q, sizeof(q), "?dataset=%s&status=done", dataset_a);
        rows = migrations(q);
        assert_int_equal(json_array_size(rows), 2);
        json_decref(rows);

        snprintf(q, sizeof(q), "?dataset=%s&status=dead", dataset_b);
        rows = migrations(q);
        assert_int_equal(json_array_size(rows), 1);
        json_decref(rows);
}

static void test_migrations_filters_are_bound_not_spliced(void **state) {
        json_t *rows;
        resp_t r;

        rows = migrations("?dataset=x%27%20OR%20%271%27%3D%271");
        assert_int_equal(json_array_size(rows), 0);
        json_decref(rows);
        rows = migrations("?dataset=x%27%3B%20DROP%20TABLE%20drover.task_runs"
                          "%3B%20--");
        assert_int_equal(json_array_size(rows), 0);
        json_decref(rows);
        rows = migrations("?limit=1");
        assert_int_equal(json_array_size(rows), 1); /* table still there */
        json_decref(rows);
        r = get("/api/migrations?limit=0");
        assert_int_equal(r.status, 400);
        free(r.body);
        r = get("/api/migrations?dataset=%01bad");
        assert_int_equal(r.status, 400);
        free(r.body);
}

static void test_submit_requires_the_bearer_token(void **state) {
        const char *body = "{\"queue\":null,\"payload\":{\"entity_ref\":"
                           "\"component:default/x\",\"dataset\":\"d\"}}";
        resp_t r;

        r = post(NULL, body);
        assert_int_equal(r.status, 401);
        assert_non_null(strstr(r.body, "\"error\""));
        free(r.body);
        r = post("Bearer wrong-token", body);
        assert_int_equal(r.status, 401);
        free(r.body);
        r = post("Bearer " TOKEN "x", body);
        assert_int_equal(r.status, 401);
        free(r.body);
        r = post("Basic " TOKEN, body);
        assert_int_equal(r.status, 401);
        free(r.body);
}

static void test_submit_rejects_bad_input_with_json_errors(void **state) {
        static const char *bad[] = {
            "",
            "not json",
            "[]",
            "{\"payload\":{\"dataset\":\"d\"}}",
            "{\"payload\":{\"entity_ref\":\"component:default/x\"}}",
            "{\"payload\":{\"entity_ref\":\"c:x\",\"dataset\":5}}",
            "{\"payload\":{\"entity_ref\":\"c:x\",\"dataset\":\"d\","
            "\"dry_run\":\"yes\"}}",
            "{\"payload\":{\"entity_ref\":\"c:x\",\"dataset\":\"d\","
            "\"params\":{\"k\":1}}}",
            "{\"queue\":\"some-other-topic\",\"payload\":{\"entity_ref\":"
            "\"c:x\",\"dataset\":\"d\"}}",
            "{\"payload\":{\"entity_ref\":\"c:\xff\xfe\",\"dataset\":\"d\"}}",
            "{\"payload\":{\"entity_ref\":\"c:x\",\"dataset\":\"d\\u0000\"}}",
        };
        json_t *j;
        size_t i;
        resp_t r;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                r = post("Bearer " TOKEN, bad[i]);
                if (r.status != 400)
                        fail_msg("body #%zu: %ld %s", i, r.status, r.body);
                j = body_json(&r);
                assert_true(json_is_string(json_object_get(j, "error")));
                json_decref(j);
                free(r.body);
        }
}

static void test_submit_caps_the_body_size(void **state) {
        size_t n = 200 * 1024;
        char *big = malloc(n + 1);
        resp_t r;

        memset(big, ' ', n);
        big[n] = '\0';
        big[0] = '{';
        big[n - 1] = '}';
        r = post("Bearer " TOKEN, big);
        assert_int_equal(r.status, 413);
        free(r.body);
        free(big);
}

/* Consume `topic` from the beginning until a record with key `key`;
 * returns a copy of its value (caller frees) in *lenp, or NULL.  The
 * message itself is freed here: rd_kafka_destroy waits for every message
 * of its handle. */
static void *consume_key(const char *key, size_t *lenp) {
        char errstr[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *tp;
        rd_kafka_message_t *msg;
        rd_kafka_t *rk;
        int64_t deadline = drv_mono_ms() + 30000;
        void *value = NULL;
        int p;

        rd_kafka_conf_set(conf, "bootstrap.servers", drv_test_brokers(), errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(conf, "group.id", drv_test_unique("admin-reader"),
                          errstr, sizeof(errstr));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        tp = rd_kafka_topic_partition_list_new(3);
        for (p = 0; p < 3; p++)
                rd_kafka_topic_partition_list_add(tp, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, tp);
        rd_kafka_topic_partition_list_destroy(tp);
        while (!value && drv_mono_ms() < deadline) {
                if (!(msg = rd_kafka_consumer_poll(rk, 500)))
                        continue;
                if (!msg->err && msg->key_len == strlen(key) &&
                    !memcmp(msg->key, key, msg->key_len)) {
                        value = malloc(msg->len);
                        memcpy(value, msg->payload, msg->len);
                        *lenp = msg->len;
                }
                rd_kafka_message_destroy(msg);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return value;
}

/* The task produced under `key`, decoded; its id must be `task_id`. */
static drv_task_t *consume_task(const char *key, const char *task_id) {
        char errstr[256];
        drv_schema_store_t *store;
        drv_task_t *task = NULL;
        size_t len = 0;
        void *value = consume_key(key, &len);

        assert_non_null(value);
        store = drv_schema_store_new(NULL, errstr, sizeof(errstr));
        assert_non_null(store);
        assert_int_equal(
            drv_task_decode(store, value, len, &task, errstr, sizeof(errstr)),
            DRV_OK);
        assert_string_equal(task->task_id, task_id);
        drv_schema_store_destroy(store);
        free(value);
        return task;
}

static void test_submit_produces_a_decodable_task(void **state) {
        char body[512];
        const char *ds = drv_test_unique("ds_submit");
        drv_task_t *task;
        json_t *j;
        resp_t r;

        snprintf(body, sizeof(body),
                 "{\"queue\":\"%s\",\"payload\":{\"entity_ref\":"
                 "\"component:default/customer-dataset-v2-migration\","
                 "\"dataset\":\"%s\",\"dry_run\":true,"
                 "\"params\":{\"region\":\"eu\"}}}",
                 topic, ds);
        r = post("bearer " TOKEN, body);
        if (r.status != 202)
                fail_msg("submit: %ld %s", r.status, r.body);
        j = body_json(&r);
        free(r.body);
        assert_int_equal(
            strlen(json_string_value(json_object_get(j, "task_id"))), 36);

        task =
            consume_task(ds, json_string_value(json_object_get(j, "task_id")));
        assert_string_equal(task->dataset, ds);
        assert_string_equal(task->entity_ref,
                            "component:default/customer-dataset-v2-migration");
        assert_true(task->dry_run);
        assert_string_equal(drv_task_param(task, "region"), "eu");
        drv_task_destroy(task);
        json_decref(j);
}

static void test_submit_answers_503_when_kafka_is_unreachable(void **state) {
        drv_admin_conf_t ac = {.listen = "127.0.0.1:0",
                               .token = TOKEN,
                               .brokers = "127.0.0.1:1",
                               .topic = "dataset-migrations"};
        char errstr[256], saved[64];
        drv_admin_t *down;
        int64_t t0;
        resp_t r;

        down = drv_admin_start(&ac, errstr, sizeof(errstr));
        assert_non_null(down);
        snprintf(saved, sizeof(saved), "%s", base);
        snprintf(base, sizeof(base), "http://127.0.0.1:%d",
                 drv_admin_port(down));
        t0 = drv_mono_ms();
        r = post("Bearer " TOKEN, "{\"payload\":{\"entity_ref\":\"c:x\","
                                  "\"dataset\":\"d\"}}");
        assert_int_equal(r.status, 503);
        assert_non_null(strstr(r.body, "cannot reach kafka at 127.0.0.1:1"));
        assert_true(drv_mono_ms() - t0 < 10000);
        free(r.body);
        snprintf(base, sizeof(base), "%s", saved);
        drv_admin_stop(down);
}

/*
 * With a catalog (the worker gives its own): the seed's request, which
 * names no dataset, takes the plan's; an unknown entity is 404; a caller's
 * task_id drover has seen is 409.  Refusals name the rule broken.
 */
static char cat_dir[256], plan_name[128], plan_ds[128];

static drv_admin_t *start_with_catalog(drv_catalog_t **catp) {
        drv_admin_conf_t ac = {0};
        drv_catalog_conf_t cc = {0};
        char path[512], errstr[512];
        FILE *fp;
        drv_admin_t *a;

        snprintf(cat_dir, sizeof(cat_dir), "/tmp/drover-admin-cat-XXXXXX");
        assert_non_null(mkdtemp(cat_dir));
        snprintf(plan_name, sizeof(plan_name), "%s",
                 drv_test_unique("seed-plan"));
        snprintf(plan_ds, sizeof(plan_ds), "%s", drv_test_unique("ds_seed"));
        snprintf(path, sizeof(path), "%s/plan.yaml", cat_dir);
        assert_non_null(fp = fopen(path, "w"));
        fprintf(fp,
                "apiVersion: backstage.io/v1alpha1\n"
                "kind: Component\n"
                "metadata:\n  name: %s\n"
                "spec:\n  type: migration-plan\n  lifecycle: production\n"
                "  owner: team-infra\n  dataset: %s\n"
                "  schemaVersion: {from: 1, to: 2}\n  steps:\n"
                "    - {op: add_column, table: customer, column: {name: x, "
                "type: text}}\n",
                plan_name, plan_ds);
        fclose(fp);
        cc.dir = cat_dir;
        if (!(*catp = drv_catalog_new(&cc, errstr, sizeof(errstr))))
                fail_msg("drv_catalog_new: %s", errstr);
        ac.listen = "127.0.0.1:0";
        ac.token = TOKEN;
        ac.database_url = drv_test_database_url();
        ac.brokers = drv_test_brokers();
        ac.topic = topic;
        ac.catalog = *catp;
        if (!(a = drv_admin_start(&ac, errstr, sizeof(errstr))))
                fail_msg("drv_admin_start: %s", errstr);
        return a;
}

static void stop_with_catalog(drv_admin_t *a, drv_catalog_t *cat) {
        char path[512];

        drv_admin_stop(a);
        drv_catalog_destroy(cat);
        snprintf(path, sizeof(path), "%s/plan.yaml", cat_dir);
        unlink(path);
        rmdir(cat_dir);
}

/* POST `body` to admin `a`; the status, the body in *rp. */
static long post_to(drv_admin_t *a, const char *body, resp_t *rp) {
        char saved[64];

        snprintf(saved, sizeof(saved), "%s", base);
        snprintf(base, sizeof(base), "http://127.0.0.1:%d", drv_admin_port(a));
        *rp = post("Bearer " TOKEN, body);
        snprintf(base, sizeof(base), "%s", saved);
        return rp->status;
}

/* POST {"payload":{<fmt>}} to `a`: it answers `status` with `want` in
 * the body. */
static void answers(drv_admin_t *a, long status, const char *want,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void answers(drv_admin_t *a, long status, const char *want,
                    const char *fmt, ...) {
        char payload[400], body[512];
        va_list ap;
        resp_t r;

        va_start(ap, fmt);
        vsnprintf(payload, sizeof(payload), fmt, ap);
        va_end(ap);
        snprintf(body, sizeof(body), "{\"payload\":{%s}}", payload);
        if (post_to(a, body, &r) != status || !strstr(r.body, want))
                fail_msg("%s: %ld %s, want %ld with \"%s\"", body, r.status,
                         r.body, status, want);
        free(r.body);
}

static void test_submit_takes_the_seed_request(void **state) {
        char body[512], hex[65], label[32];
        drv_catalog_t *cat;
        drv_admin_t *a = start_with_catalog(&cat);
        drv_task_t *task;
        json_t *j;
        resp_t r;

        snprintf(body, sizeof(body),
                 "{\"queue\":\"%s\",\"payload\":{\"entity_ref\":"
                 "\"component:default/%s\"}}",
                 topic, plan_name);
        if (post_to(a, body, &r) != 202)
                fail_msg("seed request: %ld %s", r.status, r.body);
        j = body_json(&r);
        free(r.body);
        assert_string_equal(json_string_value(json_object_get(j, "dataset")),
                            plan_ds);
        task = consume_task(plan_ds,
                            json_string_value(json_object_get(j, "task_id")));
        assert_string_equal(task->dataset, plan_ds);
        /* the caller is the token's label, never the token */
        drv_sha256_hex(TOKEN, strlen(TOKEN), hex);
        snprintf(label, sizeof(label), "token:%.8s", hex);
        assert_string_equal(task->requested_by, label);
        drv_task_destroy(task);
        json_decref(j);
        stop_with_catalog(a, cat);
}

static void test_submit_refuses_unknown_bad_and_duplicate(void **state) {
        static const char id_seen[] = "5e1f3c2a-9b7d-4e8f-a1b2-c3d4e5f60718";
        char uuid[37];
        const char *v[2] = {id_seen, dataset_a};
        drv_catalog_t *cat;
        drv_admin_t *a = start_with_catalog(&cat);

        drv_test_exec(
            conn,
            "INSERT INTO drover.task_runs (task_id, entity_ref, dataset,"
            " status) VALUES ($1, 'component:default/plan-x', $2, 'done')"
            " ON CONFLICT (task_id) DO NOTHING",
            2, v);
        /* the catalog answered: no such entity */
        answers(a, 404, "no-such-plan",
                "\"entity_ref\":\"component:default/no-such-plan\"");
        /* refused before any catalog request */
        answers(a, 400, "invalid entity ref",
                "\"entity_ref\":\"component:../..\"");
        answers(a, 400, "invalid dataset",
                "\"entity_ref\":\"%s\",\"dataset\":\"a b\"", plan_name);
        answers(a, 400, "want a uuid",
                "\"entity_ref\":\"%s\",\"task_id\":\"t-1\"", plan_name);
        /* a task id drover has seen: 409, one row never overwritten */
        answers(a, 409, "was already submitted",
                "\"entity_ref\":\"%s\",\"task_id\":\"%s\"", plan_name, id_seen);
        /* a new one is taken as given */
        drv_uuid4(uuid);
        answers(a, 202, uuid, "\"entity_ref\":\"%s\",\"task_id\":\"%s\"",
                plan_name, uuid);
        stop_with_catalog(a, cat);
}

static void test_status_page_and_assets_are_served(void **state) {
        resp_t r;

        r = get("/");
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.content_type, "text/html"));
        assert_non_null(strstr(r.body, "<table id=\"migrations\">"));
        free(r.body);
        r = get("/app.js");
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "api/migrations"));
        free(r.body);
        r = get("/style.css");
        assert_int_equal(r.status, 200);
        free(r.body);
        r = get("/../../etc/passwd");
        assert_int_equal(r.status, 404);
        free(r.body);
}

static void test_unknown_paths_and_methods_are_refused(void **state) {
        resp_t r;

        r = get("/nope");
        assert_int_equal(r.status, 404);
        free(r.body);
        r = http("DELETE", "/api/migrations", NULL, NULL, 0);
        assert_int_equal(r.status, 405);
        free(r.body);
        r = http("GET", "/api/tasks", "Bearer " TOKEN, NULL, 0);
        assert_int_equal(r.status, 405);
        free(r.body);
}

static void test_bad_listen_address_is_refused(void **state) {
        drv_admin_conf_t ac = {.listen = NULL};
        char errstr[256];
        drv_admin_t *a;

        ac.listen = "not-an-address";
        a = drv_admin_start(&ac, errstr, sizeof(errstr));
        assert_null(a);
        assert_non_null(strstr(errstr, "bad http listen address"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_healthz_answers_ok),
            cmocka_unit_test(test_readyz_follows_assignment_and_database),
            cmocka_unit_test(test_metrics_are_prometheus_text),
            cmocka_unit_test(test_migrations_lists_and_filters_rows),
            cmocka_unit_test(test_migrations_filters_are_bound_not_spliced),
            cmocka_unit_test(test_submit_requires_the_bearer_token),
            cmocka_unit_test(test_submit_rejects_bad_input_with_json_errors),
            cmocka_unit_test(test_submit_caps_the_body_size),
            cmocka_unit_test(test_submit_produces_a_decodable_task),
            cmocka_unit_test(test_submit_answers_503_when_kafka_is_unreachable),
            cmocka_unit_test(test_submit_takes_the_seed_request),
            cmocka_unit_test(test_submit_refuses_unknown_bad_and_duplicate),
            cmocka_unit_test(test_status_page_and_assets_are_served),
            cmocka_unit_test(test_unknown_paths_and_methods_are_refused),
            cmocka_unit_test(test_bad_listen_address_is_refused),
        };
        drv_test_brokers();
        drv_test_database_url();
        curl_global_init(CURL_GLOBAL_ALL);
        return cmocka_run_group_tests(tests, setup, teardown);
}
