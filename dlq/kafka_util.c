/*
 * drover - dlq/kafka_util.c: small librdkafka helpers shared by the
 * commands that read topics (dlq, replay, lag), and the base conf (with
 * the partitioner) and log callback of every drover client.  dlq/ is the lowest
 * module linked with librdkafka (schema/ and transforms/ are not), so the
 * worker, the admin producer and the CLI all reach it.
 */
#include "dlq.h"

#include <string.h>

int drv_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                              rd_kafka_resp_err_t *errp, char *errstr,
                              size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err;
        int cnt = -1;

        if (!rkt) {
                err = rd_kafka_last_error();
                drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "cannot use topic \"%s\": %s", topic,
                            rd_kafka_err2str(err));
        } else if ((err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms))) {
                drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "cannot read metadata of topic \"%s\": %s", topic,
                            rd_kafka_err2str(err));
        } else if (md->topic_cnt != 1 || md->topics[0].err) {
                err = md->topic_cnt == 1
                          ? md->topics[0].err
                          : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
                drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "topic \"%s\" does not exist", topic);
        } else {
                cnt = md->topics[0].partition_cnt;
        }
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (errp)
                *errp = err;
        return cnt;
}

void drv_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                      const char *buf) {
        drv_log_level_t lvl = level <= 3   ? DRV_LOG_ERROR
                              : level <= 5 ? DRV_LOG_WARN
                              : level == 6 ? DRV_LOG_INFO
                                           : DRV_LOG_DEBUG;

        drv_log(lvl, "librdkafka %s %s: %s", rk ? rd_kafka_name(rk) : "-", fac,
                buf);
}

rd_kafka_conf_t *drv_kafka_conf_new(const char *brokers, const char *client_id,
                                    char *errstr, size_t errstr_size) {
        const char *kv[][2] = {
            {"bootstrap.servers", brokers},
            {"client.id", client_id},
            {"partitioner", DRV_KAFKA_PARTITIONER},
        };
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char kerr[256];
        size_t i;

        for (i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
                if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], kerr,
                                      sizeof(kerr)) != RD_KAFKA_CONF_OK) {
                        drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                    "invalid kafka property \"%s\": %s",
                                    kv[i][0], kerr);
                        rd_kafka_conf_destroy(conf);
                        return NULL;
                }
        rd_kafka_conf_set_log_cb(conf, drv_kafka_log_cb);
        return conf;
}

drv_err_t drv_kafka_prop_check(const char *origin, const char *name,
                               const char *value, char *errstr,
                               size_t errstr_size) {
        /* refused rather than applied with a warning: a dataset's tasks
         * would silently land on another partition than the upstream
         * producer's, and lose their order */
        if (!strcmp(name, "partitioner") &&
            strcmp(value, DRV_KAFKA_PARTITIONER))
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "%s: kafka.partitioner is set by drover "
                                   "(\"%s\", the partitioner of Java "
                                   "producers, keeps a dataset's tasks on one "
                                   "partition)",
                                   origin, DRV_KAFKA_PARTITIONER);
        return DRV_OK;
}
