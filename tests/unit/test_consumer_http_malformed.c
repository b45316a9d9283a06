/*
 * drover - tests/unit/test_consumer_http_malformed.c: the admin server
 * survives hostile requests (bad methods, huge headers, bad JSON, invalid
 * UTF-8, wrong content-length, slowloris - more slow clients than it has
 * slots, trickling a header line a second, which an idle timeout never
 * ends (issue 17, item 9) - ) and keeps answering; plus the
 * pure request helpers of admin_req.c.  No Kafka or PostgreSQL needed:
 * the server runs without them.
 */
#include "admin_int.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOKEN "unit-test-token-0123456789"
/* More connections than the server ever had slots. */
#define SLOW_CLIENTS 96

static drv_admin_t *admin;
static int port;

static int setup(void **state) {
        drv_admin_conf_t ac = {.listen = "127.0.0.1:0", .token = TOKEN};
        char errstr[256];

        admin = drv_admin_start(&ac, errstr, sizeof(errstr));
        if (!admin)
                fail_msg("drv_admin_start: %s", errstr);
        port = drv_admin_port(admin);
        return 0;
}

static int teardown(void **state) {
        drv_admin_stop(admin);
        return 0;
}

static int connect_admin(void) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        return fd;
}

/* Send `req` (len bytes) and read the answer until the server closes or
 * `timeout_ms` passes; returns the HTTP status (0: no status line). */
static int exchange(const char *req, size_t len, int timeout_ms) {
        char buf[4096];
        size_t got = 0;
        int fd = connect_admin(), status = 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (len)
                (void)!send(fd, req, len, MSG_NOSIGNAL);
        while (got < sizeof(buf) - 1 && poll(&pfd, 1, timeout_ms) > 0) {
                n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
                if (n <= 0)
                        break;
                got += (size_t)n;
                buf[got] = '\0';
                if (strstr(buf, "\r\n\r\n") && strstr(buf, "Connection: close"))
                        break;
        }
        buf[got] = '\0';
        close(fd);
        if (got > 12 && !strncmp(buf, "HTTP/1.", 7))
                status = atoi(buf + 9);
        return status;
}

static int exchange_str(const char *req) {
        return exchange(req, strlen(req), 3000);
}

static void assert_alive(void) {
        assert_int_equal(exchange_str("GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                      "Connection: close\r\n\r\n"),
                         200);
}

static void test_bad_methods_and_request_lines_are_refused(void **state) {
        static const char *reqs[] = {
            "BREW /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "PUT /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n",
            "GET\r\n\r\n",
            "GET /metrics HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
            "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            "GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "GET /api/migrations?dataset=%ff%fe HTTP/1.1\r\nHost: x\r\n"
            "Connection: close\r\n\r\n",
        };
        size_t i;
        int st;

        for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
                st = exchange_str(reqs[i]);
                if (st != 0 && (st < 400 || st >= 600))
                        fail_msg("request #%zu got %d", i, st);
                assert_alive();
        }
}

static void test_huge_headers_are_refused(void **state) {
        size_t n = 256 * 1024, off;
        char *req = malloc(n + 64);
        int st;

        off = (size_t)sprintf(req, "GET /metrics HTTP/1.1\r\nX-Big: ");
        memset(req + off, 'a', n - off);
        memcpy(req + n, "\r\n\r\n", 5);
        st = exchange(req, n + 4, 3000);
        assert_true(st == 0 || st == 413 || st == 431 || st == 414 ||
                    st == 400);
        free(req);
        assert_alive();
}

static void test_bad_bodies_get_400_and_never_crash(void **state) {
        static const char *bodies[] = {
            "{",
            "{\"payload\":",
            "\xff\xfe\xfd",
            "{\"payload\":{\"entity_ref\":"
            "\"\xc3\x28\",\"dataset\":\"d\"}}",
            "{\"payload\":{\"entity_ref\":\"a\",\"dataset\":\"d\","
            "\"params\":[1,2]}}",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            "null",
            "\"str\"",
            "{\"payload\":{\"entity_ref\":\"a\","
            "\"dataset\":\"d\"},\"payload\":{}}",
        };
        char req[1024];
        size_t i;
        int n, st;

        for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
                n = snprintf(req, sizeof(req),
                             "POST /api/tasks HTTP/1.1\r\nHost: x\r\n"
                             "Authorization: Bearer " TOKEN "\r\n"
                             "Content-Length: %zu\r\nConnection: close"
                             "\r\n\r\n%s",
                             strlen(bodies[i]), bodies[i]);
                st = exchange(req, (size_t)n, 3000);
                if (st != 400)
                        fail_msg("body #%zu got %d", i, st);
        }
        assert_alive();
}

