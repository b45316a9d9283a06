/*
 * tests/unit/test_schema_decode.c: encode/decode round trips, schema
 * evolution both ways (v1 records under a v2 reader and the reverse),
 * extra writer schemas, and decoding from many threads at once.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static drv_schema_store_t *store_new(int reader, int writer) {
        drv_schema_conf_t conf = {0};
        char errstr[256];
        drv_schema_store_t *store;

        conf.reader_version = reader;
        conf.writer_version = writer;
        store = drv_schema_store_new(&conf, errstr, sizeof(errstr));
        if (!store)
                fail_msg("store: %s", errstr);
        return store;
}

static drv_task_t *sample_task(void) {
        drv_task_t *t = drv_task_new();

        t->task_id = strdup("6f1c2b1e-7d4a-4a53-9a55-2b8f3c1d0e9f");
        t->entity_ref = strdup("component:default/customer-dataset-v2-"
                               "migration");
        t->dataset = strdup("customer");
        t->requested_at = 1764057600123LL;
        t->requested_by = strdup("alice@example.com");
        t->dry_run = 1;
        drv_task_add_param(t, "tenant", "acme");
        drv_task_add_param(t, "region", "eu-west-1 \xc3\xa9");
        t->priority = 7;
        t->replay_of = strdup("11111111-2222-4333-8444-555555555555");
        return t;
}

static drv_task_t *round_trip(drv_schema_store_t *enc, drv_schema_store_t *dec,
                              const drv_task_t *t) {
        drv_task_t *out = NULL;
        char errstr[256];
        void *buf;
        size_t len;

        assert_int_equal(
            drv_task_encode(enc, t, &buf, &len, errstr, sizeof(errstr)),
            DRV_OK);
        assert_int_equal(((unsigned char *)buf)[0], 0xc3);
        assert_int_equal(((unsigned char *)buf)[1], 0x01);
        if (drv_task_decode(dec, buf, len, &out, errstr, sizeof(errstr)))
                fail_msg("decode: %s", errstr);
        free(buf);
        return out;
}

static void assert_v1_fields(const drv_task_t *a, const drv_task_t *b) {
        assert_string_equal(a->task_id, b->task_id);
        assert_string_equal(a->entity_ref, b->entity_ref);
        assert_string_equal(a->dataset, b->dataset);
        assert_true(a->requested_at == b->requested_at);
        assert_string_equal(a->requested_by, b->requested_by);
        assert_int_equal(a->dry_run, b->dry_run);
        assert_int_equal(a->params_cnt, b->params_cnt);
        assert_string_equal(drv_task_param(b, "tenant"), "acme");
        assert_string_equal(drv_task_param(b, "region"),
                            drv_task_param(a, "region"));
}

static void test_v2_round_trip_keeps_every_field(void **state) {
        drv_schema_store_t *s = store_new(2, 2);
        drv_task_t *t = sample_task(), *out = round_trip(s, s, t);

        assert_v1_fields(t, out);
        assert_int_equal(out->priority, 7);
        assert_string_equal(out->replay_of, t->replay_of);
        assert_int_equal(out->writer_version, 2);
        drv_task_destroy(out);
        drv_task_destroy(t);
        drv_schema_store_destroy(s);
}

static void test_v1_record_under_v2_reader_gets_defaults(void **state) {
        drv_schema_store_t *w1 = store_new(2, 1), *r2 = store_new(2, 2);
        drv_task_t *t = sample_task(), *out = round_trip(w1, r2, t);

        assert_v1_fields(t, out);
        assert_int_equal(out->priority, 0); /* default, not 7 */
        assert_null(out->replay_of);        /* default null */
        assert_int_equal(out->writer_version, 1);
        drv_task_destroy(out);
        drv_task_destroy(t);
        drv_schema_store_destroy(w1);
        drv_schema_store_destroy(r2);
}

static void test_v2_record_under_v1_reader_ignores_new_fields(void **state) {
        drv_schema_store_t *w2 = store_new(2, 2), *r1 = store_new(1, 1);
        drv_task_t *t = sample_task(), *out = round_trip(w2, r1, t);

        assert_v1_fields(t, out);
        assert_int_equal(out->priority, 0);
        assert_null(out->replay_of);
        assert_int_equal(out->writer_version, 2);
        drv_task_destroy(out);
        drv_task_destroy(t);
        drv_schema_store_destroy(w2);
        drv_schema_store_destroy(r1);
}

static void test_null_replay_of_and_empty_params(void **state) {
        drv_schema_store_t *s = store_new(2, 2);
        drv_task_t *t = drv_task_new(), *out;

        t->task_id = strdup("a");
        t->entity_ref = strdup("b");
        t->dataset = strdup("c");
        t->requested_by = strdup("");
        out = round_trip(s, s, t);
        assert_null(out->replay_of);
        assert_int_equal(out->params_cnt, 0);
        assert_string_equal(out->requested_by, "");
        drv_task_destroy(out);
        drv_task_destroy(t);
        drv_schema_store_destroy(s);
}

static void test_encode_refuses_a_task_without_required_fields(void **state) {
        drv_schema_store_t *s = store_new(2, 2);
        drv_task_t *t = drv_task_new();
        char errstr[256];
        void *buf;
        size_t len;

        assert_int_equal(
            drv_task_encode(s, t, &buf, &len, errstr, sizeof(errstr)),
            DRV_ERR_INVALID_PARAM);
        assert_null(buf);
        assert_non_null(strstr(errstr, "task_id"));
        drv_task_destroy(t);
        drv_schema_store_destroy(s);
}

/* A writer with fields in another order, an extra field, a long written
 * as int, and a string written as a union: mapped by name. */
