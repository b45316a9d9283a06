/*
 * drover - bench/bench_limit.c: the bare C librdkafka loop of B1.
 *
 * What a worker costs with nothing but librdkafka and libpq: consume a
 * task, run the task's PostgreSQL statements (--sql FILE) on one of N
 * executor connections, and once per commit interval produce the status
 * events and send the offsets in one Kafka transaction.  Like drover: one
 * task in flight per partition, linger.ms=1, read_committed; after the
 * commit a separate connection runs the file's after_commit statements
 * per task and its after_batch statements once per committed Kafka
 * transaction (task_ids = the batch's task ids, a text[] literal).  Every
 * statement is prepared once per connection.
 *
 * The statement file decides what it measures:
 *   bench/task_sql_min.json  the B1 limit: one PostgreSQL transaction per
 *                            task (claim, version guard, step, pending
 *                            outcome) and one batched status update
 *   bench/task_sql.json      a diagnostic: the replay of drover's own
 *                            statements (what the same loop costs with
 *                            drover's database work)
 * A statement with "on_no_row" ("skipped" or "dead") that returns no row
 * rolls the task's transaction back with that outcome.
 *
 *   bench_limit --brokers B --topic T --group G --database-url URL
 *               --sql bench/task_sql.json --schema S [--concurrency 4]
 *               [--commit-interval-ms 100] [--instance NAME]
 *               [--exit-after N] [-X kafka.prop=value]...
 *
 * Decoding is minimal on purpose: the three leading strings of the Avro
 * single-object record (task_id, entity_ref, dataset).  Exits 0 after
 * --exit-after committed tasks (or on SIGTERM), 1 on any error.
 */
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PARAMS 8
#define MAX_PARTS  1024
#define STEP_FP \
        "f9907ba0a5c357391fd92bfeeb106c1abaa8788fc375291183db1a0477f16df8"

enum {
        P_TASK_ID,
        P_ENTITY_REF,
        P_DATASET,
        P_WORKER,
        P_PARTITION,
        P_OFFSET,
        P_PLAN_FP,
        P_STEP_FP,
        P_TASK_IDS, /* after_batch only */
        P__CNT
};
static const char *param_names[P__CNT] = {"task_id", "entity_ref", "dataset",
                                          "worker",  "partition",  "offset",
                                          "plan_fp", "step_fp",    "task_ids"};

/* A task's outcome; OUT_ERROR: a statement failed (the program stops). */
enum { OUT_DONE, OUT_SKIPPED, OUT_DEAD, OUT_ERROR };
static const char *outcome_names[] = {"done", "skipped", "dead", "error"};

typedef struct stmt_s {
        char *sql;
        char name[16]; /* prepared statement, on every connection */
        int params[MAX_PARAMS];
        int params_cnt;
        int on_no_row; /* OUT_DONE: no check */
} stmt_t;

typedef struct stmts_s {
        stmt_t *v;
        int cnt;
} stmts_t;

typedef struct job_s {
        struct job_s *next;
        struct job_s *batch; /* the next job of the same Kafka commit */
        int32_t partition;
        int64_t offset;
        char *vals[P__CNT]; /* owned: task_id, entity_ref, dataset */
        char part_str[16], off_str[24];
        int outcome;
} job_t;

typedef struct queue_s {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        job_t *head, *tail;
        int closed;
} queue_t;

static struct {
        const char *brokers, *topic, *group, *url, *sql_file, *schema;
        const char *instance;
        int concurrency, interval_ms;
        long exit_after;
        const char *xprops[64];
        int xprops_cnt;
} opt = {.concurrency = 4, .interval_ms = 100, .instance = "limit-0"};

static stmts_t per_task, after_commit, after_batch;
static queue_t jobs, done, fin;
static volatile sig_atomic_t stop;
static char status_topic[512];

static void on_signal(int sig) {
        (void)sig;
        stop = 1;
}

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail(const char *fmt, const char *arg) {
        fprintf(stderr, "bench_limit: ");
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
        exit(1);
}

