/*
 * drover - consumer/cli/cmd_worker.c: 'drover worker'.
 *
 * Configuration: drover.yaml (--config, or ./drover.yaml if present),
 * then the environment, then flags.  Then the worker runs until SIGTERM.
 */
#include "cli.h"
#include "worker.h"

#include <getopt.h>
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
            "                       IPV4:PORT; :PORT is 127.0.0.1, "
            "*:PORT every address\n"
            "  --concurrency N      executor threads (default 4)\n"
            "  --allow-sql          permit raw `sql` steps\n"
            "  --set KEY=VALUE      any drover.yaml key, e.g.\n"
            "                       commit_interval_ms=100, "
            "assignment_strategy=range\n"
            "  -X PROP=VALUE        a librdkafka property (same as\n"
            "                       --set kafka.PROP=VALUE)\n\n"
            "A plan with spec.requiresStaging runs only once it completed "
            "on the\n"
            "staging database (staging.database_url, "
            "DROVER_STAGING_DATABASE_URL).\n"
            "Behind a transaction pooler, plans with batched steps connect "
            "to\n"
            "database.session_url (DROVER_SESSION_DATABASE_URL), one "
            "connection per run.\n\n"
            "SIGTERM/SIGINT drain in-flight tasks (drain_timeout_ms), "
            "commit, leave\n"
            "the group and exit 0; a second signal exits at once.\n");
}

enum {
        W_CONFIG = DRV_CLI_LONG,
        W_SET,
        W_ALLOW_SQL,
        W_KEY, /* W_KEY + n: the flag sets flag_keys[n] */
        W_BROKERS = W_KEY,
        W_TOPIC,
        W_GROUP,
        W_INSTANCE,
        W_CATALOG,
        W_DATABASE,
        W_BACKSTAGE,
        W_HTTP_LISTEN,
        W_CONCURRENCY,
        W_END
};

/* The drover.yaml key each flag from W_KEY up sets. */
static const char *const flag_keys[W_END - W_KEY] = {
    [W_BROKERS - W_KEY] = "brokers",
    [W_TOPIC - W_KEY] = "topic",
    [W_GROUP - W_KEY] = "group",
    [W_INSTANCE - W_KEY] = "instance",
    [W_CATALOG - W_KEY] = "catalog.dir",
    [W_DATABASE - W_KEY] = "database.url",
    [W_BACKSTAGE - W_KEY] = "backstage.url",
    [W_HTTP_LISTEN - W_KEY] = "http.listen",
    [W_CONCURRENCY - W_KEY] = "concurrency",
};

static const struct option worker_options[] = {
    {"config", required_argument, NULL, W_CONFIG},
    {"set", required_argument, NULL, W_SET},
    {"allow-sql", no_argument, NULL, W_ALLOW_SQL},
    {"brokers", required_argument, NULL, W_BROKERS},
    {"topic", required_argument, NULL, W_TOPIC},
    {"group", required_argument, NULL, W_GROUP},
    {"instance", required_argument, NULL, W_INSTANCE},
    {"catalog", required_argument, NULL, W_CATALOG},
    {"database", required_argument, NULL, W_DATABASE},
    {"backstage", required_argument, NULL, W_BACKSTAGE},
    {"http-listen", required_argument, NULL, W_HTTP_LISTEN},
    {"concurrency", required_argument, NULL, W_CONCURRENCY},
    {NULL, 0, NULL, 0},
};

/* The flags, read before the file and the environment are loaded and
 * applied after them: a flag wins.  A usage error stops the reading; it
 * is reported after the errors of the file, the environment and the
 * flags before it, as when each flag was applied as it was read. */
typedef struct worker_flags_s {
        const char *config; /* the first --config */
        struct {
                int opt;
                const char *val;
        } * flags;
        int flags_cnt;
        drv_err_t err; /* DRV_ERR_USAGE once a flag was refused */
        char errstr[300];
} worker_flags_t;

/* drv_cli_opt_fn: 0, or -1 with wf->err set. */
static int worker_opt(void *opaque, int opt, const char *arg) {
        worker_flags_t *wf = opaque;

        switch (opt) {
        case W_CONFIG:
                if (!wf->config)
                        wf->config = arg;
                return 0;
        case ':':
                wf->err =
                    drv_err_set(wf->errstr, sizeof(wf->errstr), DRV_ERR_USAGE,
                                "option \"%s\" needs a value", arg);
                return -1;
        case '?':
        case 1:
                wf->err =
                    drv_err_set(wf->errstr, sizeof(wf->errstr), DRV_ERR_USAGE,
                                "unknown option \"%s\" (see 'drover "
                                "worker --help')",
                                arg);
                return -1;
        default:
                wf->flags[wf->flags_cnt].opt = opt;
                wf->flags[wf->flags_cnt++].val = arg;
                return 0;
        }
}

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

/* The long name of option val opt ("brokers"). */
static const char *flag_name(int opt) {
        const struct option *lo;

        for (lo = worker_options; lo->name && lo->val != opt; lo++)
                ;
        return lo->name ? lo->name : "?";
}

static drv_err_t apply_flag(drv_config_t *conf, int opt, const char *val,
                            char *errstr, size_t errstr_size) {
        char origin[64];

        switch (opt) {
        case W_ALLOW_SQL:
                conf->allow_sql = 1;
                return DRV_OK;
        case W_SET:
                return set_kv(conf, "", val, "--set", errstr, errstr_size);
        case 'X':
                return set_kv(conf, "kafka.", val, "-X", errstr, errstr_size);
        default:
                snprintf(origin, sizeof(origin), "flag --%s", flag_name(opt));
                return drv_config_set(conf, flag_keys[opt - W_KEY], val, origin,
                                      errstr, errstr_size);
        }
}

static drv_err_t load_config(drv_config_t *conf, int argc, char **argv,
                             char *errstr, size_t errstr_size) {
        worker_flags_t wf = {0};
        drv_err_t err;
        int i;

        if (!(wf.flags = calloc((size_t)argc, sizeof(*wf.flags))))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        drv_cli_getopt(argc, argv, "X:", worker_options, worker_opt, &wf);
        if (!wf.config && access("drover.yaml", R_OK) == 0)
                wf.config = "drover.yaml";
        if (!(wf.config && (err = drv_config_load_file(conf, wf.config, errstr,
                                                       errstr_size))))
                err = drv_config_load_env(conf, errstr, errstr_size);
        for (i = 0; !err && i < wf.flags_cnt; i++)
                err = apply_flag(conf, wf.flags[i].opt, wf.flags[i].val, errstr,
                                 errstr_size);
        free(wf.flags);
        if (!err && wf.err)
                err = drv_err_set(errstr, errstr_size, wf.err, "%s", wf.errstr);
        return err ? err : drv_config_finish(conf, errstr, errstr_size);
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
