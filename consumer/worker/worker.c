/*
 * drover - consumer/worker/worker.c: the poll loop.
 *
 * The poll thread keeps calling rd_kafka_consumer_poll with a short
 * timeout (so max.poll.interval.ms is never exceeded, however long a task
 * runs) and, between polls: puts fetched tasks in their partition's window
 * (partition.c), hands ready ones to free executors (tasks of one dataset
 * one at a time, in offset order; different datasets at once), collects
 * outcomes, commits a batch of outcomes once per commit interval, probes
 * the database while it is down, and drains on SIGTERM.
 */
#include "worker_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLL_MS 20
/* a fetched task waiting this long shows `queued`; looked at this often */
#define QUEUED_AFTER_MS 1000
#define QUEUED_EVERY_MS 250
#define DB_PROBE_MS     2000
#define READY_EVERY_MS  1000

static volatile sig_atomic_t signals_seen;

static void on_signal(int sig) {
        if (signals_seen++ > 0)
                _exit(128 + sig); /* a second signal: exit at once */
}

int drv_worker_signalled(void) {
        return signals_seen > 0;
}

/*
 * ------------------------------------------------------------------------
 * Partitions (their state: partition.c)
 * ------------------------------------------------------------------------
 */
static void job_free(void *job) {
        drv_job_destroy(job);
}

drv_part_t *drv_worker_part(drv_worker_t *w, int32_t partition) {
        drv_part_t *np;
        int n, i;

        if (partition < 0 || partition > 100000)
                return NULL;
        if (partition >= w->parts_cnt) {
                n = partition + 16;
                if (!(np = realloc(w->parts, (size_t)n * sizeof(*np))))
                        return NULL;
                for (i = w->parts_cnt; i < n; i++)
                        drv_pt_init(&np[i], i, job_free);
                w->parts = np;
                w->parts_cnt = n;
        }
        return &w->parts[partition];
}

int drv_worker_owned(const drv_part_t *p) {
        return p && p->state != DRV_PS_UNASSIGNED;
}

static void pause_resume(drv_worker_t *w, int32_t partition, int pause) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_resp_err_t err;

        rd_kafka_topic_partition_list_add(l, w->conf->topic, partition);
        err = pause ? rd_kafka_pause_partitions(w->rk, l)
                    : rd_kafka_resume_partitions(w->rk, l);
        if (err || l->elems[0].err)
                drv_log(DRV_LOG_WARN, "cannot %s partition %d: %s",
                        pause ? "pause" : "resume", (int)partition,
                        rd_kafka_err2str(err ? err : l->elems[0].err));
        rd_kafka_topic_partition_list_destroy(l);
}

void drv_worker_pause(drv_worker_t *w, int32_t partition) {
        drv_part_t *p = drv_worker_part(w, partition);

        if (!p || p->paused)
                return;
        pause_resume(w, partition, 1);
        drv_pt_set_paused(p, 1);
}

void drv_worker_resume(drv_worker_t *w, int32_t partition) {
        drv_part_t *p = drv_worker_part(w, partition);

        /* only resume what we paused (librdkafka #4686) */
        if (!p || !p->paused)
                return;
        pause_resume(w, partition, 0);
        drv_pt_set_paused(p, 0);
}

/* A partition is paused only while its window is full (memory and the
 * metadata bound), and resumed once it is half empty, so the refetch
 * overlaps the work.  Pausing on every task made librdkafka drop what it
 * had prefetched and cost one commit interval plus one fetch long-poll
 * per task (bench B1). */
void drv_worker_sync_fetch(drv_worker_t *w, int32_t partition) {
        drv_part_t *p = drv_worker_part(w, partition);

        if (!drv_worker_owned(p))
                return;
        if (w->stopping || w->db_down || !drv_pt_fetch_wanted(p, &w->window))
                drv_worker_pause(w, partition);
        else
                drv_worker_resume(w, partition);
}

