/*
 * drover - consumer/cmd_plan.c: 'drover plan'.
 *
 * Not built yet: says so plainly and exits 2 rather than pretend.
 */
#include "consumer.h"

#include <stdio.h>

int drv_cmd_plan(int argc, char **argv) {
        (void)argc;
        (void)argv;
        drv_cli_error("the 'plan' command is not available in this build yet");
        return DRV_EXIT_USAGE;
}
