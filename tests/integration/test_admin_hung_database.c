/*
 * drover - tests/integration/test_admin_hung_database.c: with PostgreSQL
 * frozen, /readyz and /api/migrations answer 503 instead of hanging, and
 * recover once it answers again (issue 17, item 10).  The admin server
 * reaches the shared test database through a TCP proxy of this test,
 * which "freezes" by no longer forwarding a byte - the server keeps
 * accepting connections and never answers, as a stopped PostgreSQL does -
 * so no other test sees anything.  No timing is asserted beyond curl's
 * generous timeout.
 */
#include "admin.h"
#include "testutil.h"

#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Concurrent /api/migrations requests while frozen: one holds the
 * database connection, the others wait for it. */
#define CONCURRENT 4

static drv_admin_t *admin;
static char base[64];

/*
 * ------------------------------------------------------------------------
 * The proxy: 127.0.0.1:<port> -> the test database, frozen on demand
 * ------------------------------------------------------------------------
 */
static struct {
        int lfd, port;
        char host[256], service[32]; /* upstream */
        atomic_int frozen, stop, pumps;
        pthread_t thread;
} px;

typedef struct pump_s {
        int a, b;
} pump_t;

/* Copy what is readable from `from` to `to`; 0 on EOF or error. */
static int pump_copy(int from, int to) {
        char buf[16384];
        ssize_t n = recv(from, buf, sizeof(buf), 0), off = 0, w;

        if (n <= 0)
                return 0;
        while (off < n) {
                if ((w = send(to, buf + off, (size_t)(n - off),
                              MSG_NOSIGNAL)) <= 0)
                        return 0;
                off += w;
        }
        return 1;
}

static void *pump_main(void *arg) {
        pump_t p = *(pump_t *)arg;
        struct pollfd pfd[2] = {{.fd = p.a, .events = POLLIN},
                                {.fd = p.b, .events = POLLIN}};
        int live = 1;

        free(arg);
        while (live && !atomic_load(&px.stop)) {
                if (atomic_load(&px.frozen)) { /* hold every byte */
                        poll(NULL, 0, 50);
                        continue;
                }
                if (poll(pfd, 2, 100) <= 0)
                        continue;
                if (pfd[0].revents)
                        live = pump_copy(p.a, p.b);
                if (live && pfd[1].revents)
                        live = pump_copy(p.b, p.a);
        }
        close(p.a);
        close(p.b);
        atomic_fetch_sub(&px.pumps, 1);
        return NULL;
}

static int connect_upstream(void) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
        int fd;

        if (getaddrinfo(px.host, px.service, &hints, &ai))
                return -1;
        fd = socket(ai->ai_family, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
                close(fd);
                fd = -1;
        }
        freeaddrinfo(ai);
        return fd;
}

static void *proxy_main(void *arg) {
        struct pollfd pfd = {.fd = px.lfd, .events = POLLIN};
        pthread_t t;
        pump_t *p;
        int c, u;

        while (!atomic_load(&px.stop)) {
                if (poll(&pfd, 1, 100) <= 0 ||
                    (c = accept(px.lfd, NULL, NULL)) < 0)
                        continue;
                if ((u = connect_upstream()) < 0 || !(p = malloc(sizeof(*p)))) {
                        close(c);
                        if (u >= 0)
                                close(u);
                        continue;
                }
                p->a = c;
                p->b = u;
                atomic_fetch_add(&px.pumps, 1);
                if (pthread_create(&t, NULL, pump_main, p)) {
                        atomic_fetch_sub(&px.pumps, 1);
                        close(c);
                        close(u);
                        free(p);
                        continue;
                }
                pthread_detach(t);
        }
        return NULL;
}

