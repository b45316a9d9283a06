/*
 * drover - consumer/cmd_dlq.c: 'drover dlq'.
 *
 * Not built yet: says so plainly and exits 2 rather than pretend.
 */
#include "consumer.h"

#include <stdio.h>

int drv_cmd_dlq(int argc, char **argv) {
        (void)argc;
        (void)argv;
        drv_cli_error("the 'dlq' command is not available in this build yet");
        return DRV_EXIT_USAGE;
}