void drv_worker_unqueue(drv_worker_t *w, int32_t partition) {
        drv_job_t *j, *next;

        /* its tasks that no executor has started yet: their outcomes would
         * be dropped by the epoch, and a task started after the partition
         * moved would write task_runs behind its new owner's back (a
         * revoked task started 1.6 s later, after the new owner had
         * committed it, and its pending `skipped` overwrote the committed
         * `done`: chaos batch G run 5, wrong=6) */
        for (j = drv_jobq_take_partition(&w->jobs, partition); j; j = next) {
                next = j->next;
                w->inflight--;
                drv_job_destroy(j);
        }
        drv_metrics_set_inflight(w->inflight);
}

/*
 * ------------------------------------------------------------------------
 * Scheduling: ordering by dataset, concurrency by executor.  Any ready
 * record of any partition may run (partition.c says which are ready: the
 * oldest unfinished task of each dataset); a crash or an aborted commit
 * redelivers every task at or after the committed offset that the commit
 * metadata does not name, and the ledger makes those idempotent.
 * ------------------------------------------------------------------------
 */
static int cand_cmp(const void *a, const void *b) {
        const drv_pt_cand_t *x = a, *y = b;

        if (x->priority != y->priority)
                return x->priority > y->priority ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

#define CAND_MAX 4096

void drv_worker_schedule(drv_worker_t *w) {
        static drv_pt_cand_t cand[CAND_MAX]; /* poll thread only */
        int64_t now = drv_mono_ms();
        size_t n = 0, k;
        int i, free_slots = w->conf->concurrency - w->inflight;

        if (free_slots <= 0 || w->stopping || w->db_down)
                return;
        /* a partition without priorities offers its oldest ready records
         * only: no more than could run now */
        for (i = 0; i < w->parts_cnt && n < CAND_MAX; i++) {
                size_t max = CAND_MAX - n;
                if (!w->parts[i].prio_cnt && max > (size_t)free_slots)
                        max = (size_t)free_slots;
                n += drv_pt_ready(&w->parts[i], now, cand + n, max);
        }
        if (n == 0)
                return;
        if (n > (size_t)free_slots)
                qsort(cand, n, sizeof(*cand), cand_cmp);
        for (k = 0; k < n && free_slots > 0; k++) {
                drv_part_t *p = &w->parts[cand[k].pn];
                drv_job_t *job = drv_pt_dispatch(p, cand[k].offset);
                if (!job)
                        continue;
                job->epoch = p->epoch;
                w->inflight++;
                free_slots--;
                drv_jobq_push(&w->jobs, job);
        }
        drv_metrics_set_inflight(w->inflight);
}

/* Decode a task here when that needs no I/O (its priority orders the
 * dispatch); else, or when it does not decode, the executor does. */
static void peek_task(drv_worker_t *w, drv_job_t *job) {
        char errstr[256];

        if (drv_task_decode_cached(w->store, job->msg->payload, job->msg->len,
                                   &job->task, errstr, sizeof(errstr)))
                job->task = NULL;
}

/* A fetched task that waits shows `queued` (DESIGN section 8): a copy
 * for the finalizer (flush_queued), which writes them in one statement;
 * a task with a row already (a replay) keeps it. */
static void note_queued(drv_worker_t *w, const drv_job_t *job) {
        const drv_task_t *t = job->task;
        drv_job_t *q;

        if (!w->pool || !t || !t->task_id || !(q = calloc(1, sizeof(*q))))
                return;
        q->queued = 1;
        q->partition = job->partition;
        q->offset = job->offset;
        q->epoch = drv_worker_part(w, job->partition)->epoch;
        q->started_ms = job->started_ms;
        if (!(q->task = drv_task_new()) ||
            !(q->task->task_id = strdup(t->task_id)) ||
            (t->entity_ref && !(q->task->entity_ref = strdup(t->entity_ref))) ||
            (t->dataset && !(q->task->dataset = strdup(t->dataset)))) {
                drv_job_destroy(q);
                return;
        }
        q->next = w->queued;
        w->queued = q;
}

/* Hand the finalizer the `queued` rows of tasks that have waited at
 * least QUEUED_AFTER_MS and still wait; tasks that started meanwhile get
 * none.  A row inserted while the task's own run transaction writes it
 * made one wait for the other: written for every task it cost B1 about
 * a third of its rate. */
static void flush_queued(drv_worker_t *w, int64_t now) {
        drv_job_t *q, *next, *keep = NULL, *ready = NULL;

        for (q = w->queued; q; q = next) {
                drv_part_t *p = drv_worker_part(w, q->partition);
                next = q->next;
                if (!p || p->epoch != q->epoch ||
                    !drv_pt_waiting(p, q->offset)) {
                        drv_job_destroy(q);
                } else if (now - q->started_ms >= QUEUED_AFTER_MS) {
                        q->next = ready;
                        ready = q;
                } else {
                        q->next = keep;
                        keep = q;
                }
        }
        w->queued = keep;
        if (ready)
                drv_pool_queued(w->pool, ready);
}

static void on_message(drv_worker_t *w, rd_kafka_message_t *m) {
        drv_part_t *p;
        drv_job_t *job;
        int32_t prio;

        if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
                drv_worker_offset_reset(w, m->partition, m->offset);
                rd_kafka_message_destroy(m);
                return;
        }
        if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                /* the consumer's fatal errors come here, not to error_cb:
                 * a static member fenced by a newer process with its
                 * instance (FENCED_INSTANCE_ID) exits 70, not spins */
                drv_log(DRV_LOG_ERROR, "kafka fatal error: %s",
                        rd_kafka_message_errstr(m));
                w->fatal = 1;
                rd_kafka_message_destroy(m);
                return;
        }
        if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        drv_log(DRV_LOG_WARN, "consumer: %s",
                                rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                return;
        }
        p = drv_worker_part(w, m->partition);
        /* not ours any more, or stopping: left for the next owner */
        if (!drv_worker_owned(p) || w->stopping) {
                rd_kafka_message_destroy(m);
                return;
        }
        if (!(job = calloc(1, sizeof(*job)))) {
                drv_log(DRV_LOG_ERROR, "out of memory");
                w->fatal = 1;
                rd_kafka_message_destroy(m);
                return;
        }
        job->msg = m;
        job->partition = m->partition;
        job->offset = m->offset;
        job->started_ms = drv_mono_ms();
        peek_task(w, job);
        prio = job->task ? job->task->priority : 0;
        /* 1: dropped (a refetch of one seen, or final per the metadata);
         * then the job and its message are freed: m is not read after */
        switch (drv_pt_fetched(p, m->offset,
                               drv_pt_key_hash(m->key, m->key_len), m->len,
                               prio, ++w->seq, job)) {
        case 0:
                note_queued(w, job);
                break;
        case -1: /* not ours: checked above */
                drv_job_destroy(job);
                break;
        case -2:
                drv_log(DRV_LOG_ERROR, "out of memory");
                w->fatal = 1;
                return;
        default:
                break;
        }
        drv_worker_sync_fetch(w, p->pn);
}

