/*
 * tests/fuzz/fuzz_dlq_headers.c: libFuzzer target for dead-letter header
 * parsing (drv_dlq_headers_parse).
 *
 * Input: a sequence of headers, each [name_len u8][name][value_len u8]
 * [value]; value_len 255 means a null value.  Names are taken modulo the
 * known header names when the first name byte is < 0x20, so the fuzzer
 * reaches every field quickly.  Invariants: parsing never crashes or
 * reads past a value; a parse that succeeds round-trips through
 * drv_dlq_headers_new() to the same numeric fields.
 */
#include "dlq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void add_headers(rd_kafka_headers_t *h, const uint8_t *d, size_t n) {
        size_t i = 0;

        while (i < n) {
                char name[256];
                size_t nlen = d[i++], vlen;
                const char *known;

                if (i + nlen > n)
                        return;
                if (nlen > 0 && d[i] < 0x20 &&
                    (known = drv_dlq_header_name(d[i] % 20)))
                        snprintf(name, sizeof(name), "%s", known);
                else
                        snprintf(name, sizeof(name), "%.*s", (int)nlen,
                                 (const char *)d + i);
                i += nlen;
                if (i >= n)
                        return;
                vlen = d[i++];
                if (vlen == 255) {
                        rd_kafka_header_add(h, name, -1, NULL, 0);
                        continue;
                }
                if (i + vlen > n)
                        return;
                /* a malloc'ed copy, so ASan sees any over-read */
                {
                        char *v = malloc(vlen ? vlen : 1);
                        memcpy(v, d + i, vlen);
                        rd_kafka_header_add(h, name, -1, v, (ssize_t)vlen);
                        free(v);
                }
                i += vlen;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(8), *h2;
        drv_dlq_info_t a, b;
        char errstr[256];

        add_headers(h, data, size);
        if (drv_dlq_headers_parse(h, &a, errstr, sizeof(errstr)) == DRV_OK) {
                h2 = drv_dlq_headers_new(&a);
                if (!h2 ||
                    drv_dlq_headers_parse(h2, &b, errstr, sizeof(errstr)) !=
                        DRV_OK ||
                    a.attempts != b.attempts ||
                    a.retry_after_ms != b.retry_after_ms ||
                    a.original_offset != b.original_offset ||
                    a.original_partition != b.original_partition ||
                    a.redrive_count != b.redrive_count ||
                    a.retryable != b.retryable)
                        abort();
                rd_kafka_headers_destroy(h2);
        }
        rd_kafka_headers_destroy(h);
        return 0;
}
