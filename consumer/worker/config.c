/*
 * drover - consumer/worker/config.c: drover.yaml, then environment, then flags.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

/*
 * ------------------------------------------------------------------------
 * The key table
 * ------------------------------------------------------------------------
 */
typedef enum { K_STR, K_INT, K_LONG, K_BOOL, K_I64, K_DBL } kind_t;

static const struct key_s {
        const char *name;
        kind_t kind;
        size_t off;
        long long min, max; /* for numbers */
} keys[] = {
    {"brokers", K_STR, offsetof(drv_config_t, brokers), 0, 0},
    {"topic", K_STR, offsetof(drv_config_t, topic), 0, 0},
    {"status_topic", K_STR, offsetof(drv_config_t, status_topic), 0, 0},
    {"dlq_topic", K_STR, offsetof(drv_config_t, dlq_topic), 0, 0},
    {"group", K_STR, offsetof(drv_config_t, group), 0, 0},
    {"instance", K_STR, offsetof(drv_config_t, instance), 0, 0},
    {"catalog.dir", K_STR, offsetof(drv_config_t, catalog_dir), 0, 0},
    {"database.url", K_STR, offsetof(drv_config_t, database_url), 0, 0},
    {"staging.database_url", K_STR,
     offsetof(drv_config_t, staging_database_url), 0, 0},
    {"database.session_url", K_STR,
     offsetof(drv_config_t, session_database_url), 0, 0},
    {"backstage.url", K_STR, offsetof(drv_config_t, backstage_url), 0, 0},
    {"backstage.token", K_STR, offsetof(drv_config_t, backstage_token), 0, 0},
    {"schema_registry.url", K_STR, offsetof(drv_config_t, registry_url), 0, 0},
    {"http.listen", K_STR, offsetof(drv_config_t, http_listen), 0, 0},
    {"http.token", K_STR, offsetof(drv_config_t, admin_token), 0, 0},
    {"assignment_strategy", K_STR, offsetof(drv_config_t, assignment_strategy),
     0, 0},
    {"static_membership", K_STR, offsetof(drv_config_t, static_membership), 0,
     0},
    {"concurrency", K_INT, offsetof(drv_config_t, concurrency), 1, 256},
    {"window.records", K_INT, offsetof(drv_config_t, window_records), 1, 100},
    {"window.bytes", K_LONG, offsetof(drv_config_t, window_bytes), 65536,
     INT_MAX},
    {"commit_interval_ms", K_INT, offsetof(drv_config_t, commit_interval_ms), 1,
     60000},
    {"drain_timeout_ms", K_INT, offsetof(drv_config_t, drain_timeout_ms), 0,
     3600000},
    {"transaction_timeout_ms", K_INT,
     offsetof(drv_config_t, transaction_timeout_ms), 1000, 900000},
    {"topic_partitions", K_INT, offsetof(drv_config_t, topic_partitions), 1,
     10000},
    {"allow_sql", K_BOOL, offsetof(drv_config_t, allow_sql), 0, 1},
    {"lock_timeout_ms", K_LONG, offsetof(drv_config_t, lock_timeout_ms), 1,
     INT_MAX},
    {"statement_timeout_ms", K_LONG,
     offsetof(drv_config_t, statement_timeout_ms), 1, INT_MAX},
    {"batch_pause_ms", K_LONG, offsetof(drv_config_t, batch_pause_ms), 0,
     600000},
    {"throttle.max_replica_lag_ms", K_LONG,
     offsetof(drv_config_t, throttle) +
         offsetof(drv_throttle_t, max_replica_lag_ms),
     0, DRV_THROTTLE_LAG_MAX},
    {"throttle.max_active_connections", K_LONG,
     offsetof(drv_config_t, throttle) +
         offsetof(drv_throttle_t, max_active_connections),
     0, DRV_THROTTLE_CONN_MAX},
    {"throttle.query", K_STR,
     offsetof(drv_config_t, throttle) + offsetof(drv_throttle_t, query), 0, 0},
    {"backoff.initial_ms", K_I64,
     offsetof(drv_config_t, backoff) + offsetof(drv_backoff_conf_t, initial_ms),
     1, 86400000},
    {"backoff.multiplier", K_DBL,
     offsetof(drv_config_t, backoff) + offsetof(drv_backoff_conf_t, multiplier),
     1, 100},
    {"backoff.max_delay_ms", K_I64,
     offsetof(drv_config_t, backoff) +
         offsetof(drv_backoff_conf_t, max_delay_ms),
     1, 86400000},
    {"backoff.max_attempts", K_INT,
     offsetof(drv_config_t, backoff) +
         offsetof(drv_backoff_conf_t, max_attempts),
     1, 1000},
    {"backoff.max_elapsed_ms", K_I64,
     offsetof(drv_config_t, backoff) +
         offsetof(drv_backoff_conf_t, max_elapsed_ms),
     1, 86400000LL * 30},
};

