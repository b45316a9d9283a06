/*
 * drover - tests/unit/test_util_time_log_redact.c: the utilities every
 * module shares (schema/util.c, schema/log.c).
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_parse_time_forms(void **state) {
        static const struct {
                const char *in;
                int ok;
                int64_t ms;
        } rows[] = {
            {"1970-01-01T00:00:00Z", 0, 0},
            {"2026-11-25T08:00:00Z", 0, 1795593600000LL},
            {"2026-11-25 08:00:00", 0, 1795593600000LL},
            {"2026-11-25T08:00:00.250Z", 0, 1795593600250LL},
            {"2000-02-29", 0, 951782400000LL},
            {"1795593600000", 0, 1795593600000LL},
            {"", -1, 0},
            {"yesterday", -1, 0},
            {"2026-13-01", -1, 0},
            {"2026-11-25T25:00:00Z", -1, 0},
            {"-5x", -1, 0},
            {"12abc", -1, 0},
        };
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                int64_t ms = -1;
                int r = drv_parse_time(rows[i].in, &ms);
                if (r != rows[i].ok)
                        fail_msg("\"%s\": got %d", rows[i].in, r);
                if (r == 0 && ms != rows[i].ms)
                        fail_msg("\"%s\": %lld != %lld", rows[i].in,
                                 (long long)ms, (long long)rows[i].ms);
        }
}

static void test_parse_relative_time_is_before_now(void **state) {
        int64_t now = drv_now_ms(), ms;

        assert_int_equal(drv_parse_time("-15m", &ms), 0);
        assert_true(ms <= now - 15 * 60 * 1000 + 1000);
        assert_true(ms >= now - 15 * 60 * 1000 - 1000);
        assert_int_equal(drv_parse_time("-2d", &ms), 0);
        assert_true(ms <= now - 2 * 86400 * 1000 + 1000);
}

static void test_format_time_round_trips(void **state) {
        char buf[40];
        int64_t ms;

        drv_format_time(1795593600250LL, buf, sizeof(buf));
        assert_string_equal(buf, "2026-11-25T08:00:00.250Z");
        assert_int_equal(drv_parse_time(buf, &ms), 0);
        assert_int_equal(ms, 1795593600250LL);
}

static void test_uuid4_shape_and_uniqueness(void **state) {
        char a[37], b[37];
        int i;

        drv_uuid4(a);
        drv_uuid4(b);
        assert_int_equal(strlen(a), 36);
        assert_string_not_equal(a, b);
        assert_int_equal(a[14], '4');
        assert_true(strchr("89ab", a[19]) != NULL);
        for (i = 0; i < 36; i++)
                assert_true(i == 8 || i == 13 || i == 18 || i == 23
                                ? a[i] == '-'
                                : strchr("0123456789abcdef", a[i]) != NULL);
}

static void test_redact_url_hides_passwords(void **state) {
        static const struct {
                const char *in, *out;
        } rows[] = {
            {"postgresql://drover:s3cret@127.0.0.1:5432/db",
             "postgresql://drover:***@127.0.0.1:5432/db"},
            {"postgresql://127.0.0.1/db?password=s3cret&sslmode=off",
             "postgresql://127.0.0.1/db?password=***&sslmode=off"},
            {"host=x user=u password=s3cret dbname=d",
             "host=x user=u password=*** dbname=d"},
            {"http://127.0.0.1:7007", "http://127.0.0.1:7007"},
            {"postgresql://drover@127.0.0.1/db",
             "postgresql://drover@127.0.0.1/db"},
            /* URI: encoded password, several hosts, every secret key,
             * an encoded key, an '@' in the password */
            {"postgresql://u:s3cret%40x@h1:5432,h2/db",
             "postgresql://u:***@h1:5432,h2/db"},
            {"postgres://u:s3cret@x@h/db", "postgres://u:***@x@h/db"},
            {"postgresql:///db?sslpassword=s3cret&password=s3cret",
             "postgresql:///db?sslpassword=***&password=***"},
            {"postgresql://h/db?pass%77ord=s3cret",
             "postgresql://h/db?pass%77ord=***"},
            {"postgresql://h/db?oauth_client_secret=s3cret&x=1",
             "postgresql://h/db?oauth_client_secret=***&x=1"},
            {"https://u:s3cret@backstage:7007/api",
             "https://u:***@backstage:7007/api"},
            /* keyword/value: spaces around '=', quotes, escapes */
            {"password = s3cret host=x", "password = *** host=x"},
            {"host=x password= s3cret", "host=x password= ***"},
            {"host=x password =s3cret", "host=x password =***"},
            {"password='a s3cret b' host=x", "password='***' host=x"},
            {"password = 'it\\'s s3cret' dbname=d",
             "password = '***' dbname=d"},
            {"password='s3cret\\\\' user=u", "password='***' user=u"},
            {"password=s3cret\\ x user=u", "password=*** user=u"},
            {"sslpassword=s3cret PASSWORD=s3cret",
             "sslpassword=*** PASSWORD=***"},
            {"password='s3cret", "password='***"},
            {"\tpassword\n=\ts3cret\n", "\tpassword\n=\t***\n"},
            {"dbname=postgresql://u:s3cret@h/db user=u",
             "dbname=postgresql://u:***@h/db user=u"},
            {"passfile=/p/s3cret.pass password=",
             "passfile=/p/s3cret.pass password=***"},
            {"host=x dbname=d", "host=x dbname=d"},
        };
        char out[256];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                drv_redact_url(rows[i].in, out, sizeof(out));
                assert_string_equal(out, rows[i].out);
                if (!strstr(rows[i].in, "passfile"))
                        assert_null(strstr(out, "s3cret"));
        }
        /* truncation never shows part of a secret */
        drv_redact_url("password=s3cret", out, 12);
        assert_string_equal(out, "password=**");
}

