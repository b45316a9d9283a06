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
int drv_cmd_repair(int argc, char **argv);
int drv_cmd_rollback(int argc, char **argv);
/* 'drover plan run ...' (argv[0] is "run"), called by drv_cmd_plan. */
int drv_cmd_plan_run(int argc, char **argv);

/* Print the repair audit rows of drv_repair_history (a JSON array), one
 * line each, on stdout: 'drover repair --history' and 'drover status'. */
void drv_cli_print_repairs(const json_t *arr);

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

/*
 * Command-line options: every command parses its argv with getopt_long
 * through drv_cli_getopt.  A long option without a short form takes a
 * val from DRV_CLI_LONG up, so an error can name it as it was written.
 */
#define DRV_CLI_LONG 256

/* What a command does with one element of its argv: opt is the option's
 * val and arg its value (NULL for an option without one), or
 *   1    an operand (arg),
 *   '?'  an unknown or ambiguous option, or an option given a value it
 *        does not take (arg: the option as written),
 *   ':'  an option without its value (arg: the option).
 * Returns 0 to go on, else a value drv_cli_getopt returns at once (the
 * command has printed its error, or wants to stop, e.g. after --help). */
typedef int (*drv_cli_opt_fn)(void *opaque, int opt, const char *arg);

struct option;

/* Parse argv[1..argc) (argv[0] is the command's name) with getopt_long:
 * shortopts as getopt's (e.g. "X:", "" for none), longopts getopt_long's
 * table ending in a zero row.  Options and operands are handed to on_opt
 * in the order they were given; after "--" the rest are operands.  Long
 * options may be abbreviated to any unambiguous prefix (getopt_long).
 * getopt's state is reset first, so a process may parse any number of
 * times; getopt prints nothing.  Returns 0 or on_opt's first non-zero
 * value. */
int drv_cli_getopt(int argc, char **argv, const char *shortopts,
                   const struct option *longopts, drv_cli_opt_fn on_opt,
                   void *opaque);

#ifdef __cplusplus
}
#endif
#endif /* DRV_CLI_H */