/*
 * ------------------------------------------------------------------------
 * Outcomes, retries, the database
 * ------------------------------------------------------------------------
 */
static void set_db_down(drv_worker_t *w) {
        int i;

        if (w->db_down)
                return;
        drv_log(DRV_LOG_WARN, "database unreachable: pausing all partitions");
        w->db_down = 1;
        w->next_db_probe = drv_mono_ms() + DB_PROBE_MS;
        for (i = 0; i < w->parts_cnt; i++)
                drv_worker_sync_fetch(w, i);
}

static void on_outcome(drv_worker_t *w, drv_job_t *job) {
        drv_part_t *p = drv_worker_part(w, job->partition);

        w->inflight--;
        if (!drv_worker_owned(p) || p->epoch != job->epoch ||
            atomic_load(&w->cancel)) {
                drv_log(DRV_LOG_INFO,
                        "dropping outcome of partition %d offset %lld "
                        "(no longer ours)",
                        (int)job->partition, (long long)job->offset);
                drv_job_destroy(job);
                return;
        }
        switch (job->outcome) {
        case DRV_OUT_RETRY:
                drv_metrics_task("retry", 0);
                drv_pt_retry(p, job->offset, drv_mono_ms() + job->backoff_ms,
                             job);
                return;
        case DRV_OUT_DB_DOWN:
                drv_pt_retry(p, job->offset, 0, job);
                set_db_down(w);
                return;
        default:
                break;
        }
        if (drv_pt_final(p, job->offset)) {
                drv_job_destroy(job);
                return;
        }
        /* its outcome waits for the next commit */
        job->next = NULL;
        if (w->pending_tail)
                w->pending_tail->next = job;
        else
                w->pending = job;
        w->pending_tail = job;
}

