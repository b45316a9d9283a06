/*
 * drover - consumer/admin/admin_watch.h: the admin server's socket
 * watchdog (private to consumer/admin/).
 *
 * One thread shuts down (shutdown(2), SHUT_RDWR) every watched socket
 * whose deadline passed, which wakes whatever thread is blocked on it:
 * the libmicrohttpd connection thread of a client that is too slow to
 * send its request, or a request thread inside libpq when PostgreSQL
 * does not answer.  The socket is never closed here, and an entry is
 * removed under the watchdog's lock before its owner closes the socket,
 * so a shutdown never hits a reused descriptor.
 *
 * Client connections are also capped: at most `reading_max` may be
 * waiting for (or receiving) a request at once; one more evicts the
 * oldest of them, so a new connection - a liveness probe - is always
 * read, however many slow clients hold the others.
 */
#ifndef DRV_ADMIN_WATCH_H
#define DRV_ADMIN_WATCH_H

#include "admin.h"

typedef struct drv_admin_watch_s drv_admin_watch_t;
typedef struct drv_admin_watch_entry_s drv_admin_watch_entry_t;

/* Start the watchdog thread.  A client connection gets `read_timeout_ms`
 * to deliver a complete request (headers and body) from its accept or
 * from the end of its previous request.  NULL + errstr when the thread
 * cannot start. */
drv_admin_watch_t *drv_admin_watch_new(int reading_max, int read_timeout_ms,
                                       char *errstr, size_t errstr_size);
/* Stop the thread and free.  Every entry must have been removed.  NULL is
 * a no-op. */
void drv_admin_watch_destroy(drv_admin_watch_t *aw);

/* A client connection on `fd` was accepted: watch it as reading (evicting
 * the oldest reading connection when `reading_max` are).  NULL on out of
 * memory (the connection is then not watched). */
drv_admin_watch_entry_t *drv_admin_watch_client(drv_admin_watch_t *aw, int fd);
/* The client's request is complete (busy = 1: no deadline while the
 * server answers) or answered (busy = 0: reading the next request, a new
 * deadline from now).  e may be NULL. */
void drv_admin_watch_client_busy(drv_admin_watch_t *aw,
                                 drv_admin_watch_entry_t *e, int busy);

/* Watch `fd` (a database socket) until `deadline_ms` (drv_mono_ms()
 * clock).  NULL on out of memory or fd < 0 (not watched). */
drv_admin_watch_entry_t *drv_admin_watch_fd(drv_admin_watch_t *aw, int fd,
                                            int64_t deadline_ms);

/* Stop watching e and free it; returns 1 when its socket was shut down
 * (deadline passed or evicted), else 0.  Call before closing the socket.
 * e may be NULL (returns 0). */
int drv_admin_watch_remove(drv_admin_watch_t *aw, drv_admin_watch_entry_t *e);

#endif /* DRV_ADMIN_WATCH_H */
