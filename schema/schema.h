/*
 * drover - schema/: the bottom module.
 *
 * Holds what every other module needs (error codes, logging, small
 * utilities) and the migration task record: its Avro schemas, both wire
 * formats, decode/encode and the schema registry client.
 *
 * Dependencies point one way: cli -> worker -> admin -> dlq -> transforms
 * -> schema (cli, worker and admin are the folders of consumer/).
 */
#ifndef DRV_SCHEMA_H
#define DRV_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ------------------------------------------------------------------------
 * Errors
 *
 * Every function that can fail returns a drv_err_t and fills
 * `char *errstr, size_t errstr_size` with one lower-case line (no trailing
 * period).  The value names *what* failed; its high byte carries the
 * default routing family.  The one authority that turns an error (plus a
 * SQLSTATE, for DRV_ERR_SQL) into a dead-letter class and a route is
 * drv_dlq_classify() in dlq/: callers route on that, never on strings.
 * ------------------------------------------------------------------------
 */
#define DRV_ERR_FAMILY_MASK      0xff00
#define DRV_ERR_FAMILY_TRANSIENT 0x0100
#define DRV_ERR_FAMILY_PERMANENT 0x0200
#define DRV_ERR_FAMILY_FATAL     0x0300
#define DRV_ERR_FAMILY_USAGE     0x0400

typedef enum drv_err_e {
        DRV_OK = 0,

        /* transient: retry with backoff */
        DRV_ERR_REGISTRY_UNAVAILABLE = DRV_ERR_FAMILY_TRANSIENT | 1,
        DRV_ERR_CATALOG_UNAVAILABLE = DRV_ERR_FAMILY_TRANSIENT | 2,
        DRV_ERR_DB_UNAVAILABLE = DRV_ERR_FAMILY_TRANSIENT | 3,
        DRV_ERR_KAFKA_RETRIABLE = DRV_ERR_FAMILY_TRANSIENT | 4,
        DRV_ERR_LOCKED = DRV_ERR_FAMILY_TRANSIENT | 5,
        DRV_ERR_TIMEOUT = DRV_ERR_FAMILY_TRANSIENT | 6,

        /* permanent: the input can never succeed: dead letter at once */
        DRV_ERR_DECODE = DRV_ERR_FAMILY_PERMANENT | 1,
        DRV_ERR_UNKNOWN_SCHEMA = DRV_ERR_FAMILY_PERMANENT | 2,
        DRV_ERR_UNKNOWN_PLAN = DRV_ERR_FAMILY_PERMANENT | 3,
        DRV_ERR_INVALID_PLAN = DRV_ERR_FAMILY_PERMANENT | 4,
        DRV_ERR_VERSION_CONFLICT = DRV_ERR_FAMILY_PERMANENT | 5,
        DRV_ERR_LEDGER_CONFLICT = DRV_ERR_FAMILY_PERMANENT | 6,
        DRV_ERR_SQL_REFUSED = DRV_ERR_FAMILY_PERMANENT | 7,
        DRV_ERR_INVALID_PARAM = DRV_ERR_FAMILY_PERMANENT | 8,
        /* a SQL statement failed: the SQLSTATE decides (see dlq/);
         * filed as permanent until classified */
        DRV_ERR_SQL = DRV_ERR_FAMILY_PERMANENT | 9,
        /* the plan is annotated for another queue (drover.io/queue) */
        DRV_ERR_WRONG_QUEUE = DRV_ERR_FAMILY_PERMANENT | 10,
        /* the plan requires a completed staging run (spec.requiresStaging)
         * and its fingerprint has none */
        DRV_ERR_STAGING_REQUIRED = DRV_ERR_FAMILY_PERMANENT | 11,

        /* fatal to the worker: recreate the handle or exit 70 */
        DRV_ERR_KAFKA_FATAL = DRV_ERR_FAMILY_FATAL | 1,
        DRV_ERR_INTERNAL = DRV_ERR_FAMILY_FATAL | 2,
        DRV_ERR_NOMEM = DRV_ERR_FAMILY_FATAL | 3,

        /* operator mistakes: bad flags, bad config (exit 2 / 65) */
        DRV_ERR_USAGE = DRV_ERR_FAMILY_USAGE | 1,
        DRV_ERR_CONFIG = DRV_ERR_FAMILY_USAGE | 2,
        DRV_ERR_IO = DRV_ERR_FAMILY_USAGE | 3,
} drv_err_t;

