/*
 * drover - schema/text.c: untrusted text made safe for a terminal.
 *
 * Task fields, plan text and error messages come from whoever can produce
 * to the tasks topic or edit the catalog; printed raw, an ESC sequence
 * clears the screen or a CR/LF forges a row.  drv_text_escape() is the
 * one place that decides what a human-readable output may show.
 */
#include "schema.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1-4) and its code point, or 0
 * if the bytes are not one (bad lead, truncated, overlong, surrogate,
 * beyond U+10FFFF). */
static int utf8_seq(const unsigned char *s, unsigned *cpp) {
        static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
        unsigned cp;
        int n, i;

        if (s[0] < 0x80)
                n = 1, cp = s[0];
        else if ((s[0] & 0xe0) == 0xc0)
                n = 2, cp = s[0] & 0x1f;
        else if ((s[0] & 0xf0) == 0xe0)
                n = 3, cp = s[0] & 0x0f;
        else if ((s[0] & 0xf8) == 0xf0)
                n = 4, cp = s[0] & 0x07;
        else
                return 0;
        for (i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0; /* also stops at the NUL */
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *cpp = cp;
        return n;
}

int drv_text_utf8_valid(const char *text, size_t len) {
        const unsigned char *s = (const unsigned char *)text;
        unsigned cp;
        size_t i = 0, need;
        int k;

        while (i < len) {
                need = s[i] < 0x80    ? 1
                       : s[i] >= 0xf0 ? 4
                       : s[i] >= 0xe0 ? 3
                                      : 2;
                if (need > len - i || !(k = utf8_seq(s + i, &cp)))
                        return 0;
                i += (size_t)k;
        }
        return 1;
}

/* Code points a terminal acts on rather than shows: C1 controls, and the
 * bidirectional overrides and isolates that reorder what follows. */
static int is_control_cp(unsigned cp) {
        return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
               (cp >= 0x2066 && cp <= 0x2069);
}

const char *drv_text_escape(const char *text, char *out, size_t out_size) {
        const unsigned char *s = (const unsigned char *)(text ? text : "");
        size_t len = 0, n;
        char esc[16];
        unsigned cp = 0;
        int k;

        if (!out_size)
                return out;
        while (*s) {
                k = utf8_seq(s, &cp);
                if (k == 0 || (k == 1 && (cp < 0x20 || cp == 0x7f))) {
                        n = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *s);
                        k = 1;
                } else if (is_control_cp(cp)) {
                        n = (size_t)snprintf(esc, sizeof(esc), "\\u{%x}", cp);
                } else {
                        n = (size_t)k;
                        memcpy(esc, s, n);
                }
                if (len + n >= out_size)
                        break; /* never half an escape or a character */
                memcpy(out + len, esc, n);
                len += n;
                s += k;
        }
        out[len] = '\0';
        return out;
}