/*
 * ------------------------------------------------------------------------
 * Queues (mutex + condition variable, FIFO)
 * ------------------------------------------------------------------------
 */
static void q_init(queue_t *q) {
        memset(q, 0, sizeof(*q));
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->cond, NULL);
}

static void q_push(queue_t *q, job_t *j) {
        j->next = NULL;
        pthread_mutex_lock(&q->lock);
        if (q->tail)
                q->tail->next = j;
        else
                q->head = j;
        q->tail = j;
        pthread_cond_signal(&q->cond);
        pthread_mutex_unlock(&q->lock);
}

/* Pop one job; block when `wait`, else NULL when empty.  NULL when closed
 * and empty. */
static job_t *q_pop(queue_t *q, int wait) {
        job_t *j;

        pthread_mutex_lock(&q->lock);
        while (wait && !q->head && !q->closed)
                pthread_cond_wait(&q->cond, &q->lock);
        if ((j = q->head) && !(q->head = j->next))
                q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        return j;
}

/* Wait up to `ms` for the queue to be non-empty. */
static void q_wait(queue_t *q, int ms) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)ms * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&q->lock);
        if (!q->head && !q->closed)
                pthread_cond_timedwait(&q->cond, &q->lock, &ts);
        pthread_mutex_unlock(&q->lock);
}

static void q_close(queue_t *q) {
        pthread_mutex_lock(&q->lock);
        q->closed = 1;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
}

static void job_free(job_t *j) {
        if (!j)
                return;
        free(j->vals[P_TASK_ID]);
        free(j->vals[P_ENTITY_REF]);
        free(j->vals[P_DATASET]);
        free(j);
}

/*
 * ------------------------------------------------------------------------
 * The statement file
 * ------------------------------------------------------------------------
 */
static char *subst_schema(const char *sql) {
        const char *p;
        size_t n = strlen(sql) + 1, sl = strlen(opt.schema);
        char *out, *o;

        for (p = sql; (p = strstr(p, "{schema}")); p += 8)
                n += sl;
        if (!(o = out = malloc(n)))
                fail("%s", "out of memory");
        while ((p = strstr(sql, "{schema}"))) {
                memcpy(o, sql, (size_t)(p - sql));
                o += p - sql;
                memcpy(o, opt.schema, sl);
                o += sl;
                sql = p + 8;
        }
        strcpy(o, sql);
        return out;
}

static void load_stmts(json_t *arr, stmts_t *s, char list) {
        size_t i, k;
        json_t *st, *pn;

        if (!json_is_array(arr))
                fail("%s: statement list missing", opt.sql_file);
        s->cnt = (int)json_array_size(arr);
        if (!(s->v = calloc((size_t)s->cnt + 1, sizeof(*s->v))))
                fail("%s", "out of memory");
        json_array_foreach(arr, i, st) {
                const char *sql = json_string_value(json_object_get(st, "sql"));
                const char *nr =
                    json_string_value(json_object_get(st, "on_no_row"));
                json_t *ps = json_object_get(st, "params");

                if (!sql || !json_is_array(ps) ||
                    json_array_size(ps) > MAX_PARAMS)
                        fail("%s: bad statement entry", opt.sql_file);
                s->v[i].sql = subst_schema(sql);
                snprintf(s->v[i].name, sizeof(s->v[i].name), "%c%d", list,
                         (int)i);
                if (nr && !strcmp(nr, "skipped"))
                        s->v[i].on_no_row = OUT_SKIPPED;
                else if (nr && !strcmp(nr, "dead"))
                        s->v[i].on_no_row = OUT_DEAD;
                else if (nr)
                        fail("unknown on_no_row \"%s\" in task sql", nr);
                json_array_foreach(ps, k, pn) {
                        const char *name = json_string_value(pn);
                        int p;

                        for (p = 0; p < P__CNT; p++)
                                if (name && !strcmp(name, param_names[p]))
                                        break;
                        if (p == P__CNT)
                                fail("unknown parameter \"%s\" in task sql",
                                     name ? name : "?");
                        s->v[i].params[s->v[i].params_cnt++] = p;
                }
        }
}