#define DRV_ERR_FAMILY(e) ((int)(e)&DRV_ERR_FAMILY_MASK)

/* Static name of an error code, e.g. "decode". Never NULL. */
const char *drv_err_name(drv_err_t err);

/* snprintf into errstr (if not NULL) and return err: the one-liner that
 * every failing path ends with. */
drv_err_t drv_err_set(char *errstr, size_t errstr_size, drv_err_t err,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Process exit codes (DESIGN.md section 9). */
#define DRV_EXIT_OK          0
#define DRV_EXIT_USAGE       2
#define DRV_EXIT_DATAERR     65
#define DRV_EXIT_UNAVAILABLE 69
#define DRV_EXIT_SOFTWARE    70

/* Exit code for an error: usage 2, input 65, unavailable 69, else 70. */
int drv_err_exit_code(drv_err_t err);


/*
 * ------------------------------------------------------------------------
 * Logging: one JSON object per line on stderr.
 * ------------------------------------------------------------------------
 */
typedef enum drv_log_level_e {
        DRV_LOG_DEBUG = 7,
        DRV_LOG_INFO = 6,
        DRV_LOG_WARN = 4,
        DRV_LOG_ERROR = 3,
} drv_log_level_t;

/* Context fields printed with every line logged from this thread while
 * set.  Strings are copied.  NULL / -1 leave a field out. */
typedef struct drv_log_ctx_s {
        const char *task_id;
        const char *dataset;
        int step;          /* -1: none */
        int32_t partition; /* -1: none */
        int64_t offset;    /* -1: none */
} drv_log_ctx_t;

/* Lines below `level` are dropped.  Default: INFO, or DROVER_LOG_LEVEL
 * (debug|info|warn|error) from the environment. */
void drv_log_set_level(drv_log_level_t level);
drv_log_level_t drv_log_get_level(void);

/* Set (ctx != NULL) or clear (ctx == NULL) this thread's context. */
void drv_log_set_ctx(const drv_log_ctx_t *ctx);

/* Log one line {"ts":..., "level":..., "msg":..., <ctx fields>}.
 * Thread-safe; a line is written with one write(2).  Secrets in the
 * message are the caller's responsibility: pass URLs through
 * drv_redact_url() first. */
void drv_log(drv_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void drv_logv(drv_log_level_t level, const char *fmt, va_list ap);

/* Copy `url` into `out` with every secret replaced by "***".  `url` is a
 * URI (the password of user:PASSWORD@ and the value of a password=,
 * sslpassword= or oauth_client_secret= query parameter) or a libpq
 * keyword/value conninfo (the value of those keys in any case, with or
 * without white space around '=', bare or single-quoted with \' and \\
 * escapes; a value that is itself a URI is redacted as one).  NULL url:
 * empty out.  Always NUL-terminates; truncation never shows a secret. */
void drv_redact_url(const char *url, char *out, size_t out_size);

/* Copy `text` (a message that may echo parts of `conninfo`, as libpq's
 * connection errors do) into `out` with every secret of `conninfo` (as
 * drv_redact_url() finds them), written raw or decoded, replaced by
 * "***".  NULL conninfo: text copied.  Always NUL-terminates. */
void drv_redact_text(const char *text, const char *conninfo, char *out,
                     size_t out_size);


/*
 * ------------------------------------------------------------------------
 * Small utilities shared by every module
 * ------------------------------------------------------------------------
 */

/* Milliseconds since the epoch / of a monotonic clock. */
int64_t drv_now_ms(void);
int64_t drv_mono_ms(void);

/* A random (version 4) UUID, lower-case, into out[37]. */
void drv_uuid4(char out[37]);

/* Parse a time given as RFC 3339 / ISO 8601 ("2026-11-25T08:00:00Z",
 * "2026-11-25 08:00:00"), epoch milliseconds, or a relative "-15m" /
 * "-2h" / "-1d" (before now).  Returns 0 and sets *msp, or -1. */
int drv_parse_time(const char *s, int64_t *msp);

/* Format epoch ms as "2026-11-25T08:00:00.123Z" into out (>= 32 bytes). */
void drv_format_time(int64_t ms, char *out, size_t out_size);

/* Copy untrusted `text` (NULL: "") into `out` for a terminal: C0 controls
 * (CR, LF, ESC ...), DEL and bytes that are not valid UTF-8 become
 * "\xNN", C1 controls (U+0080-U+009F) and bidirectional overrides and
 * isolates "\u{NN}"; printable UTF-8 is kept, backslashes too.  Stops
 * before an escape or character that would not fit; always
 * NUL-terminates.  Returns out.  Every human-readable (not JSON) output of
 * task-, plan- or error-derived text goes through it. */
const char *drv_text_escape(const char *text, char *out, size_t out_size);

/* 1 if the `len` bytes at `text` are valid UTF-8 (no overlong forms,
 * surrogates or code points beyond U+10FFFF), else 0. */
int drv_text_utf8_valid(const char *text, size_t len);


/*
 * ------------------------------------------------------------------------
 * Migration tasks (DESIGN.md section 4)
 * ------------------------------------------------------------------------
 */
typedef struct drv_param_s {
        char *key;
        char *value;
} drv_param_t;

/* A decoded task.  All strings are owned by the task and freed by
 * drv_task_destroy(). */
typedef struct drv_task_s {
        /* v1 */
        char *task_id;
        char *entity_ref;
        char *dataset;
        int64_t requested_at; /* epoch ms */
        char *requested_by;
        int dry_run;
        drv_param_t *params;
        size_t params_cnt;
        /* v2 (defaults filled when the writer was v1) */
        int32_t priority; /* default 0 */
        char *replay_of;  /* NULL: not a replay (default null) */
        /* the writer schema's version: 1 or 2 */
        int writer_version;
} drv_task_t;

/* A new empty task (all NULL / 0, priority 0); NULL on out of memory. */
drv_task_t *drv_task_new(void);
/* Free a task and everything it owns.  NULL is a no-op. */
void drv_task_destroy(drv_task_t *task);
/* Append a param (copies both strings).  Returns 0 or -1 (no memory). */
int drv_task_add_param(drv_task_t *task, const char *key, const char *value);
/* Value of param `key`, or NULL. */
const char *drv_task_param(const drv_task_t *task, const char *key);

/* The task as a JSON object text (malloc'ed, caller frees); NULL on out of
 * memory. */
char *drv_task_to_json(const drv_task_t *task);

/* The schema store: bundled .avsc files by fingerprint, plus an optional
 * schema registry.  Thread-safe after creation. */
typedef struct drv_schema_store_s drv_schema_store_t;

typedef struct drv_schema_conf_s {
        const char *registry_url;      /* NULL: bundled schemas only */
        const char *registry_user;     /* basic auth, may be NULL */
        const char *registry_password; /* basic auth, may be NULL */
        const char *registry_token;    /* bearer, may be NULL */
        long registry_timeout_ms;      /* 0: 5000 */
        const char *subject;           /* for encode; NULL:
                                          "dataset-migrations-value" */
        size_t max_record_size;        /* 0: 1 MiB */
        int writer_version;            /* for encode: 1 or 2; 0: 2 */
        /* added by the schema module (zero keeps the defaults) */
        int reader_version;           /* the reader schema: 1 or 2; 0: 2 */
        const char *registry_ca_file; /* PEM bundle for TLS; NULL: system */
        size_t alloc_budget;          /* bytes the decoder may allocate
                                         per record; 0:
                                         4 x max_record_size + 256 KiB */
} drv_schema_conf_t;

/* Create a store.  conf may be NULL (all defaults).  Returns NULL and
 * fills errstr on failure (bundled schemas unreadable). */
drv_schema_store_t *drv_schema_store_new(const drv_schema_conf_t *conf,
                                         char *errstr, size_t errstr_size);
/* NULL is a no-op. */
void drv_schema_store_destroy(drv_schema_store_t *store);

/* Decode one record (either wire format, detected by its first bytes).
 * On DRV_OK *taskp is a new task the caller destroys.  On failure *taskp
 * is NULL and the return is DRV_ERR_DECODE / DRV_ERR_UNKNOWN_SCHEMA
 * (poison) or DRV_ERR_REGISTRY_UNAVAILABLE (transient). */
drv_err_t drv_task_decode(drv_schema_store_t *store, const void *buf,
                          size_t len, drv_task_t **taskp, char *errstr,
                          size_t errstr_size);
/* The same without I/O: a Confluent record whose schema id is not cached
 * yet is DRV_ERR_REGISTRY_UNAVAILABLE instead of a registry request (the
 * worker's poll thread decodes this way, its executors fetch). */
drv_err_t drv_task_decode_cached(drv_schema_store_t *store, const void *buf,
                                 size_t len, drv_task_t **taskp, char *errstr,
                                 size_t errstr_size);

/* Encode a task: single-object encoding, or Confluent framing when the
 * store has a registry.  On DRV_OK *bufp (malloc'ed, caller frees) and
 * *lenp are set. */
drv_err_t drv_task_encode(drv_schema_store_t *store, const drv_task_t *task,
                          void **bufp, size_t *lenp, char *errstr,
                          size_t errstr_size);

/* Register an extra writer schema (Avro JSON text) under its fingerprint,
 * after the same validation a registry schema gets, so single-object
 * records written with it decode.  *fpp (may be NULL) receives the
 * CRC-64-AVRO fingerprint.  Thread-safe.  Fails with
 * DRV_ERR_UNKNOWN_SCHEMA and one line when the schema is invalid or
 * cannot be read as a task. */
drv_err_t drv_schema_store_add(drv_schema_store_t *store, const char *json,
                               uint64_t *fpp, char *errstr, size_t errstr_size);

/* The CRC-64-AVRO fingerprint of bundled schema version 1 or 2 (0 if no
 * such version). */
uint64_t drv_schema_store_bundled_fingerprint(const drv_schema_store_t *store,
                                              int version);

/*
 * ------------------------------------------------------------------------
 * Avro schema utilities (the parts avro-c 1.11.1 lacks)
 * ------------------------------------------------------------------------
 */

/* The Avro Parsing Canonical Form of a schema given as JSON text.  On
 * DRV_OK *canonp is malloc'ed (caller frees).  DRV_ERR_DECODE when the
 * text is not JSON or not a schema. */
drv_err_t drv_schema_canonical_form(const char *json, size_t len, char **canonp,
                                    char *errstr, size_t errstr_size);

/* CRC-64-AVRO (the Avro specification's 64-bit Rabin fingerprint) of
 * bytes. */
uint64_t drv_schema_crc64_avro(const void *data, size_t len);

/* The fingerprint of a schema: CRC-64-AVRO of its canonical form. */
drv_err_t drv_schema_fingerprint(const char *json, size_t len, uint64_t *fpp,
                                 char *errstr, size_t errstr_size);

/* Check a schema we did not ship before avro-c parses it: no recursion,
 * nesting <= 32, fixed sizes 1..65536, bounded unions, enums, records and
 * named types, valid names, known types.  DRV_OK or
 * DRV_ERR_UNKNOWN_SCHEMA with one line. */
drv_err_t drv_schema_validate(const char *json, size_t len, char *errstr,
                              size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* DRV_SCHEMA_H */
