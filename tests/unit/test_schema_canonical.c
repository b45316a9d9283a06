/*
 * tests/unit/test_schema_canonical.c: Parsing Canonical Form and the
 * CRC-64-AVRO fingerprint against the Avro specification's test vectors
 * (share/test/data/schema-tests.txt of the Avro repository), and schema
 * validation of what a registry might send.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static const struct {
        const char *input;
        const char *canonical;
        int has_fp;
        int64_t fp; /* as the spec prints it: a signed Java long */
} vectors[] = {
    {"\"null\"", "\"null\"", 1, 7195948357588979594LL},
    {"{\"type\":\"null\"}", "\"null\"", 0, 0},
    {"\"boolean\"", "\"boolean\"", 1, -6970731678124411036LL},
    {"{\"type\":\"boolean\"}", "\"boolean\"", 0, 0},
    {"\"int\"", "\"int\"", 1, 8247732601305521295LL},
    {"{\"type\":\"int\"}", "\"int\"", 0, 0},
    {"\"long\"", "\"long\"", 1, -3434872931120570953LL},
    {"{\"type\":\"long\"}", "\"long\"", 0, 0},
    {"\"float\"", "\"float\"", 1, 5583340709985441680LL},
    {"{\"type\":\"float\"}", "\"float\"", 0, 0},
    {"\"double\"", "\"double\"", 1, -8181574048448539266LL},
    {"{\"type\":\"double\"}", "\"double\"", 0, 0},
    {"\"bytes\"", "\"bytes\"", 1, 5746618253357095269LL},
    {"{\"type\":\"bytes\"}", "\"bytes\"", 0, 0},
    {"\"string\"", "\"string\"", 1, -8142146995180207161LL},
    {"{\"type\":\"string\"}", "\"string\"", 0, 0},
    {"[  ]", "[]", 1, -1241056759729112623LL},
    {"[ \"int\"  ]", "[\"int\"]", 1, -5232228896498058493LL},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 1,
     5392556393470105090LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
     -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
     "\"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 1,
     5916914534497305771LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", "
     "\"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", 1,
     -4616218487480524110LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
     "\"doc\":\"Useful info\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
     -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
     -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1,
     -4824392279771201922LL},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], "
     "\"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
     "\"type\":\"boolean\"}]}",
     1, 7843277075252814651LL},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", "
     "\"default\":\"true\"},\n {\"order\":\"descending\",\"name\":\"f2\","
     "\"doc\":\"Hello\",\"type\":\"int\"}],\n \"type\":\"record\", "
     "\"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
     "\"type\":\"boolean\"},{\"name\":\"f2\",\"type\":\"int\"}]}",
     1, -4860222112080293046LL},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", 1,
     -6342190197741309591LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", "
     "\"doc\":\"foo bar\", \"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\","
     "\"A2\"]}",
     1, -4448647247586288245LL},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", 1,
     1756455273707447556LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", "
     "\"doc\":\"foo bar\", \"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", 1,
     -3064184465700546786LL},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", 1, -589620603366471059LL},
    {"{ \"values\":\"string\", \"type\":\"map\"}",
     "{\"type\":\"map\",\"values\":\"string\"}", 1, -8732877298790414990LL},
    {"{\"name\":\"PigValue\",\"type\":\"record\",\n \"fields\":[{\"name\":"
     "\"value\", \"type\":[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":"
     "\"value\",\"type\":[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
     1, -1759257747318642341LL},
};

static void test_spec_vectors_canonical_form_and_fingerprint(void **state) {
        char errstr[256], *canon;
        uint64_t fp;
        size_t i;

        for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                const char *in = vectors[i].input;
                assert_int_equal(drv_schema_canonical_form(in, strlen(in),
                                                           &canon, errstr,
                                                           sizeof(errstr)),
                                 DRV_OK);
                if (strcmp(canon, vectors[i].canonical))
                        fail_msg("vector %zu: got %s want %s", i, canon,
                                 vectors[i].canonical);
                free(canon);
                if (!vectors[i].has_fp)
                        continue;
                assert_int_equal(drv_schema_fingerprint(in, strlen(in), &fp,
                                                        errstr, sizeof(errstr)),
                                 DRV_OK);
                if (fp != (uint64_t)vectors[i].fp)
                        fail_msg("vector %zu: fingerprint %lld want %lld", i,
                                 (long long)fp, (long long)vectors[i].fp);
        }
}

