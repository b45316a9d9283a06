/*
 * drover - consumer/admin/admin_kafka.c: the admin server's own idempotent
 * producer, for POST /api/tasks.
 *
 * A request thread produces one record and waits for its delivery report
 * (bounded by message.timeout.ms), so a 202 means the task is on the
 * broker.  A dedicated thread serves the producer's poll queue; the
 * waiting request and the delivery callback share a reference-counted
 * pending slot, so a request that gives up never leaves the callback a
 * dangling pointer.
 *
 * An idempotent producer can die of a fatal error (librdkafka 2.0.2: a
 * sequence desynchronization after a broker is hard-killed; the chaos
 * test's own producer met it).  The request that finds the producer dead
 * replaces it with a new one, so submissions fail only while it happens,
 * not until the worker restarts.  Each producer is reference-counted: the
 * current one, and every request still waiting on it.
 */
#include "admin_kafka.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUBMIT_TIMEOUT_MS 5000

typedef struct producer_s {
        rd_kafka_t *rkp;
        pthread_t thread; /* serves rkp's poll queue */
        int stop;
        int refs; /* under ak->lock: ak->cur, and each request using it */
} producer_t;

struct drv_admin_kafka_s {
        producer_t *cur; /* under lock */
        char *topic;
        char *brokers;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int replaced; /* under lock: producers replaced after a fatal error */
};

typedef struct pending_s {
        int done;
        int refs;
        rd_kafka_resp_err_t err;
} pending_t;

/* Drop one reference to p.  Called with ak->lock held. */
static void pending_unref(pending_t *p) {
        if (--p->refs == 0)
                free(p);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                      void *opaque) {
        drv_admin_kafka_t *ak = opaque;
        pending_t *p = msg->_private;

        if (!p)
                return;
        pthread_mutex_lock(&ak->lock);
        p->err = msg->err;
        p->done = 1;
        pthread_cond_broadcast(&ak->cond);
        pending_unref(p);
        pthread_mutex_unlock(&ak->lock);
}

static void *poll_main(void *arg) {
        producer_t *pr = arg;

        while (!__atomic_load_n(&pr->stop, __ATOMIC_ACQUIRE))
                rd_kafka_poll(pr->rkp, 100);
        return NULL;
}

static rd_kafka_conf_t *producer_conf(drv_admin_kafka_t *ak, char *errstr,
                                      size_t errstr_size) {
        static const char *kv[][2] = {
            {"enable.idempotence", "true"},
            {"message.timeout.ms", "5000"},
            {"socket.connection.setup.timeout.ms", "3000"},
            {"linger.ms", "1"},
        };
        rd_kafka_conf_t *conf;
        char kerr[256];
        size_t i;

        if (!(conf = drv_kafka_conf_new(ak->brokers, "drover-admin", errstr,
                                        errstr_size)))
                return NULL;
        for (i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
                if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], kerr,
                                      sizeof(kerr)) != RD_KAFKA_CONF_OK)
                        goto err;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        rd_kafka_conf_set_opaque(conf, ak);
        return conf;
err:
        drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                    "cannot configure the admin producer: %s", kerr);
        rd_kafka_conf_destroy(conf);
        return NULL;
}

/* A producer and its poll thread (one reference), or NULL and errstr. */
static producer_t *producer_new(drv_admin_kafka_t *ak, char *errstr,
                                size_t errstr_size) {
        producer_t *pr = calloc(1, sizeof(*pr));
        rd_kafka_conf_t *conf;
        char kerr[256];

        if (!pr) {
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory");
                return NULL;
        }
        if (!(conf = producer_conf(ak, errstr, errstr_size))) {
                free(pr);
                return NULL;
        }
        if (!(pr->rkp =
                  rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr)))) {
                rd_kafka_conf_destroy(conf);
                drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                            "cannot create the admin producer: %s", kerr);
                free(pr);
                return NULL;
        }
        /* conf is now owned by rkp */
        if (pthread_create(&pr->thread, NULL, poll_main, pr)) {
                drv_err_set(errstr, errstr_size, DRV_ERR_INTERNAL,
                            "cannot start the admin producer thread");
                rd_kafka_destroy(pr->rkp);
                free(pr);
                return NULL;
        }
        pr->refs = 1;
        return pr;
}

