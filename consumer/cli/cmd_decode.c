/*
 * drover - consumer/cli/cmd_decode.c: 'drover decode'.
 *
 * Reads one task record (either wire format) from stdin and prints it as
 * one JSON object, or one error line: exit 0, 65 (the record is bad) or
 * 69 (the schema registry could not be reached).
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void decode_usage(FILE *fp) {
        fprintf(fp,
                "usage: drover decode [--registry URL] [--reader-version 1|2]"
                " < record\n\n"
                "Print a migration task record (Avro single-object or "
                "Confluent framing)\nas JSON.  --registry defaults to "
                "SCHEMA_REGISTRY_URL.\n");
}

/* All of stdin, up to max + 1 bytes (so an oversized record is seen as
 * such).  NULL on a read error or out of memory. */
static unsigned char *read_stdin(size_t max, size_t *lenp) {
        size_t cap = 4096, len = 0, n;
        unsigned char *buf = malloc(cap), *nb;

        while (buf) {
                if (len == cap) {
                        if (cap > max)
                                break;
                        cap *= 2;
                        if (!(nb = realloc(buf, cap))) {
                                free(buf);
                                return NULL;
                        }
                        buf = nb;
                }
                n = fread(buf + len, 1, cap - len, stdin);
                len += n;
                if (n == 0)
                        break;
        }
        if (buf && ferror(stdin)) {
                free(buf);
                return NULL;
        }
        *lenp = len;
        return buf;
}

enum { DECODE_REGISTRY = DRV_CLI_LONG, DECODE_READER_VERSION };

static const struct option decode_options[] = {
    {"registry", required_argument, NULL, DECODE_REGISTRY},
    {"reader-version", required_argument, NULL, DECODE_READER_VERSION},
    {NULL, 0, NULL, 0},
};

/* drv_cli_opt_fn: 0 ok, -1 usage error. */
static int decode_opt(void *opaque, int opt, const char *arg) {
        drv_schema_conf_t *conf = opaque;

        switch (opt) {
        case DECODE_REGISTRY:
                return conf->registry_url = arg, 0;
        case DECODE_READER_VERSION:
                conf->reader_version = atoi(arg);
                if (conf->reader_version != 1 && conf->reader_version != 2) {
                        drv_cli_error("--reader-version must be 1 or 2");
                        return -1;
                }
                return 0;
        default: /* '?', ':', an operand */
                drv_cli_error("unknown or incomplete option \"%s\" (see "
                              "'drover decode --help')",
                              arg);
                return -1;
        }
}

static int parse_args(int argc, char **argv, drv_schema_conf_t *conf) {
        return drv_cli_getopt(argc, argv, "", decode_options, decode_opt, conf)
                   ? -1
                   : 0;
}

int drv_cmd_decode(int argc, char **argv) {
        drv_schema_conf_t conf = {0};
        drv_schema_store_t *store;
        drv_task_t *task = NULL;
        unsigned char *buf;
        char errstr[512], *json;
        drv_err_t err;
        size_t len = 0;

        if (drv_cli_wants_help(argc, argv)) {
                decode_usage(stdout);
                return DRV_EXIT_OK;
        }
        conf.registry_url = getenv("SCHEMA_REGISTRY_URL");
        if (parse_args(argc, argv, &conf))
                return DRV_EXIT_USAGE;
        if (!(store = drv_schema_store_new(&conf, errstr, sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                return DRV_EXIT_SOFTWARE;
        }
        if (!(buf = read_stdin(1024 * 1024, &len))) {
                drv_schema_store_destroy(store);
                drv_cli_error("cannot read the record from stdin");
                return DRV_EXIT_DATAERR;
        }
        err = drv_task_decode(store, buf, len, &task, errstr, sizeof(errstr));
        free(buf);
        drv_schema_store_destroy(store);
        if (err) {
                drv_cli_error("%s", errstr);
                return drv_err_exit_code(err);
        }
        json = drv_task_to_json(task);
        drv_task_destroy(task);
        if (!json) {
                drv_cli_error("out of memory printing the task");
                return DRV_EXIT_SOFTWARE;
        }
        printf("%s\n", json);
        free(json);
        return DRV_EXIT_OK;
}
