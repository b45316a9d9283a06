/*
 * drover - tests/tsan/thrd_shim.c: C11 threads on top of pthreads, for
 * ThreadSanitizer runs only (LD_PRELOAD, see tests/tsan.sh).
 *
 * Debian's librdkafka 2.0.2 uses C11 threads (thrd_create, mtx_*, cnd_*).
 * glibc >= 2.34 implements those by calling its internal pthread functions
 * directly, past TSan's interceptors: without this shim every librdkafka
 * thread runs without TSan state (the first malloc in it crashes) and its
 * locks are invisible (every handover between its threads is a "race").
 * glibc's mtx_t/cnd_t/thrd_t have the layout of pthread_mutex_t/
 * pthread_cond_t/pthread_t, which glibc itself relies on, so forwarding
 * through the public (intercepted) pthread functions is exact.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

struct tramp {
        thrd_start_t fn;
        void *arg;
};

static void *tramp_run(void *p) {
        struct tramp t = *(struct tramp *)p;

        free(p);
        return (void *)(intptr_t)t.fn(t.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg) {
        struct tramp *t = malloc(sizeof(*t));

        if (!t)
                return thrd_nomem;
        t->fn = fn;
        t->arg = arg;
        if (pthread_create((pthread_t *)thr, NULL, tramp_run, t)) {
                free(t);
                return thrd_error;
        }
        return thrd_success;
}

int thrd_join(thrd_t thr, int *res) {
        void *p;

        if (pthread_join((pthread_t)thr, &p))
                return thrd_error;
        if (res)
                *res = (int)(intptr_t)p;
        return thrd_success;
}

int thrd_detach(thrd_t thr) {
        return pthread_detach((pthread_t)thr) ? thrd_error : thrd_success;
}

int mtx_init(mtx_t *m, int type) {
        pthread_mutexattr_t a;
        int r;

        pthread_mutexattr_init(&a);
        if (type & mtx_recursive)
                pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        r = pthread_mutex_init((pthread_mutex_t *)m, &a);
        pthread_mutexattr_destroy(&a);
        return r ? thrd_error : thrd_success;
}

int mtx_lock(mtx_t *m) {
        return pthread_mutex_lock((pthread_mutex_t *)m) ? thrd_error
                                                        : thrd_success;
}

int mtx_trylock(mtx_t *m) {
        int r = pthread_mutex_trylock((pthread_mutex_t *)m);

        return r == 0 ? thrd_success : r == EBUSY ? thrd_busy : thrd_error;
}

int mtx_unlock(mtx_t *m) {
        return pthread_mutex_unlock((pthread_mutex_t *)m) ? thrd_error
                                                          : thrd_success;
}

void mtx_destroy(mtx_t *m) {
        pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c) {
        return pthread_cond_init((pthread_cond_t *)c, NULL) ? thrd_error
                                                            : thrd_success;
}

int cnd_signal(cnd_t *c) {
        return pthread_cond_signal((pthread_cond_t *)c) ? thrd_error
                                                        : thrd_success;
}

int cnd_broadcast(cnd_t *c) {
        return pthread_cond_broadcast((pthread_cond_t *)c) ? thrd_error
                                                           : thrd_success;
}

int cnd_wait(cnd_t *c, mtx_t *m) {
        return pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m)
                   ? thrd_error
                   : thrd_success;
}

int cnd_timedwait(cnd_t *c, mtx_t *m, const struct timespec *ts) {
        int r = pthread_cond_timedwait((pthread_cond_t *)c,
                                       (pthread_mutex_t *)m, ts);

        return r == 0           ? thrd_success
               : r == ETIMEDOUT ? thrd_timedout
                                : thrd_error;
}

void cnd_destroy(cnd_t *c) {
        pthread_cond_destroy((pthread_cond_t *)c);
}