static void load_sql_file(void) {
        json_error_t jerr;
        json_t *root = json_load_file(opt.sql_file, 0, &jerr);

        if (!root)
                fail("cannot read \"%s\"", opt.sql_file);
        load_stmts(json_object_get(root, "per_task"), &per_task, 't');
        load_stmts(json_object_get(root, "after_commit"), &after_commit, 'c');
        if (json_object_get(root, "after_batch"))
                load_stmts(json_object_get(root, "after_batch"), &after_batch,
                           'b');
        json_decref(root);
}

/*
 * ------------------------------------------------------------------------
 * PostgreSQL: executors and the finalizer
 * ------------------------------------------------------------------------
 */
/* Parse each statement of `s` once on `conn`: a task then costs its
 * executions, not their parse and plan. */
static void prepare(PGconn *conn, const stmts_t *s) {
        PGresult *res;
        int i;

        for (i = 0; i < s->cnt; i++) {
                res = PQprepare(conn, s->v[i].name, s->v[i].sql,
                                s->v[i].params_cnt, NULL);
                if (PQresultStatus(res) != PGRES_COMMAND_OK)
                        fail("cannot prepare a statement: %s",
                             PQresultErrorMessage(res));
                PQclear(res);
        }
}

/* A connection with the statement lists `a` and `b` prepared. */
static PGconn *pg_connect(const stmts_t *a, const stmts_t *b) {
        PGconn *conn = PQconnectdb(opt.url);

        if (PQstatus(conn) != CONNECTION_OK) {
                /* the message, not the URL: it may hold a password */
                fprintf(stderr, "bench_limit: cannot connect to postgresql: %s",
                        PQerrorMessage(conn));
                exit(1);
        }
        prepare(conn, a);
        prepare(conn, b);
        return conn;
}

static void rollback(PGconn *conn) {
        PQclear(PQexec(conn, "ROLLBACK"));
}

/* Run a statement list with the parameter values `vals` (by P_*).  The
 * outcome: OUT_DONE, a statement's on_no_row outcome (its transaction
 * rolled back), or OUT_ERROR with the error printed. */
static int run_stmts(PGconn *conn, const stmts_t *s, char *const *vals) {
        const char *pv[MAX_PARAMS];
        PGresult *res;
        int i, k, st, nrows;

        for (i = 0; i < s->cnt; i++) {
                for (k = 0; k < s->v[i].params_cnt; k++)
                        pv[k] = vals[s->v[i].params[k]];
                res = PQexecPrepared(conn, s->v[i].name, s->v[i].params_cnt, pv,
                                     NULL, NULL, 0);
                st = PQresultStatus(res);
                nrows = st == PGRES_TUPLES_OK ? PQntuples(res) : 0;
                if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                        fprintf(stderr, "bench_limit: statement %d failed: %s",
                                i, PQresultErrorMessage(res));
                        PQclear(res);
                        rollback(conn);
                        return OUT_ERROR;
                }
                PQclear(res);
                if (s->v[i].on_no_row && !nrows) {
                        rollback(conn);
                        return s->v[i].on_no_row;
                }
        }
        return OUT_DONE;
}

/* The task ids of a batch as a text[] literal (malloc'ed): {"a","b"} */
static char *task_ids_literal(const job_t *batch) {
        const job_t *j;
        const char *c;
        size_t n = 3;
        char *out, *o;

        for (j = batch; j; j = j->batch)
                n += 2 * strlen(j->vals[P_TASK_ID]) + 3;
        if (!(o = out = malloc(n)))
                fail("%s", "out of memory");
        *o++ = '{';
        for (j = batch; j; j = j->batch) {
                if (j != batch)
                        *o++ = ',';
                *o++ = '"';
                for (c = j->vals[P_TASK_ID]; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                *o++ = '\\';
                        *o++ = *c;
                }
                *o++ = '"';
        }
        strcpy(o, "}");
        return out;
}