static const struct key_s *key_find(const char *name) {
        size_t i;

        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                if (!strcmp(keys[i].name, name))
                        return &keys[i];
        return NULL;
}

static int set_str(char **dst, const char *value) {
        char *s = strdup(value);

        if (!s)
                return -1;
        free(*dst);
        *dst = s;
        return 0;
}

drv_config_t *drv_config_new(void) {
        drv_config_t *conf = calloc(1, sizeof(*conf));
        char host[256] = "drover", inst[300];

        if (!conf)
                return NULL;
        if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
                snprintf(host, sizeof(host), "drover");
        host[sizeof(host) - 1] = '\0';
        snprintf(inst, sizeof(inst), "%s-0", host);
        if (set_str(&conf->brokers, "127.0.0.1:9092") ||
            set_str(&conf->topic, "dataset-migrations") ||
            set_str(&conf->group, "drover") || set_str(&conf->instance, inst) ||
            set_str(&conf->catalog_dir, "catalog") ||
            set_str(&conf->database_url,
                    "postgresql://127.0.0.1:5432/drover") ||
            set_str(&conf->http_listen, "127.0.0.1:9464") ||
            set_str(&conf->assignment_strategy, "cooperative-sticky") ||
            set_str(&conf->static_membership, "off")) {
                drv_config_destroy(conf);
                return NULL;
        }
        conf->concurrency = 4;
        conf->window_records = 64;
        conf->window_bytes = 8L << 20;
        conf->commit_interval_ms = 100;
        conf->drain_timeout_ms = 30000;
        conf->transaction_timeout_ms = 60000;
        conf->topic_partitions = 12;
        conf->lock_timeout_ms = 5000;
        conf->statement_timeout_ms = 60000;
        drv_backoff_conf_defaults(&conf->backoff);
        return conf;
}

void drv_config_destroy(drv_config_t *conf) {
        size_t i;

        if (!conf)
                return;
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                if (keys[i].kind == K_STR)
                        free(*(char **)((char *)conf + keys[i].off));
        for (i = 0; i < conf->kafka_cnt; i++) {
                free(conf->kafka[i].name);
                free(conf->kafka[i].value);
                free(conf->kafka[i].origin);
        }
        free(conf->kafka);
        free(conf);
}

/*
 * ------------------------------------------------------------------------
 * Setting one key
 * ------------------------------------------------------------------------
 */
static int parse_bool(const char *v, int *out) {
        static const char *yes[] = {"true", "yes", "on", "1"};
        static const char *no[] = {"false", "no", "off", "0"};
        size_t i;

        for (i = 0; i < 4; i++) {
                if (!strcmp(v, yes[i]))
                        return *out = 1, 0;
                if (!strcmp(v, no[i]))
                        return *out = 0, 0;
        }
        return -1;
}

/* librdkafka properties the worker sets itself.  Each is part of the
 * exactly-once contract or follows a drover key, so a kafka.* override
 * would change the clients behind the worker's back (a strategy given
 * only as kafka.partition.assignment.strategy ran an eager assignor on a
 * consumer set up for cooperative-sticky, and the worker exited 70 at its
 * first partition start).  `use` names the drover key to set instead.
 * The partitioner, which every drover client sets, is checked by
 * drv_kafka_prop_check() (dlq/kafka_util.c). */
static const struct {
        const char *name, *use;
} owned_props[] = {
    {"bootstrap.servers", "brokers"},
    {"group.id", "group"},
    {"group.instance.id", "static_membership"},
    {"transactional.id", "instance"},
    {"partition.assignment.strategy", "assignment_strategy"},
    {"transaction.timeout.ms", "transaction_timeout_ms"},
    {"enable.auto.commit", NULL},
    {"enable.auto.offset.store", NULL},
    {"isolation.level", NULL},
};

/* A librdkafka property is checked on a scratch conf so a typo fails at
 * load time with its origin, not later at client creation. */
