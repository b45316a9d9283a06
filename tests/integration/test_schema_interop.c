/*
 * tests/integration/test_schema_interop.c: drover's task records against
 * an Avro implementation nobody here wrote (Debian's python3-avro, run
 * with /usr/bin/python3), in both wire formats, v1 and v2 writers, both
 * directions; and drover's registry client against a registry.
 *
 * Apache Avro for Java (1.12, .cache/avro-libs) writes the records whose
 * writer schemas need schema resolution: see
 * test_java_avro_promotions_read_as_java_reads_them.
 *
 * The registry: when DROVER_TEST_REGISTRY_URL is set (scripts/test.sh sets
 * it from `scripts/registry.sh start`: a real Apicurio Registry serving the
 * Confluent API), encoding, decoding, python3-avro interop and the unknown
 * id case run against that real registry.  Otherwise they run against
 * schema_registry_stub.py, a stand-in answering the documented Confluent
 * REST API with recorded response shapes, NOT a real registry.  The fault
 * injection cases (a registry answering 500, bearer auth) always use the
 * stand-in: a real registry cannot be made to fail on demand.
 */
#include "testutil.h"

#include "../unit/schema_equiv.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/drv-interop-XXXXXX";
static char url[256];
static char subject[128]; /* "<unique topic>-value" */
static int real_registry;
static pid_t stub_pid;
static pid_t fault_pid; /* a fault-injection stub; killed by main if a
                         * failing test left it running */

static pid_t start_stub(const char *extra, char *url_out, size_t url_size) {
        char path[512], port[16] = "", portfile[600];
        const char *src = getenv("DROVER_SOURCE_DIR");
        pid_t pid;
        FILE *fp;
        int i;

        snprintf(path, sizeof(path),
                 "%s/tests/integration/schema_registry_stub.py", src);
        snprintf(portfile, sizeof(portfile), "%s/port-%d-%s", dir,
                 (int)getpid(), extra ? "x" : "n");
        /* an earlier stub of the same kind left its port here: never read
         * that one (it made a loaded machine connect to a dead stub) */
        unlink(portfile);
        if ((pid = fork()) == 0) {
                if (extra && !strcmp(extra, "--fail-ids"))
                        execl("/usr/bin/python3", "python3", path, portfile,
                              extra, (char *)NULL);
                else if (extra)
                        execl("/usr/bin/python3", "python3", path, portfile,
                              "--token", extra, (char *)NULL);
                else
                        execl("/usr/bin/python3", "python3", path, portfile,
                              (char *)NULL);
                _exit(127);
        }
        for (i = 0; i < 100 && !port[0]; i++) {
                nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
                if ((fp = fopen(portfile, "r"))) {
                        if (!fgets(port, sizeof(port), fp))
                                port[0] = '\0';
                        fclose(fp);
                }
        }
        if (extra)
                fault_pid = pid;
        if (!port[0])
                fail_msg("registry stub did not start");
        snprintf(url_out, url_size, "http://127.0.0.1:%s", port);
        return pid;
}

static void stop_stub(pid_t pid) {
        if (pid == fault_pid)
                fault_pid = 0;
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
}

static drv_schema_store_t *store_with(const char *reg, int writer, int reader,
                                      const char *token) {
        drv_schema_conf_t conf = {0};
        drv_schema_store_t *s;
        char errstr[256];

        conf.registry_url = reg;
        conf.registry_token = token;
        conf.writer_version = writer;
        conf.reader_version = reader;
        conf.subject = subject;
        conf.registry_timeout_ms = 10000; /* a loaded test machine */
        if (!(s = drv_schema_store_new(&conf, errstr, sizeof(errstr))))
                fail_msg("store: %s", errstr);
        return s;
}