static void *exec_main(void *arg) {
        PGconn *conn = pg_connect(&per_task, &(stmts_t){0});
        job_t *j;

        (void)arg;
        while ((j = q_pop(&jobs, 1))) {
                j->outcome = run_stmts(conn, &per_task, j->vals);
                q_push(&done, j);
        }
        PQfinish(conn);
        return NULL;
}

/* After each Kafka commit: a batch of jobs (linked by `batch`). */
static void *fin_main(void *arg) {
        PGconn *conn = pg_connect(&after_commit, &after_batch);
        char *vals[P__CNT] = {0};
        job_t *j, *batch;

        (void)arg;
        while ((batch = q_pop(&fin, 1))) {
                for (j = batch; j; j = j->batch)
                        if (run_stmts(conn, &after_commit, j->vals))
                                stop = 1;
                if (after_batch.cnt) {
                        vals[P_TASK_IDS] = task_ids_literal(batch);
                        if (run_stmts(conn, &after_batch, vals))
                                stop = 1;
                        free(vals[P_TASK_IDS]);
                }
                while ((j = batch)) {
                        batch = j->batch;
                        job_free(j);
                }
        }
        PQfinish(conn);
        return NULL;
}

/*
 * ------------------------------------------------------------------------
 * Decoding: the three leading Avro strings after the 10-byte header
 * ------------------------------------------------------------------------
 */
static int avro_long(const unsigned char **p, const unsigned char *end,
                     int64_t *v) {
        uint64_t u = 0;
        int shift = 0;

        while (*p < end && shift < 64) {
                unsigned char b = *(*p)++;
                u |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
                        return 0;
                }
                shift += 7;
        }
        return -1;
}

static char *avro_string(const unsigned char **p, const unsigned char *end) {
        int64_t n;
        char *s;

        if (avro_long(p, end, &n) || n < 0 || n > end - *p)
                return NULL;
        if (!(s = malloc((size_t)n + 1)))
                return NULL;
        memcpy(s, *p, (size_t)n);
        s[n] = '\0';
        *p += n;
        return s;
}

/* A job for a message, or NULL when the record is not a task. */
static job_t *job_from_msg(const rd_kafka_message_t *m) {
        const unsigned char *p = m->payload, *end = p + m->len;
        job_t *j;

        if (m->len < 10 || p[0] != 0xc3 || p[1] != 0x01)
                return NULL;
        p += 10;
        if (!(j = calloc(1, sizeof(*j))))
                return NULL;
        j->partition = m->partition;
        j->offset = m->offset;
        if (!(j->vals[P_TASK_ID] = avro_string(&p, end)) ||
            !(j->vals[P_ENTITY_REF] = avro_string(&p, end)) ||
            !(j->vals[P_DATASET] = avro_string(&p, end))) {
                job_free(j);
                return NULL;
        }
        return j;
}

/*
 * ------------------------------------------------------------------------
 * Kafka: partitions, the poll loop and the transaction per interval
 * ------------------------------------------------------------------------
 */
typedef struct part_s {
        job_t *head, *tail; /* fetched, not yet handed out, in order */
        int busy;           /* a task in flight */
        int queued;         /* jobs in the backlog */
        int paused;         /* paused by us (only resume what we paused) */
        int64_t commit;     /* next offset to commit, -1: none */
} part_t;

static part_t parts[MAX_PARTS];
static rd_kafka_t *rk;

/* Like drover, bound the backlog, but with hysteresis: pause a partition
 * with BACKLOG_HIGH fetched tasks waiting and resume it at BACKLOG_LOW, so
 * that the refetch after a resume (librdkafka drops what it prefetched for
 * a paused partition, and notices a resume only when its outstanding
 * long-poll Fetch returns: up to fetch.wait.max.ms) overlaps with work. */
