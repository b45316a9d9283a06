/*
 * drover - tests/unit/test_consumer_admin_listen.c: the admin server's
 * listen address (DROVER_HTTP_LISTEN, http.listen).  An empty host, as in
 * ":9464", is loopback; every address must be asked for by name
 * (issue 17, item 12).
 */
#include "admin_int.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <string.h>

static const struct {
        const char *listen;
        const char *addr; /* NULL: refused */
        int port;
} cases[] = {
    {":9464", "127.0.0.1", 9464},
    {":0", "127.0.0.1", 0},
    {"localhost:9464", "127.0.0.1", 9464},
    {"127.0.0.1:9464", "127.0.0.1", 9464},
    {"10.1.2.3:80", "10.1.2.3", 80},
    {"*:9464", "0.0.0.0", 9464},
    {"0.0.0.0:9464", "0.0.0.0", 9464},
    {"9464", NULL, 0},
    {"", NULL, 0},
    {":", NULL, 0},
    {"127.0.0.1:", NULL, 0},
    {":94x", NULL, 0},
    {":65536", NULL, 0},
    {":-1", NULL, 0},
    {"example.com:9464", NULL, 0},
    {"[::1]:9464", NULL, 0},
};

static void test_listen_addresses(void **state) {
        struct sockaddr_in sa;
        char errstr[256], addr[INET_ADDRSTRLEN];
        size_t i;
        drv_err_t err;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                errstr[0] = '\0';
                err = drv_admin_parse_listen(cases[i].listen, &sa, errstr,
                                             sizeof(errstr));
                if (!cases[i].addr) {
                        assert_int_equal(err, DRV_ERR_CONFIG);
                        assert_non_null(strstr(errstr, "bad http listen"));
                        continue;
                }
                assert_int_equal(err, DRV_OK);
                inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof(addr));
                if (strcmp(addr, cases[i].addr))
                        fail_msg("\"%s\" binds %s, want %s", cases[i].listen,
                                 addr, cases[i].addr);
                assert_int_equal(ntohs(sa.sin_port), cases[i].port);
        }
}

static void test_refusal_names_the_address(void **state) {
        struct sockaddr_in sa;
        char errstr[256];

        assert_int_equal(
            drv_admin_parse_listen("nohost", &sa, errstr, sizeof(errstr)),
            DRV_ERR_CONFIG);
        assert_string_equal(errstr, "bad http listen address \"nohost\" (want "
                                    "ipv4:port, e.g. 127.0.0.1:9464)");
        assert_int_equal(
            drv_admin_parse_listen(NULL, &sa, errstr, sizeof(errstr)),
            DRV_ERR_CONFIG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_listen_addresses),
            cmocka_unit_test(test_refusal_names_the_address),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