static drv_task_t *sample_task(void) {
        drv_task_t *t = drv_task_new();

        t->task_id = strdup("6f1c2b1e-7d4a-4a53-9a55-2b8f3c1d0e9f");
        t->entity_ref =
            strdup("component:default/customer-dataset-v2-migration");
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

static void write_file(const char *name, const void *buf, size_t len) {
        char path[600];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        assert_non_null(fp = fopen(path, "wb"));
        assert_int_equal(fwrite(buf, 1, len, fp), len);
        fclose(fp);
}

static void *read_file(const char *name, size_t *lenp) {
        char path[600];
        void *buf = malloc(65536);
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        assert_non_null(fp = fopen(path, "rb"));
        *lenp = fread(buf, 1, 65536, fp);
        fclose(fp);
        return buf;
}

static void encode_for_python(void) {
        drv_task_t *t = sample_task();
        char errstr[256], name[64];
        void *buf;
        size_t len;
        int v, cf;

        for (v = 1; v <= 2; v++) {
                for (cf = 0; cf <= 1; cf++) {
                        drv_schema_store_t *s =
                            store_with(cf ? url : NULL, v, 2, NULL);
                        if (drv_task_encode(s, t, &buf, &len, errstr,
                                            sizeof(errstr)))
                                fail_msg("encode: %s", errstr);
                        snprintf(name, sizeof(name), "drover-v%d-%s.bin", v,
                                 cf ? "cf" : "so");
                        write_file(name, buf, len);
                        free(buf);
                        drv_schema_store_destroy(s);
                }
        }
        drv_task_destroy(t);
}

static void check_against(const drv_task_t *t, json_t *want, int reader) {
        const char *k;
        json_t *v;

        assert_string_equal(
            t->task_id, json_string_value(json_object_get(want, "task_id")));
        assert_string_equal(t->entity_ref, json_string_value(json_object_get(
                                               want, "entity_ref")));
        assert_string_equal(t->dataset, "customer");
        assert_true(t->requested_at ==
                    json_integer_value(json_object_get(want, "requested_at")));
        assert_string_equal(t->requested_by, "alice@example.com");
        assert_int_equal(t->dry_run, 1);
        assert_int_equal(t->params_cnt,
                         json_object_size(json_object_get(want, "params")));
        json_object_foreach(json_object_get(want, "params"), k, v)
            assert_string_equal(drv_task_param(t, k), json_string_value(v));
        if (reader == 2 && json_object_get(want, "priority")) {
                assert_int_equal(t->priority, 7);
                assert_string_equal(t->replay_of,
                                    "11111111-2222-4333-8444-555555555555");
        } else {
                assert_int_equal(t->priority, 0);
                assert_null(t->replay_of);
        }
}

static void
test_python_avro_reads_drover_and_drover_reads_python(void **state) {
        char cmd[2048], name[64], errstr[256];
        const char *src = getenv("DROVER_SOURCE_DIR");
        drv_task_t *t;
        json_t *want;
        size_t len;
        void *buf;
        int v, cf, reader;

        encode_for_python();
        snprintf(cmd, sizeof(cmd),
                 "/usr/bin/python3 %s/tests/integration/schema_interop.py "
                 "%s %s %s/schema/avro %s",
                 src, dir, url, src, subject);
        assert_int_equal(system(cmd), 0);
        for (reader = 1; reader <= 2; reader++) {
                drv_schema_store_t *s = store_with(url, 2, reader, NULL);
                for (v = 1; v <= 2; v++) {
                        snprintf(name, sizeof(name), "%s/python-v%d.json", dir,
                                 v);
                        assert_non_null(want = json_load_file(name, 0, NULL));
                        for (cf = 0; cf <= 1; cf++) {
                                snprintf(name, sizeof(name),
                                         "python-v%d-%s.bin", v,
                                         cf ? "cf" : "so");
                                buf = read_file(name, &len);
                                if (drv_task_decode(s, buf, len, &t, errstr,
                                                    sizeof(errstr)))
                                        fail_msg("%s: %s", name, errstr);
                                check_against(t, want, reader);
                                /* the reference decoder agrees */
                                if (equiv_check(s, buf, len, NULL, errstr,
                                                sizeof(errstr)))
                                        fail_msg("%s: decoders differ: %s",
                                                 name, errstr);
                                assert_int_equal(t->writer_version, v);
                                drv_task_destroy(t);
                                free(buf);
                        }
                        json_decref(want);
                }
                drv_schema_store_destroy(s);
        }
}

/* The record Java wrote as `file` decoded by drover (both decoders);
 * NULL with errstr when drover refuses it. */
static drv_task_t *decode_java(drv_schema_store_t *s, const char *file,
                               char *errstr, size_t errstr_size) {
        char why[512];
        drv_task_t *t = NULL;
        size_t len;
        void *buf = read_file(file, &len);

        if (equiv_check(s, buf, len, NULL, why, sizeof(why)))
                fail_msg("%s: decoders differ: %s", file, why);
        if (drv_task_decode(s, buf, len, &t, errstr, errstr_size))
                t = NULL;
        free(buf);
        return t;
}

/* t holds what Java's resolving reader read (want), field by field */
static void check_java(const drv_task_t *t, json_t *want) {
        const char *f[] = {"task_id", "entity_ref", "dataset", "requested_by",
                           "replay_of"};
        const char *got[] = {t->task_id, t->entity_ref, t->dataset,
                             t->requested_by, t->replay_of};
        const char *k;
        json_t *v;
        size_t i;

        for (i = 0; i < 5; i++)
                assert_string_equal(
                    got[i], json_string_value(json_object_get(want, f[i])));
        assert_int_equal(t->dry_run,
                         json_is_true(json_object_get(want, "dry_run")));
        assert_int_equal(t->priority,
                         json_integer_value(json_object_get(want, "priority")));
        assert_int_equal(t->params_cnt,
                         json_object_size(json_object_get(want, "params")));
        json_object_foreach(json_object_get(want, "params"), k, v)
            assert_string_equal(drv_task_param(t, k), json_string_value(v));
}

/*
 * Apache Avro for Java (JavaAvroInterop.java) writes task records with
 * writer schemas that only resolution reads: requested_at as
 * timestamp-micros, params as map<bytes>.  drover reads what Java's own
 * resolving reader reads, except requested_at, where Java keeps the
 * micros number in the millis field and drover the instant the writer
 * meant (docs/decisions.md); bytes that are not UTF-8, which Java turns
 * into U+FFFD, make the record poison.  The micros writer goes only in
 * Confluent framing: its fingerprint is the bundled v2 schema's (the
 * canonical form has no logical types).
 */
static void test_java_avro_promotions_read_as_java_reads_them(void **state) {
        const char *src = getenv("DROVER_SOURCE_DIR");
        char cmd[2048], name[640], errstr[256];
        drv_schema_store_t *s = store_with(url, 2, 2, NULL);
        const char *fr[] = {"cf", "so"};
        json_t *want;
        drv_task_t *t;
        size_t len;
        char *avsc;
        int i;

        snprintf(cmd, sizeof(cmd), "%s/.cache/avro-libs", src);
        if (access(cmd, R_OK))
                fail_msg("no %s (scripts/deps.sh fetches it)", cmd);
        snprintf(cmd, sizeof(cmd),
                 "java -Xmx256m -XX:+UseSerialGC -cp '%s/.cache/avro-libs/*' "
                 "'%s/tests/integration/JavaAvroInterop.java' %s %s "
                 "%s/schema/avro %s-java",
                 src, src, dir, url, src, subject);
        assert_int_equal(system(cmd), 0); /* its own subject: see latest_id */
        snprintf(name, sizeof(name), "%s/java-micros.json", dir);
        assert_non_null(want = json_load_file(name, 0, NULL));
        if (!(t = decode_java(s, "java-micros-cf.bin", errstr, sizeof(errstr))))
                fail_msg("java-micros-cf.bin: %s", errstr);
        check_java(t, want);
        assert_true(t->requested_at ==
                    json_integer_value(json_object_get(want, "written_ms")));
        assert_true(json_integer_value(json_object_get(want, "requested_at")) ==
                    t->requested_at * 1000 + 456); /* Java: the micros */
        drv_task_destroy(t);
        json_decref(want);

        /* the map<bytes> writer by fingerprint, as it was given to us */
        avsc = read_file("java-bytes.avsc", &len);
        avsc[len] = '\0';
        if (drv_schema_store_add(s, avsc, NULL, errstr, sizeof(errstr)))
                fail_msg("java-bytes.avsc: %s", errstr);
        free(avsc);

        snprintf(name, sizeof(name), "%s/java-bytes.json", dir);
        assert_non_null(want = json_load_file(name, 0, NULL));
        for (i = 0; i < 2; i++) {
                snprintf(name, sizeof(name), "java-bytes-%s.bin", fr[i]);
                if (!(t = decode_java(s, name, errstr, sizeof(errstr))))
                        fail_msg("%s: %s", name, errstr);
                check_java(t, want);
                assert_true(
                    t->requested_at ==
                    json_integer_value(json_object_get(want, "requested_at")));
                assert_string_equal(drv_task_param(t, "region"),
                                    "eu-west-1 \xc3\xa9");
                drv_task_destroy(t);
        }
        json_decref(want);

        snprintf(name, sizeof(name), "%s/java-badutf8.json", dir);
        assert_non_null(want = json_load_file(name, 0, NULL));
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(want, "params"), "blob")),
                            "\xef\xbf\xbd"
                            "A"); /* Java read it, with U+FFFD */
        json_decref(want);
        for (i = 0; i < 2; i++) {
                snprintf(name, sizeof(name), "java-badutf8-%s.bin", fr[i]);
                assert_null(t = decode_java(s, name, errstr, sizeof(errstr)));
                assert_string_equal(errstr, "task field \"params\" holds bytes "
                                            "that are not valid UTF-8");
        }
        drv_schema_store_destroy(s);
        (void)state;
}