static drv_err_t set_kafka(drv_config_t *conf, const char *name,
                           const char *value, const char *origin, char *errstr,
                           size_t errstr_size) {
        rd_kafka_conf_t *kc;
        char kerr[256];
        drv_kafka_prop_t *arr, *p;
        size_t i;

        for (i = 0; i < sizeof(owned_props) / sizeof(owned_props[0]); i++) {
                if (strcmp(name, owned_props[i].name))
                        continue;
                if (owned_props[i].use)
                        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                           "%s: kafka.%s is set by drover: "
                                           "use \"%s\"",
                                           origin, name, owned_props[i].use);
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "%s: kafka.%s is set by drover for "
                                   "exactly-once processing",
                                   origin, name);
        }
        if (drv_kafka_prop_check(origin, name, value, errstr, errstr_size))
                return DRV_ERR_CONFIG;
        kc = rd_kafka_conf_new();
        if (rd_kafka_conf_set(kc, name, value, kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(kc);
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "%s: kafka.%s: %s", origin, name, kerr);
        }
        rd_kafka_conf_destroy(kc);
        arr = realloc(conf->kafka, (conf->kafka_cnt + 1) * sizeof(*arr));
        if (!arr)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        conf->kafka = arr;
        p = &arr[conf->kafka_cnt];
        p->name = strdup(name);
        p->value = strdup(value);
        p->origin = strdup(origin);
        if (!p->name || !p->value || !p->origin) {
                free(p->name), free(p->value), free(p->origin);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        conf->kafka_cnt++;
        return DRV_OK;
}

static drv_err_t set_number(drv_config_t *conf, const struct key_s *k,
                            const char *value, const char *origin, char *errstr,
                            size_t errstr_size) {
        char *end;
        void *dst = (char *)conf + k->off;
        double d;
        long long n;

        errno = 0;
        if (k->kind == K_DBL) {
                d = strtod(value, &end);
                if (errno || end == value || *end || d < (double)k->min ||
                    d > (double)k->max)
                        goto bad;
                *(double *)dst = d;
                return DRV_OK;
        }
        n = strtoll(value, &end, 10);
        if (errno || end == value || *end || n < k->min || n > k->max)
                goto bad;
        if (k->kind == K_INT)
                *(int *)dst = (int)n;
        else if (k->kind == K_LONG)
                *(long *)dst = (long)n;
        else
                *(int64_t *)dst = (int64_t)n;
        return DRV_OK;
bad:
        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                           "%s: invalid value \"%s\" for \"%s\" (expected a "
                           "number from %lld to %lld)",
                           origin, value, k->name, k->min, k->max);
}

/* Keys that take one of a few words: NULL if `value` is one of them (or
 * `key` is not such a key), else the words for the error message. */
static const char *enum_check(const char *key, const char *value) {
        static const struct {
                const char *key, *words[4], *expected;
        } enums[] = {
            {"assignment_strategy",
             {"cooperative-sticky", "range"},
             "cooperative-sticky or range"},
            {"static_membership", {"auto", "on", "off"}, "auto, on or off"},
        };
        size_t i, j;

        for (i = 0; i < sizeof(enums) / sizeof(enums[0]); i++) {
                if (strcmp(key, enums[i].key))
                        continue;
                for (j = 0; enums[i].words[j]; j++)
                        if (!strcmp(value, enums[i].words[j]))
                                return NULL;
                return enums[i].expected;
        }
        return NULL;
}

/* Keys whose text has rules of its own: NULL if `value` follows them
 * (or `key` has none), else why not in `why`. */
static const char *text_check(const char *key, const char *value, char *why,
                              size_t why_size) {
        if (!strcmp(key, "throttle.query"))
                return drv_throttle_query_valid(value, why, why_size) ? NULL
                                                                      : why;
        return NULL;
}

drv_err_t drv_config_set(drv_config_t *conf, const char *key, const char *value,
                         const char *origin, char *errstr, size_t errstr_size) {
        const struct key_s *k;
        const char *expected;
        char why[256];
        int b;

        if (!strncmp(key, "kafka.", 6) && key[6])
                return set_kafka(conf, key + 6, value, origin, errstr,
                                 errstr_size);
        if (!(k = key_find(key)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "%s: unknown configuration key \"%s\"",
                                   origin, key);
        switch (k->kind) {
        case K_STR:
                if ((expected = enum_check(key, value)))
                        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                           "%s: invalid value \"%s\" for "
                                           "\"%s\" (expected %s)",
                                           origin, value, key, expected);
                if ((expected = text_check(key, value, why, sizeof(why))))
                        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                           "%s: invalid value for \"%s\": %s",
                                           origin, key, expected);
                if (set_str((char **)((char *)conf + k->off), value))
                        return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                           "out of memory");
                if (!strcmp(key, "instance"))
                        conf->instance_set = 1;
                return DRV_OK;
        case K_BOOL:
                if (parse_bool(value, &b))
                        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                           "%s: invalid value \"%s\" for "
                                           "\"%s\" (expected true or false)",
                                           origin, value, key);
                *(int *)((char *)conf + k->off) = b;
                return DRV_OK;
        default:
                return set_number(conf, k, value, origin, errstr, errstr_size);
        }
}