/* Stop and free pr; not under ak->lock (purged reports take it). */
static void producer_destroy(producer_t *pr) {
        if (!pr)
                return;
        /* flush first: delivery reports still need the poll thread */
        rd_kafka_flush(pr->rkp, 2000);
        __atomic_store_n(&pr->stop, 1, __ATOMIC_RELEASE);
        pthread_join(pr->thread, NULL);
        rd_kafka_purge(pr->rkp,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(pr->rkp, 0); /* serve the purged reports */
        rd_kafka_destroy(pr->rkp);
        free(pr);
}

/* Drop a reference (under ak->lock); returns pr when it is the last, for
 * producer_destroy outside the lock. */
static producer_t *producer_unref(producer_t *pr) {
        return --pr->refs == 0 ? pr : NULL;
}

drv_admin_kafka_t *drv_admin_kafka_new(const char *brokers, const char *topic,
                                       char *errstr, size_t errstr_size) {
        drv_admin_kafka_t *ak = calloc(1, sizeof(*ak));

        if (!ak || !(ak->topic = strdup(topic)) ||
            !(ak->brokers = strdup(brokers))) {
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory");
                goto err;
        }
        pthread_mutex_init(&ak->lock, NULL);
        pthread_cond_init(&ak->cond, NULL);
        if ((ak->cur = producer_new(ak, errstr, errstr_size)))
                return ak;
        pthread_mutex_destroy(&ak->lock);
        pthread_cond_destroy(&ak->cond);
err:
        if (ak) {
                free(ak->topic);
                free(ak->brokers);
                free(ak);
        }
        return NULL;
}

void drv_admin_kafka_destroy(drv_admin_kafka_t *ak) {
        if (!ak)
                return;
        producer_destroy(ak->cur); /* no request is running any more */
        pthread_mutex_destroy(&ak->lock);
        pthread_cond_destroy(&ak->cond);
        free(ak->topic);
        free(ak->brokers);
        free(ak);
}

/* The current producer, with a reference for the caller; when it has hit
 * a fatal error, a new one first.  NULL and errstr when none can be made. */
static producer_t *producer_get(drv_admin_kafka_t *ak, char *errstr,
                                size_t errstr_size) {
        producer_t *pr, *fresh, *drop = NULL;
        char why[256];

        pthread_mutex_lock(&ak->lock);
        pr = ak->cur;
        if (!rd_kafka_fatal_error(pr->rkp, why, sizeof(why))) {
                pr->refs++;
                pthread_mutex_unlock(&ak->lock);
                return pr;
        }
        pthread_mutex_unlock(&ak->lock);
        fresh = producer_new(ak, errstr, errstr_size); /* not under lock */
        pthread_mutex_lock(&ak->lock);
        if (fresh && ak->cur == pr) {
                drv_log(DRV_LOG_WARN,
                        "admin producer: fatal kafka error (%s); replaced by "
                        "a new producer",
                        why);
                drop = producer_unref(pr);
                ak->cur = fresh;
                ak->replaced++;
                fresh = NULL;
        }
        pr = ak->cur == pr ? NULL : ak->cur; /* NULL: could not replace it */
        if (pr)
                pr->refs++;
        pthread_mutex_unlock(&ak->lock);
        producer_destroy(drop);
        producer_destroy(fresh); /* another request replaced it first */
        return pr;
}

rd_kafka_t *drv_admin_kafka_handle(drv_admin_kafka_t *ak, int *replacedp) {
        rd_kafka_t *rk;

        pthread_mutex_lock(&ak->lock);
        rk = ak->cur->rkp;
        if (replacedp)
                *replacedp = ak->replaced;
        pthread_mutex_unlock(&ak->lock);
        return rk;
}

/* Wait for p->done until `deadline`.  Called with ak->lock held. */
static void wait_done(drv_admin_kafka_t *ak, pending_t *p,
                      const struct timespec *deadline) {
        while (!p->done)
                if (pthread_cond_timedwait(&ak->cond, &ak->lock, deadline) ==
                    ETIMEDOUT)
                        break;
}

drv_err_t drv_admin_kafka_produce(drv_admin_kafka_t *ak, const char *key,
                                  const void *value, size_t len, char *errstr,
                                  size_t errstr_size) {
        pending_t *p;
        producer_t *pr, *drop;
        rd_kafka_resp_err_t err;
        struct timespec deadline;

        if (!(pr = producer_get(ak, errstr, errstr_size)))
                return DRV_ERR_KAFKA_RETRIABLE;
        if (!(p = calloc(1, sizeof(*p)))) {
                err = RD_KAFKA_RESP_ERR__FAIL;
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory");
                goto out;
        }
        p->refs = 2; /* this request + the delivery report */
        err = rd_kafka_producev(pr->rkp, RD_KAFKA_V_TOPIC(ak->topic),
                                RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                                RD_KAFKA_V_VALUE((void *)value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
        if (err) {
                free(p);
                drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "cannot produce to \"%s\": %s", ak->topic,
                            rd_kafka_err2str(err));
                goto out;
        }
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += (SUBMIT_TIMEOUT_MS + 2000) / 1000;
        pthread_mutex_lock(&ak->lock);
        wait_done(ak, p, &deadline);
        err = p->done ? p->err : RD_KAFKA_RESP_ERR__TIMED_OUT;
        pending_unref(p);
        pthread_mutex_unlock(&ak->lock);
        if (err)
                drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "cannot reach kafka at %s: %s", ak->brokers,
                            rd_kafka_err2str(err));
out:
        pthread_mutex_lock(&ak->lock);
        drop = producer_unref(pr);
        pthread_mutex_unlock(&ak->lock);
        producer_destroy(drop);
        return err ? DRV_ERR_KAFKA_RETRIABLE : DRV_OK;
}
