/*
 * tests/integration/test_schema_interop.c: drover's task records against
 * an Avro implementation nobody here wrote (Debian's python3-avro, run
 * with /usr/bin/python3), in both wire formats, v1 and v2 writers, both
 * directions; and drover's registry client against
 * schema_registry_stub.py.
 *
 * NOTE: the registry here is a stand-in answering the documented
 * Confluent REST API with recorded response shapes, NOT a real registry
 * (neither Karapace nor Apicurio could run on this machine; see
 * scripts/registry.sh).
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
static char url[128];
static pid_t stub_pid;

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
        if (!port[0])
                fail_msg("registry stub did not start");
        snprintf(url_out, url_size, "http://127.0.0.1:%s", port);
        return pid;
}

static void stop_stub(pid_t pid) {
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
        conf.subject = "interop-value";
        conf.registry_timeout_ms = 2000;
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
                 "%s %s %s/schema/avro",
                 src, dir, url, src);
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

static drv_err_t decode_cf(drv_schema_store_t *s, int id, char *errstr,
                           size_t errstr_size) {
        unsigned char rec[] = {0x00, 0, 0, 0, (unsigned char)id, 0x02, 'x'};
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

        /* an id the registry denies (404, 40403) is poison */
        assert_int_equal(decode_cf(s, 99, errstr, sizeof(errstr)),
                         DRV_ERR_UNKNOWN_SCHEMA);
        assert_non_null(strstr(errstr, "404"));
        drv_schema_store_destroy(s);

        /* a registry that answers 500 is transient */
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
        assert_int_equal(
            drv_task_encode(s, t, &buf, &len, errstr, sizeof(errstr)), DRV_OK);
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

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                test_python_avro_reads_drover_and_drover_reads_python),
            cmocka_unit_test(test_registry_errors_are_classified),
        };
        int rc;

        if (access("/usr/bin/python3", X_OK) != 0)
                return 77;
        if (!mkdtemp(dir))
                return 1;
        stub_pid = start_stub(NULL, url, sizeof(url));
        rc = cmocka_run_group_tests(tests, NULL, NULL);
        stop_stub(stub_pid);
        snprintf(url, sizeof(url), "rm -rf %s", dir);
        if (system(url) != 0)
                rc = rc ? rc : 1;
        return rc;
}
