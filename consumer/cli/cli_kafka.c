/*
 * drover - consumer/cli/cli_kafka.c: Kafka defaults for the operator commands.
 */
#include "cli_kafka.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *pick(const char *flag, const char *env, const char *dflt) {
        const char *v;

        if (flag && *flag)
                return flag;
        v = getenv(env);
        return v && *v ? v : dflt;
}

const char *drv_cli_brokers(const char *flag) {
        return pick(flag, "DROVER_BROKERS", "127.0.0.1:9092");
}

const char *drv_cli_topic(const char *flag) {
        return pick(flag, "DROVER_TOPIC", "dataset-migrations");
}

const char *drv_cli_group(const char *flag) {
        return pick(flag, "DROVER_GROUP", "drover");
}

void drv_cli_suffixed(const char *name, const char *suffix, char *out,
                      size_t out_size) {
        snprintf(out, out_size, "%s%s", name, suffix);
}

int drv_cli_kafka_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                      char *errstr, size_t errstr_size) {
        char rderr[256];

        if (rd_kafka_conf_set(conf, key, value, rderr, sizeof(rderr)) !=
            RD_KAFKA_CONF_OK) {
                drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                            "invalid kafka property \"%s\": %s", key, rderr);
                return -1;
        }
        return 0;
}

/* DROVER_KAFKA_SECURITY_PROTOCOL=ssl -> security.protocol=ssl */
static int set_from_env(rd_kafka_conf_t *conf, char *errstr,
                        size_t errstr_size) {
        static const char prefix[] = "DROVER_KAFKA_";
        char key[128], origin[160];
        char **e;
        size_t i;

        for (e = environ; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                size_t klen;

                if (strncmp(*e, prefix, sizeof(prefix) - 1) || !eq)
                        continue;
                klen = (size_t)(eq - *e) - (sizeof(prefix) - 1);
                if (klen == 0 || klen >= sizeof(key))
                        continue;
                for (i = 0; i < klen; i++) {
                        char c = (*e)[sizeof(prefix) - 1 + i];
                        key[i] = c == '_' ? '.' : (char)tolower((int)c);
                }
                key[klen] = '\0';
                snprintf(origin, sizeof(origin), "%.*s", (int)(eq - *e), *e);
                if (drv_kafka_prop_check(origin, key, eq + 1, errstr,
                                         errstr_size) ||
                    drv_cli_kafka_set(conf, key, eq + 1, errstr, errstr_size))
                        return -1;
        }
        return 0;
}

rd_kafka_conf_t *drv_cli_kafka_conf_new(const char *brokers, char *errstr,
                                        size_t errstr_size) {
        rd_kafka_conf_t *conf = drv_kafka_conf_new(
            drv_cli_brokers(brokers), "drover-cli", errstr, errstr_size);

        if (conf && set_from_env(conf, errstr, errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return conf;
}

int drv_cli_kafka_exit_code(rd_kafka_resp_err_t err) {
        switch (err) {
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT: /* no broker took it in time */
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
                return DRV_EXIT_UNAVAILABLE;
        default:
                return DRV_EXIT_SOFTWARE;
        }
}

int drv_cli_parse_long(const char *s, long *out) {
        char *end;
        long v;

        if (!s || *s < '0' || *s > '9')
                return -1;
        v = strtol(s, &end, 10);
        if (*end || v < 0)
                return -1;
        *out = v;
        return 0;
}
