/*
 * drover - tests/testutil.c
 */
#include "testutil.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *need_env(const char *name) {
        const char *v = getenv(name);
        const char *req;

        if (v && *v)
                return v;
        req = getenv("DROVER_REQUIRE_STACK");
        if (req && !strcmp(req, "1")) {
                fprintf(stderr, "%s is not set but the stack is required\n",
                        name);
                exit(1);
        }
        fprintf(stderr,
                "%s not set: skipping (start the stack with "
                "scripts/kafka.sh and scripts/pg.sh)\n",
                name);
        exit(77);
}

const char *drv_test_brokers(void) {
        return need_env("DROVER_TEST_BROKERS");
}

const char *drv_test_database_url(void) {
        return need_env("DROVER_TEST_DATABASE_URL");
}

const char *drv_test_unique(const char *prefix) {
        static _Thread_local char buf[8][128];
        static int counter;
        int n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        char *out = buf[n % 8];

        snprintf(out, sizeof(buf[0]), "%s-%d-%lld-%d", prefix, (int)getpid(),
                 (long long)(drv_now_ms() % 100000000), n);
        return out;
}

rd_kafka_t *drv_test_kafka(rd_kafka_type_t type, const char **kv) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];
        rd_kafka_t *rk;

        if (rd_kafka_conf_set(conf, "bootstrap.servers", drv_test_brokers(),
                              errstr, sizeof(errstr)))
                fail_msg("bootstrap.servers: %s", errstr);
        for (; kv && kv[0]; kv += 2)
                if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr,
                                      sizeof(errstr)))
                        fail_msg("%s: %s", kv[0], errstr);
        if (!(rk = rd_kafka_new(type, conf, errstr, sizeof(errstr))))
                fail_msg("rd_kafka_new: %s", errstr);
        return rk;
}

void drv_test_create_topic(const char *topic, int partitions) {
        rd_kafka_t *rk = drv_test_kafka(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        const rd_kafka_topic_result_t **res;
        rd_kafka_NewTopic_t *nt;
        rd_kafka_event_t *ev;
        char errstr[256];
        size_t cnt;

        nt =
            rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
        if (!nt)
                fail_msg("topic %s: %s", topic, errstr);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        ev = rd_kafka_queue_poll(q, 30000);
        assert_non_null(ev);
        res = rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(ev), &cnt);
        assert_int_equal(cnt, 1);
        if (rd_kafka_topic_result_error(res[0]))
                fail_msg("create %s: %s", topic,
                         rd_kafka_topic_result_error_string(res[0]));
        rd_kafka_event_destroy(ev);
        rd_kafka_NewTopic_destroy(nt);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
}

char drv_test_out[1 << 18];
char drv_test_err[1 << 14];

/* Read fp into buf (NUL-terminated, truncated). */
static void slurp(FILE *fp, char *buf, size_t size) {
        size_t n = fp ? fread(buf, 1, size - 1, fp) : 0;

        buf[n] = '\0';
}

int drv_test_cli(const char *fmt, ...) {
        char args[1024], cmd[2048], errfile[64];
        const char *bin = getenv("DROVER_BIN");
        va_list ap;
        FILE *fp;
        int st;

        assert_non_null(bin);
        va_start(ap, fmt);
        vsnprintf(args, sizeof(args), fmt, ap);
        va_end(ap);
        snprintf(errfile, sizeof(errfile), "/tmp/drv-cli-test-%d.err",
                 (int)getpid());
        snprintf(cmd, sizeof(cmd), "'%s' %s 2>%s", bin, args, errfile);
        assert_non_null(fp = popen(cmd, "r"));
        slurp(fp, drv_test_out, sizeof(drv_test_out));
        st = pclose(fp);
        fp = fopen(errfile, "r");
        slurp(fp, drv_test_err, sizeof(drv_test_err));
        if (fp)
                fclose(fp);
        unlink(errfile);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

rd_kafka_mock_cluster_t *
drv_test_mock_cluster(rd_kafka_t **ownerp, const char *topic, int partitions) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_mock_cluster_t *mc;
        char errstr[256];

        rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
        *ownerp = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        assert_non_null(*ownerp);
        mc = rd_kafka_mock_cluster_new(*ownerp, 1);
        assert_non_null(mc);
        rd_kafka_mock_topic_create(mc, topic, partitions, 1);
        return mc;
}

void drv_test_exec(PGconn *conn, const char *sql, int n,
                   const char *const *vals) {
        PGresult *res = PQexecParams(conn, sql, n, NULL, vals, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_COMMAND_OK &&
            PQresultStatus(res) != PGRES_TUPLES_OK)
                fail_msg("%s: %s", sql, PQerrorMessage(conn));
        PQclear(res);
}

const char *drv_test_value(PGconn *conn, const char *fmt, ...) {
        static char out[4096];
        char sql[8192];
        PGresult *res;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(sql, sizeof(sql), fmt, ap);
        va_end(ap);
        res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK &&
            PQresultStatus(res) != PGRES_TUPLES_OK)
                fail_msg("sql failed: %s: %s", sql, PQerrorMessage(conn));
        snprintf(out, sizeof(out), "%s",
                 PQntuples(res) && PQnfields(res) && !PQgetisnull(res, 0, 0)
                     ? PQgetvalue(res, 0, 0)
                     : "");
        PQclear(res);
        return out;
}

static size_t on_data(char *p, size_t sz, size_t n, void *arg) {
        drv_test_resp_t *r = arg;
        char *nb = realloc(r->body, r->len + sz * n + 1);

        assert_non_null(nb);
        memcpy(nb + r->len, p, sz * n);
        r->body = nb;
        r->len += sz * n;
        r->body[r->len] = '\0';
        return sz * n;
}

drv_test_resp_t drv_test_http(const char *method, const char *url,
                              const char *auth, const char *body,
                              size_t body_len) {
        CURL *curl = curl_easy_init();
        struct curl_slist *hdrs = NULL;
        char h[256];
        char *ct = NULL;
        drv_test_resp_t r = {0};

        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
        if (auth) {
                snprintf(h, sizeof(h), "Authorization: %s", auth);
                hdrs = curl_slist_append(hdrs, h);
        }
        if (body) {
                hdrs =
                    curl_slist_append(hdrs, "Content-Type: application/json");
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body_len);
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        assert_int_equal(curl_easy_perform(curl), CURLE_OK);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(r.content_type, sizeof(r.content_type), "%s", ct ? ct : "");
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(curl);
        if (!r.body)
                r.body = strdup("");
        return r;
}

drv_plan_t *drv_test_plan(const char *doc_fmt, const char *extra) {
        char yaml[2048], errstr[512];
        drv_plan_t **plans;
        drv_plan_t *plan;
        size_t cnt;

        snprintf(yaml, sizeof(yaml), doc_fmt, extra);
        if (drv_plan_load_buf(yaml, strlen(yaml), "t.yaml", &plans, &cnt,
                              errstr, sizeof(errstr)))
                fail_msg("\"%s\": %s", extra, errstr);
        assert_int_equal(cnt, 1);
        plan = drv_plan_retain(plans[0]);
        drv_plan_array_free(plans, cnt);
        return plan;
}