static void probe_db(drv_worker_t *w) {
        char errstr[256];
        PGconn *conn = NULL;
        int i;

        if (!w->db_down || drv_mono_ms() < w->next_db_probe)
                return;
        if (drv_db_connect(w->conf->database_url, &conn, errstr,
                           sizeof(errstr))) {
                w->next_db_probe = drv_mono_ms() + DB_PROBE_MS;
                drv_log(DRV_LOG_WARN, "database still unreachable: %s", errstr);
                return;
        }
        PQfinish(conn);
        drv_log(DRV_LOG_INFO, "database reachable again: resuming");
        w->db_down = 0;
        for (i = 0; i < w->parts_cnt; i++) {
                drv_pt_db_back(&w->parts[i], drv_mono_ms());
                drv_worker_sync_fetch(w, i);
        }
}

/*
 * ------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------
 */
static void drain_outcomes(drv_worker_t *w) {
        drv_job_t *job = drv_jobq_take_all(&w->outcomes), *next;

        for (; job; job = next) {
                next = job->next;
                on_outcome(w, job);
        }
        drv_metrics_set_inflight(w->inflight);
}

/* SIGTERM: stop fetching and dispatching; what has not started stays in
 * its window, uncommitted, for the next owner. */
static void begin_stop(drv_worker_t *w) {
        drv_job_t *job, *next;
        int i;

        drv_log(DRV_LOG_INFO, "stopping: draining %d task(s) in flight",
                w->inflight);
        w->stopping = 1;
        for (job = drv_jobq_take_all(&w->jobs); job; job = next) {
                drv_part_t *p = drv_worker_part(w, job->partition);
                next = job->next;
                job->next = NULL;
                w->inflight--;
                if (!p || p->epoch != job->epoch ||
                    drv_pt_undispatch(p, job->offset, job))
                        drv_job_destroy(job);
        }
        for (i = 0; i < w->parts_cnt; i++)
                drv_worker_sync_fetch(w, i);
}

static void tick(drv_worker_t *w) {
        int64_t now = drv_mono_ms();

        drain_outcomes(w);
        probe_db(w);
        drv_worker_start_tick(w);
        drv_worker_restart_tick(w);
        drv_worker_lag_tick(w);
        if (w->queued && now >= w->next_queued) {
                flush_queued(w, now);
                w->next_queued = now + QUEUED_EVERY_MS;
        }
        if (now >= w->next_commit &&
            (w->pending || drv_worker_advance_due(w, now))) {
                drv_worker_commit(w);
                w->next_commit = now + w->conf->commit_interval_ms;
        }
        if (now >= w->next_ready) {
                int i, paused = 0;
                for (i = 0; i < w->parts_cnt; i++)
                        paused += drv_worker_owned(&w->parts[i]) &&
                                  w->parts[i].paused;
                drv_metrics_set_paused(paused);
                drv_admin_set_ready(w->assigned_cnt > 0, !w->db_down);
                w->next_ready = now + READY_EVERY_MS;
        }
        drv_worker_schedule(w);
        rd_kafka_poll(w->rkp, 0);
}

