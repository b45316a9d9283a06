/*
 * drover - bench/bench_decode.c: decoding v1 task records, three ways.
 *
 *   bench_decode [--records N] [--repeats R] [--no-python]
 *
 * 1. drover: drv_task_decode() on each single-object record (framing,
 *    fingerprint lookup, the checked walk of the datum, fields read
 *    straight into a drv_task_t - no avro-c value - and
 *    drv_task_destroy()).
 * 2. the limit: raw avro-c generic reads of the same datums - one
 *    generic value reused, the memory reader re-pointed, nothing mapped
 *    (note: in avro-c 1.11.1 that reuse leaks every map key), and the
 *    same with a fresh value per record (what drover does, leak-free).
 * 3. the peer: Debian's python3-avro (bench/decode_peer.py, run with
 *    /usr/bin/python3) on the same bytes.
 *
 * Each is run R times (default 5) over N records (default 20000); the
 * median records/s is reported.  Prints one JSON line for bench/run.sh.
 */
#include "schema.h"

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HDR 10

/* The source tree (for the .avsc and the python peer): DROVER_SOURCE_DIR,
 * which bench/decode.sh sets, else the current directory. */
static const char *src_dir(void) {
        const char *d = getenv("DROVER_SOURCE_DIR");

        return d && *d ? d : ".";
}

typedef struct recs_s {
        void **buf;
        size_t *len;
        size_t n;
} recs_t;

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* N realistic v1 records: uuid, entity ref, dataset, 2-4 params. */
static void make_records(drv_schema_store_t *store, recs_t *r, size_t n) {
        char errstr[256], id[37], ds[32], v[32];
        size_t i;

        r->buf = calloc(n, sizeof(*r->buf));
        r->len = calloc(n, sizeof(*r->len));
        r->n = n;
        for (i = 0; i < n; i++) {
                drv_task_t *t = drv_task_new();
                drv_uuid4(id);
                snprintf(ds, sizeof(ds), "dataset-%zu", i % 97);
                snprintf(v, sizeof(v), "%zu", i);
                t->task_id = strdup(id);
                t->entity_ref = strdup("component:default/customer-dataset-"
                                       "v2-migration");
                t->dataset = strdup(ds);
                t->requested_at = 1764057600000LL + (int64_t)i;
                t->requested_by = strdup("svc-orders@example.com");
                t->dry_run = (int)(i & 1);
                drv_task_add_param(t, "tenant", "acme");
                drv_task_add_param(t, "seq", v);
                if (i % 3 == 0)
                        drv_task_add_param(t, "region", "eu-west-1");
                if (drv_task_encode(store, t, &r->buf[i], &r->len[i], errstr,
                                    sizeof(errstr))) {
                        fprintf(stderr, "bench_decode: %s\n", errstr);
                        exit(70);
                }
                drv_task_destroy(t);
        }
}

static double run_drover(drv_schema_store_t *store, const recs_t *r) {
        char errstr[256];
        drv_task_t *t;
        double t0 = now_s();
        size_t i;

        for (i = 0; i < r->n; i++) {
                if (drv_task_decode(store, r->buf[i], r->len[i], &t, errstr,
                                    sizeof(errstr))) {
                        fprintf(stderr, "bench_decode: %s\n", errstr);
                        exit(70);
                }
                drv_task_destroy(t);
        }
        return (double)r->n / (now_s() - t0);
}

static double run_raw(avro_value_iface_t *iface, const recs_t *r) {
        avro_reader_t rd = avro_reader_memory(NULL, 0);
        avro_value_t val;
        double t0;
        size_t i;

        avro_generic_value_new(iface, &val);
        t0 = now_s();
        for (i = 0; i < r->n; i++) {
                avro_reader_memory_set_source(rd, (const char *)r->buf[i] + HDR,
                                              (int64_t)(r->len[i] - HDR));
                if (avro_value_read(rd, &val)) {
                        fprintf(stderr, "bench_decode: raw read failed\n");
                        exit(70);
                }
        }
        t0 = (double)r->n / (now_s() - t0);
        avro_value_decref(&val);
        avro_reader_free(rd);
        return t0;
}

/* The same, but a fresh generic value per record: what a leak-free
 * avro-c 1.11.1 consumer must do (reusing a value leaks map keys). */
