/*
 * drover - the command-line entry point: dispatch to subcommands.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
} commands[] = {
    {"worker", drv_cmd_worker, "join the group and process tasks"},
    {"submit", drv_cmd_submit, "produce migration tasks"},
    {"status", drv_cmd_status, "the migration table"},
    {"lag", drv_cmd_lag, "per-partition lag and suggested replicas"},
    {"replay", drv_cmd_replay, "reprocess the stream from a time or offset"},
    {"dlq", drv_cmd_dlq, "list and redrive dead letters"},
    {"decode", drv_cmd_decode, "print a task record (stdin) as JSON"},
    {"plan", drv_cmd_plan, "check, show or run a migration plan"},
    {"repair", drv_cmd_repair, "fix a dataset's failed ledger rows, audited"},
    {"rollback", drv_cmd_rollback, "undo a dataset's migrations to a version"},
};

static void usage(FILE *fp) {
        size_t i;

        fprintf(fp, "usage: drover <command> [options]\n\n"
                    "drover runs dataset migrations as background work on "
                    "Kafka.\n\ncommands:\n");
        for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(fp, "  %-8s %s\n", commands[i].name,
                        commands[i].summary);
        fprintf(fp, "\n'drover <command> --help' describes a command.\n"
                    "Exit codes: 0 ok, 2 usage, 65 bad input, "
                    "69 service unavailable, 70 internal.\n");
}

int main(int argc, char **argv) {
        size_t i;

        if (argc < 2) {
                usage(stderr);
                return DRV_EXIT_USAGE;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                usage(stdout);
                return DRV_EXIT_OK;
        }
        if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
#ifdef DROVER_TEST_HOOKS
                printf("drover %s (test hooks compiled in)\n", DROVER_VERSION);
#else
                printf("drover %s\n", DROVER_VERSION);
#endif
                return DRV_EXIT_OK;
        }
        for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(argv[1], commands[i].name))
                        return commands[i].run(argc - 1, argv + 1);
        drv_cli_error("unknown command \"%s\" (see 'drover --help')", argv[1]);
        return DRV_EXIT_USAGE;
}
