/*
 * drover - dlq/classify.c: the one table that routes every failure.
 *
 * Every error another module reports is a drv_err_t (schema.h), plus a
 * SQLSTATE for DRV_ERR_SQL / DRV_ERR_DB_UNAVAILABLE, or a librdkafka
 * response code.  The tables below turn it into a route (retry / dead
 * letter / fatal to the worker) and the `drover.error.class` name written
 * in dead-letter headers and metrics.  DESIGN.md section 6.  The last
 * table routes the Kafka transactional API's error objects (retry the
 * call / abort and rewind / fatal) for the worker's commit and redrive.
 */
#include "dlq.h"

#include <string.h>

/*
 * ------------------------------------------------------------------------
 * drv_err_t -> class
 *
 * DRV_ERR_SQL is only a placeholder row: its SQLSTATE decides (below).
 * ------------------------------------------------------------------------
 */
static const struct {
        drv_err_t err;
        drv_route_t route;
        const char *name;
} err_table[] = {
    /* transient: the task may succeed later */
    {DRV_ERR_REGISTRY_UNAVAILABLE, DRV_ROUTE_RETRY, "registry_unavailable"},
    {DRV_ERR_CATALOG_UNAVAILABLE, DRV_ROUTE_RETRY, "catalog_unavailable"},
    {DRV_ERR_DB_UNAVAILABLE, DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_KAFKA_RETRIABLE, DRV_ROUTE_RETRY, "kafka_retriable"},
    {DRV_ERR_LOCKED, DRV_ROUTE_RETRY, "locked"},
    {DRV_ERR_TIMEOUT, DRV_ROUTE_RETRY, "timeout"},
    /* a local file (catalog dir, config) could not be read: it may be
     * fixed without touching the task */
    {DRV_ERR_IO, DRV_ROUTE_RETRY, "io"},
    /* permanent: this input can never succeed */
    {DRV_ERR_DECODE, DRV_ROUTE_DEAD, "decode"},
    {DRV_ERR_UNKNOWN_SCHEMA, DRV_ROUTE_DEAD, "unknown_schema"},
    {DRV_ERR_UNKNOWN_PLAN, DRV_ROUTE_DEAD, "unknown_plan"},
    {DRV_ERR_INVALID_PLAN, DRV_ROUTE_DEAD, "invalid_plan"},
    {DRV_ERR_VERSION_CONFLICT, DRV_ROUTE_DEAD, "version_conflict"},
    {DRV_ERR_LEDGER_CONFLICT, DRV_ROUTE_DEAD, "ledger_conflict"},
    {DRV_ERR_SQL_REFUSED, DRV_ROUTE_DEAD, "sql_refused"},
    {DRV_ERR_INVALID_PARAM, DRV_ROUTE_DEAD, "invalid_param"},
    {DRV_ERR_SQL, DRV_ROUTE_DEAD, "sql"},
    /* the plan is meant for another queue's workers */
    {DRV_ERR_WRONG_QUEUE, DRV_ROUTE_DEAD, "wrong_queue"},
    /* the plan must complete on the staging database first: retrying
     * cannot help until an operator runs it there */
    {DRV_ERR_STAGING_REQUIRED, DRV_ROUTE_DEAD, "staging_required"},
    /* the worker's own state: recreate the handle or exit 70 */
    {DRV_ERR_KAFKA_FATAL, DRV_ROUTE_FATAL, "kafka_fatal"},
    {DRV_ERR_INTERNAL, DRV_ROUTE_FATAL, "internal"},
    {DRV_ERR_NOMEM, DRV_ROUTE_FATAL, "nomem"},
    {DRV_ERR_USAGE, DRV_ROUTE_FATAL, "usage"},
    {DRV_ERR_CONFIG, DRV_ROUTE_FATAL, "config"},
};

/*
 * ------------------------------------------------------------------------
 * SQLSTATE -> class
 *
 * Looked up first by the full five-character code, then by its two-
 * character class (PostgreSQL Appendix A).  A code in neither is
 * permanent "sql": a statement that failed for a reason we do not know
 * to be temporary would fail the same way again.
 * ------------------------------------------------------------------------
 */
