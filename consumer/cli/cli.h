/*
 * drover - consumer/cli/cli.h: the command line (the public header of
 * consumer/cli/).
 *
 * Each subcommand of DESIGN.md section 9 lives in consumer/cli/cmd_<name>.c
 * as `int drv_cmd_<name>(int argc, char **argv)`, where argv[0] is the
 * subcommand's name; it returns the process exit code (DRV_EXIT_*).
 * consumer/ is three modules, each a static library with one public
 * header; dependencies point one way: cli -> worker -> admin -> dlq.
 */
#ifndef DRV_CLI_H
#define DRV_CLI_H

#include "dlq.h"

#ifdef __cplusplus
extern "C" {
#endif

int drv_cmd_worker(int argc, char **argv);
int drv_cmd_submit(int argc, char **argv);
int drv_cmd_status(int argc, char **argv);
int drv_cmd_lag(int argc, char **argv);
int drv_cmd_replay(int argc, char **argv);
int drv_cmd_dlq(int argc, char **argv);
int drv_cmd_decode(int argc, char **argv);
int drv_cmd_plan(int argc, char **argv);
/* 'drover plan run ...' (argv[0] is "run"), called by drv_cmd_plan. */
int drv_cmd_plan_run(int argc, char **argv);

/* Print "drover: <message>\n" on stderr: the one-line error every command
 * ends with. */
void drv_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 if argv holds -h or --help. */
int drv_cli_wants_help(int argc, char **argv);

/* The replicas an autoscaler should run for `total_lag`: ceil(total_lag /
 * threshold), 0 when nothing lags, capped at `cap` (the partition count,
 * or the lagging partitions).  The rule 'drover lag' prints. */
int64_t drv_lag_suggested_replicas(int64_t total_lag, long threshold,
                                   int64_t cap);

#ifdef __cplusplus
}
#endif
#endif /* DRV_CLI_H */