static void test_wrong_content_length_does_not_hang_others(void **state) {
        static const char *reqs[] = {
            /* says more than it sends: the server waits, then times out */
            "POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: "
            "Bearer " TOKEN "\r\nContent-Length: 1000\r\n\r\n{\"a\":1}",
            /* negative and garbage lengths */
            "POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n"
            "Connection: close\r\n\r\n",
            "POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n"
            "Connection: close\r\n\r\n",
            /* absurd length: refused before any body is read */
            "POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: "
            "Bearer " TOKEN
            "\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n",
        };
        size_t i;
        int st;

        for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
                st = exchange(reqs[i], strlen(reqs[i]), i == 0 ? 300 : 3000);
                assert_true(st == 0 || (st >= 400 && st < 600));
                assert_alive();
        }
}

static void test_slowloris_connections_do_not_starve_the_server(void **state) {
        int fds[20], i;
        int64_t t0;

        /* many half-sent requests held open ... */
        for (i = 0; i < 20; i++) {
                fds[i] = connect_admin();
                (void)!send(fds[i], "GET /metrics HTTP/1.1\r\nHost: x\r\nX-",
                            35, MSG_NOSIGNAL);
        }
        /* ... and the server still answers at once */
        t0 = drv_mono_ms();
        assert_alive();
        assert_true(drv_mono_ms() - t0 < 2000);
        for (i = 0; i < 20; i++)
                close(fds[i]);
}

/* 1 when the server has closed fd (EOF or reset pending, or the header
 * line cannot be sent); sends the next header line otherwise. */
static int trickle(int fd, int i) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char line[64], c;

        if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR) ||
                                     recv(fd, &c, 1, MSG_DONTWAIT) <= 0))
                return 1;
        snprintf(line, sizeof(line), "X-Slow-%d: %d\r\n", i, i);
        return send(fd, line, strlen(line), MSG_NOSIGNAL) < 0;
}

/* More slow clients than the server ever had slots (64): /healthz still
 * answers (within curl-like 10 s), and the server closes every one of
 * them by itself before the test's generous deadline. */
