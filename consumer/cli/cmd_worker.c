/*
 * drover - consumer/cli/cmd_worker.c: 'drover worker'.
 *
 * Configuration: drover.yaml (--config, or ./drover.yaml if present),
 * then the environment, then flags.  Then the worker runs until SIGTERM.
 */
#include "cli.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *fp) {
        fprintf(
            fp,
            "usage: drover worker [--config FILE] [options]\n\n"
            "Join the consumer group and process migration tasks: decode,\n"
            "resolve the plan, run its steps on PostgreSQL, and commit the\n"
            "status events, dead letters and offsets in one Kafka "
            "transaction.\n\n"
            "options (each also a drover.yaml key; flags win over the\n"
            "environment, which wins over the file):\n"
            "  --config FILE        drover.yaml (default ./drover.yaml if "
            "present)\n"
            "  --brokers LIST       brokers            (DROVER_BROKERS)\n"
            "  --topic NAME         tasks topic        (DROVER_TOPIC)\n"
            "  --group NAME         consumer group     (DROVER_GROUP)\n"
            "  --instance NAME      stable instance name, part of the\n"
            "                       transactional id   (DROVER_INSTANCE)\n"
            "  --catalog DIR        local catalog      (DROVER_CATALOG_DIR)\n"
            "  --database URL       PostgreSQL         (DATABASE_URL)\n"
            "  --backstage URL      Backstage catalog  (BACKSTAGE_URL, "
            "BACKSTAGE_TOKEN)\n"
            "  --http-listen ADDR   admin server, \"\" disables "
            "(DROVER_HTTP_LISTEN)\n"
            "  --concurrency N      executor threads (default 4)\n"
            "  --allow-sql          permit raw `sql` steps\n"
            "  --set KEY=VALUE      any drover.yaml key, e.g.\n"
            "                       commit_interval_ms=100, "
            "assignment_strategy=range\n"
            "  -X PROP=VALUE        a librdkafka property (same as\n"
            "                       --set kafka.PROP=VALUE)\n\n"
            "SIGTERM/SIGINT drain in-flight tasks (drain_timeout_ms), "
            "commit, leave\n"
            "the group and exit 0; a second signal exits at once.\n");
}

static const struct {
        const char *flag, *key;
} flag_keys[] = {
    {"--brokers", "brokers"},
    {"--topic", "topic"},
    {"--group", "group"},
    {"--instance", "instance"},
    {"--catalog", "catalog.dir"},
    {"--database", "database.url"},
    {"--backstage", "backstage.url"},
    {"--http-listen", "http.listen"},
    {"--concurrency", "concurrency"},
};

/* KEY=VALUE of --set / -X into the config. */
static drv_err_t set_kv(drv_config_t *conf, const char *prefix, const char *kv,
                        const char *flag, char *errstr, size_t errstr_size) {
        const char *eq = strchr(kv, '=');
        char key[300], origin[64];

        if (!eq || eq == kv)
                return drv_err_set(errstr, errstr_size, DRV_ERR_USAGE,
                                   "%s expects KEY=VALUE, not \"%s\"", flag,
                                   kv);
        snprintf(key, sizeof(key), "%s%.*s", prefix, (int)(eq - kv), kv);
        snprintf(origin, sizeof(origin), "flag %s", flag);
        return drv_config_set(conf, key, eq + 1, origin, errstr, errstr_size);
}

static drv_err_t apply_flag(drv_config_t *conf, const char *flag,
                            const char *val, char *errstr, size_t errstr_size) {
        char origin[64];
        size_t i;

        if (!strcmp(flag, "--set"))
                return set_kv(conf, "", val, flag, errstr, errstr_size);
        if (!strcmp(flag, "-X"))
                return set_kv(conf, "kafka.", val, flag, errstr, errstr_size);
        for (i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++)
                if (!strcmp(flag, flag_keys[i].flag)) {
                        snprintf(origin, sizeof(origin), "flag %s", flag);
                        return drv_config_set(conf, flag_keys[i].key, val,
                                              origin, errstr, errstr_size);
                }
        return drv_err_set(errstr, errstr_size, DRV_ERR_USAGE,
                           "unknown option \"%s\" (see 'drover worker "
                           "--help')",
                           flag);
}

/* Find --config first: the file comes before the environment. */
static const char *find_config(int argc, char **argv) {
        int i;

        for (i = 1; i < argc - 1; i++)
                if (!strcmp(argv[i], "--config"))
                        return argv[i + 1];
        return access("drover.yaml", R_OK) == 0 ? "drover.yaml" : NULL;
}

static drv_err_t load_config(drv_config_t *conf, int argc, char **argv,
                             char *errstr, size_t errstr_size) {
        const char *file = find_config(argc, argv);
        drv_err_t err;
        int i;

        if (file &&
            (err = drv_config_load_file(conf, file, errstr, errstr_size)))
                return err;
        if ((err = drv_config_load_env(conf, errstr, errstr_size)))
                return err;
        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--allow-sql")) {
                        conf->allow_sql = 1;
                        continue;
                }
                if (i + 1 >= argc)
                        return drv_err_set(errstr, errstr_size, DRV_ERR_USAGE,
                                           "option \"%s\" needs a value",
                                           argv[i]);
                if (strcmp(argv[i], "--config") &&
                    (err = apply_flag(conf, argv[i], argv[i + 1], errstr,
                                      errstr_size)))
                        return err;
                i++;
        }
        return drv_config_finish(conf, errstr, errstr_size);
}

int drv_cmd_worker(int argc, char **argv) {
        drv_config_t *conf;
        drv_worker_t *w;
        char errstr[1024];
        drv_err_t err;
        int rc;

        if (drv_cli_wants_help(argc, argv)) {
                usage(stdout);
                return DRV_EXIT_OK;
        }
        if (!(conf = drv_config_new())) {
                drv_cli_error("out of memory");
                return DRV_EXIT_SOFTWARE;
        }
        if ((err = load_config(conf, argc, argv, errstr, sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                drv_config_destroy(conf);
                return drv_err_exit_code(err);
        }
        if (!(w = drv_worker_new(conf, &err, errstr, sizeof(errstr)))) {
                drv_cli_error("%s", errstr);
                drv_config_destroy(conf);
                return drv_err_exit_code(err);
        }
        errstr[0] = '\0';
        if ((rc = drv_worker_run(w, errstr, sizeof(errstr))) && errstr[0])
                drv_cli_error("%s", errstr);
        drv_worker_destroy(w);
        drv_config_destroy(conf);
        drv_log(DRV_LOG_INFO, "worker exiting with status %d", rc);
        return rc;
}