static const struct {
        const char *code; /* 5 chars: exact; 2 chars: class */
        drv_route_t route;
        const char *name;
} sqlstate_table[] = {
    /* exact codes, checked first */
    {"40001", DRV_ROUTE_RETRY, "sql"},            /* serialization_failure */
    {"40P01", DRV_ROUTE_RETRY, "sql"},            /* deadlock_detected */
    {"55P03", DRV_ROUTE_RETRY, "locked"},         /* lock_not_available */
    {"57014", DRV_ROUTE_RETRY, "timeout"},        /* query_canceled */
    {"57P01", DRV_ROUTE_RETRY, "db_unavailable"}, /* admin_shutdown */
    {"57P02", DRV_ROUTE_RETRY, "db_unavailable"}, /* crash_shutdown */
    {"57P03", DRV_ROUTE_RETRY, "db_unavailable"}, /* cannot_connect_now */
    {"57P04", DRV_ROUTE_RETRY, "db_unavailable"}, /* database_dropped */
    {"25P03", DRV_ROUTE_RETRY, "timeout"}, /* idle_in_transaction_timeout */
    {"53100", DRV_ROUTE_RETRY, "sql"},     /* disk_full */
    /* protocol_violation: the server refused our own statement (a bind
     * that does not match it); the connection itself is fine, or the
     * error would be DRV_ERR_DB_UNAVAILABLE, not DRV_ERR_SQL */
    {"08P01", DRV_ROUTE_DEAD, "sql"},
    /* classes */
    {"08", DRV_ROUTE_RETRY, "db_unavailable"}, /* connection exception */
    {"53", DRV_ROUTE_RETRY, "sql"},            /* insufficient resources */
    {"28", DRV_ROUTE_RETRY, "db_unavailable"}, /* invalid authorization:
                                                  a credential to fix */
    {"22", DRV_ROUTE_DEAD, "sql"},             /* data exception */
    {"23", DRV_ROUTE_DEAD, "sql"},             /* integrity violation */
    {"42", DRV_ROUTE_DEAD, "sql"},             /* syntax / access rule */
    {"0A", DRV_ROUTE_DEAD, "sql"},             /* feature not supported */
    {"54", DRV_ROUTE_DEAD, "sql"},             /* program limit exceeded */
    {"XX", DRV_ROUTE_DEAD, "sql"},             /* internal error: the task
                                                  is poison, not the worker */
};

static drv_class_t make_class(drv_route_t route, const char *name) {
        drv_class_t cls;

        cls.route = route;
        cls.name = name;
        cls.retryable = route == DRV_ROUTE_RETRY;
        return cls;
}

static int sqlstate_valid(const char *s) {
        size_t i;

        if (!s || strlen(s) != 5)
                return 0;
        for (i = 0; i < 5; i++)
                if (!((s[i] >= '0' && s[i] <= '9') ||
                      (s[i] >= 'A' && s[i] <= 'Z')))
                        return 0;
        return 1;
}

/* Class of a SQL error by its SQLSTATE; `dflt` when the code is missing,
 * malformed or unknown. */
static drv_class_t classify_sqlstate(const char *sqlstate, drv_class_t dflt) {
        size_t i, n = sizeof(sqlstate_table) / sizeof(sqlstate_table[0]);

        if (!sqlstate_valid(sqlstate))
                return dflt;
        for (i = 0; i < n; i++)
                if (strlen(sqlstate_table[i].code) == 5 &&
                    !strcmp(sqlstate_table[i].code, sqlstate))
                        return make_class(sqlstate_table[i].route,
                                          sqlstate_table[i].name);
        for (i = 0; i < n; i++)
                if (strlen(sqlstate_table[i].code) == 2 &&
                    !strncmp(sqlstate_table[i].code, sqlstate, 2))
                        return make_class(sqlstate_table[i].route,
                                          sqlstate_table[i].name);
        return dflt;
}

drv_class_t drv_dlq_classify(drv_err_t err, const char *sqlstate) {
        size_t i, n = sizeof(err_table) / sizeof(err_table[0]);
        drv_class_t cls;

        if (err == DRV_OK)
                return make_class(DRV_ROUTE_OK, "ok");
        cls = make_class(DRV_ROUTE_FATAL, "internal");
        for (i = 0; i < n; i++)
                if (err_table[i].err == err) {
                        cls = make_class(err_table[i].route, err_table[i].name);
                        break;
                }
        /* Connection loss stays db_unavailable whatever the code says; a
         * failed statement is decided by its code. */
        if (err == DRV_ERR_SQL)
                return classify_sqlstate(sqlstate, cls);
        return cls;
}

/*
 * ------------------------------------------------------------------------
 * librdkafka response codes
 * ------------------------------------------------------------------------
 */
/* Response codes a delivery report or a call can return that concern one
 * record, not the producer's state. */
static const struct {
        rd_kafka_resp_err_t err;
        drv_route_t route;
        const char *name;
} kafka_err_table[] = {
    {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, DRV_ROUTE_DEAD,
     "kafka_msg_too_large"},
    {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, DRV_ROUTE_RETRY, "kafka_timeout"},
    {RD_KAFKA_RESP_ERR__TIMED_OUT, DRV_ROUTE_RETRY, "kafka_timeout"},
    {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, DRV_ROUTE_RETRY, "kafka_timeout"},
    {RD_KAFKA_RESP_ERR__TRANSPORT, DRV_ROUTE_RETRY, "kafka_unavailable"},
    {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, DRV_ROUTE_RETRY, "kafka_unavailable"},
    {RD_KAFKA_RESP_ERR__FENCED, DRV_ROUTE_FATAL, "kafka_fenced"},
    {RD_KAFKA_RESP_ERR_PRODUCER_FENCED, DRV_ROUTE_FATAL, "kafka_fenced"},
    {RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, DRV_ROUTE_FATAL, "kafka_fenced"},
    {RD_KAFKA_RESP_ERR__FATAL, DRV_ROUTE_FATAL, "kafka_fatal"},
    {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, DRV_ROUTE_FATAL,
     "kafka_unauthorized"},
    {RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, DRV_ROUTE_FATAL,
     "kafka_unauthorized"},
    {RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, DRV_ROUTE_FATAL,
     "kafka_unauthorized"},
};

