/*
 * tests/fuzz/fuzz_task_decode.c: libFuzzer target for drv_task_decode.
 *
 * The store holds the bundled v1/v2 schemas plus one extra writer schema
 * with every kind of type a registry could send (enum, fixed, array,
 * nested record, unions, bytes, float, double), so the fuzzer reaches
 * the datum checker and avro-c's reader on all of them.  Any input must
 * return DRV_OK or a poison error, without crash, leak or sanitizer
 * report, and the direct decoder must agree exactly with the reference
 * (avro-c's generic read + the original mapping): same task or same
 * error and message.  Build and run: tests/fuzz/run.sh [--seconds N] [--long].
 */
#include "schema.h"

#include "../unit/schema_equiv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static drv_schema_store_t *store;
static uint64_t extra_fp;

static const char extra_schema[] =
    "{\"type\":\"record\",\"name\":\"Fuzz\",\"namespace\":\"f\",\"fields\":["
    "{\"name\":\"task_id\",\"type\":\"string\"},"
    "{\"name\":\"entity_ref\",\"type\":[\"null\",\"string\",\"bytes\"]},"
    "{\"name\":\"dataset\",\"type\":\"bytes\"},"
    "{\"name\":\"requested_at\",\"type\":\"int\"},"
    "{\"name\":\"requested_by\",\"type\":\"string\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"symbols\":[\"A\",\"B\",\"C\"]}},"
    "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"X\","
    "\"size\":4}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":[\"null\","
    "\"float\",\"double\",\"E\"]}},"
    "{\"name\":\"n\",\"type\":{\"type\":\"record\",\"name\":\"N\","
    "\"fields\":[{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":"
    "\"X\"}}]}},"
    "{\"name\":\"params\",\"type\":{\"type\":\"map\",\"values\":"
    "\"string\"}},"
    "{\"name\":\"replay_of\",\"type\":[\"null\",\"string\"]}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char errstr[256];

        (void)argc;
        (void)argv;
        store = drv_schema_store_new(NULL, errstr, sizeof(errstr));
        if (!store || drv_schema_store_add(store, extra_schema, &extra_fp,
                                           errstr, sizeof(errstr))) {
                fprintf(stderr, "fuzz_task_decode: %s\n", errstr);
                abort();
        }
        return 0;
}

/* An input starting with 'F' is a datum of the extra schema: the 8-byte
 * fingerprint is put in front for the fuzzer, which would never guess it. */
static drv_err_t decode_one(const uint8_t *buf, size_t size, drv_task_t **taskp,
                            char *errstr, size_t errstr_size) {
        char why[1200];

        if (equiv_check(store, buf, size, NULL, why, sizeof(why))) {
                fprintf(stderr, "decoders differ: %s\n", why);
                abort();
        }
        return drv_task_decode(store, buf, size, taskp, errstr, errstr_size);
}

static drv_err_t decode(const uint8_t *data, size_t size, drv_task_t **taskp,
                        char *errstr, size_t errstr_size) {
        uint8_t *buf;
        drv_err_t err;
        int i;

        if (size == 0 || data[0] != 'F')
                return decode_one(data, size, taskp, errstr, errstr_size);
        if (!(buf = malloc(size + 9)))
                abort();
        buf[0] = 0xc3;
        buf[1] = 0x01;
        for (i = 0; i < 8; i++)
                buf[2 + i] = (uint8_t)(extra_fp >> (8 * i));
        memcpy(buf + 10, data + 1, size - 1);
        err = decode_one(buf, size + 9, taskp, errstr, errstr_size);
        free(buf);
        return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        drv_task_t *task = NULL;
        char errstr[256];
        drv_err_t err;

        err = decode(data, size, &task, errstr, sizeof(errstr));
        if (err == DRV_OK) {
                char *json = drv_task_to_json(task);
                free(json);
        } else if (DRV_ERR_FAMILY(err) != DRV_ERR_FAMILY_PERMANENT ||
                   task != NULL || !errstr[0]) {
                fprintf(stderr, "unexpected %s: %s\n", drv_err_name(err),
                        errstr);
                abort();
        }
        drv_task_destroy(task);
        return 0;
}