static void install_signals(void) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

/* librdkafka 2.0.2 aborts (assertion in the sticky assignor, #4381,
 * fixed in 2.3.0) when a cooperative-sticky consumer that never received
 * an assignment is closed or destroyed.  Such a worker holds nothing: no
 * partition, no task, no open transaction.  So it leaves without closing:
 * the handle is kept (reachable, for leak checkers) until the process
 * exits, and the coordinator drops the member after session.timeout.ms. */
static rd_kafka_t *abandoned_rk;

static void abandon_consumer(drv_worker_t *w) {
        drv_log(DRV_LOG_INFO, "stopping before the first assignment: "
                              "leaving the group by session timeout");
        abandoned_rk = w->rk;
        w->rk = NULL;
}

int drv_worker_run(drv_worker_t *w, char *errstr, size_t errstr_size) {
        rd_kafka_message_t *m;
        int64_t deadline = 0;

        drv_log(DRV_LOG_INFO, "worker %s joining group \"%s\" on \"%s\"%s",
                w->conf->instance, w->conf->group, w->conf->topic,
                w->conf->static_member ? " as a static member" : "");
        while (!w->fatal) {
                if (signals_seen && !w->stopping) {
                        begin_stop(w);
                        deadline = drv_mono_ms() + w->conf->drain_timeout_ms;
                }
                if (w->stopping && w->inflight == 0 && !w->pending)
                        break;
                if (w->stopping && drv_mono_ms() >= deadline) {
                        drv_log(DRV_LOG_WARN,
                                "drain deadline passed with %d task(s) in "
                                "flight: abandoning them",
                                w->inflight);
                        atomic_store(&w->cancel, 1);
                        break;
                }
                if ((m = rd_kafka_consumer_poll(w->rk, POLL_MS)))
                        on_message(w, m);
                tick(w);
        }
        if (w->fatal) {
                snprintf(errstr, errstr_size,
                         "kafka client state is fatal (see log): "
                         "exiting");
                return DRV_EXIT_SOFTWARE;
        }
        drain_outcomes(w);
        drv_worker_commit(w);
        if (!w->ever_assigned &&
            !strcmp(w->conf->assignment_strategy, "cooperative-sticky")) {
                abandon_consumer(w);
                return w->fatal ? DRV_EXIT_SOFTWARE : DRV_EXIT_OK;
        }
        drv_log(DRV_LOG_INFO, "leaving the group");
        rd_kafka_consumer_close(w->rk);
        drv_worker_commit(w);
        return w->fatal ? DRV_EXIT_SOFTWARE : DRV_EXIT_OK;
}

/*
 * ------------------------------------------------------------------------
 * Construction
 * ------------------------------------------------------------------------
 */
static drv_err_t setup_db(drv_worker_t *w, char *errstr, size_t errstr_size) {
        PGconn *conn = NULL;
        drv_err_t err;

        if ((err = drv_db_connect(w->conf->database_url, &conn, errstr,
                                  errstr_size)))
                return err;
        err = drv_db_migrate(conn, errstr, errstr_size);
        PQfinish(conn);
        return err;
}

static drv_err_t setup_deps(drv_worker_t *w, char *errstr, size_t errstr_size) {
        drv_schema_conf_t sc = {0};
        drv_catalog_conf_t cc = {0};

        sc.registry_url = w->conf->registry_url;
        if (!(w->store = drv_schema_store_new(&sc, errstr, errstr_size)))
                return DRV_ERR_CONFIG;
        cc.dir = w->conf->catalog_dir;
        cc.backstage_url = w->conf->backstage_url;
        cc.backstage_token = w->conf->backstage_token;
        if (!(w->catalog = drv_catalog_new(&cc, errstr, errstr_size)))
                return DRV_ERR_CONFIG;
        return setup_db(w, errstr, errstr_size);
}

/* An executor queued an outcome: cut the poll thread's
 * rd_kafka_consumer_poll short, so the partition's next task starts now
 * rather than when the poll times out (bench B1: 10 ms per task). */
