/*
 * tests/unit/test_schema_equivalence.c: the direct decoder against the
 * reference (avro-c's generic read + the original mapping).
 *
 * Every record of these corpora must come back from both paths as equal
 * tasks or as the same error with the same message:
 *   - round trips: tasks encoded by drover as v1 and v2, read by v1 and
 *     v2 readers (defaults, skipped fields, empty and many params);
 *   - the fuzz seed corpus (tests/fuzz/corpus/task_decode);
 *   - hand-built records for the mapping's corners: duplicate map keys,
 *     nul bytes in keys and values, null or wrong union branches, blocks
 *     with byte sizes, foreign writers with extra and reordered fields;
 *   - every truncation and many single-byte mutations of all of them;
 *   - random records of a writer schema with every Avro type;
 *   - writers that need Avro's legal promotions (bytes -> string in
 *     fields and map values, int -> long, timestamp-micros/-nanos into
 *     the timestamp-millis field), checked for their values too.
 */
#include "testutil.h"

#include "schema_equiv.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MAX 4096

typedef struct rec_s {
        unsigned char b[BUF_MAX];
        size_t n;
} rec_t;

static drv_schema_store_t *store, *store_v1;
static uint64_t fp_fuzz, fp_foreign;
static size_t checked;

/* the fuzz target's extra schema: every kind of type */
static const char fuzz_schema[] =
    "{\"type\":\"record\",\"name\":\"Fuzz\",\"namespace\":\"f\",\"fields\":["
    "{\"name\":\"task_id\",\"type\":\"string\"},"
    "{\"name\":\"entity_ref\",\"type\":[\"null\",\"string\",\"bytes\"]},"
    "{\"name\":\"dataset\",\"type\":\"bytes\"},"
    "{\"name\":\"requested_at\",\"type\":\"int\"},"
    "{\"name\":\"requested_by\",\"type\":\"string\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"symbols\":[\"A\",\"B\",\"C\"]}},"
    "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"X\","
    "\"size\":4}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":[\"null\","
    "\"float\",\"double\",\"E\"]}},"
    "{\"name\":\"n\",\"type\":{\"type\":\"record\",\"name\":\"N\","
    "\"fields\":[{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":"
    "\"X\"}}]}},"
    "{\"name\":\"params\",\"type\":{\"type\":\"map\",\"values\":"
    "\"string\"}},"
    "{\"name\":\"replay_of\",\"type\":[\"null\",\"string\"]}]}";

/* reordered fields, unions on mapped fields, an unknown field between */
static const char foreign_schema[] =
    "{\"type\":\"record\",\"name\":\"Foreign\",\"fields\":["
    "{\"name\":\"params\",\"type\":[\"null\",{\"type\":\"map\","
    "\"values\":\"string\"},{\"type\":\"map\",\"values\":\"long\"}]},"
    "{\"name\":\"dataset\",\"type\":[\"string\",\"null\",\"long\"]},"
    "{\"name\":\"junk\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"requested_at\",\"type\":[\"int\",\"long\",\"null\"]},"
    "{\"name\":\"task_id\",\"type\":\"bytes\"},"
    "{\"name\":\"entity_ref\",\"type\":\"string\"},"
    "{\"name\":\"requested_by\",\"type\":\"string\"},"
    "{\"name\":\"dry_run\",\"type\":[\"boolean\",\"null\"]},"
    "{\"name\":\"priority\",\"type\":[\"null\",\"int\"]},"
    "{\"name\":\"replay_of\",\"type\":[\"string\",\"null\",\"bytes\"]}]}";

static void put(rec_t *r, const void *p, size_t n) {
        assert_true(r->n + n <= BUF_MAX);
        memcpy(r->b + r->n, p, n);
        r->n += n;
}

static void put_long(rec_t *r, int64_t v) {
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        unsigned char c;

        while (z > 0x7f) {
                c = (unsigned char)((z & 0x7f) | 0x80);
                put(r, &c, 1);
                z >>= 7;
        }
        c = (unsigned char)z;
        put(r, &c, 1);
}

static void put_bytes(rec_t *r, const char *s, size_t n) {
        put_long(r, (int64_t)n);
        put(r, s, n);
}

static void put_str(rec_t *r, const char *s) {
        put_bytes(r, s, strlen(s));
}

static void put_header(rec_t *r, uint64_t fp) {
        unsigned char h[10] = {0xc3, 0x01};
        int i;

        for (i = 0; i < 8; i++)
                h[2 + i] = (unsigned char)(fp >> (8 * i));
        put(r, h, sizeof(h));
}

/* Both stores, both paths: they must agree. */
static void check(const char *what, const void *buf, size_t len) {
        char why[1200];

        if (equiv_check(store, buf, len, NULL, why, sizeof(why)))
                fail_msg("%s (%zu bytes, v2 reader): %s", what, len, why);
        if (equiv_check(store_v1, buf, len, NULL, why, sizeof(why)))
                fail_msg("%s (%zu bytes, v1 reader): %s", what, len, why);
        checked++;
}

/* The record, every truncation of it, and single-byte mutations. */
static void check_mutations(const char *what, const rec_t *r) {
        static const unsigned char vals[] = {0x00, 0x01, 0x02, 0x03,
                                             0x7f, 0x80, 0xfe, 0xff};
        unsigned char buf[BUF_MAX];
        size_t i, j;

        check(what, r->b, r->n);
        for (i = 0; i < r->n; i++)
                check(what, r->b, i);
        for (i = 10; i < r->n; i++) { /* the header is not the datum's */
                memcpy(buf, r->b, r->n);
                for (j = 0; j < sizeof(vals); j++) {
                        buf[i] = vals[j];
                        check(what, buf, r->n);
                }
                buf[i] = r->b[i] ^ 0x40;
                check(what, buf, r->n);
        }
}

static drv_task_t *make_task(int variant) {
        drv_task_t *t = drv_task_new();
        char k[16], v[64];
        int i;

        t->task_id = strdup("6f1c2b1e-7d4a-4a53-9a55-2b8f3c1d0e9f");
        t->entity_ref = strdup(variant == 2 ? "" : "component:default/x");
        t->dataset = strdup("customer \xc3\xa9");
        t->requested_at = variant == 1 ? -1 : 1764057600123LL;
        t->requested_by = strdup("alice");
        t->dry_run = variant & 1;
        for (i = 0; i < (variant == 3 ? 40 : variant); i++) {
                snprintf(k, sizeof(k), "k%d", i);
                snprintf(v, sizeof(v), "value %d", i * 7);
                drv_task_add_param(t, k, i == 1 ? "" : v);
        }
        t->priority = variant == 3 ? -7 : variant * 100;
        t->replay_of = variant % 2 ? NULL : strdup("r");
        return t;
}

static void test_round_trips_agree(void **state) {
        drv_schema_conf_t conf = {0};
        char errstr[256];
        rec_t r;
        void *buf;
        size_t len;
        int wv, variant;

        for (wv = 1; wv <= 2; wv++) {
                conf.writer_version = wv;
                drv_schema_store_t *enc =
                    drv_schema_store_new(&conf, errstr, sizeof(errstr));
                assert_non_null(enc);
                for (variant = 0; variant < 4; variant++) {
                        drv_task_t *t = make_task(variant);
                        if (drv_task_encode(enc, t, &buf, &len, errstr,
                                            sizeof(errstr)))
                                fail_msg("encode: %s", errstr);
                        assert_true(len <= BUF_MAX);
                        memcpy(r.b, buf, len);
                        r.n = len;
                        check_mutations("round trip", &r);
                        free(buf);
                        drv_task_destroy(t);
                }
                drv_schema_store_destroy(enc);
        }
}

/* The fuzz seeds, with the fuzz target's 'F' convention. */
static void test_fuzz_seed_corpus_agrees(void **state) {
        const char *src = getenv("DROVER_SOURCE_DIR");
        char dir[1024], path[1400];
        struct dirent *de;
        rec_t r;
        DIR *d;
        FILE *fp;
        size_t n, files = 0;
        unsigned char raw[BUF_MAX];

        snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/task_decode",
                 src ? src : ".");
        assert_non_null(d = opendir(dir));
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                assert_non_null(fp = fopen(path, "rb"));
                n = fread(raw, 1, sizeof(raw) - 16, fp);
                fclose(fp);
                r.n = 0;
                if (n && raw[0] == 'F') {
                        put_header(&r, fp_fuzz);
                        put(&r, raw + 1, n - 1);
                } else {
                        put(&r, raw, n);
                }
                check_mutations(de->d_name, &r);
                files++;
        }
        closedir(d);
        assert_true(files >= 5);
}

