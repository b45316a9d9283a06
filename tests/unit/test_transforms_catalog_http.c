/*
 * The Backstage client's error mapping and cache, against a scripted
 * HTTP responder in this process (fault injection: 5xx, 401, slow
 * answers and etag changes that a real backend cannot be made to give on
 * demand).  The real backend is exercised by
 * tests/integration/test_backstage_catalog.sh.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct responder_s {
        int fd, port;
        pthread_t thread;
        pthread_mutex_t lock;
        int status;      /* next answer */
        long delay_ms;   /* before answering */
        char body[2048]; /* for 200 */
        int requests;
        char last_request[2048];
} responder_t;

static void sleep_ms(long ms) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static void *responder_main(void *opaque) {
        responder_t *r = opaque;
        char req[2048], out[4096];
        int c, status;
        long delay;
        ssize_t n;

        while ((c = accept(r->fd, NULL, NULL)) >= 0) {
                n = recv(c, req, sizeof(req) - 1, 0);
                req[n > 0 ? n : 0] = '\0';
                pthread_mutex_lock(&r->lock);
                r->requests++;
                memcpy(r->last_request, req, sizeof(req));
                status = r->status;
                delay = r->delay_ms;
                snprintf(out, sizeof(out),
                         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         status, status == 200 ? strlen(r->body) : 2,
                         status == 200 ? r->body : "{}");
                pthread_mutex_unlock(&r->lock);
                sleep_ms(delay);
                if (send(c, out, strlen(out), MSG_NOSIGNAL) < 0)
                        perror("send");
                close(c);
        }
        return NULL;
}

static void responder_start(responder_t *r) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof(sa);

        memset(r, 0, sizeof(*r));
        pthread_mutex_init(&r->lock, NULL);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true((r->fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
        assert_int_equal(bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(r->fd, 16), 0);
        getsockname(r->fd, (struct sockaddr *)&sa, &len);
        r->port = ntohs(sa.sin_port);
        assert_int_equal(pthread_create(&r->thread, NULL, responder_main, r),
                         0);
}

static void responder_stop(responder_t *r) {
        shutdown(r->fd, SHUT_RDWR);
        close(r->fd);
        pthread_join(r->thread, NULL);
}

static void responder_set(responder_t *r, int status, long delay_ms,
                          const char *etag, const char *column) {
        pthread_mutex_lock(&r->lock);
        r->status = status;
        r->delay_ms = delay_ms;
        snprintf(r->body, sizeof(r->body),
                 "{\"apiVersion\":\"backstage.io/v1alpha1\",\"kind\":"
                 "\"Component\",\"metadata\":{\"name\":\"p\",\"namespace\":"
                 "\"default\",\"uid\":\"u\",\"etag\":\"%s\"},\"spec\":{"
                 "\"type\":\"migration-plan\",\"dataset\":\"d\","
                 "\"schemaVersion\":{\"from\":1,\"to\":2},\"steps\":[{\"op\":"
                 "\"drop_column\",\"table\":\"t\",\"column\":\"%s\"}]},"
                 "\"relations\":[]}",
                 etag, column);
        pthread_mutex_unlock(&r->lock);
}

static int requests(responder_t *r) {
        int n;

        pthread_mutex_lock(&r->lock);
        n = r->requests;
        pthread_mutex_unlock(&r->lock);
        return n;
}

static drv_catalog_t *client(responder_t *r, long ttl_ms) {
        char url[128], errstr[256];
        drv_catalog_conf_t conf = {.backstage_url = url,
                                   .backstage_token = "s3cret-token",
                                   .timeout_ms = 300,
                                   .cache_ttl_ms = ttl_ms};
        drv_catalog_t *cat;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", r->port);
        assert_non_null(cat = drv_catalog_new(&conf, errstr, sizeof(errstr)));
        return cat;
}

static void test_fetch_cache_and_etag_revalidation(void **state) {
        responder_t r;
        drv_catalog_t *cat;
        drv_plan_t *a, *b, *c;
        drv_catalog_stats_t st;
        char errstr[512];

        (void)state;
        responder_start(&r);
        responder_set(&r, 200, 0, "e1", "c1");
        cat = client(&r, 200);
        assert_int_equal(
            drv_catalog_resolve(cat, "P", &a, errstr, sizeof(errstr)), DRV_OK);
        assert_non_null(strstr(r.last_request,
                               "GET /api/catalog/entities/by-name/component/"
                               "default/p HTTP/1.1"));
        assert_non_null(
            strstr(r.last_request, "Authorization: Bearer s3cret-token"));
        /* within the TTL: no request */
        assert_int_equal(drv_catalog_resolve(cat, "component:default/p", &b,
                                             errstr, sizeof(errstr)),
                         DRV_OK);
        assert_ptr_equal(a, b);
        assert_int_equal(requests(&r), 1);
        drv_plan_release(b);
        /* after the TTL, same etag: refetched, same plan kept */
        sleep_ms(250);
        assert_int_equal(
            drv_catalog_resolve(cat, "p", &b, errstr, sizeof(errstr)), DRV_OK);
        assert_ptr_equal(a, b);
        assert_int_equal(requests(&r), 2);
        drv_plan_release(b);
        /* after the TTL, new etag: a new plan */
        responder_set(&r, 200, 0, "e2", "c2");
        sleep_ms(250);
        assert_int_equal(
            drv_catalog_resolve(cat, "p", &c, errstr, sizeof(errstr)), DRV_OK);
        assert_ptr_not_equal(a, c);
        assert_string_equal(c->etag, "e2");
        assert_string_equal(drv_step_str(&c->steps[0], "column", ""), "c2");
        assert_string_not_equal(a->fingerprint, c->fingerprint);
        drv_catalog_stats(cat, &st);
        assert_int_equal(st.hits, 1);
        assert_int_equal(st.fetches, 3);
        assert_int_equal(st.revalidated, 1);
        drv_plan_release(a);
        drv_plan_release(c);
        drv_catalog_destroy(cat);
        responder_stop(&r);
}

static void test_errors_map_to_routes(void **state) {
        static const struct {
                int status;
                long delay_ms;
                drv_err_t err;
                const char *msg;
        } cases[] = {
            {404, 0, DRV_ERR_UNKNOWN_PLAN, "no entity component:default/p"},
            {500, 0, DRV_ERR_CATALOG_UNAVAILABLE, "answered http 500"},
            {503, 0, DRV_ERR_CATALOG_UNAVAILABLE, "answered http 503"},
            {401, 0, DRV_ERR_CATALOG_UNAVAILABLE,
             "refused the request: http 401"},
            {200, 1000, DRV_ERR_CATALOG_UNAVAILABLE, "Timeout"},
        };
        responder_t r;
        drv_catalog_t *cat;
        drv_plan_t *plan;
        char errstr[512];
        size_t i;

        (void)state;
        responder_start(&r);
        cat = client(&r, 1);
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int64_t t0 = drv_mono_ms();
                responder_set(&r, cases[i].status, cases[i].delay_ms, "e", "c");
                assert_int_equal(drv_catalog_resolve(cat, "p", &plan, errstr,
                                                     sizeof(errstr)),
                                 cases[i].err);
                assert_null(plan);
                if (!strstr(errstr, cases[i].msg) || strstr(errstr, "s3cret"))
                        fail_msg("case %zu: \"%s\"", i, errstr);
                assert_true(drv_mono_ms() - t0 < 900);
        }
        sleep_ms(800); /* the responder finishes the slow answer */
        /* found, but not a valid plan: invalid_plan, with the ref */
        responder_set(&r, 200, 0, "e", "bad column");
        assert_int_equal(
            drv_catalog_resolve(cat, "p", &plan, errstr, sizeof(errstr)),
            DRV_ERR_INVALID_PLAN);
        assert_non_null(strstr(errstr, "backstage entity component:default/p: "
                                       "\"column\": invalid identifier"));
        drv_catalog_destroy(cat);
        responder_stop(&r);
}

