/*
 * drover - consumer/cli/cli_kafka.h: Kafka defaults shared by the operator
 * commands (dlq, replay): brokers, topics, group, and a librdkafka conf
 * whose logs go to drv_log.  The worker has its own config loader; this
 * is the small lookup for one-shot commands.
 */
#ifndef DRV_CLI_KAFKA_H
#define DRV_CLI_KAFKA_H

#include "cli.h"

/* The first of: flag (if not NULL/""), the environment variable, the
 * default.  Never NULL; the result lives as long as its source. */
const char *drv_cli_brokers(const char *flag); /* DROVER_BROKERS,
                                                  127.0.0.1:9092 */
const char *drv_cli_topic(const char *flag);   /* DROVER_TOPIC,
                                                  dataset-migrations */
const char *drv_cli_group(const char *flag);   /* DROVER_GROUP, drover */

/* "<topic><suffix>" into out (e.g. ".dlq", ".status", ".redrive"). */
void drv_cli_suffixed(const char *name, const char *suffix, char *out,
                      size_t out_size);

/* drv_kafka_conf_new(brokers, "drover-cli") (so also the Java-compatible
 * partitioner, and librdkafka's log lines routed to drv_log), and every
 * DROVER_KAFKA_<KEY> environment variable (KEY lower-cased, '_' -> '.')
 * passed through, except what drv_kafka_prop_check() refuses.  Returns
 * NULL and fills errstr when a property is refused.  The caller owns the conf
 * (rd_kafka_new takes it on success). */
rd_kafka_conf_t *drv_cli_kafka_conf_new(const char *brokers, char *errstr,
                                        size_t errstr_size);

/* rd_kafka_conf_set that fills errstr with a drover-style line naming the
 * property.  Returns 0 or -1. */
int drv_cli_kafka_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                      char *errstr, size_t errstr_size);

/* Exit code for a failed Kafka call or delivery report: 69 when the
 * cluster could not be reached or timed out (a record whose
 * message.timeout.ms ran out included), else 70. */
int drv_cli_kafka_exit_code(rd_kafka_resp_err_t err);

/* Parse a non-negative decimal into *out; 0 or -1. */
int drv_cli_parse_long(const char *s, long *out);

#endif