/* A foreign record: params map (branch 1) of the given entries, then
 * the rest. */
static rec_t foreign(const char *const *kv, size_t nkv, int dataset_branch) {
        rec_t r = {.n = 0};
        size_t i;

        put_header(&r, fp_foreign);
        put_long(&r, 1);
        if (nkv) {
                put_long(&r, -(int64_t)nkv); /* a block with a byte size */
                put_long(&r, 0);
                for (i = 0; i < 2 * nkv; i++)
                        put_bytes(&r, kv[i], strlen(kv[i]) + (kv[i][0] == '@'));
        }
        put_long(&r, 0);
        put_long(&r, dataset_branch);
        if (dataset_branch == 0)
                put_str(&r, "ds");
        else if (dataset_branch == 2)
                put_long(&r, 5);
        put_long(&r, 2); /* junk: two strings */
        put_str(&r, "j1");
        put_str(&r, "j2");
        put_long(&r, 0);
        put_long(&r, 0); /* requested_at: int */
        put_long(&r, 123456);
        put_str(&r, "tid");
        put_str(&r, "component:default/y");
        put_str(&r, "bob");
        put_long(&r, 0); /* dry_run: boolean true */
        put(&r, "\x01", 1);
        put_long(&r, 1); /* priority: int */
        put_long(&r, -3);
        put_long(&r, 2); /* replay_of: bytes */
        put_str(&r, "rb");
        return r;
}