static void test_stale_plan_served_when_backstage_fails(void **state) {
        responder_t r;
        drv_catalog_t *cat;
        drv_plan_t *a, *b;
        drv_catalog_stats_t st;
        char errstr[512];

        (void)state;
        responder_start(&r);
        responder_set(&r, 200, 0, "e1", "c1");
        cat = client(&r, 50);
        assert_int_equal(
            drv_catalog_resolve(cat, "p", &a, errstr, sizeof(errstr)), DRV_OK);
        responder_set(&r, 502, 0, "e1", "c1");
        sleep_ms(80);
        assert_int_equal(
            drv_catalog_resolve(cat, "p", &b, errstr, sizeof(errstr)), DRV_OK);
        assert_ptr_equal(a, b);
        drv_catalog_stats(cat, &st);
        assert_int_equal(st.stale, 1);
        drv_plan_release(b);
        /* a 404 is an answer, not a failure: the plan is gone */
        responder_set(&r, 404, 0, "e1", "c1");
        assert_int_equal(
            drv_catalog_resolve(cat, "p", &b, errstr, sizeof(errstr)),
            DRV_ERR_UNKNOWN_PLAN);
        responder_set(&r, 500, 0, "e1", "c1");
        assert_int_equal(
            drv_catalog_resolve(cat, "p", &b, errstr, sizeof(errstr)),
            DRV_ERR_CATALOG_UNAVAILABLE);
        drv_plan_release(a);
        drv_catalog_destroy(cat);
        responder_stop(&r);
}

static void test_connection_refused_is_transient(void **state) {
        responder_t r;
        drv_catalog_t *cat;
        drv_plan_t *plan;
        char errstr[512];

        (void)state;
        responder_start(&r);
        cat = client(&r, 1);
        responder_stop(&r); /* nothing listens on that port now */
        assert_int_equal(
            drv_catalog_resolve(cat, "p", &plan, errstr, sizeof(errstr)),
            DRV_ERR_CATALOG_UNAVAILABLE);
        assert_non_null(strstr(errstr, "cannot reach backstage catalog at "
                                       "http://127.0.0.1:"));
        drv_catalog_destroy(cat);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fetch_cache_and_etag_revalidation),
            cmocka_unit_test(test_errors_map_to_routes),
            cmocka_unit_test(test_stale_plan_served_when_backstage_fails),
            cmocka_unit_test(test_connection_refused_is_transient),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