static void test_slow_clients_neither_lock_out_healthz_nor_stay(void **s) {
        static const char start[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
        static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                    "Connection: close\r\n\r\n";
        int fds[SLOW_CLIENTS], open_cnt = SLOW_CLIENTS, i;
        int64_t deadline;

        for (i = 0; i < SLOW_CLIENTS; i++) {
                fds[i] = connect_admin();
                (void)!send(fds[i], start, sizeof(start) - 1, MSG_NOSIGNAL);
        }
        assert_int_equal(exchange(probe, sizeof(probe) - 1, 10000), 200);

        deadline = drv_mono_ms() + 30000;
        while (open_cnt && drv_mono_ms() < deadline) {
                for (i = 0; i < SLOW_CLIENTS; i++) {
                        if (fds[i] < 0 || !trickle(fds[i], i))
                                continue;
                        close(fds[i]);
                        fds[i] = -1;
                        open_cnt--;
                }
                sleep(1);
        }
        for (i = 0; i < SLOW_CLIENTS; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        assert_int_equal(open_cnt, 0);
        assert_alive();
}

static void test_a_loop_of_garbage_leaves_it_serving(void **state) {
        char req[512];
        uint64_t rng = 0x9e3779b97f4a7c15ull;
        int i, j, len;

        for (i = 0; i < 200; i++) {
                len = 1 + (int)(rng % (sizeof(req) - 1));
                for (j = 0; j < len; j++) {
                        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                        req[j] = (char)(rng & 0xff);
                }
                if (i % 2) /* half start like HTTP, to get past the parser */
                        memcpy(req, "POST /api/tasks HTTP/1.1\r\n", 26);
                exchange(req, (size_t)len, 50);
        }
        assert_alive();
}

static void test_routes_table(void **state) {
        assert_int_equal(drv_admin_route("GET", "/metrics"),
                         DRV_ADMIN_ROUTE_METRICS);
        assert_int_equal(drv_admin_route("HEAD", "/healthz"),
                         DRV_ADMIN_ROUTE_HEALTHZ);
        assert_int_equal(drv_admin_route("GET", "/api/migrations?dataset=x"),
                         DRV_ADMIN_ROUTE_MIGRATIONS);
        assert_int_equal(drv_admin_route("POST", "/api/tasks"),
                         DRV_ADMIN_ROUTE_TASKS);
        assert_int_equal(drv_admin_route("GET", "/api/tasks"),
                         DRV_ADMIN_ROUTE_METHOD_NOT_ALLOWED);
        assert_int_equal(drv_admin_route("POST", "/metrics"),
                         DRV_ADMIN_ROUTE_METHOD_NOT_ALLOWED);
        assert_int_equal(drv_admin_route("GET", "/metricsx"),
                         DRV_ADMIN_ROUTE_NOT_FOUND);
        assert_int_equal(drv_admin_route("GET", "/../etc/passwd"),
                         DRV_ADMIN_ROUTE_NOT_FOUND);
        assert_int_equal(drv_admin_route(NULL, "/"), DRV_ADMIN_ROUTE_NOT_FOUND);
        assert_int_equal(drv_admin_route("GET", "/"), DRV_ADMIN_ROUTE_STATIC);
        /* one path, a route per method */
        assert_int_equal(drv_admin_route("GET", "/api/repair?dataset=x"),
                         DRV_ADMIN_ROUTE_REPAIR_SHOW);
        assert_int_equal(drv_admin_route("POST", "/api/repair"),
                         DRV_ADMIN_ROUTE_REPAIR);
        assert_int_equal(drv_admin_route("PUT", "/api/repair"),
                         DRV_ADMIN_ROUTE_METHOD_NOT_ALLOWED);
        assert_int_equal(drv_admin_route("GET", "/api/repair/audit"),
                         DRV_ADMIN_ROUTE_REPAIR_AUDIT);
        assert_int_equal(drv_admin_route("POST", "/api/repair/audit"),
                         DRV_ADMIN_ROUTE_METHOD_NOT_ALLOWED);
}

static void test_repair_body_rules(void **state) {
        static const struct {
                const char *body, *msg; /* msg NULL: accepted */
        } cases[] = {
            {"{\"dataset\":\"customer\",\"reason\":\"by hand\","
             "\"clear_failed\":true}",
             NULL},
            {"{\"dataset\":\"customer\",\"reason\":\"by hand\","
             "\"set_version\":3,\"clear_failed\":false}",
             NULL},
            {"{\"dataset\":\"customer\",\"reason\":\"r\","
             "\"set_version\":null}",
             "needs an action"},
            {"{\"dataset\":\"customer\",\"clear_failed\":true}",
             "missing field \"reason\""},
            {"{\"reason\":\"r\",\"clear_failed\":true}",
             "missing field \"dataset\""},
            {"{\"dataset\":\"a;b\",\"reason\":\"r\","
             "\"clear_failed\":true}",
             "invalid dataset"},
            {"{\"dataset\":\"customer\",\"reason\":\"r\","
             "\"clear_failed\":\"yes\"}",
             "\"clear_failed\" must be a boolean"},
            {"{\"dataset\":\"customer\",\"reason\":\"r\","
             "\"set_version\":1.5}",
             "\"set_version\" must be an integer"},
            {"{\"dataset\":\"customer\",\"reason\":\"r\","
             "\"set_version\":4294967296}",
             "\"set_version\" must be an integer"},
            {"{\"dataset\":\"customer\",\"reason\":\"r\","
             "\"clear_failed\":true,\"force\":true}",
             "unknown field \"force\""},
            {"{\"dataset\":\"customer\",\"reason\":\" \","
             "\"clear_failed\":true}",
             "invalid reason"},
            {"[1]", "must be a json object"},
            {"{", "not valid json"},
        };
        char errstr[256];
        drv_repair_t rp;
        json_t *root;
        size_t i;
        drv_err_t err;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                errstr[0] = '\0';
                err = drv_admin_parse_repair_body(
                    cases[i].body, strlen(cases[i].body), &rp, &root, errstr,
                    sizeof(errstr));
                if (!cases[i].msg && err)
                        fail_msg("case %zu refused: %s", i, errstr);
                if (cases[i].msg && (err != DRV_ERR_INVALID_PARAM ||
                                     !strstr(errstr, cases[i].msg) || root))
                        fail_msg("case %zu: err %d \"%s\"", i, (int)err,
                                 errstr);
                json_decref(root);
        }
        assert_int_equal(
            drv_admin_parse_repair_body(cases[1].body, strlen(cases[1].body),
                                        &rp, &root, errstr, sizeof(errstr)),
            DRV_OK);
        assert_string_equal(rp.dataset, "customer");
        assert_string_equal(rp.reason, "by hand");
        assert_int_equal(rp.clear, 0);
        assert_int_equal(rp.set_version, 1);
        assert_int_equal(rp.version, 3);
        assert_null(rp.who);
        json_decref(root);
}

static void test_bearer_comparison(void **state) {
        assert_true(drv_admin_bearer_ok("abc", "Bearer abc"));
        assert_true(drv_admin_bearer_ok("abc", "bearer abc"));
        assert_false(drv_admin_bearer_ok("abc", "Bearer abd"));
        assert_false(drv_admin_bearer_ok("abc", "Bearer ab"));
        assert_false(drv_admin_bearer_ok("abc", "Bearer abcd"));
        assert_false(drv_admin_bearer_ok("abc", "Bearer "));
        assert_false(drv_admin_bearer_ok("abc", "abc"));
        assert_false(drv_admin_bearer_ok("abc", NULL));
        assert_false(drv_admin_bearer_ok(NULL, "Bearer "));
        assert_false(drv_admin_bearer_ok("", "Bearer "));
}

static void test_text_validation(void **state) {
        char long_s[DRV_ADMIN_FIELD_MAX + 2];

        assert_true(drv_admin_text_valid("customer", 8));
        assert_true(drv_admin_text_valid("caf\xc3\xa9", 5));
        assert_false(drv_admin_text_valid("a\nb", 3));
        assert_false(drv_admin_text_valid("\xc3\x28", 2));
        assert_false(drv_admin_text_valid("\xed\xa0\x80", 3)); /* surrogate */
        assert_false(drv_admin_text_valid("\xc0\xaf", 2));     /* overlong */
        assert_false(drv_admin_text_valid("\xe2\x82", 2));     /* truncated */
        memset(long_s, 'a', sizeof(long_s) - 1);
        long_s[sizeof(long_s) - 1] = '\0';
        assert_false(drv_admin_text_valid(long_s, strlen(long_s)));
}

static void test_task_body_parses_the_seed_shape(void **state) {
        static const char body[] =
            "{\"queue\":\"dataset-migrations\",\"payload\":{\"entity_ref\":"
            "\"component:default/customer-dataset-v2-migration\",\"dataset\":"
            "\"customer\",\"dry_run\":true,\"params\":{\"a\":\"1\"}}}";
        char errstr[256];
        drv_task_t *task;

        assert_int_equal(
            drv_admin_parse_task_body(body, strlen(body), "dataset-migrations",
                                      NULL, &task, errstr, sizeof(errstr)),
            DRV_OK);
        assert_string_equal(task->dataset, "customer");
        assert_true(task->dry_run);
        assert_string_equal(drv_task_param(task, "a"), "1");
        assert_null(task->task_id); /* the server makes one */
        assert_string_equal(task->requested_by, "admin-api");
        drv_task_destroy(task);
        assert_int_equal(drv_admin_parse_task_body(body, strlen(body), "other",
                                                   NULL, &task, errstr,
                                                   sizeof(errstr)),
                         DRV_ERR_INVALID_PARAM);
        assert_null(task);
        assert_non_null(strstr(errstr, "unknown queue"));
}

/* The seed's own request (seed-guide.txt): no dataset, no task id; the
 * server derives the one and makes the other.  The caller is the token's
 * label, not a fixed string. */
static void test_task_body_takes_the_seed_request(void **state) {
        static const char body[] =
            "{\"queue\":\"dataset-migrations\",\"payload\":{\"entity_ref\":"
            "\"component:default/customer-dataset-v2-migration\"}}";
        char errstr[256], label[15];
        drv_task_t *task;

        (void)state;
        drv_admin_token_label("secret", label);
        assert_string_equal(label, "token:2bb80d53");
        assert_int_equal(
            drv_admin_parse_task_body(body, strlen(body), "dataset-migrations",
                                      label, &task, errstr, sizeof(errstr)),
            DRV_OK);
        assert_string_equal(task->entity_ref,
                            "component:default/customer-dataset-v2-migration");
        assert_null(task->dataset);
        assert_null(task->task_id);
        assert_string_equal(task->requested_by, "token:2bb80d53");
        drv_task_destroy(task);
}

/* Fields are checked at the edge, each refusal naming the rule broken. */
static void test_task_body_refuses_bad_fields(void **state) {
        static const struct {
                const char *payload, *want;
        } cases[] = {
            {"{\"entity_ref\":\"component:../..\",\"dataset\":\"c\"}",
             "the namespace must start and end with a letter or digit"},
            {"{\"entity_ref\":\"component:default/a b\",\"dataset\":\"c\"}",
             "the name must be letters, digits"},
            {"{\"entity_ref\":\"component:default/\\\"x\\\"\",\"dataset\":"
             "\"c\"}",
             "invalid entity ref"},
            {"{\"entity_ref\":\"x\",\"dataset\":\"a b\"}",
             "invalid dataset \"a b\""},
            {"{\"entity_ref\":\"x\",\"dataset\":\"../etc\"}",
             "invalid dataset"},
            {"{\"entity_ref\":\"x\",\"task_id\":\"t-1\"}",
             "invalid task id \"t-1\": want a uuid"},
            {"{\"entity_ref\":\"x\",\"task_id\":\"not-a-uuid\"}",
             "invalid task id"},
        };
        char body[512], errstr[256];
        drv_task_t *task;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                snprintf(body, sizeof(body), "{\"payload\":%s}",
                         cases[i].payload);
                errstr[0] = '\0';
                if (drv_admin_parse_task_body(body, strlen(body), NULL, NULL,
                                              &task, errstr, sizeof(errstr)) !=
                        DRV_ERR_INVALID_PARAM ||
                    !strstr(errstr, cases[i].want))
                        fail_msg("case %zu: %s -> \"%s\"", i, body, errstr);
                assert_null(task);
        }
        snprintf(body, sizeof(body),
                 "{\"payload\":{\"entity_ref\":\"x\",\"task_id\":"
                 "\"0F0E0D0C-0B0A-4908-8706-050403020100\"}}");
        assert_int_equal(drv_admin_parse_task_body(body, strlen(body), NULL,
                                                   NULL, &task, errstr,
                                                   sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(task->task_id,
                            "0F0E0D0C-0B0A-4908-8706-050403020100");
        drv_task_destroy(task);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_routes_table),
            cmocka_unit_test(test_bearer_comparison),
            cmocka_unit_test(test_repair_body_rules),
            cmocka_unit_test(test_text_validation),
            cmocka_unit_test(test_task_body_parses_the_seed_shape),
            cmocka_unit_test(test_task_body_takes_the_seed_request),
            cmocka_unit_test(test_task_body_refuses_bad_fields),
            cmocka_unit_test(test_bad_methods_and_request_lines_are_refused),
            cmocka_unit_test(test_huge_headers_are_refused),
            cmocka_unit_test(test_bad_bodies_get_400_and_never_crash),
            cmocka_unit_test(test_wrong_content_length_does_not_hang_others),
            cmocka_unit_test(
                test_slowloris_connections_do_not_starve_the_server),
            cmocka_unit_test(test_a_loop_of_garbage_leaves_it_serving),
            cmocka_unit_test(
                test_slow_clients_neither_lock_out_healthz_nor_stay),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
