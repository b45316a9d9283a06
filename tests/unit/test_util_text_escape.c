/*
 * drover - tests/unit/test_util_text_escape.c: drv_text_escape() (schema/
 * text.c), what human-readable output shows of untrusted text.
 */
#include "testutil.h"

#include <string.h>

static void test_text_escape_controls_and_bad_utf8(void **state) {
        static const struct {
                const char *in, *out;
        } rows[] = {
            {"plain ascii", "plain ascii"},
            {"\x1b[2J\x1b[Hgone", "\\x1b[2J\\x1b[Hgone"},
            {"a\rforged\nrow\t", "a\\x0dforged\\x0arow\\x09"},
            {"del\x7f", "del\\x7f"},
            {"\x01\x1f", "\\x01\\x1f"},
            /* printable UTF-8 is kept, a backslash too */
            {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 C:\\x",
             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 C:\\x"},
            /* C1 controls as UTF-8: U+0080, U+009B (CSI), U+009F */
            {"\xc2\x80\xc2\x9b"
             "2J\xc2\x9f",
             "\\u{80}\\u{9b}2J\\u{9f}"},
            {"\xc2\xa0", "\xc2\xa0"}, /* U+00A0 is printable */
            /* bidi override and isolate */
            {"a\xe2\x80\xae"
             "b\xe2\x81\xa6",
             "a\\u{202e}b\\u{2066}"},
            /* invalid UTF-8: lone continuation, raw C1 byte, truncated,
             * overlong, surrogate, beyond U+10FFFF, bad lead */
            {"\x80", "\\x80"},
            {"\x9b"
             "2J",
             "\\x9b2J"},
            {"\xc3", "\\xc3"},
            {"\xe2\x82", "\\xe2\\x82"},
            {"\xc0\xaf", "\\xc0\\xaf"},
            {"\xed\xa0\x80", "\\xed\\xa0\\x80"},
            {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},
            {"\xff\xfe", "\\xff\\xfe"},
            {"", ""},
        };
        char out[128];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                assert_string_equal(
                    drv_text_escape(rows[i].in, out, sizeof(out)), rows[i].out);
        assert_string_equal(drv_text_escape(NULL, out, sizeof(out)), "");
}

/* A short buffer ends before an escape or a character, never inside. */
static void test_text_escape_truncates_whole(void **state) {
        char out[8];

        (void)state;
        assert_string_equal(drv_text_escape("abcd\x1b", out, sizeof(out)),
                            "abcd");
        assert_string_equal(drv_text_escape("abcde\xe2\x82\xac", out, 8),
                            "abcde");
        assert_string_equal(drv_text_escape("abc\x1b", out, 8), "abc\\x1b");
        assert_string_equal(drv_text_escape("abc", out, 1), "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_text_escape_controls_and_bad_utf8),
            cmocka_unit_test(test_text_escape_truncates_whole),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
