/*
 * drover - tests/unit/test_consumer_admin_slow_clients.c: slow clients
 * cannot lock the admin server out (issue 17, item 9).  More connections
 * than the server has slots each send a request line and one header, then
 * trickle a header line a second - which an idle timeout never ends -;
 * /healthz must still answer, and the server must close every trickling
 * connection by itself.  Traffic stays on 127.0.0.1; no Kafka or
 * PostgreSQL needed.  No timing is asserted beyond the test's own
 * generous deadlines.
 */
#include "admin.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* More than any slot count the server has ever had (64). */
#define SLOW_CLIENTS 96
/* Generous: the server's read deadline is a few seconds. */
#define CLOSE_DEADLINE_MS 30000

static drv_admin_t *admin;
static int port;

static int setup(void **state) {
        drv_admin_conf_t ac = {.listen = "127.0.0.1:0"};
        char errstr[256];

        admin = drv_admin_start(&ac, errstr, sizeof(errstr));
        if (!admin)
                fail_msg("%s", errstr);
        port = drv_admin_port(admin);
        return 0;
}

static int teardown(void **state) {
        drv_admin_stop(admin);
        return 0;
}

/* A connected socket, or -1 when the connection is refused. */
static int connect_admin(void) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true(fd >= 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                close(fd);
                return -1;
        }
        return fd;
}

/* GET /healthz on a new connection, reading up to 10 s: its status, 0
 * when the server closed or never answered. */
static int healthz(void) {
        static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                  "Connection: close\r\n\r\n";
        char buf[2048];
        size_t got = 0;
        int fd = connect_admin();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (fd < 0)
                return 0;
        (void)!send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
        while (got < sizeof(buf) - 1 && poll(&pfd, 1, 10000) > 0 &&
               (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
                got += (size_t)n;
        buf[got] = '\0';
        close(fd);
        return got > 12 && !strncmp(buf, "HTTP/1.", 7) ? atoi(buf + 9) : 0;
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

static void test_slow_clients_neither_lock_out_healthz_nor_stay(void **s) {
        static const char start[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
        int fds[SLOW_CLIENTS], open_cnt = 0, i;
        int64_t deadline;

        for (i = 0; i < SLOW_CLIENTS; i++) {
                if ((fds[i] = connect_admin()) < 0)
                        continue;
                (void)!send(fds[i], start, sizeof(start) - 1, MSG_NOSIGNAL);
                open_cnt++;
        }
        assert_true(open_cnt > 0);

        /* the liveness probe gets through all the same */
        assert_int_equal(healthz(), 200);

        /* every slow client keeps sending; the server ends them anyway */
        deadline = drv_mono_ms() + CLOSE_DEADLINE_MS;
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
        assert_int_equal(healthz(), 200);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                test_slow_clients_neither_lock_out_healthz_nor_stay),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
