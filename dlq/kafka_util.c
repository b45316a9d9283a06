/*
 * drover - dlq/kafka_util.c: small librdkafka helpers shared by the
 * commands that read topics (dlq, replay, lag).
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