/*
 * ------------------------------------------------------------------------
 * drover.yaml: a mapping of scalars and nested mappings.  Walked as an
 * event stream with a stack of key prefixes.
 * ------------------------------------------------------------------------
 */
#define YAML_DEPTH_MAX 8

typedef struct yctx_s {
        const char *path;
        char prefix[YAML_DEPTH_MAX][256]; /* dotted prefix per depth */
        int depth;                        /* mappings open */
        char key[256];                    /* pending key, "" if none */
        int key_line;
} yctx_t;

static drv_err_t yaml_scalar(drv_config_t *conf, yctx_t *y,
                             const yaml_event_t *ev, char *errstr,
                             size_t errstr_size) {
        const char *text = (const char *)ev->data.scalar.value;
        char full[512], origin[600];

        if (!y->key[0]) {
                snprintf(y->key, sizeof(y->key), "%s", text);
                y->key_line = (int)ev->start_mark.line + 1;
                return DRV_OK;
        }
        snprintf(full, sizeof(full), "%s%s", y->prefix[y->depth - 1], y->key);
        snprintf(origin, sizeof(origin), "%s:%d", y->path, y->key_line);
        y->key[0] = '\0';
        return drv_config_set(conf, full, text, origin, errstr, errstr_size);
}

static drv_err_t yaml_event(drv_config_t *conf, yctx_t *y,
                            const yaml_event_t *ev, char *errstr,
                            size_t errstr_size) {
        int line = (int)ev->start_mark.line + 1;

        switch (ev->type) {
        case YAML_MAPPING_START_EVENT:
                if (y->depth >= YAML_DEPTH_MAX)
                        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                           "%s:%d: nested too deeply", y->path,
                                           line);
                if (y->depth == 0)
                        y->prefix[0][0] = '\0';
                else if (!y->key[0])
                        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                           "%s:%d: a mapping cannot be a key",
                                           y->path, line);
                else {
                        char tmp[256];
                        snprintf(tmp, sizeof(tmp), "%.120s%.120s.",
                                 y->prefix[y->depth - 1], y->key);
                        memcpy(y->prefix[y->depth], tmp, sizeof(tmp));
                }
                y->key[0] = '\0';
                y->depth++;
                return DRV_OK;
        case YAML_MAPPING_END_EVENT:
                y->depth--;
                return DRV_OK;
        case YAML_SEQUENCE_START_EVENT:
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "%s:%d: a list is not a valid value for "
                                   "\"%s%s\"",
                                   y->path, line,
                                   y->depth ? y->prefix[y->depth - 1] : "",
                                   y->key);
        case YAML_SCALAR_EVENT:
                if (y->depth == 0)
                        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                           "%s:%d: expected a mapping of "
                                           "settings",
                                           y->path, line);
                return yaml_scalar(conf, y, ev, errstr, errstr_size);
        case YAML_ALIAS_EVENT:
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "%s:%d: aliases are not supported", y->path,
                                   line);
        default:
                return DRV_OK;
        }
}

