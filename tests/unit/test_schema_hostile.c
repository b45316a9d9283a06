/*
 * tests/unit/test_schema_hostile.c: hostile records, one table.
 *
 * Every row must come back as a poison error (permanent family) with one
 * lower-case line and no task, within bounded memory (peak RSS checked)
 * and without leaks (this test runs under LeakSanitizer in the sanitizer
 * build).  Records are built by hand, byte by byte, from the Avro binary
 * encoding, so they are exactly as hostile as the row says.
 */
#include "testutil.h"

#include "schema_equiv.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define BUF_MAX 256

typedef struct rec_s {
        unsigned char b[BUF_MAX];
        size_t n;
} rec_t;

static drv_schema_store_t *store;

static void put(rec_t *r, const void *p, size_t n) {
        assert_true(r->n + n <= BUF_MAX);
        memcpy(r->b + r->n, p, n);
        r->n += n;
}

static void put_long(rec_t *r, int64_t v) {
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);

        while (z > 0x7f) {
                unsigned char c = (unsigned char)((z & 0x7f) | 0x80);
                put(r, &c, 1);
                z >>= 7;
        }
        unsigned char c = (unsigned char)z;
        put(r, &c, 1);
}

static void put_str(rec_t *r, const char *s) {
        put_long(r, (int64_t)strlen(s));
        put(r, s, strlen(s));
}

static void put_header(rec_t *r, uint64_t fp) {
        unsigned char h[10] = {0xc3, 0x01};
        int i;

        for (i = 0; i < 8; i++)
                h[2 + i] = (unsigned char)(fp >> (8 * i));
        put(r, h, sizeof(h));
}

/* The v1 fields up to and including requested_by. */
static void put_v1_head(rec_t *r) {
        put_str(r, "6f1c2b1e-7d4a-4a53-9a55-2b8f3c1d0e9f");
        put_str(r, "component:default/x");
        put_str(r, "customer");
        put_long(r, 1764057600123LL);
        put_str(r, "alice");
}

/* A complete valid v2 record. */
static rec_t valid_v2(void) {
        rec_t r = {.n = 0};

        put_header(&r, drv_schema_store_bundled_fingerprint(store, 2));
        put_v1_head(&r);
        put_long(&r, 1); /* dry_run: true (one byte 0x01) */
        r.b[r.n - 1] = 1;
        put_long(&r, 1); /* params: one entry */
        put_str(&r, "k");
        put_str(&r, "v");
        put_long(&r, 0);
        put_long(&r, 5); /* priority */
        put_long(&r, 1); /* replay_of: branch string */
        put_str(&r, "r");
        return r;
}

static uint64_t add_schema(const char *extra_fields) {
        char json[2048], errstr[256];
        uint64_t fp;

        snprintf(json, sizeof(json),
                 "{\"type\":\"record\",\"name\":\"H\",\"fields\":["
                 "{\"name\":\"task_id\",\"type\":\"string\"},"
                 "{\"name\":\"entity_ref\",\"type\":\"string\"},"
                 "{\"name\":\"dataset\",\"type\":\"string\"},"
                 "{\"name\":\"requested_at\",\"type\":\"long\"},"
                 "{\"name\":\"requested_by\",\"type\":\"string\"}%s]}",
                 extra_fields);
        if (drv_schema_store_add(store, json, &fp, errstr, sizeof(errstr)))
                fail_msg("add: %s", errstr);
        return fp;
}

static long peak_rss_kb(void) {
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_maxrss;
}

/* Decode r and require poison with a message containing `want`. */
static void expect_poison(const char *row, const void *buf, size_t len,
                          const char *want) {
        drv_task_t *task = (drv_task_t *)1;
        char errstr[512] = "";
        drv_err_t err;

        err = drv_task_decode(store, buf, len, &task, errstr, sizeof(errstr));
        if (DRV_ERR_FAMILY(err) != DRV_ERR_FAMILY_PERMANENT)
                fail_msg("row \"%s\": got %s (%s)", row, drv_err_name(err),
                         errstr);
        assert_null(task);
        if (!errstr[0] || strchr(errstr, '\n') ||
            (errstr[0] >= 'A' && errstr[0] <= 'Z'))
                fail_msg("row \"%s\": bad message \"%s\"", row, errstr);
        if (want && !strstr(errstr, want))
                fail_msg("row \"%s\": \"%s\" lacks \"%s\"", row, errstr, want);
        /* and the reference decoder says exactly the same */
        if (equiv_check(store, buf, len, NULL, errstr, sizeof(errstr)))
                fail_msg("row \"%s\": the decoders differ: %s", row, errstr);
}