static void test_foreign_writer_schema_maps_fields_by_name(void **state) {
        static const char schema[] =
            "{\"type\":\"record\",\"name\":\"Other\",\"fields\":["
            "{\"name\":\"extra\",\"type\":{\"type\":\"array\",\"items\":"
            "\"long\"}},"
            "{\"name\":\"dataset\",\"type\":[\"null\",\"string\"]},"
            "{\"name\":\"requested_at\",\"type\":\"int\"},"
            "{\"name\":\"entity_ref\",\"type\":\"string\"},"
            "{\"name\":\"requested_by\",\"type\":\"string\"},"
            "{\"name\":\"task_id\",\"type\":\"string\"}]}";
        /* extra=[1,2], dataset=branch 1 "ds", requested_at=21,
         * entity_ref "e", requested_by "u", task_id "t" */
        static const unsigned char datum[] = {0x04, 0x02, 0x04, 0x00, 0x02,
                                              0x04, 'd',  's',  0x2a, 0x02,
                                              'e',  0x02, 'u',  0x02, 't'};
        drv_schema_store_t *s = store_new(2, 2);
        unsigned char rec[64];
        drv_task_t *out;
        char errstr[256];
        uint64_t fp;
        int i;

        assert_int_equal(
            drv_schema_store_add(s, schema, &fp, errstr, sizeof(errstr)),
            DRV_OK);
        rec[0] = 0xc3;
        rec[1] = 0x01;
        for (i = 0; i < 8; i++)
                rec[2 + i] = (unsigned char)(fp >> (8 * i));
        memcpy(rec + 10, datum, sizeof(datum));
        if (drv_task_decode(s, rec, 10 + sizeof(datum), &out, errstr,
                            sizeof(errstr)))
                fail_msg("decode: %s", errstr);
        assert_string_equal(out->dataset, "ds");
        assert_string_equal(out->task_id, "t");
        assert_true(out->requested_at == 21);
        assert_int_equal(out->dry_run, 0);    /* reader default */
        assert_int_equal(out->params_cnt, 0); /* reader default {} */
        assert_int_equal(out->priority, 0);
        drv_task_destroy(out);
        drv_schema_store_destroy(s);
}

static void
test_writer_lacking_a_field_without_default_is_refused(void **state) {
        static const char schema[] =
            "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
            "{\"name\":\"task_id\",\"type\":\"string\"}]}";
        drv_schema_store_t *s = store_new(2, 2);
        char errstr[256];

        assert_int_equal(
            drv_schema_store_add(s, schema, NULL, errstr, sizeof(errstr)),
            DRV_ERR_UNKNOWN_SCHEMA);
        assert_non_null(strstr(errstr, "lacks field \"entity_ref\""));
        drv_schema_store_destroy(s);
}

struct thread_arg {
        drv_schema_store_t *store;
        void *buf;
        size_t len;
        int failures;
};

static void *decode_many(void *opaque) {
        struct thread_arg *a = opaque;
        unsigned char bad[4] = {0x00, 0, 0, 1};
        drv_task_t *t;
        char errstr[256];
        int i;

        for (i = 0; i < 2000; i++) {
                if (drv_task_decode(a->store, a->buf, a->len, &t, errstr,
                                    sizeof(errstr)) ||
                    strcmp(t->dataset, "customer"))
                        a->failures++;
                drv_task_destroy(t);
                if (drv_task_decode(a->store, a->buf, a->len - 1, &t, errstr,
                                    sizeof(errstr)) != DRV_ERR_DECODE ||
                    strstr(errstr, "truncated") == NULL)
                        a->failures++;
                if (drv_task_decode(a->store, bad, sizeof(bad), &t, errstr,
                                    sizeof(errstr)) != DRV_ERR_DECODE)
                        a->failures++;
        }
        return NULL;
}

static void test_decode_from_four_threads_at_once(void **state) {
        drv_schema_store_t *s = store_new(2, 2);
        drv_task_t *t = sample_task();
        struct thread_arg args[4];
        pthread_t th[4];
        char errstr[256];
        void *buf;
        size_t len;
        int i;

        assert_int_equal(
            drv_task_encode(s, t, &buf, &len, errstr, sizeof(errstr)), DRV_OK);
        for (i = 0; i < 4; i++) {
                args[i] = (struct thread_arg){s, buf, len, 0};
                pthread_create(&th[i], NULL, decode_many, &args[i]);
        }
        for (i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(args[i].failures, 0);
        }
        free(buf);
        drv_task_destroy(t);
        drv_schema_store_destroy(s);
}

static void test_task_to_json(void **state) {
        drv_task_t *t = sample_task();
        char *json = drv_task_to_json(t);

        assert_non_null(strstr(json, "\"dataset\":\"customer\""));
        assert_non_null(strstr(json, "\"params\":{\"tenant\":\"acme\""));
        assert_non_null(strstr(json, "\"requested_at\":1764057600123"));
        free(json);
        drv_task_destroy(t);
        drv_task_destroy(NULL);
        drv_schema_store_destroy(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_v2_round_trip_keeps_every_field),
            cmocka_unit_test(test_v1_record_under_v2_reader_gets_defaults),
            cmocka_unit_test(test_v2_record_under_v1_reader_ignores_new_fields),
            cmocka_unit_test(test_null_replay_of_and_empty_params),
            cmocka_unit_test(
                test_encode_refuses_a_task_without_required_fields),
            cmocka_unit_test(test_foreign_writer_schema_maps_fields_by_name),
            cmocka_unit_test(
                test_writer_lacking_a_field_without_default_is_refused),
            cmocka_unit_test(test_decode_from_four_threads_at_once),
            cmocka_unit_test(test_task_to_json),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