static double run_raw_fresh(avro_value_iface_t *iface, const recs_t *r) {
        avro_reader_t rd = avro_reader_memory(NULL, 0);
        avro_value_t val;
        double t0 = now_s();
        size_t i;

        for (i = 0; i < r->n; i++) {
                avro_generic_value_new(iface, &val);
                avro_reader_memory_set_source(rd, (const char *)r->buf[i] + HDR,
                                              (int64_t)(r->len[i] - HDR));
                if (avro_value_read(rd, &val)) {
                        fprintf(stderr, "bench_decode: raw read failed\n");
                        exit(70);
                }
                avro_value_decref(&val);
        }
        t0 = (double)r->n / (now_s() - t0);
        avro_reader_free(rd);
        return t0;
}

/* Write the records length-prefixed and let python3-avro decode them. */
static double run_python(const recs_t *r, int repeats) {
        char path[] = "/tmp/drv-bench-decode-XXXXXX", cmd[1024], out[64] = "";
        const char *dir = src_dir();
        FILE *fp, *p;
        uint32_t n;
        size_t i;
        int fd = mkstemp(path);

        if (fd < 0 || !(fp = fdopen(fd, "wb")))
                return -1;
        for (i = 0; i < r->n; i++) {
                n = (uint32_t)r->len[i];
                fwrite(&n, sizeof(n), 1, fp);
                fwrite(r->buf[i], 1, r->len[i], fp);
        }
        fclose(fp);
        snprintf(cmd, sizeof(cmd),
                 "/usr/bin/python3 %s/bench/decode_peer.py %s %s/schema/avro/"
                 "MigrationTask.v1.avsc %d",
                 dir, path, dir, repeats);
        if ((p = popen(cmd, "r"))) {
                if (!fgets(out, sizeof(out), p))
                        out[0] = '\0';
                pclose(p);
        }
        remove(path);
        return out[0] ? atof(out) : -1;
}

static avro_value_iface_t *raw_iface(avro_schema_t *schemap) {
        char path[1024], buf[8192];
        size_t n;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/schema/avro/MigrationTask.v1.avsc",
                 src_dir());
        if (!(fp = fopen(path, "r")))
                exit(70);
        n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        if (avro_schema_from_json_length(buf, n, schemap))
                exit(70);
        return avro_generic_class_from_schema(*schemap);
}

int main(int argc, char **argv) {
        drv_schema_conf_t conf = {.writer_version = 1};
        size_t records = 20000;
        int repeats = 5, python = 1, i;
        double d[64], a[64], f[64], dm, am, fm, pm = -1;
        drv_schema_store_t *store;
        avro_value_iface_t *iface;
        avro_schema_t schema;
        char errstr[256];
        recs_t r;

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--records") && i + 1 < argc)
                        records = (size_t)atol(argv[++i]);
                else if (!strcmp(argv[i], "--repeats") && i + 1 < argc)
                        repeats = atoi(argv[++i]);
                else if (!strcmp(argv[i], "--no-python"))
                        python = 0;
        }
        if (repeats < 1 || repeats > 64)
                repeats = 5;
        if (!(store = drv_schema_store_new(&conf, errstr, sizeof(errstr)))) {
                fprintf(stderr, "bench_decode: %s\n", errstr);
                return 70;
        }
        make_records(store, &r, records);
        iface = raw_iface(&schema);
        /* interleave the two C runs so drift hits both alike */
        for (i = 0; i < repeats; i++) {
                a[i] = run_raw(iface, &r);
                f[i] = run_raw_fresh(iface, &r);
                d[i] = run_drover(store, &r);
        }
        dm = median(d, repeats);
        am = median(a, repeats);
        fm = median(f, repeats);
        if (python)
                pm = run_python(&r, repeats);
        printf("{\"bench\":\"decode\",\"records\":%zu,\"repeats\":%d,"
               "\"drover_rps\":%.0f,\"avro_c_raw_rps\":%.0f,"
               "\"avro_c_fresh_value_rps\":%.0f,"
               "\"python_avro_rps\":%.0f,\"ratio_vs_raw\":%.3f,"
               "\"ratio_vs_fresh_value\":%.3f,"
               "\"ratio_vs_python\":%.2f,\"goal_ratio_vs_raw\":0.8}\n",
               records, repeats, dm, am, fm, pm, dm / am, dm / fm,
               pm > 0 ? dm / pm : 0.0);
        for (i = 0; i < (int)r.n; i++)
                free(r.buf[i]);
        free(r.buf);
        free(r.len);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        drv_schema_store_destroy(store);
        return 0;
}