static void test_canonical_form_drops_logical_types(void **state) {
        const char *in = "{\"type\":\"long\",\"logicalType\":"
                         "\"timestamp-millis\"}";
        char errstr[256], *canon;

        assert_int_equal(drv_schema_canonical_form(in, strlen(in), &canon,
                                                   errstr, sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(canon, "\"long\"");
        free(canon);
}

static void test_canonical_form_rejects_non_schemas(void **state) {
        const char *bad[] = {"", "{", "42", "{\"type\":\"nonsense\"}",
                             "{\"type\":\"record\",\"fields\":[]}"};
        char errstr[256], *canon;
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(
                    drv_schema_canonical_form(bad[i], strlen(bad[i]), &canon,
                                              errstr, sizeof(errstr)),
                    DRV_ERR_DECODE);
                assert_null(canon);
        }
}

static void test_validate_rejects_hostile_schemas(void **state) {
        static const struct {
                const char *json;
                const char *why;
        } bad[] = {
            {"{\"name\":\"P\",\"type\":\"record\",\"fields\":[{\"name\":\"v\","
             "\"type\":[\"null\",\"P\"]}]}",
             "recursive type \"P\""},
            {"{\"name\":\"F\",\"type\":\"fixed\",\"size\":-1}", "fixed"},
            {"{\"name\":\"F\",\"type\":\"fixed\",\"size\":1000000000}",
             "fixed"},
            {"{\"name\":\"E\",\"type\":\"enum\",\"symbols\":[]}", "symbols"},
            {"{\"name\":\"R\",\"type\":\"record\",\"fields\":[{\"name\":\"a\","
             "\"type\":\"Nope\"}]}",
             "unknown type"},
            {"{\"name\":\"R\",\"type\":\"record\",\"fields\":[{\"name\":\"a\","
             "\"type\":\"int\"},{\"name\":\"a\",\"type\":\"int\"}]}",
             "duplicate field"},
            {"[[\"int\"]]", "union inside a union"},
            {"{\"type\":\"wat\"}", "unsupported type"},
            {"{\"name\":\"9x\",\"type\":\"record\",\"fields\":[]}", "name"},
            {"not json", "not valid json"},
        };
        char errstr[256], deep[4096];
        size_t i, n = 0;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                errstr[0] = '\0';
                assert_int_equal(drv_schema_validate(bad[i].json,
                                                     strlen(bad[i].json),
                                                     errstr, sizeof(errstr)),
                                 DRV_ERR_UNKNOWN_SCHEMA);
                if (!strstr(errstr, bad[i].why))
                        fail_msg("row %zu: \"%s\" lacks \"%s\"", i, errstr,
                                 bad[i].why);
        }
        /* 40 nested arrays: deeper than the limit */
        for (i = 0; i < 40; i++)
                n +=
                    (size_t)sprintf(deep + n, "{\"type\":\"array\",\"items\":");
        n += (size_t)sprintf(deep + n, "\"int\"");
        for (i = 0; i < 40; i++)
                deep[n++] = '}';
        deep[n] = '\0';
        assert_int_equal(drv_schema_validate(deep, n, errstr, sizeof(errstr)),
                         DRV_ERR_UNKNOWN_SCHEMA);
        assert_non_null(strstr(errstr, "nested deeper"));
}

static void test_validate_accepts_the_bundled_schemas(void **state) {
        char path[1024], errstr[256], buf[8192];
        FILE *fp;
        size_t n;
        int v;

        for (v = 1; v <= 2; v++) {
                snprintf(path, sizeof(path),
                         "%s/schema/avro/MigrationTask.v%d.avsc",
                         getenv("DROVER_SOURCE_DIR"), v);
                assert_non_null(fp = fopen(path, "r"));
                n = fread(buf, 1, sizeof(buf), fp);
                fclose(fp);
                assert_int_equal(
                    drv_schema_validate(buf, n, errstr, sizeof(errstr)),
                    DRV_OK);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_spec_vectors_canonical_form_and_fingerprint),
            cmocka_unit_test(test_canonical_form_drops_logical_types),
            cmocka_unit_test(test_canonical_form_rejects_non_schemas),
            cmocka_unit_test(test_validate_rejects_hostile_schemas),
            cmocka_unit_test(test_validate_accepts_the_bundled_schemas),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
