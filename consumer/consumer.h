/*
 * drover - consumer/: the worker and the command line.
 *
 * Each subcommand of DESIGN.md section 9 lives in consumer/cmd_<name>.c
 * as `int drv_cmd_<name>(int argc, char **argv)`, where argv[0] is the
 * subcommand's name; it returns the process exit code (DRV_EXIT_*).
 */
#ifndef DRV_CONSUMER_H
#define DRV_CONSUMER_H

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

#ifdef __cplusplus
}
#endif
#endif /* DRV_CONSUMER_H */