static drv_err_t decode_cf(drv_schema_store_t *s, uint32_t id, char *errstr,
                           size_t errstr_size) {
        unsigned char rec[] = {0x00,
                               (unsigned char)(id >> 24),
                               (unsigned char)(id >> 16),
                               (unsigned char)(id >> 8),
                               (unsigned char)id,
                               0x02,
                               'x'};
        drv_task_t *t = NULL;
        drv_err_t err;

        err = drv_task_decode(s, rec, sizeof(rec), &t, errstr, errstr_size);
        drv_task_destroy(t);
        return err;
}

static void test_registry_errors_are_classified(void **state) {
        char errstr[256], other[128];
        drv_schema_store_t *s = store_with(url, 2, 2, NULL);
        pid_t pid;

        /* an id the registry denies (404, 40403) is poison; an id no
         * test run could have reached, the real registry being shared */
        assert_int_equal(decode_cf(s, 2000000000u, errstr, sizeof(errstr)),
                         DRV_ERR_UNKNOWN_SCHEMA);
        assert_non_null(strstr(errstr, "404"));
        drv_schema_store_destroy(s);

        /* fault injection (always the stand-in): a registry that
         * answers 500 is transient */
        pid = start_stub("--fail-ids", other, sizeof(other));
        s = store_with(other, 2, 2, NULL);
        assert_int_equal(decode_cf(s, 1, errstr, sizeof(errstr)),
                         DRV_ERR_REGISTRY_UNAVAILABLE);
        drv_schema_store_destroy(s);
        stop_stub(pid);

        /* nobody listening: transient, and the message names the URL */
        s = store_with(other, 2, 2, NULL);
        assert_int_equal(decode_cf(s, 1, errstr, sizeof(errstr)),
                         DRV_ERR_REGISTRY_UNAVAILABLE);
        assert_non_null(strstr(errstr, "cannot reach schema registry"));
        drv_schema_store_destroy(s);

        /* bearer auth: refused without the token (transient: it is the
         * worker's configuration, not the record), works with it */
        pid = start_stub("s3cret-token", other, sizeof(other));
        s = store_with(other, 2, 2, NULL);
        drv_task_t *t = sample_task();
        void *buf;
        size_t len;
        assert_int_equal(
            drv_task_encode(s, t, &buf, &len, errstr, sizeof(errstr)),
            DRV_ERR_REGISTRY_UNAVAILABLE);
        assert_null(strstr(errstr, "s3cret"));
        drv_schema_store_destroy(s);
        s = store_with(other, 2, 2, "s3cret-token");
        if (drv_task_encode(s, t, &buf, &len, errstr, sizeof(errstr)))
                fail_msg("encode with the token: %s", errstr);
        drv_task_t *out;
        assert_int_equal(
            drv_task_decode(s, buf, len, &out, errstr, sizeof(errstr)), DRV_OK);
        assert_string_equal(out->replay_of, t->replay_of);
        drv_task_destroy(out);
        free(buf);
        drv_task_destroy(t);
        drv_schema_store_destroy(s);
        stop_stub(pid);
}