static void test_valid_record_decodes(void **state) {
        rec_t r = valid_v2();
        drv_task_t *t;
        char errstr[256];

        if (drv_task_decode(store, r.b, r.n, &t, errstr, sizeof(errstr)))
                fail_msg("valid record: %s", errstr);
        assert_int_equal(t->priority, 5);
        assert_string_equal(t->replay_of, "r");
        assert_string_equal(drv_task_param(t, "k"), "v");
        drv_task_destroy(t);
}

static void test_hostile_table(void **state) {
        uint64_t fp2 = drv_schema_store_bundled_fingerprint(store, 2);
        uint64_t fp_arr = add_schema(",{\"name\":\"junk\",\"type\":{\"type\":"
                                     "\"array\",\"items\":\"null\"}}");
        uint64_t fp_enum =
            add_schema(",{\"name\":\"color\",\"type\":{\"type\":\"enum\","
                       "\"name\":\"C\",\"symbols\":[\"RED\",\"GREEN\"]}}");
        uint64_t fp_map =
            add_schema(",{\"name\":\"params\",\"type\":{"
                       "\"type\":\"map\",\"values\":\"string\"}}");
        rec_t v = valid_v2(), r;
        long rss0 = peak_rss_kb();
        unsigned char one = 0xc3, ten[10];
        size_t i;

        expect_poison("empty", "", 0, "empty");
        expect_poison("1 byte", &one, 1, "header");
        memcpy(ten, v.b, 10);
        ten[0] = 0x7b; /* '{': somebody sent JSON */
        expect_poison("wrong magic", ten, 10, "unknown wire format");
        ten[0] = 0xc3;
        ten[1] = 0x02;
        expect_poison("wrong second magic byte", ten, 10, "header");
        r = v;
        r.b[5] ^= 0xff;
        expect_poison("unknown fingerprint", r.b, r.n, "fingerprint");
        for (i = 0; i < v.n; i++)
                expect_poison("truncated", v.b, i, NULL);

        r = (rec_t){.n = 0}; /* 64 MiB string length in 20 bytes */
        put_header(&r, fp2);
        put_long(&r, 64LL * 1024 * 1024);
        put(&r, "abcdefgh", 6);
        assert_int_equal(r.n, 20);
        expect_poison("64 MiB string in 20 bytes", r.b, r.n, "past the end");

        r = (rec_t){.n = 0};
        put_header(&r, fp2);
        put_long(&r, -5);
        put(&r, "abcdef", 6);
        expect_poison("negative string length", r.b, r.n, "negative length");

        r = (rec_t){.n = 0}; /* array<null> claiming 2^62 items */
        put_header(&r, fp_arr);
        put_v1_head(&r);
        put_long(&r, 1LL << 62);
        put_long(&r, 0);
        expect_poison("array<null> with a huge count", r.b, r.n, "too many");

        r = (rec_t){.n = 0}; /* negative block count with huge size */
        put_header(&r, fp_arr);
        put_v1_head(&r);
        put_long(&r, INT64_MIN);
        expect_poison("array block count INT64_MIN", r.b, r.n, "block");

        r = (rec_t){.n = 0};    /* a map of 20000 empty entries would need */
        put_header(&r, fp_map); /* 40000 bytes: block claims them */
        put_v1_head(&r);
        put_long(&r, 20000);
        put_long(&r, 0);
        put_long(&r, 0);
        expect_poison("map with a huge count", r.b, r.n, NULL);

        r = v; /* replay_of union index 7 (last 3 bytes: 02 02 'r') */
        r.b[r.n - 3] = 14;
        expect_poison("bad union index", r.b, r.n, "union index");
        r.b[r.n - 3] = 1; /* -1 zigzag */
        expect_poison("negative union index", r.b, r.n, "union index");

        r = (rec_t){.n = 0};
        put_header(&r, fp2);
        put_str(&r, "t");
        put_str(&r, "e");
        put_str(&r, "d");
        memset(ten, 0xff, sizeof(ten)); /* 11-byte varint */
        put(&r, ten, 10);
        put(&r, "\x01", 1);
        expect_poison("over-long varint", r.b, r.n, "over-long varint");

        r = v;
        put(&r, "garbage", 7);
        expect_poison("trailing garbage", r.b, r.n, "trailing");

        r = (rec_t){.n = 0};
        put_header(&r, fp_enum);
        put_v1_head(&r);
        put_long(&r, 2); /* only RED and GREEN */
        expect_poison("enum index out of range", r.b, r.n, "enum index");

        r = (rec_t){.n = 0}; /* dry_run is a byte 0 or 1 */
        put_header(&r, fp2);
        put_v1_head(&r);
        i = r.n;
        r = v;
        assert_int_equal(r.b[i], 1);
        r.b[i] = 2;
        expect_poison("boolean 2", r.b, r.n, NULL);

        r = (rec_t){.n = 0};
        put_header(&r, fp2);
        put_long(&r, 3);
        put(&r, "a\0b", 3);
        put_str(&r, "e");
        put_str(&r, "d");
        put_long(&r, 1);
        put_str(&r, "u");
        put(&r, "\x00\x00\x00\x00", 4);
        expect_poison("nul byte in task_id", r.b, r.n, "nul byte");

        /* {"k":"1","a\0x":"1","a\0y":"2"}: avro-c would keep the keys as
         * C strings, {"k":"1","a":"2"}; refused, naming the key */
        r = (rec_t){.n = 0};
        put_header(&r, drv_schema_store_bundled_fingerprint(store, 2));
        put_v1_head(&r);
        put_long(&r, 0); /* dry_run: false (one byte 0x00) */
        put_long(&r, 3);
        put_str(&r, "k");
        put_str(&r, "1");
        put_long(&r, 3);
        put(&r, "a\0x", 3);
        put_str(&r, "1");
        put_long(&r, 3);
        put(&r, "a\0y", 3);
        put_str(&r, "2");
        put_long(&r, 0);
        put_long(&r, 5); /* priority */
        put_long(&r, 0); /* replay_of: null */
        expect_poison("nul byte in a params key", r.b, r.n,
                      "key number 2 of map field \"params\" holds a nul byte");

        {
                static unsigned char big[2 * 1024 * 1024];
                memcpy(big, v.b, v.n);
                expect_poison("over the size limit", big, sizeof(big),
                              "exceeds the limit");
        }
        {
                unsigned char cf[] = {0x00, 0, 0, 0, 1, 0x02, 'x'};
                expect_poison("confluent without a registry", cf, sizeof(cf),
                              "no schema registry");
        }
        /* none of that may have cost more than a few MiB */
        assert_true(peak_rss_kb() - rss0 < 16 * 1024);
}

