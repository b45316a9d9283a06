/*
 * drover - tests/fuzz/fuzz_config.c: libFuzzer target for the worker's
 * configuration (consumer/worker/config.c).
 *
 * The first byte picks the path: even -> the rest is a drover.yaml file
 * (written to a private temp file, since drv_config_load_file reads a
 * path); odd -> the rest is lines of KEY=VALUE applied with
 * drv_config_set, as `drover worker --set` does.  Then drv_config_finish.
 * Invariants: a failure leaves a non-empty message; a config that loads
 * and finishes has every string set, derived topics that differ from the
 * tasks topic, numbers inside their documented ranges, and its kafka.*
 * passthrough applies to a fresh librdkafka conf.  Nothing may leak.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void cleanup(void) {
        if (path[0])
                unlink(path);
}

/* A fresh temp file per process, rewritten for each input. */
static int write_file(const uint8_t *data, size_t size) {
        FILE *fp;

        if (!path[0]) {
                snprintf(path, sizeof(path), "/tmp/drover-fuzz-config-%ld",
                         (long)getpid());
                atexit(cleanup);
        }
        if (!(fp = fopen(path, "wb")))
                abort();
        if (size && fwrite(data, 1, size, fp) != size)
                abort();
        fclose(fp);
        return 0;
}

static int contains(const uint8_t *data, size_t size, const char *word) {
        size_t n = strlen(word), i;

        for (i = 0; i + n <= size; i++)
                if (!memcmp(data + i, word, n))
                        return 1;
        return 0;
}

static drv_err_t set_lines(drv_config_t *conf, const uint8_t *data, size_t size,
                           char *errstr, size_t errstr_size) {
        char *text = malloc(size + 1), *line, *save = NULL, *eq;
        drv_err_t err = DRV_OK;

        if (!text)
                abort();
        memcpy(text, data, size);
        text[size] = '\0';
        for (line = strtok_r(text, "\n", &save); line && !err;
             line = strtok_r(NULL, "\n", &save)) {
                if (!(eq = strchr(line, '=')))
                        continue;
                *eq = '\0';
                err = drv_config_set(conf, line, eq + 1, "fuzz", errstr,
                                     errstr_size);
        }
        free(text);
        return err;
}

static void check_loaded(const drv_config_t *conf) {
        char errstr[256];
        rd_kafka_conf_t *kc;

        if (!conf->brokers || !conf->topic || !conf->group || !conf->instance ||
            !conf->status_topic || !conf->dlq_topic || !conf->catalog_dir ||
            !conf->http_listen || !conf->assignment_strategy)
                abort();
        if (!strcmp(conf->status_topic, conf->topic) ||
            !strcmp(conf->dlq_topic, conf->topic))
                abort();
        if (conf->concurrency < 1 || conf->concurrency > 256 ||
            conf->commit_interval_ms < 1 || conf->allow_sql < 0 ||
            conf->allow_sql > 1 || conf->backoff.max_attempts < 1)
                abort();
        if (strcmp(conf->assignment_strategy, "cooperative-sticky") &&
            strcmp(conf->assignment_strategy, "range"))
                abort();
        kc = rd_kafka_conf_new();
        /* each property was checked when set, so applying cannot fail */
        if (drv_config_apply_kafka(conf, kc, errstr, sizeof(errstr)) != DRV_OK)
                abort();
        rd_kafka_conf_destroy(kc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char errstr[512];
        drv_config_t *conf;
        drv_err_t err;

        if (size < 1 || size > 16 * 1024)
                return 0;
        /* librdkafka loads plugin libraries as soon as the property is
         * set: never let the fuzzer dlopen() random paths. */
        if (contains(data, size, "plugin"))
                return 0;
        if (!(conf = drv_config_new()))
                abort();
        errstr[0] = '\0';
        if ((data[0] & 1) == 0) {
                write_file(data + 1, size - 1);
                err = drv_config_load_file(conf, path, errstr, sizeof(errstr));
        } else {
                err =
                    set_lines(conf, data + 1, size - 1, errstr, sizeof(errstr));
        }
        if (!err)
                err = drv_config_finish(conf, errstr, sizeof(errstr));
        if (err && !errstr[0])
                abort(); /* every failure says why */
        if (!err)
                check_loaded(conf);
        drv_config_destroy(conf);
        return 0;
}