/* The id the registry holds for the latest version of our subject, by
 * the registry's own API (curl), or -1. */
static long latest_id(void) {
        char cmd[600], out[4096];
        size_t n;
        json_t *root;
        long id = -1;
        FILE *p;

        snprintf(cmd, sizeof(cmd), "curl -fsS '%s/subjects/%s/versions/latest'",
                 url, subject);
        if (!(p = popen(cmd, "r")))
                return -1;
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        if (pclose(p) != 0)
                return -1;
        if ((root = json_loads(out, 0, NULL)) &&
            json_is_integer(json_object_get(root, "id")))
                id = (long)json_integer_value(json_object_get(root, "id"));
        json_decref(root);
        return id;
}

/* drv_task_encode with a registry registers the writer schema under the
 * store's subject and frames the record with the id the registry gave;
 * a store that has never seen the schema decodes it by fetching that id. */
static void test_encode_registers_and_decode_fetches_by_id(void **state) {
        drv_schema_store_t *enc = store_with(url, 2, 2, NULL), *dec;
        const unsigned char *b;
        drv_task_t *t = sample_task(), *out = NULL;
        char errstr[256];
        uint32_t id;
        void *buf, *buf2;
        size_t len, len2;

        if (drv_task_encode(enc, t, &buf, &len, errstr, sizeof(errstr)))
                fail_msg("encode: %s", errstr);
        b = buf;
        assert_true(len > 5);
        assert_int_equal(b[0], 0x00);
        id = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 |
             b[4];
        if (real_registry) /* the stand-in keeps no subjects */
                assert_int_equal(latest_id(), (long)id);
        /* registering the same schema again gives the same id */
        if (drv_task_encode(enc, t, &buf2, &len2, errstr, sizeof(errstr)))
                fail_msg("encode again: %s", errstr);
        assert_int_equal(len2, len);
        assert_memory_equal(buf2, buf, len);
        free(buf2);
        dec = store_with(url, 1, 2, NULL);
        if (drv_task_decode(dec, buf, len, &out, errstr, sizeof(errstr)))
                fail_msg("decode by id %u: %s", id, errstr);
        assert_string_equal(out->task_id, t->task_id);
        assert_string_equal(out->replay_of, t->replay_of);
        assert_string_equal(drv_task_param(out, "region"),
                            "eu-west-1 \xc3\xa9");
        assert_int_equal(out->writer_version, 2);
        drv_task_destroy(out);
        drv_schema_store_destroy(dec);
        drv_schema_store_destroy(enc);
        free(buf);
        drv_task_destroy(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                test_python_avro_reads_drover_and_drover_reads_python),
            cmocka_unit_test(test_java_avro_promotions_read_as_java_reads_them),
            cmocka_unit_test(test_registry_errors_are_classified),
            cmocka_unit_test(test_encode_registers_and_decode_fetches_by_id),
        };
        const char *real = getenv("DROVER_TEST_REGISTRY_URL");
        int rc;

        if (access("/usr/bin/python3", X_OK) != 0)
                return 77;
        if (!mkdtemp(dir))
                return 1;
        snprintf(subject, sizeof(subject), "%s-value",
                 drv_test_unique("drv-interop"));
        if (real && *real) {
                real_registry = 1;
                snprintf(url, sizeof(url), "%s", real);
                fprintf(stderr, "schema registry: real, at %s\n", url);
        } else {
                stub_pid = start_stub(NULL, url, sizeof(url));
                fprintf(stderr, "schema registry: the recorded-API stand-in "
                                "(DROVER_TEST_REGISTRY_URL unset)\n");
        }
        rc = cmocka_run_group_tests(tests, NULL, NULL);
        if (stub_pid)
                stop_stub(stub_pid);
        if (fault_pid)
                stop_stub(fault_pid);
        snprintf(url, sizeof(url), "rm -rf %s", dir);
        if (system(url) != 0)
                rc = rc ? rc : 1;
        return rc;
}