/* Fields of types no schema resolution reads: the writer schema is
 * refused, and a record naming it is poison. */
#define RA_LONG ",{\"name\":\"requested_at\",\"type\":\"long\"}"
static void test_v2_fields_with_wrong_types(void **state) {
        const char *bad[] = {
            RA_LONG ",{\"name\":\"priority\",\"type\":\"string\"}",
            RA_LONG ",{\"name\":\"replay_of\",\"type\":\"long\"}",
            RA_LONG ",{\"name\":\"dry_run\",\"type\":\"int\"}",
            RA_LONG ",{\"name\":\"params\",\"type\":{\"type\":\"map\","
                    "\"values\":\"long\"}}",
            /* long does not promote to int, nor a union to string */
            RA_LONG ",{\"name\":\"priority\",\"type\":\"long\"}",
            RA_LONG ",{\"name\":\"params\",\"type\":{\"type\":\"map\","
                    "\"values\":[\"null\",\"string\"]}}",
            /* requested_at: no instant, or units that differ by branch */
            ",{\"name\":\"requested_at\",\"type\":{\"type\":\"int\","
            "\"logicalType\":\"date\"}}",
            ",{\"name\":\"requested_at\",\"type\":{\"type\":\"long\","
            "\"logicalType\":\"local-timestamp-micros\"}}",
            ",{\"name\":\"requested_at\",\"type\":{\"type\":\"int\","
            "\"logicalType\":\"timestamp-micros\"}}",
            ",{\"name\":\"requested_at\",\"type\":[\"null\",\"long\","
            "{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}]}",
            ",{\"name\":\"requested_at\",\"type\":\"double\"}",
            ",{\"name\":\"requested_at\",\"type\":\"string\"}",
        };
        char json[1024], errstr[256];
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(json, sizeof(json),
                         "{\"type\":\"record\",\"name\":\"W\",\"fields\":["
                         "{\"name\":\"task_id\",\"type\":\"string\"},"
                         "{\"name\":\"entity_ref\",\"type\":\"string\"},"
                         "{\"name\":\"dataset\",\"type\":\"string\"},"
                         "{\"name\":\"requested_by\",\"type\":\"string\"}%s]}",
                         bad[i]);
                assert_int_equal(drv_schema_store_add(store, json, NULL, errstr,
                                                      sizeof(errstr)),
                                 DRV_ERR_UNKNOWN_SCHEMA);
                if (!strstr(errstr, "cannot take"))
                        fail_msg("not refused as it should be: %s", bad[i]);
        }
        /* and a null where the reader needs a string */
        uint64_t fp = add_schema(",{\"name\":\"replay_of\",\"type\":[\"null\","
                                 "\"string\"]},{\"name\":\"x\",\"type\":"
                                 "\"int\"}");
        (void)fp;
}