static void wake_poll(void *opaque) {
        drv_worker_t *w = opaque;
        rd_kafka_queue_yield(w->wakeq);
}

static drv_err_t setup_threads(drv_worker_t *w, char *errstr,
                               size_t errstr_size) {
        drv_pool_conf_t pc = {w->conf,  w->store,     w->catalog,
                              &w->jobs, &w->outcomes, &w->cancel};
        drv_admin_conf_t ac = {0};

        if (!(w->wakeq = rd_kafka_queue_get_consumer(w->rk)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INTERNAL,
                                   "cannot get the consumer queue");
        w->outcomes.wake_opaque = w;
        w->outcomes.wake = wake_poll;
        if (!(w->pool = drv_pool_start(&pc, errstr, errstr_size)))
                return DRV_ERR_INTERNAL;
        if (!w->conf->http_listen[0])
                return DRV_OK;
        ac.listen = w->conf->http_listen;
        ac.token = w->conf->admin_token;
        ac.database_url = w->conf->database_url;
        ac.brokers = w->conf->brokers;
        ac.topic = w->conf->topic;
        ac.store = w->store;
        ac.catalog = w->catalog;
        if (!(w->admin = drv_admin_start(&ac, errstr, errstr_size)))
                return DRV_ERR_CONFIG;
        drv_log(DRV_LOG_INFO, "status page at http://%s/",
                w->conf->http_listen);
        return DRV_OK;
}

drv_worker_t *drv_worker_new(drv_config_t *conf, drv_err_t *errp, char *errstr,
                             size_t errstr_size) {
        drv_worker_t *w = calloc(1, sizeof(*w));
        drv_err_t err;

        /* before the Kafka clients, the database and the catalog: a
         * SIGTERM while they come up (a second or more with a large
         * catalog or a slow machine) is a clean stop, not a kill */
        install_signals();
        if (!w) {
                *errp = drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                    "out of memory");
                return NULL;
        }
        w->conf = conf;
        w->window.records = (size_t)conf->window_records;
        w->window.bytes = (size_t)conf->window_bytes;
        drv_jobq_init(&w->jobs);
        drv_jobq_init(&w->outcomes);
        if ((err = setup_deps(w, errstr, errstr_size)) ||
            (err = drv_worker_kafka_new(w, errstr, errstr_size)) ||
            (err = setup_threads(w, errstr, errstr_size))) {
                *errp = err;
                drv_worker_destroy(w);
                return NULL;
        }
        *errp = DRV_OK;
        return w;
}

void drv_worker_destroy(drv_worker_t *w) {
        drv_job_t *j, *next;
        int i;

        if (!w)
                return;
        drv_admin_stop(w->admin);
        if (drv_pool_stop(w->pool, 3000))
                return; /* executors still running: the process exits */
        for (j = w->pending; j; j = next) {
                next = j->next;
                drv_job_destroy(j);
        }
        w->pending = w->pending_tail = NULL;
        for (j = w->queued; j; j = next) {
                next = j->next;
                drv_job_destroy(j);
        }
        w->queued = NULL;
        w->outcomes.wake = NULL; /* no executor left to call it */
        if (w->wakeq)
                rd_kafka_queue_destroy(w->wakeq);
        /* closing the consumer may call the rebalance callback, which
         * still needs the partition table */
        if (w->rk)
                rd_kafka_destroy(w->rk);
        for (i = 0; i < w->parts_cnt; i++)
                drv_pt_fini(&w->parts[i]);
        free(w->parts);
        if (w->cgmd)
                rd_kafka_consumer_group_metadata_destroy(w->cgmd);
        if (w->rkp)
                rd_kafka_destroy(w->rkp);
        drv_catalog_destroy(w->catalog);
        drv_schema_store_destroy(w->store);
        drv_jobq_fini(&w->jobs);
        drv_jobq_fini(&w->outcomes);
        free(w);
}
