/*
 * drover - dlq/kafka_util.c: small librdkafka helpers shared by the
 * commands that read topics (dlq, replay, lag), and the log callback of
 * every drover client.  dlq/ is the lowest module linked with librdkafka
 * (schema/ and transforms/ are not), so the worker, the admin producer
 * and the CLI all reach it.
 */
#include "dlq.h"

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