#define BACKLOG_HIGH 256
#define BACKLOG_LOW  64

static void pause_part(int32_t p, int pause) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);

        rd_kafka_topic_partition_list_add(l, opt.topic, p);
        if (pause ? rd_kafka_pause_partitions(rk, l)
                  : rd_kafka_resume_partitions(rk, l))
                fail("%s", "cannot pause or resume a partition");
        rd_kafka_topic_partition_list_destroy(l);
        parts[p].paused = pause;
}
static job_t *pending, *pending_tail; /* completed, not yet committed */
static long pending_cnt, committed;

static void rebalance_cb(rd_kafka_t *rkc, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque) {
        (void)opaque;
        /* a single-process benchmark: plain eager assign/unassign */
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
                rd_kafka_assign(rkc, l);
        else
                rd_kafka_assign(rkc, NULL);
}

static rd_kafka_conf_t *base_conf(void) {
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        char errstr[512];
        int i;

        if (rd_kafka_conf_set(c, "bootstrap.servers", opt.brokers, errstr,
                              sizeof(errstr)))
                fail("%s", errstr);
        for (i = 0; i < opt.xprops_cnt; i++) {
                char kv[512], *eq;
                snprintf(kv, sizeof(kv), "%s", opt.xprops[i]);
                if (!(eq = strchr(kv, '=')))
                        fail("-X wants name=value, not \"%s\"", kv);
                *eq = '\0';
                if (rd_kafka_conf_set(c, kv, eq + 1, errstr, sizeof(errstr)))
                        fail("%s", errstr);
        }
        return c;
}

static rd_kafka_t *consumer_new(void) {
        rd_kafka_conf_t *c = base_conf();
        const char *kv[] = {"group.id",
                            opt.group,
                            "enable.auto.commit",
                            "false",
                            "isolation.level",
                            "read_committed",
                            "auto.offset.reset",
                            "earliest",
                            NULL};
        char errstr[512];
        rd_kafka_t *rkc;
        int i;

        for (i = 0; kv[i]; i += 2)
                if (rd_kafka_conf_set(c, kv[i], kv[i + 1], errstr,
                                      sizeof(errstr)))
                        fail("%s", errstr);
        rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
        if (!(rkc = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr))))
                fail("%s", errstr);
        rd_kafka_poll_set_consumer(rkc);
        return rkc;
}

static rd_kafka_t *producer_new(void) {
        rd_kafka_conf_t *c = base_conf();
        char errstr[512], txnid[300];
        rd_kafka_error_t *error;
        rd_kafka_t *rkp;

        snprintf(txnid, sizeof(txnid), "bench-limit-%s-%s", opt.group,
                 opt.instance);
        if (rd_kafka_conf_set(c, "transactional.id", txnid, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(c, "linger.ms", "1", errstr, sizeof(errstr)))
                fail("%s", errstr);
        if (!(rkp = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr))))
                fail("%s", errstr);
        if ((error = rd_kafka_init_transactions(rkp, 30000)))
                fail("init transactions: %s", rd_kafka_error_string(error));
        return rkp;
}