static void test_mapping_corners_agree(void **state) {
        /* keys starting with '@' are written with their nul terminator */
        const char *dup[] = {"a", "1", "b", "2", "a", "3"};
        const char *nulkey[] = {"@k", "1", "k", "2"};
        const char *nulval[] = {"a", "@x"};
        const char *nulval_replaced[] = {"a", "@x", "a", "ok"};
        rec_t r;
        int b;

        r = foreign(NULL, 0, 0);
        check_mutations("foreign, no params", &r);
        r = foreign(dup, 3, 0);
        check_mutations("duplicate keys", &r);
        r = foreign(nulkey, 2, 0);
        check_mutations("nul byte in a key", &r);
        r = foreign(nulval, 1, 0);
        check_mutations("nul byte in a value", &r);
        r = foreign(nulval_replaced, 2, 0);
        check_mutations("nul value replaced by a duplicate key", &r);
        for (b = 0; b < 3; b++) {
                r = foreign(dup, 3, b); /* null and long datasets */
                check_mutations("dataset branch", &r);
        }
        r = foreign(NULL, 0, 0);
        r.b[10] = 4; /* params: the map<long> branch, empty */
        check_mutations("params of the wrong branch", &r);
        r.b[10] = 0; /* params: null */
        check_mutations("null params", &r);
}

/* A writer (record `name`) needing every promotion the task schema can
 * meet: task_id and replay_of as bytes, params as map<bytes>,
 * requested_at of the given type.  Logical types are not in the
 * fingerprint, so writers that differ only there need other names. */
static uint64_t promoting_writer(const char *name, const char *requested_at) {
        char json[1024], errstr[256];
        uint64_t fp;

        snprintf(json, sizeof(json),
                 "{\"type\":\"record\",\"name\":\"%s\",\"fields\":["
                 "{\"name\":\"task_id\",\"type\":\"bytes\"},"
                 "{\"name\":\"entity_ref\",\"type\":\"string\"},"
                 "{\"name\":\"dataset\",\"type\":\"string\"},"
                 "{\"name\":\"requested_at\",\"type\":%s},"
                 "{\"name\":\"requested_by\",\"type\":\"string\"},"
                 "{\"name\":\"params\",\"type\":{\"type\":\"map\","
                 "\"values\":\"bytes\"}},"
                 "{\"name\":\"replay_of\",\"type\":[\"null\",\"bytes\"]}]}",
                 name, requested_at);
        if (drv_schema_store_add(store, json, &fp, errstr, sizeof(errstr)) ||
            drv_schema_store_add(store_v1, json, NULL, errstr, sizeof(errstr)))
                fail_msg("promoting writer %s: %s", requested_at, errstr);
        return fp;
}

