/*
 * drover - consumer/admin/admin_kafka.h: the admin server's producer (private
 * to consumer/admin/).
 */
#ifndef DRV_ADMIN_KAFKA_H
#define DRV_ADMIN_KAFKA_H

#include "admin.h"

typedef struct drv_admin_kafka_s drv_admin_kafka_t;

/* An idempotent producer for `topic` on `brokers` (both copied), with its
 * own poll thread.  Does not connect yet.  NULL + errstr on bad config. */
drv_admin_kafka_t *drv_admin_kafka_new(const char *brokers, const char *topic,
                                       char *errstr, size_t errstr_size);

/* Flush (up to 2 s), stop the poll thread, free.  NULL is a no-op. */
void drv_admin_kafka_destroy(drv_admin_kafka_t *ak);

/* Produce one record (key may be NULL; value copied) and wait for its
 * delivery report, at most about 7 s.  DRV_OK once the broker has it;
 * DRV_ERR_KAFKA_RETRIABLE with "cannot reach kafka at ...: ..." when it
 * was not delivered in time.  Thread-safe. */
drv_err_t drv_admin_kafka_produce(drv_admin_kafka_t *ak, const char *key,
                                  const void *value, size_t len, char *errstr,
                                  size_t errstr_size);

/* For tests: the current producer's handle (valid until it is replaced)
 * and, when replacedp is not NULL, how many producers were replaced after
 * a fatal error so far. */
rd_kafka_t *drv_admin_kafka_handle(drv_admin_kafka_t *ak, int *replacedp);

#endif /* DRV_ADMIN_KAFKA_H */