drv_err_t drv_config_load_file(drv_config_t *conf, const char *path,
                               char *errstr, size_t errstr_size) {
        FILE *fp = fopen(path, "rb");
        yaml_parser_t parser;
        yaml_event_t ev;
        yctx_t y;
        drv_err_t err = DRV_OK;
        int done = 0;

        if (!fp)
                return drv_err_set(errstr, errstr_size, DRV_ERR_IO,
                                   "cannot read config \"%s\": %s", path,
                                   strerror(errno));
        memset(&y, 0, sizeof(y));
        y.path = path;
        yaml_parser_initialize(&parser);
        yaml_parser_set_input_file(&parser, fp);
        while (!done && err == DRV_OK) {
                if (!yaml_parser_parse(&parser, &ev)) {
                        err = drv_err_set(
                            errstr, errstr_size, DRV_ERR_CONFIG, "%s:%d: %s",
                            path, (int)parser.problem_mark.line + 1,
                            parser.problem ? parser.problem : "invalid yaml");
                        break;
                }
                done = ev.type == YAML_STREAM_END_EVENT;
                err = yaml_event(conf, &y, &ev, errstr, errstr_size);
                yaml_event_delete(&ev);
        }
        yaml_parser_delete(&parser);
        fclose(fp);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * Environment, derived defaults, passthrough
 * ------------------------------------------------------------------------
 */
drv_err_t drv_config_load_env(drv_config_t *conf, char *errstr,
                              size_t errstr_size) {
        static const struct {
                const char *env, *key;
        } map[] = {
            {"DROVER_BROKERS", "brokers"},
            {"DROVER_TOPIC", "topic"},
            {"DROVER_GROUP", "group"},
            {"DROVER_INSTANCE", "instance"},
            {"DROVER_CATALOG_DIR", "catalog.dir"},
            {"DATABASE_URL", "database.url"},
            {"DROVER_STAGING_DATABASE_URL", "staging.database_url"},
            {"DROVER_SESSION_DATABASE_URL", "database.session_url"},
            {"BACKSTAGE_URL", "backstage.url"},
            {"BACKSTAGE_TOKEN", "backstage.token"},
            {"SCHEMA_REGISTRY_URL", "schema_registry.url"},
            {"DROVER_HTTP_LISTEN", "http.listen"},
            {"DROVER_ADMIN_TOKEN", "http.token"},
            {"DROVER_CONCURRENCY", "concurrency"},
            {"DROVER_STATIC_MEMBERSHIP", "static_membership"},
        };
        char origin[64];
        const char *v;
        drv_err_t err;
        size_t i;

        for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
                if (!(v = getenv(map[i].env)))
                        continue;
                /* An empty value means unset, except for the listen
                 * address where "" disables the server. */
                if (!*v && strcmp(map[i].env, "DROVER_HTTP_LISTEN"))
                        continue;
                snprintf(origin, sizeof(origin), "environment %s", map[i].env);
                err = drv_config_set(conf, map[i].key, v, origin, errstr,
                                     errstr_size);
                if (err)
                        return err;
        }
        return DRV_OK;
}

static int derive_topic(char **dst, const char *topic, const char *suffix) {
        char buf[512];

        if (*dst && **dst)
                return 0;
        snprintf(buf, sizeof(buf), "%s%s", topic, suffix);
        return set_str(dst, buf);
}

drv_err_t drv_config_finish(drv_config_t *conf, char *errstr,
                            size_t errstr_size) {
        if (!conf->brokers[0])
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "no brokers configured (set "
                                   "DROVER_BROKERS or \"brokers\")");
        if (!conf->topic[0] || !conf->group[0] || !conf->instance[0])
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "topic, group and instance must not be "
                                   "empty");
        /* Static membership (group.instance.id) is opt-in (default off:
         * a chaos run with it saw duplicated status events, see
         * docs/decisions.md) and only for an instance someone chose: the
         * default <hostname>-0 is a random pod name under a Deployment,
         * and two processes with one instance would fence each other. */
        if (!strcmp(conf->static_membership, "on") && !conf->instance_set)
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "static_membership is on but no instance "
                                   "is configured (set DROVER_INSTANCE or "
                                   "\"instance\")");
        conf->static_member =
            !strcmp(conf->static_membership, "on") ||
            (!strcmp(conf->static_membership, "auto") && conf->instance_set);
        /* the gate would ask production whether production ran the
         * plan: every gated task refused, and `plan run --staging` with
         * this config would migrate production */
        if (conf->staging_database_url &&
            !strcmp(conf->staging_database_url, conf->database_url))
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "staging.database_url must name another "
                                   "database than database.url");
        if (derive_topic(&conf->status_topic, conf->topic, ".status") ||
            derive_topic(&conf->dlq_topic, conf->topic, ".dlq"))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        if (!strcmp(conf->status_topic, conf->topic) ||
            !strcmp(conf->dlq_topic, conf->topic))
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "status and dead-letter topics must differ "
                                   "from the tasks topic \"%s\"",
                                   conf->topic);
        return DRV_OK;
}

drv_err_t drv_config_apply_kafka(const drv_config_t *conf,
                                 rd_kafka_conf_t *kconf, char *errstr,
                                 size_t errstr_size) {
        char kerr[256];
        size_t i;

        for (i = 0; i < conf->kafka_cnt; i++)
                if (rd_kafka_conf_set(kconf, conf->kafka[i].name,
                                      conf->kafka[i].value, kerr,
                                      sizeof(kerr)) != RD_KAFKA_CONF_OK)
                        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                           "%s: kafka.%s: %s",
                                           conf->kafka[i].origin,
                                           conf->kafka[i].name, kerr);
        return DRV_OK;
}

const char *drv_config_kafka_get(const drv_config_t *conf, const char *name) {
        const char *v = NULL;
        size_t i;

        /* the last one given wins, as it does in librdkafka */
        for (i = 0; i < conf->kafka_cnt; i++)
                if (!strcmp(conf->kafka[i].name, name))
                        v = conf->kafka[i].value;
        return v;
}
