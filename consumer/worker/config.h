/*
 * drover - consumer/worker/config.h: the worker's configuration.
 *
 * Sources, later ones winning: built-in defaults (which work against the
 * local stack of scripts/kafka.sh and scripts/pg.sh), a drover.yaml file,
 * the environment (DESIGN.md section 9), then command-line flags.
 *
 * Any key under `kafka.` passes through to librdkafka (both the consumer
 * and the transactional producer); it is checked against librdkafka when
 * loaded, so a bad one fails with "file:line: ..." like every other key.
 */
#ifndef DRV_CONFIG_H
#define DRV_CONFIG_H

#include "dlq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One `kafka.*` passthrough property, in the order given. */
typedef struct drv_kafka_prop_s {
        char *name; /* without the "kafka." prefix */
        char *value;
        char *origin; /* "file:line", "env" or "flag" (for messages) */
} drv_kafka_prop_t;

typedef struct drv_config_s {
        char *brokers;         /* DROVER_BROKERS, default 127.0.0.1:9092 */
        char *topic;           /* DROVER_TOPIC, default dataset-migrations */
        char *status_topic;    /* default <topic>.status */
        char *dlq_topic;       /* default <topic>.dlq */
        char *group;           /* DROVER_GROUP, default drover */
        char *instance;        /* DROVER_INSTANCE, default <hostname>-0 */
        char *catalog_dir;     /* DROVER_CATALOG_DIR, default "catalog" */
        char *database_url;    /* DATABASE_URL */
        char *backstage_url;   /* BACKSTAGE_URL, NULL: local catalog */
        char *backstage_token; /* BACKSTAGE_TOKEN (secret) */
        char *registry_url;    /* SCHEMA_REGISTRY_URL, NULL: bundled */
        char *http_listen;     /* DROVER_HTTP_LISTEN, "" disables; ":PORT"
                                  is 127.0.0.1, "*:PORT" every address */
        char *admin_token;     /* DROVER_ADMIN_TOKEN (secret) */
        char *assignment_strategy;  /* "cooperative-sticky" or "range" */
        char *static_membership;    /* "off" (default), "auto" or "on" */
        char *session_database_url; /* DROVER_SESSION_DATABASE_URL
                                       (secret): where plans that hold a
                                       session for their run (batched
                                       steps, CONCURRENTLY) connect, one
                                       connection per run, when
                                       database.url is a transaction
                                       pooler; NULL or "": database.url */
        char *staging_database_url; /* DROVER_STAGING_DATABASE_URL
                                       (secret): where plans with
                                       spec.requiresStaging must have
                                       completed first; NULL or "": none */
        int instance_set;           /* instance given by file, env or flag */
        int static_member;          /* resolved by drv_config_finish: use
                                       the instance as group.instance.id */
        int concurrency;            /* executor threads, default 4 */
        int window_records;         /* per partition: records fetched and
                                       not committed, default 64, at most
                                       100 (the commit metadata's bound) */
        long window_bytes;          /* per partition: their bytes, default
                                       8 MiB */
        int commit_interval_ms;     /* default 100 */
        int drain_timeout_ms;       /* default 30000 */
        int transaction_timeout_ms; /* default 60000 */
        int topic_partitions;       /* tasks topic when created, default 12 */
        int allow_sql;              /* permit `sql` steps, default 0 */
        long lock_timeout_ms;       /* per statement, default 5000 */
        long statement_timeout_ms;  /* per statement, default 60000 */
        long batch_pause_ms;        /* default 0 */
        drv_throttle_t throttle;    /* `throttle:` (docs/plans.md,
                                       "Throttling"): every field off by
                                       default (0, NULL); a plan's
                                       spec.throttle overrides it per
                                       field */
        drv_backoff_conf_t backoff;
        drv_kafka_prop_t *kafka;
        size_t kafka_cnt;
} drv_config_t;

/* A config holding the defaults.  NULL on out of memory. */
drv_config_t *drv_config_new(void);

/* Free a config and everything it owns.  NULL is a no-op. */
void drv_config_destroy(drv_config_t *conf);

/* Set one key (dotted, as in the file: "concurrency", "backoff.initial_ms",
 * "kafka.max.poll.interval.ms", "http.listen") from text.  `origin` names
 * where it came from and prefixes any error ("drover.yaml:12", "env
 * DROVER_TOPIC", "flag --topic").  Unknown key or bad value:
 * DRV_ERR_CONFIG with "<origin>: ..." in errstr, conf unchanged. */
drv_err_t drv_config_set(drv_config_t *conf, const char *key, const char *value,
                         const char *origin, char *errstr, size_t errstr_size);

/* Apply a YAML file (a mapping; nested mappings flatten to dotted keys).
 * Errors name "path:line: ...".  Unreadable file: DRV_ERR_IO; anything
 * else: DRV_ERR_CONFIG. */
drv_err_t drv_config_load_file(drv_config_t *conf, const char *path,
                               char *errstr, size_t errstr_size);

/* Apply the environment variables of DESIGN.md section 9 (and
 * DROVER_ADMIN_TOKEN, DROVER_CONCURRENCY, DROVER_STAGING_DATABASE_URL,
 * DROVER_SESSION_DATABASE_URL). */
drv_err_t drv_config_load_env(drv_config_t *conf, char *errstr,
                              size_t errstr_size);

/* Fill derived defaults (status/dlq topics from topic) and check that the
 * whole is consistent.  Call once after all sources. */
drv_err_t drv_config_finish(drv_config_t *conf, char *errstr,
                            size_t errstr_size);

/* Apply the kafka.* passthrough properties to a librdkafka conf (NULL
 * errors for consumer-only/producer-only keys are not errors: librdkafka
 * ignores them on the other client type). */
drv_err_t drv_config_apply_kafka(const drv_config_t *conf,
                                 rd_kafka_conf_t *kconf, char *errstr,
                                 size_t errstr_size);

/* Value of a passthrough property, or NULL. */
const char *drv_config_kafka_get(const drv_config_t *conf, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* DRV_CONFIG_H */
