/*
 * drover - consumer/admin/admin_watch.c: the socket watchdog of the admin
 * server (see admin_watch.h and docs/decisions.md, "Admin server: slow
 * clients and a hung database").
 */
#include "admin_watch.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

typedef enum watch_state_e {
        WATCH_READING, /* a client to deliver a request by the deadline */
        WATCH_BUSY,    /* a client being answered: no deadline */
        WATCH_FD,      /* a database socket with a deadline */
        WATCH_FIRED,   /* shut down */
} watch_state_t;

struct drv_admin_watch_entry_s {
        drv_admin_watch_entry_t *prev, *next;
        int fd;
        watch_state_t state;
        int64_t since;    /* WATCH_READING: when it started reading */
        int64_t deadline; /* WATCH_READING, WATCH_FD */
};

struct drv_admin_watch_s {
        pthread_mutex_t lock;
        pthread_cond_t cond; /* an entry or `stop` changed */
        pthread_t thread;
        int stop;
        int reading_max, read_timeout_ms;
        int reading; /* entries in WATCH_READING */
        drv_admin_watch_entry_t *head;
};

/* Shut e's socket down (lock held). */
static void watch_fire(drv_admin_watch_t *aw, drv_admin_watch_entry_t *e) {
        if (e->state == WATCH_READING)
                aw->reading--;
        e->state = WATCH_FIRED;
        shutdown(e->fd, SHUT_RDWR);
}

/* Set e's state (lock held), keeping `reading` right. */
static void watch_set(drv_admin_watch_t *aw, drv_admin_watch_entry_t *e,
                      watch_state_t state) {
        if (e->state == WATCH_FIRED)
                return;
        aw->reading += (state == WATCH_READING) - (e->state == WATCH_READING);
        e->state = state;
        if (state == WATCH_READING) {
                e->since = drv_mono_ms();
                e->deadline = e->since + aw->read_timeout_ms;
        }
}

/* Fire every entry past its deadline (lock held); the next deadline, or
 * now + 1 s when there is none sooner. */
static int64_t watch_sweep(drv_admin_watch_t *aw) {
        int64_t now = drv_mono_ms(), next = now + 1000;
        drv_admin_watch_entry_t *e;
        int fired = 0;

        for (e = aw->head; e; e = e->next) {
                if (e->state != WATCH_READING && e->state != WATCH_FD)
                        continue;
                if (e->deadline <= now) {
                        fired += e->state == WATCH_READING;
                        watch_fire(aw, e);
                } else if (e->deadline < next)
                        next = e->deadline;
        }
        if (fired)
                drv_log(DRV_LOG_DEBUG,
                        "admin http: closed %d connections that sent no "
                        "complete request within %d ms",
                        fired, aw->read_timeout_ms);
        return next;
}

static void *watch_main(void *arg) {
        drv_admin_watch_t *aw = arg;
        struct timespec ts;
        int64_t next;

        pthread_mutex_lock(&aw->lock);
        while (!aw->stop) {
                next = watch_sweep(aw);
                ts.tv_sec = (time_t)(next / 1000);
                ts.tv_nsec = (long)(next % 1000) * 1000000L;
                pthread_cond_timedwait(&aw->cond, &aw->lock, &ts);
        }
        pthread_mutex_unlock(&aw->lock);
        return NULL;
}

drv_admin_watch_t *drv_admin_watch_new(int reading_max, int read_timeout_ms,
                                       char *errstr, size_t errstr_size) {
        drv_admin_watch_t *aw = calloc(1, sizeof(*aw));
        pthread_condattr_t ca;

        if (!aw) {
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory");
                return NULL;
        }
        aw->reading_max = reading_max;
        aw->read_timeout_ms = read_timeout_ms;
        pthread_mutex_init(&aw->lock, NULL);
        /* deadlines are drv_mono_ms() times: wait on the same clock */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&aw->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (pthread_create(&aw->thread, NULL, watch_main, aw)) {
                pthread_cond_destroy(&aw->cond);
                pthread_mutex_destroy(&aw->lock);
                free(aw);
                drv_err_set(errstr, errstr_size, DRV_ERR_INTERNAL,
                            "cannot start the admin server's watchdog "
                            "thread");
                return NULL;
        }
        return aw;
}

void drv_admin_watch_destroy(drv_admin_watch_t *aw) {
        if (!aw)
                return;
        pthread_mutex_lock(&aw->lock);
        aw->stop = 1;
        pthread_cond_signal(&aw->cond);
        pthread_mutex_unlock(&aw->lock);
        pthread_join(aw->thread, NULL);
        pthread_cond_destroy(&aw->cond);
        pthread_mutex_destroy(&aw->lock);
        free(aw);
}

/* Link a new entry for fd in `state` (lock held). */
static drv_admin_watch_entry_t *watch_add(drv_admin_watch_t *aw, int fd,
                                          watch_state_t state) {
        drv_admin_watch_entry_t *e = calloc(1, sizeof(*e));

        if (!e)
                return NULL;
        e->fd = fd;
        e->state = WATCH_BUSY;
        watch_set(aw, e, state);
        e->next = aw->head;
        if (aw->head)
                aw->head->prev = e;
        aw->head = e;
        pthread_cond_signal(&aw->cond);
        return e;
}

/* The reading client that started reading first (lock held). */
static drv_admin_watch_entry_t *watch_oldest_reading(drv_admin_watch_t *aw) {
        drv_admin_watch_entry_t *e, *oldest = NULL;

        for (e = aw->head; e; e = e->next)
                if (e->state == WATCH_READING &&
                    (!oldest || e->since < oldest->since))
                        oldest = e;
        return oldest;
}

drv_admin_watch_entry_t *drv_admin_watch_client(drv_admin_watch_t *aw, int fd) {
        drv_admin_watch_entry_t *e;

        pthread_mutex_lock(&aw->lock);
        if (aw->reading >= aw->reading_max) {
                drv_log(DRV_LOG_DEBUG,
                        "admin http: %d connections without a complete "
                        "request, closing the oldest",
                        aw->reading);
                watch_fire(aw, watch_oldest_reading(aw));
        }
        e = watch_add(aw, fd, WATCH_READING);
        pthread_mutex_unlock(&aw->lock);
        return e;
}

void drv_admin_watch_client_busy(drv_admin_watch_t *aw,
                                 drv_admin_watch_entry_t *e, int busy) {
        if (!e)
                return;
        pthread_mutex_lock(&aw->lock);
        watch_set(aw, e, busy ? WATCH_BUSY : WATCH_READING);
        pthread_cond_signal(&aw->cond);
        pthread_mutex_unlock(&aw->lock);
}

drv_admin_watch_entry_t *drv_admin_watch_fd(drv_admin_watch_t *aw, int fd,
                                            int64_t deadline_ms) {
        drv_admin_watch_entry_t *e;

        if (fd < 0)
                return NULL;
        pthread_mutex_lock(&aw->lock);
        if ((e = watch_add(aw, fd, WATCH_FD)))
                e->deadline = deadline_ms;
        pthread_mutex_unlock(&aw->lock);
        return e;
}

int drv_admin_watch_remove(drv_admin_watch_t *aw, drv_admin_watch_entry_t *e) {
        int fired;

        if (!e)
                return 0;
        pthread_mutex_lock(&aw->lock);
        fired = e->state == WATCH_FIRED;
        watch_set(aw, e, WATCH_BUSY);
        if (e->prev)
                e->prev->next = e->next;
        else
                aw->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        pthread_mutex_unlock(&aw->lock);
        free(e);
        return fired;
}
