/*
 * drover - tests/testutil.h: what tests share.
 */
#ifndef DRV_TESTUTIL_H
#define DRV_TESTUTIL_H

#include "cli.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* The broker bootstrap (DROVER_TEST_BROKERS) and the database URL
 * (DROVER_TEST_DATABASE_URL) of the stack scripts/test.sh started.  When
 * unset, the test process exits 77 (skipped) - or fails, when
 * DROVER_REQUIRE_STACK=1 (scripts/test.sh sets it, so CI never skips). */
const char *drv_test_brokers(void);
const char *drv_test_database_url(void);

/* A name unique to this test run ("<prefix>-<pid>-<counter>"), for topics,
 * groups, schemas and tables, so tests never see each other's data. */
const char *drv_test_unique(const char *prefix);

/* A Kafka client of `type` on the test brokers, with extra settings kv =
 * {"key", "value", ..., NULL} (kv may be NULL).  Fails the test on a bad
 * setting. */
rd_kafka_t *drv_test_kafka(rd_kafka_type_t type, const char **kv);

/* Create `topic` with `partitions` partitions (replication factor 1) on the
 * test brokers; fails the test if it cannot. */
void drv_test_create_topic(const char *topic, int partitions);

/* Run `$DROVER_BIN <args>` (args printf-formatted, already shell-safe):
 * its stdout lands in drv_test_out and its stderr in drv_test_err (both
 * NUL-terminated, truncated to their size).  Returns its exit code, 128
 * when a signal ended it. */
extern char drv_test_out[1 << 18];
extern char drv_test_err[1 << 14];
int drv_test_cli(const char *fmt, ...);

/* Run `sql` with n text parameters on conn; fails the test (naming the
 * statement and the server's message) unless it succeeds. */
void drv_test_exec(PGconn *conn, const char *sql, int n,
                   const char *const *vals);

/* Run the printf-formatted SQL `fmt` (trusted test text, no parameters)
 * on conn, failing the test unless it succeeds; its first value ("" for
 * none or NULL) in a static buffer, valid until the next call. */
const char *drv_test_value(PGconn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One HTTP request with libcurl (20 s timeout, the path sent as is):
 * `method` "GET", "POST", ...; `auth` the Authorization header's value
 * (NULL: none); `body` of body_len bytes sent as application/json (NULL:
 * none).  Fails the test when the request cannot be made.  The body is
 * malloc'ed and NUL-terminated ("" when empty); the caller frees it. */
typedef struct drv_test_resp_s {
        long status;
        char *body;
        size_t len;
        char content_type[128];
} drv_test_resp_t;

drv_test_resp_t drv_test_http(const char *method, const char *url,
                              const char *auth, const char *body,
                              size_t body_len);

/* librdkafka's mock cluster (1 broker) with `topic` of `partitions`
 * partitions; the cluster belongs to the handle put in *ownerp: destroy
 * the cluster, then that handle. */
rd_kafka_mock_cluster_t *
drv_test_mock_cluster(rd_kafka_t **ownerp, const char *topic, int partitions);

/* The one plan of YAML `doc_fmt` (a printf format with one %s) with
 * `extra` spliced in, loaded as "t.yaml"; fails the test unless it loads
 * as exactly one plan.  The caller releases it (drv_plan_release). */
drv_plan_t *drv_test_plan(const char *doc_fmt, const char *extra);

#endif
