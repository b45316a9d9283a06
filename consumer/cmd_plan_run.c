/*
 * drover - consumer/cmd_plan_run.c: 'drover plan run'.
 *
 * Not built yet: says so plainly and exits 2 rather than pretend.
 */
#include "consumer.h"

int drv_cmd_plan_run(int argc, char **argv) {
        (void)argc;
        (void)argv;
        drv_cli_error("'plan run' is not available in this build yet");
        return DRV_EXIT_USAGE;
}