static void check_txn(rd_kafka_error_t *error, const char *what) {
        if (!error)
                return;
        fprintf(stderr, "bench_limit: %s failed: %s\n", what,
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        exit(1);
}

static void produce_status(rd_kafka_t *rkp, const job_t *j) {
        char ev[768];
        int n;

        n = snprintf(ev, sizeof(ev),
                     "{\"task_id\":\"%s\",\"dataset\":\"%s\",\"status\":"
                     "\"%s\",\"partition\":%d,\"offset\":%lld,\"worker\":"
                     "\"%s\"}",
                     j->vals[P_TASK_ID], j->vals[P_DATASET],
                     outcome_names[j->outcome], (int)j->partition,
                     (long long)j->offset, opt.instance);
        if (rd_kafka_producev(
                rkp, RD_KAFKA_V_TOPIC(status_topic),
                RD_KAFKA_V_KEY(j->vals[P_TASK_ID], strlen(j->vals[P_TASK_ID])),
                RD_KAFKA_V_VALUE(ev, (size_t)n),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
                fail("%s", "produce of a status event failed");
}

/* One transaction: the pending status events and the offsets. */
static void commit_pending(rd_kafka_t *rkp) {
        rd_kafka_topic_partition_list_t *offs;
        rd_kafka_consumer_group_metadata_t *cgmd;
        job_t *j, *next;
        int p;

        check_txn(rd_kafka_begin_transaction(rkp), "begin transaction");
        for (j = pending; j; j = j->next)
                produce_status(rkp, j);
        offs = rd_kafka_topic_partition_list_new(16);
        for (p = 0; p < MAX_PARTS; p++)
                if (parts[p].commit >= 0)
                        rd_kafka_topic_partition_list_add(offs, opt.topic, p)
                            ->offset = parts[p].commit;
        cgmd = rd_kafka_consumer_group_metadata(rk);
        check_txn(rd_kafka_send_offsets_to_transaction(rkp, offs, cgmd, -1),
                  "send offsets");
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(offs);
        check_txn(rd_kafka_commit_transaction(rkp, -1), "commit transaction");
        for (j = pending; j; j = next) {
                next = j->next;
                j->batch = next;
                committed++;
        }
        q_push(&fin, pending);
        pending = pending_tail = NULL;
        pending_cnt = 0;
}

static void take_message(rd_kafka_message_t *m) {
        job_t *j;

        if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        fprintf(stderr, "bench_limit: consumer: %s\n",
                                rd_kafka_message_errstr(m));
                return;
        }
        if (m->partition < 0 || m->partition >= MAX_PARTS)
                return;
        if (!(j = job_from_msg(m)))
                fail("%s", "a record that is not a task");
        j->vals[P_WORKER] = (char *)opt.instance;
        snprintf(j->part_str, sizeof(j->part_str), "%d", (int)j->partition);
        snprintf(j->off_str, sizeof(j->off_str), "%lld", (long long)j->offset);
        j->vals[P_PARTITION] = j->part_str;
        j->vals[P_OFFSET] = j->off_str;
        /* one plan per dataset in B1, as in drover's catalog: the
         * dataset stands in for the plan's fingerprint */
        j->vals[P_PLAN_FP] = j->vals[P_DATASET];
        j->vals[P_STEP_FP] = STEP_FP;
        if (parts[m->partition].tail)
                parts[m->partition].tail->next = j;
        else
                parts[m->partition].head = j;
        parts[m->partition].tail = j;
        if (++parts[m->partition].queued >= BACKLOG_HIGH &&
            !parts[m->partition].paused)
                pause_part(m->partition, 1);
}

/* Hand out the next task of every idle partition; collect completions.
 * Returns how many completed. */
static int dispatch_and_collect(void) {
        job_t *j;
        int p, n = 0;

        for (p = 0; p < MAX_PARTS; p++) {
                part_t *pt = &parts[p];
                if (pt->busy || !(j = pt->head))
                        continue;
                if (!(pt->head = j->next))
                        pt->tail = NULL;
                pt->busy = 1;
                if (--pt->queued <= BACKLOG_LOW && pt->paused)
                        pause_part(p, 0);
                q_push(&jobs, j);
        }
        while ((j = q_pop(&done, 0))) {
                if (j->outcome == OUT_ERROR)
                        fail("%s", "a task failed (see above)");
                parts[j->partition].busy = 0;
                parts[j->partition].commit = j->offset + 1;
                j->next = NULL;
                if (pending_tail)
                        pending_tail->next = j;
                else
                        pending = j;
                pending_tail = j;
                pending_cnt++;
                n++;
        }
        return n;
}

static void usage(void) {
        fprintf(stderr,
                "usage: bench_limit --brokers B --topic T --group G "
                "--database-url URL --sql FILE --schema S\n"
                "                   [--concurrency N] [--commit-interval-ms "
                "MS] [--instance NAME]\n"
                "                   [--exit-after N] [-X prop=value]...\n");
        exit(2);
}

static void parse_args(int argc, char **argv) {
        int i;

        for (i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!v)
                        usage();
                i++;
                if (!strcmp(a, "--brokers"))
                        opt.brokers = v;
                else if (!strcmp(a, "--topic"))
                        opt.topic = v;
                else if (!strcmp(a, "--group"))
                        opt.group = v;
                else if (!strcmp(a, "--database-url"))
                        opt.url = v;
                else if (!strcmp(a, "--sql"))
                        opt.sql_file = v;
                else if (!strcmp(a, "--schema"))
                        opt.schema = v;
                else if (!strcmp(a, "--instance"))
                        opt.instance = v;
                else if (!strcmp(a, "--concurrency"))
                        opt.concurrency = atoi(v);
                else if (!strcmp(a, "--commit-interval-ms"))
                        opt.interval_ms = atoi(v);
                else if (!strcmp(a, "--exit-after"))
                        opt.exit_after = atol(v);
                else if (!strcmp(a, "-X") && opt.xprops_cnt < 64)
                        opt.xprops[opt.xprops_cnt++] = v;
                else
                        usage();
        }
        if (!opt.brokers || !opt.topic || !opt.group || !opt.url ||
            !opt.sql_file || !opt.schema || opt.concurrency < 1 ||
            opt.concurrency > 256 || opt.interval_ms < 0)
                usage();
        if (strspn(opt.schema, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
                strlen(opt.schema) ||
            !*opt.schema)
                fail("schema \"%s\" is not a plain lower-case identifier",
                     opt.schema);
}

int main(int argc, char **argv) {
        pthread_t *th, fth;
        rd_kafka_topic_partition_list_t *sub;
        rd_kafka_t *rkp;
        int64_t last = mono_ms();
        int i;

        parse_args(argc, argv);
        snprintf(status_topic, sizeof(status_topic), "%s.status", opt.topic);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        load_sql_file();
        for (i = 0; i < MAX_PARTS; i++)
                parts[i].commit = -1;
        q_init(&jobs), q_init(&done), q_init(&fin);
        if (!(th = calloc((size_t)opt.concurrency, sizeof(*th))))
                fail("%s", "out of memory");
        for (i = 0; i < opt.concurrency; i++)
                pthread_create(&th[i], NULL, exec_main, NULL);
        pthread_create(&fth, NULL, fin_main, NULL);
        rkp = producer_new();
        rk = consumer_new();
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, opt.topic,
                                          RD_KAFKA_PARTITION_UA);
        if (rd_kafka_subscribe(rk, sub))
                fail("cannot subscribe to \"%s\"", opt.topic);
        rd_kafka_topic_partition_list_destroy(sub);
        while (!stop && (!opt.exit_after || committed < opt.exit_after)) {
                /* never block in poll while completions wait: the done
                 * queue, not the consumer, is what wakes us when idle */
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 0);
                if (m) {
                        take_message(m);
                        rd_kafka_message_destroy(m);
                }
                if (!dispatch_and_collect() && !m)
                        q_wait(&done, 2);
                if (mono_ms() - last >= opt.interval_ms) {
                        if (pending_cnt)
                                commit_pending(rkp);
                        last = mono_ms();
                }
        }
        if (pending_cnt)
                commit_pending(rkp);
        q_close(&jobs);
        for (i = 0; i < opt.concurrency; i++)
                pthread_join(th[i], NULL);
        q_close(&fin);
        pthread_join(fth, NULL);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        rd_kafka_destroy(rkp);
        free(th);
        fprintf(stderr, "bench_limit: %ld tasks committed\n", committed);
        return 0;
}