static void proxy_start(const char *host, const char *port) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof(sa);

        snprintf(px.host, sizeof(px.host), "%s", host);
        snprintf(px.service, sizeof(px.service), "%s", port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        px.lfd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(px.lfd >= 0);
        assert_int_equal(bind(px.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(px.lfd, 64), 0);
        assert_int_equal(getsockname(px.lfd, (struct sockaddr *)&sa, &len), 0);
        px.port = ntohs(sa.sin_port);
        assert_int_equal(pthread_create(&px.thread, NULL, proxy_main, NULL), 0);
}

static void proxy_stop(void) {
        int i;

        atomic_store(&px.stop, 1);
        pthread_join(px.thread, NULL);
        close(px.lfd);
        for (i = 0; i < 100 && atomic_load(&px.pumps); i++)
                poll(NULL, 0, 50);
}

/* The test database's conninfo with host and port replaced by the
 * proxy's; the upstream host and port go to the proxy. */
static char *proxied_conninfo(void) {
        PQconninfoOption *opts = PQconninfoParse(drv_test_database_url(), NULL),
                         *o;
        const char *host = "127.0.0.1", *port = "5432";
        char *out = calloc(1, 4096), *q;
        size_t n = 0;

        assert_non_null(opts);
        assert_non_null(out);
        for (o = opts; o->keyword; o++) {
                if (!o->val)
                        continue;
                if (!strcmp(o->keyword, "host"))
                        host = o->val;
                else if (!strcmp(o->keyword, "port"))
                        port = o->val;
                else if (strcmp(o->keyword, "hostaddr")) {
                        n += (size_t)snprintf(out + n, 4096 - n, "%s='",
                                              o->keyword);
                        for (q = o->val; *q && n < 4000; q++) {
                                if (*q == '\'' || *q == '\\')
                                        out[n++] = '\\';
                                out[n++] = *q;
                        }
                        n += (size_t)snprintf(out + n, 4096 - n, "' ");
                }
        }
        proxy_start(host, port);
        snprintf(out + n, 4096 - n, "host=127.0.0.1 port=%d", px.port);
        PQconninfoFree(opts);
        return out;
}

/*
 * ------------------------------------------------------------------------
 * HTTP client
 * ------------------------------------------------------------------------
 */
static size_t on_data(char *p, size_t sz, size_t n, void *arg) {
        return sz * n;
}

/* GET path with curl's 10 s timeout: the status, or 0 when it timed out
 * or failed. */
static long get_status(const char *path) {
        CURL *curl = curl_easy_init();
        char url[256];
        long status = 0;

        snprintf(url, sizeof(url), "%s%s", base, path);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        if (curl_easy_perform(curl) == CURLE_OK)
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(curl);
        return status;
}

typedef struct call_s {
        const char *path;
        long status;
        pthread_t thread;
} call_t;

static void *call_main(void *arg) {
        call_t *c = arg;

        c->status = get_status(c->path);
        return NULL;
}

/* GET path until it answers `want`, at most `tries` times a second. */
static long get_until(const char *path, long want, int tries) {
        long status = 0;

        while (tries-- > 0 && (status = get_status(path)) != want)
                sleep(1);
        return status;
}

/*
 * ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------
 */
static int setup(void **state) {
        drv_admin_conf_t ac = {.listen = "127.0.0.1:0"};
        char errstr[512], *conninfo = proxied_conninfo();

        ac.database_url = conninfo;
        admin = drv_admin_start(&ac, errstr, sizeof(errstr));
        free(conninfo);
        if (!admin)
                fail_msg("drv_admin_start: %s", errstr);
        snprintf(base, sizeof(base), "http://127.0.0.1:%d",
                 drv_admin_port(admin));
        drv_admin_set_ready(1, 1); /* readiness rests on the live ping */
        return 0;
}

static int teardown(void **state) {
        /* a request stuck in the database (the bug) finishes, so the
         * server can stop */
        atomic_store(&px.frozen, 0);
        drv_admin_stop(admin);
        proxy_stop();
        return 0;
}

static void test_frozen_database_gives_503_not_a_hang(void **state) {
        call_t calls[CONCURRENT];
        int i;

        assert_int_equal(get_until("/readyz", 200, 10), 200);
        assert_int_equal(get_status("/api/migrations?limit=1"), 200);

        atomic_store(&px.frozen, 1);
        assert_int_equal(get_status("/readyz"), 503);
        for (i = 0; i < CONCURRENT; i++) {
                calls[i].path = "/api/migrations?limit=1";
                assert_int_equal(pthread_create(&calls[i].thread, NULL,
                                                call_main, &calls[i]),
                                 0);
        }
        for (i = 0; i < CONCURRENT; i++)
                pthread_join(calls[i].thread, NULL);
        for (i = 0; i < CONCURRENT; i++)
                assert_int_equal(calls[i].status, 503);
        assert_int_equal(get_status("/readyz"), 503);
        /* liveness never asks the database */
        assert_int_equal(get_status("/healthz"), 200);

        atomic_store(&px.frozen, 0);
        assert_int_equal(get_until("/readyz", 200, 20), 200);
        assert_int_equal(get_until("/api/migrations?limit=1", 200, 20), 200);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_frozen_database_gives_503_not_a_hang),
        };
        drv_test_database_url();
        curl_global_init(CURL_GLOBAL_ALL);
        return cmocka_run_group_tests(tests, setup, teardown);
}