drv_class_t drv_dlq_classify_kafka_err(rd_kafka_resp_err_t err) {
        size_t i, n = sizeof(kafka_err_table) / sizeof(kafka_err_table[0]);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                return make_class(DRV_ROUTE_OK, "ok");
        for (i = 0; i < n; i++)
                if (kafka_err_table[i].err == err)
                        return make_class(kafka_err_table[i].route,
                                          kafka_err_table[i].name);
        /* Anything else: transient, so the backoff budget decides and a
         * record never dies of an error we did not foresee. */
        return make_class(DRV_ROUTE_RETRY, "kafka_retriable");
}

const char *drv_route_name(drv_route_t route) {
        switch (route) {
        case DRV_ROUTE_OK:
                return "ok";
        case DRV_ROUTE_RETRY:
                return "retry";
        case DRV_ROUTE_DEAD:
                return "dead";
        case DRV_ROUTE_FATAL:
                return "fatal";
        }
        return "unknown";
}

/*
 * ------------------------------------------------------------------------
 * Kafka transaction errors -> action
 *
 * One row per combination of the three flags librdkafka sets on an error
 * object from the transactional API (rdkafka.h, "Transactional producer
 * API"; FACTS.md): fatal wins, then txn_requires_abort, then retriable.
 *
 * Why an error with no flag is FATAL (the worker aborted and rewound on
 * it, redrive gave up as retriable): librdkafka 2.0.2 says of such errors
 * "The general recommendation is to treat these errors, that have neither
 * the retriable or abortable flags set, as fatal" (rdkafka.h, "Handling
 * of other errors"), and examples/transactions.c exits on them.  In
 * 2.0.2's rdkafka_txnmgr.c every broker error of AddOffsetsToTxn,
 * TxnOffsetCommit and EndTxn gets a flag (unknown ones become abortable),
 * so what arrives without one is local: __STATE (our idea of the
 * transaction and librdkafka's differ), __INVALID_ARG, __NOT_CONFIGURED,
 * __OUTDATED from EndTxn.  Abort and rewind cannot mend any of them: the
 * same call fails the same way every commit interval and the worker would
 * re-run its tasks without ever committing or exiting.  Exiting 70 lets
 * the supervisor restart it, and init_transactions() of the new producer
 * completes or aborts whatever transaction was left.
 * ------------------------------------------------------------------------
 */
static const struct {
        int fatal, abortable, retriable;
        drv_txn_action_t action;
} txn_table[] = {
    {0, 0, 0, DRV_TXN_FATAL}, /* neither: see above */
    {0, 0, 1, DRV_TXN_RETRY}, /* timeout, transport, __CONFLICT: resumable */
    {0, 1, 0, DRV_TXN_ABORT}, /* e.g. ILLEGAL_GENERATION at TxnOffsetCommit */
    {0, 1, 1, DRV_TXN_ABORT}, /* the transaction is lost: retrying is not
                                 enough */
    {1, 0, 0, DRV_TXN_FATAL}, /* fenced, INVALID_PRODUCER_EPOCH, ... */
    {1, 0, 1, DRV_TXN_FATAL}, {1, 1, 0, DRV_TXN_FATAL},
    {1, 1, 1, DRV_TXN_FATAL},
};

drv_txn_action_t drv_dlq_txn_route_flags(int fatal, int txn_requires_abort,
                                         int retriable) {
        size_t i, n = sizeof(txn_table) / sizeof(txn_table[0]);

        for (i = 0; i < n; i++)
                if (txn_table[i].fatal == !!fatal &&
                    txn_table[i].abortable == !!txn_requires_abort &&
                    txn_table[i].retriable == !!retriable)
                        return txn_table[i].action;
        return DRV_TXN_FATAL; /* not reached: every combination has a row */
}

drv_txn_action_t drv_dlq_txn_route(const rd_kafka_error_t *error) {
        if (!error)
                return DRV_TXN_OK;
        return drv_dlq_txn_route_flags(rd_kafka_error_is_fatal(error),
                                       rd_kafka_error_txn_requires_abort(error),
                                       rd_kafka_error_is_retriable(error));
}

const char *drv_dlq_txn_action_name(drv_txn_action_t action) {
        switch (action) {
        case DRV_TXN_OK:
                return "ok";
        case DRV_TXN_RETRY:
                return "retry";
        case DRV_TXN_ABORT:
                return "abort";
        case DRV_TXN_FATAL:
                return "fatal";
        }
        return "unknown";
}
