/*
 * drover - tests/tsan/control.c: the positive control of tests/tsan.sh.
 *
 * A deliberate data race between the main thread and librdkafka's own
 * threads: the log callback (run on rdk:main / rdk:broker threads, as no
 * log queue is set) increments a plain int that main reads with no lock.
 * tests/tsan.sh runs it first and requires a ThreadSanitizer report whose
 * stack has a symbolized librdkafka frame (rdkafka*.c:<line>), i.e. that
 * TSan sees into the librdkafka the tests load.  Uses librdkafka's mock
 * cluster only: no network.
 */
#define _POSIX_C_SOURCE 200809L
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <time.h>

static int log_lines; /* racy on purpose */

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
        (void)rk;
        (void)level;
        (void)fac;
        (void)buf;
        log_lines++;
}

int main(void) {
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;
        struct timespec ts = {0, 20 * 1000 * 1000};
        int seen = 0;

        if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err,
                              sizeof(err)) ||
            rd_kafka_conf_set(conf, "debug", "broker,protocol", err,
                              sizeof(err))) {
                fprintf(stderr, "control: conf: %s\n", err);
                return 2;
        }
        rd_kafka_conf_set_log_cb(conf, on_log);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "control: rd_kafka_new: %s\n", err);
                return 2;
        }
        for (int i = 0; i < 50; i++) {
                seen = log_lines;
                nanosleep(&ts, NULL);
        }
        rd_kafka_destroy(rk);
        printf("control: %d log lines\n", seen);
        return 0;
}