static rec_t promoting(uint64_t fp, int64_t at, const char *value) {
        rec_t r = {.n = 0};

        put_header(&r, fp);
        put_str(&r, "tid");
        put_str(&r, "component:default/p");
        put_str(&r, "ds");
        put_long(&r, at);
        put_str(&r, "carol");
        put_long(&r, 2);
        put_str(&r, "tenant");
        put_str(&r, "acme");
        put_str(&r, "note");
        put_str(&r, value);
        put_long(&r, 0);
        put_long(&r, 1);
        put_str(&r, "rb");
        return r;
}

/* decode r (both paths agree); the task, or NULL with errstr */
static drv_task_t *decode_promoted(const rec_t *r, char *errstr) {
        drv_task_t *t = NULL;

        check("promotion", r->b, r->n);
        if (drv_task_decode(store, r->b, r->n, &t, errstr, 256))
                return NULL;
        return t;
}

static void test_legal_promotions_read_as_java_does(void **state) {
        uint64_t micros = promoting_writer("Micros", "{\"type\":\"long\","
                                                     "\"logicalType\":"
                                                     "\"timestamp-micros\"}");
        uint64_t nanos = promoting_writer("Nanos", "{\"type\":\"long\","
                                                   "\"logicalType\":"
                                                   "\"timestamp-nanos\"}");
        uint64_t ints = promoting_writer("Ints", "\"int\"");
        char errstr[256];
        drv_task_t *t;
        rec_t r;

        r = promoting(micros, 1764057600123456LL, "caf\xc3\xa9");
        check_mutations("micros and bytes", &r);
        assert_non_null(t = decode_promoted(&r, errstr));
        assert_true(t->requested_at == 1764057600123LL);
        assert_string_equal(t->task_id, "tid");
        assert_string_equal(t->replay_of, "rb");
        assert_int_equal(t->params_cnt, 2);
        assert_string_equal(drv_task_param(t, "tenant"), "acme");
        assert_string_equal(drv_task_param(t, "note"), "caf\xc3\xa9");
        drv_task_destroy(t);
        /* before 1970 the instant rounds down, as Java's Instant does */
        r = promoting(micros, -1, "x");
        assert_non_null(t = decode_promoted(&r, errstr));
        assert_true(t->requested_at == -1);
        drv_task_destroy(t);
        r = promoting(nanos, 1764057600123456789LL, "x");
        assert_non_null(t = decode_promoted(&r, errstr));
        assert_true(t->requested_at == 1764057600123LL);
        drv_task_destroy(t);
        r = promoting(ints, 123456, "x");
        assert_non_null(t = decode_promoted(&r, errstr));
        assert_true(t->requested_at == 123456);
        drv_task_destroy(t);
        /* bytes become text only as UTF-8 without nul bytes */
        r = promoting(micros, 0, "\xff\x41");
        check_mutations("bytes that are not UTF-8", &r);
        assert_null(decode_promoted(&r, errstr));
        assert_string_equal(errstr, "task field \"params\" holds bytes that "
                                    "are not valid UTF-8");
        r = promoting(micros, 0, "\xc0\xaf"); /* overlong '/' */
        assert_null(decode_promoted(&r, errstr));
        assert_non_null(strstr(errstr, "not valid UTF-8"));
        r = promoting(micros, 0, "\xe2\x82"); /* truncated */
        assert_null(decode_promoted(&r, errstr));
        assert_non_null(strstr(errstr, "not valid UTF-8"));
        r = promoting(micros, 0, "x");
        r.b[r.n - 2] = 0xed; /* replay_of "rb" -> "\xedb" */
        assert_null(decode_promoted(&r, errstr));
        assert_string_equal(errstr, "task field \"replay_of\" holds bytes "
                                    "that are not valid UTF-8");
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(uint32_t n) {
        rnd_state = rnd_state * 1103515245u + 12345u;
        return (rnd_state >> 8) % n;
}

static void put_rnd_str(rec_t *r, int nul_ok) {
        static const char pool[] = "abc\xc3\xa9 -_/:\0";
        char s[24];
        size_t i, n = rnd(12);

        for (i = 0; i < n; i++)
                s[i] = pool[rnd(nul_ok && rnd(20) == 0 ? 12 : 11)];
        put_bytes(r, s, n);
}

/* A random record of the fuzz schema (valid, or nearly so). */
static rec_t random_fuzz_record(void) {
        rec_t r = {.n = 0};
        uint32_t i, n;

        put_header(&r, fp_fuzz);
        put_rnd_str(&r, 1);
        n = rnd(3);
        put_long(&r, n);
        if (n)
                put_rnd_str(&r, 1);
        put_rnd_str(&r, 1);
        put_long(&r, (int64_t)rnd(2000000) - 1000000);
        put_rnd_str(&r, 1);
        put_long(&r, rnd(3));
        put(&r, "wxyz", 4);
        for (n = rnd(3); n; n--) { /* array blocks of union items */
                uint32_t items = 1 + rnd(3);
                put_long(&r, items);
                for (i = 0; i < items; i++) {
                        uint32_t br = rnd(4);
                        put_long(&r, br);
                        if (br == 1)
                                put(&r, "\0\0\x80?", 4);
                        else if (br == 2)
                                put(&r, "\0\0\0\0\0\0\xf0?", 8);
                        else if (br == 3)
                                put_long(&r, rnd(3));
                }
        }
        put_long(&r, 0);
        for (n = rnd(2); n; n--) { /* n.m: map of fixed */
                put_long(&r, 1);
                put_rnd_str(&r, 0);
                put(&r, "abcd", 4);
        }
        put_long(&r, 0);
        for (n = rnd(3); n; n--) { /* params, keys from a small set */
                uint32_t items = 1 + rnd(4);
                put_long(&r, items);
                for (i = 0; i < items; i++) {
                        char k[2] = {(char)('a' + rnd(4)), 0};
                        put_str(&r, k);
                        put_rnd_str(&r, 1);
                }
        }
        put_long(&r, 0);
        n = rnd(2);
        put_long(&r, n);
        if (n)
                put_rnd_str(&r, 1);
        return r;
}

static void test_random_records_agree(void **state) {
        rec_t r;
        int i;

        for (i = 0; i < 3000; i++) {
                r = random_fuzz_record();
                if (i < 100)
                        check_mutations("random record", &r);
                else
                        check("random record", r.b, r.n);
        }
        print_message("checked %zu records through both paths\n", checked);
}

static int setup(void **state) {
        drv_schema_conf_t conf = {.reader_version = 1};
        char errstr[256];

        store = drv_schema_store_new(NULL, errstr, sizeof(errstr));
        store_v1 = drv_schema_store_new(&conf, errstr, sizeof(errstr));
        if (!store || !store_v1 ||
            drv_schema_store_add(store, fuzz_schema, &fp_fuzz, errstr,
                                 sizeof(errstr)) ||
            drv_schema_store_add(store_v1, fuzz_schema, NULL, errstr,
                                 sizeof(errstr)) ||
            drv_schema_store_add(store, foreign_schema, &fp_foreign, errstr,
                                 sizeof(errstr)) ||
            drv_schema_store_add(store_v1, foreign_schema, NULL, errstr,
                                 sizeof(errstr))) {
                fprintf(stderr, "setup: %s\n", errstr);
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        drv_schema_store_destroy(store);
        drv_schema_store_destroy(store_v1);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trips_agree),
            cmocka_unit_test(test_fuzz_seed_corpus_agrees),
            cmocka_unit_test(test_mapping_corners_agree),
            cmocka_unit_test(test_random_records_agree),
            cmocka_unit_test(test_legal_promotions_read_as_java_does),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