/* libpq's connection errors echo pieces of the conninfo: every secret,
 * raw or decoded, leaves the message. */
static void test_redact_text_hides_echoed_secrets(void **state) {
        static const struct {
                const char *msg, *conninfo, *out;
        } rows[] = {
            {"invalid percent-encoded token: \"s3cret%4\"",
             "postgresql://u:s3cret%4@h/db",
             "invalid percent-encoded token: \"***\""},
            {"invalid URI: \"postgresql://u:s3 cret@h/db\"",
             "postgresql://u:s3%20cret@h/db",
             "invalid URI: \"postgresql://u:***@h/db\""},
            {"bad \"it's s3cret\" and \"it\\'s s3cret\"",
             "password='it\\'s s3cret'", "bad \"***\" and \"***\""},
            {"password authentication failed for user \"u\"",
             "host=h user=u password=s3cret",
             "password authentication failed for user \"u\""},
            {"no secret here", NULL, "no secret here"},
        };
        char out[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                drv_redact_text(rows[i].msg, rows[i].conninfo, out,
                                sizeof(out));
                assert_string_equal(out, rows[i].out);
        }
}

/* Capture what drv_log writes to stderr. */
static void capture_log(void (*fn)(void), char *out, size_t size) {
        int saved = dup(STDERR_FILENO), p[2];
        ssize_t n;

        assert_int_equal(pipe(p), 0);
        dup2(p[1], STDERR_FILENO);
        fn();
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(p[1]);
        n = read(p[0], out, size - 1);
        out[n > 0 ? n : 0] = '\0';
        close(p[0]);
}

static void log_with_ctx(void) {
        drv_log_ctx_t ctx = {.task_id = "t-1",
                             .dataset = "cust\"omer",
                             .step = 2,
                             .partition = 7,
                             .offset = 42};
        drv_log_set_level(DRV_LOG_INFO);
        drv_log_set_ctx(&ctx);
        drv_log(DRV_LOG_INFO, "step %s done\nnext", "backfill");
        drv_log(DRV_LOG_DEBUG, "hidden");
        drv_log_set_ctx(NULL);
        drv_log(DRV_LOG_WARN, "no ctx");
}

static void test_log_lines_are_json_with_context(void **state) {
        char buf[4096];
        json_error_t jerr;
        char *second;
        json_t *o;

        capture_log(log_with_ctx, buf, sizeof(buf));
        second = strchr(buf, '\n');
        assert_non_null(second);
        *second++ = '\0';
        o = json_loads(buf, 0, &jerr);
        if (!o)
                fail_msg("not JSON: %s (%s)", buf, jerr.text);
        assert_string_equal(json_string_value(json_object_get(o, "level")),
                            "info");
        assert_string_equal(json_string_value(json_object_get(o, "msg")),
                            "step backfill done\nnext");
        assert_string_equal(json_string_value(json_object_get(o, "task_id")),
                            "t-1");
        assert_string_equal(json_string_value(json_object_get(o, "dataset")),
                            "cust\"omer");
        assert_int_equal(json_integer_value(json_object_get(o, "step")), 2);
        assert_int_equal(json_integer_value(json_object_get(o, "partition")),
                         7);
        assert_int_equal(json_integer_value(json_object_get(o, "offset")), 42);
        assert_non_null(json_object_get(o, "ts"));
        json_decref(o);
        /* the debug line was dropped; the next has no context */
        o = json_loads(second, JSON_DISABLE_EOF_CHECK, &jerr);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "msg")),
                            "no ctx");
        assert_null(json_object_get(o, "task_id"));
        json_decref(o);
}

static void test_err_exit_codes(void **state) {
        assert_int_equal(drv_err_exit_code(DRV_OK), 0);
        assert_int_equal(drv_err_exit_code(DRV_ERR_USAGE), 2);
        assert_int_equal(drv_err_exit_code(DRV_ERR_CONFIG), 65);
        assert_int_equal(drv_err_exit_code(DRV_ERR_DECODE), 65);
        assert_int_equal(drv_err_exit_code(DRV_ERR_DB_UNAVAILABLE), 69);
        assert_int_equal(drv_err_exit_code(DRV_ERR_INTERNAL), 70);
        assert_string_equal(drv_err_name(DRV_ERR_VERSION_CONFLICT),
                            "version_conflict");
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_time_forms),
            cmocka_unit_test(test_parse_relative_time_is_before_now),
            cmocka_unit_test(test_format_time_round_trips),
            cmocka_unit_test(test_uuid4_shape_and_uniqueness),
            cmocka_unit_test(test_redact_url_hides_passwords),
            cmocka_unit_test(test_redact_text_hides_echoed_secrets),
            cmocka_unit_test(test_log_lines_are_json_with_context),
            cmocka_unit_test(test_err_exit_codes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
