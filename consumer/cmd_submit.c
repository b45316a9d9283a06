/*
 * drover - consumer/cmd_submit.c: 'drover submit'.
 *
 * Not built yet: says so plainly and exits 2 rather than pretend.
 */
#include "consumer.h"

#include <stdio.h>

int drv_cmd_submit(int argc, char **argv) {
        (void)argc;
        (void)argv;
        drv_cli_error(
            "the 'submit' command is not available in this build yet");
        return DRV_EXIT_USAGE;
}
