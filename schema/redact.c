/*
 * drover - schema/redact.c: secrets out of connection strings and of the
 * messages that may echo them.
 *
 * A connection string is either a URI (scheme://user:password@host/...?
 * key=value&...) or a libpq keyword/value conninfo (key = value ...,
 * where a value may be single-quoted and \' and \\ escape inside and
 * outside quotes).  One walker finds every secret in either form and
 * hands its span to a visitor: drv_redact_url() copies the string with
 * the spans replaced, drv_redact_text() collects the secrets' raw and
 * decoded forms and removes them from a message (libpq echoes parts of a
 * bad URI or conninfo in its errors).
 */
#include "schema.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define REDACTED "***"

/* Parameters libpq accepts whose value is a secret (libpq "Parameter Key
 * Words"); compared without case so a misspelt key is redacted too. */
static const char *const redact_keys[] = {"password", "sslpassword",
                                          "oauth_client_secret", NULL};

/* A secret found at [s, s + len): `enc` says how it is written. */
typedef enum { ENC_PERCENT, ENC_BACKSLASH } redact_enc_t;
typedef void (*redact_visit_t)(void *opaque, const char *s, size_t len,
                               redact_enc_t enc);

static int hexval(int c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = tolower(c);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode [s, s + len) written as `enc` into out (NUL-terminated). */
static void redact_decode(const char *s, size_t len, redact_enc_t enc,
                          char *out, size_t out_size) {
        size_t i, n = 0;

        for (i = 0; i < len && n + 1 < out_size; i++) {
                if (enc == ENC_PERCENT && s[i] == '%' && i + 2 < len &&
                    hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                        out[n++] =
                            (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                        i += 2;
                } else if (enc == ENC_BACKSLASH && s[i] == '\\' &&
                           i + 1 < len) {
                        out[n++] = s[++i];
                } else {
                        out[n++] = s[i];
                }
        }
        out[n] = '\0';
}

static int redact_is_secret_key(const char *k, size_t len, redact_enc_t enc) {
        char key[64];
        size_t i;

        if (len >= sizeof(key))
                return 0;
        redact_decode(k, len, enc, key, sizeof(key));
        for (i = 0; redact_keys[i]; i++)
                if (!strcasecmp(key, redact_keys[i]))
                        return 1;
        return 0;
}

/* "scheme://" at s: the length of the prefix, or 0. */
static size_t redact_uri_prefix(const char *s, const char *end) {
        const char *p = s;

        if (p >= end || !isalpha((unsigned char)*p))
                return 0;
        while (p < end && (isalnum((unsigned char)*p) || *p == '+' ||
                           *p == '-' || *p == '.'))
                p++;
        if (end - p >= 3 && !strncmp(p, "://", 3))
                return (size_t)(p - s) + 3;
        return 0;
}

/* URI: the password of user:password@ (libpq: the user part ends at the
 * first '@' before any '/') and the value of every secret query
 * parameter. */
static void redact_walk_uri(const char *s, const char *end, size_t prefix,
                            redact_visit_t visit, void *opaque) {
        const char *p = s + prefix, *at = p, *colon, *k, *eq;

        while (at < end && *at != '@' && *at != '/')
                at++;
        if (at < end && *at == '@') {
                colon = memchr(p, ':', (size_t)(at - p));
                if (colon)
                        visit(opaque, colon + 1, (size_t)(at - colon - 1),
                              ENC_PERCENT);
                p = at + 1;
        }
        while (p < end && *p != '?')
                p++;
        while (p < end) { /* at '?' or '&': one key=value follows */
                k = ++p;
                while (p < end && *p != '&' && *p != '=')
                        p++;
                if (p >= end || *p != '=')
                        continue;
                eq = p;
                while (p < end && *p != '&')
                        p++;
                if (redact_is_secret_key(k, (size_t)(eq - k), ENC_PERCENT))
                        visit(opaque, eq + 1, (size_t)(p - eq - 1),
                              ENC_PERCENT);
        }
}

static const char *skip_space(const char *p, const char *end) {
        while (p < end && isspace((unsigned char)*p))
                p++;
        return p;
}

/* libpq conninfo: key [ws] = [ws] value, value bare (up to white space)
 * or single-quoted, \x escaping x in both.  A value that is itself a URI
 * (dbname=postgresql://...) is walked as one. */
static void redact_walk_conninfo(const char *s, const char *end,
                                 redact_visit_t visit, void *opaque) {
        const char *p = s, *k, *ke, *v;
        int quoted;
        size_t prefix;

        while ((p = skip_space(p, end)) < end) {
                k = p;
                while (p < end && *p != '=' && !isspace((unsigned char)*p))
                        p++;
                ke = p;
                p = skip_space(p, end);
                if (p >= end || *p != '=')
                        continue; /* libpq refuses it; no value to hide */
                p = skip_space(p + 1, end);
                quoted = p < end && *p == '\'';
                v = p += quoted;
                while (p < end &&
                       (quoted ? *p != '\'' : !isspace((unsigned char)*p)))
                        p += *p == '\\' && p + 1 < end ? 2 : 1;
                if (redact_is_secret_key(k, (size_t)(ke - k), ENC_BACKSLASH))
                        visit(opaque, v, (size_t)(p - v), ENC_BACKSLASH);
                else if ((prefix = redact_uri_prefix(v, p)) != 0)
                        redact_walk_uri(v, p, prefix, visit, opaque);
                p += quoted && p < end;
        }
}

static void redact_walk(const char *s, redact_visit_t visit, void *opaque) {
        const char *end = s + strlen(s);
        size_t prefix = redact_uri_prefix(s, end);

        if (prefix)
                redact_walk_uri(s, end, prefix, visit, opaque);
        else
                redact_walk_conninfo(s, end, visit, opaque);
}

/*
 * ------------------------------------------------------------------------
 * drv_redact_url: copy with the spans replaced
 * ------------------------------------------------------------------------
 */
typedef struct {
        const char *from; /* next byte of the input not yet copied */
        char *out;
        size_t size, len;
} redact_copy_t;

static void copy_put(redact_copy_t *c, const char *s, size_t n) {
        if (c->len + 1 >= c->size)
                return;
        if (n > c->size - 1 - c->len)
                n = c->size - 1 - c->len;
        memcpy(c->out + c->len, s, n);
        c->len += n;
        c->out[c->len] = '\0';
}

static void copy_visit(void *opaque, const char *s, size_t len,
                       redact_enc_t enc) {
        redact_copy_t *c = opaque;

        (void)enc;
        copy_put(c, c->from, (size_t)(s - c->from));
        copy_put(c, REDACTED, strlen(REDACTED));
        c->from = s + len;
}

void drv_redact_url(const char *url, char *out, size_t out_size) {
        redact_copy_t c = {url, out, out_size, 0};

        if (!out_size)
                return;
        out[0] = '\0';
        if (!url)
                return;
        redact_walk(url, copy_visit, &c);
        copy_put(&c, c.from, strlen(c.from));
}

/*
 * ------------------------------------------------------------------------
 * drv_redact_text: the secrets of a connection string out of a message
 * ------------------------------------------------------------------------
 */
#define REDACT_MAX_SECRETS 16
#define REDACT_SECRET_MAX  256

typedef struct {
        char secret[REDACT_MAX_SECRETS][REDACT_SECRET_MAX];
        int n;
} redact_set_t;

static void set_add(redact_set_t *set, const char *s, size_t len) {
        if (!len || set->n >= REDACT_MAX_SECRETS)
                return;
        if (len >= REDACT_SECRET_MAX)
                len = REDACT_SECRET_MAX - 1; /* its prefix is still hidden */
        memcpy(set->secret[set->n], s, len);
        set->secret[set->n++][len] = '\0';
}

static void set_visit(void *opaque, const char *s, size_t len,
                      redact_enc_t enc) {
        redact_set_t *set = opaque;
        char dec[REDACT_SECRET_MAX];

        set_add(set, s, len);
        redact_decode(s, len, enc, dec, sizeof(dec));
        if (strlen(dec) != len || memcmp(dec, s, len))
                set_add(set, dec, strlen(dec));
}

/* Index of the longest secret starting at p, or -1. */
static int set_match(const redact_set_t *set, const char *p) {
        int i, best = -1;
        size_t n, best_n = 0;

        for (i = 0; i < set->n; i++) {
                n = strlen(set->secret[i]);
                if (n > best_n && !strncmp(p, set->secret[i], n)) {
                        best = i;
                        best_n = n;
                }
        }
        return best;
}

void drv_redact_text(const char *text, const char *conninfo, char *out,
                     size_t out_size) {
        redact_set_t set = {.n = 0};
        redact_copy_t c = {NULL, out, out_size, 0};
        const char *p;
        int i;

        if (!out_size)
                return;
        out[0] = '\0';
        if (!text)
                return;
        if (conninfo)
                redact_walk(conninfo, set_visit, &set);
        for (p = text; *p;) {
                if ((i = set_match(&set, p)) >= 0) {
                        copy_put(&c, REDACTED, strlen(REDACTED));
                        p += strlen(set.secret[i]);
                } else {
                        copy_put(&c, p++, 1);
                }
        }
}