/* Decoding is capped per record: with a 3200-byte budget a 3000-byte
 * string (which is really there) is refused cleanly; 3300 bytes take it
 * (the direct decoder needs the text plus the struct, no avro-c value). */
static void test_allocation_budget_refuses_big_values(void **state) {
        drv_schema_conf_t conf = {0};
        drv_schema_store_t *small;
        char errstr[256], s[3001];
        drv_task_t *t = NULL;
        unsigned char *buf;
        rec_t r = {.n = 0};
        size_t n;

        conf.alloc_budget = 3200;
        small = drv_schema_store_new(&conf, errstr, sizeof(errstr));
        assert_non_null(small);
        memset(s, 'x', 3000);
        s[3000] = '\0';
        put_header(&r, drv_schema_store_bundled_fingerprint(small, 1));
        buf = malloc(4096);
        memcpy(buf, r.b, r.n);
        n = r.n;
        r.n = 0;
        put_long(&r, 3000);
        memcpy(buf + n, r.b, r.n);
        n += r.n;
        memcpy(buf + n, s, 3000);
        n += 3000;
        memcpy(buf + n,
               "\x02"
               "e\x02"
               "d\x00\x02u\x00\x00",
               9);
        n += 9;
        assert_int_equal(
            drv_task_decode(small, buf, n, &t, errstr, sizeof(errstr)),
            DRV_ERR_DECODE);
        if (!strstr(errstr, "allocation budget of 3200 bytes"))
                fail_msg("budget: %s", errstr);
        drv_schema_store_destroy(small);
        conf.alloc_budget = 3300;
        small = drv_schema_store_new(&conf, errstr, sizeof(errstr));
        assert_non_null(small);
        assert_int_equal(
            drv_task_decode(small, buf, n, &t, errstr, sizeof(errstr)), DRV_OK);
        drv_task_destroy(t);
        /* the same record decodes under the default budget */
        assert_int_equal(
            drv_task_decode(store, buf, n, &t, errstr, sizeof(errstr)), DRV_OK);
        assert_int_equal(strlen(t->task_id), 3000);
        drv_task_destroy(t);
        free(buf);
        drv_schema_store_destroy(small);
}

static int setup(void **state) {
        char errstr[256];

        store = drv_schema_store_new(NULL, errstr, sizeof(errstr));
        return store ? 0 : -1;
}

static int teardown(void **state) {
        drv_schema_store_destroy(store);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_valid_record_decodes),
            cmocka_unit_test(test_hostile_table),
            cmocka_unit_test(test_v2_fields_with_wrong_types),
            cmocka_unit_test(test_allocation_budget_refuses_big_values),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
