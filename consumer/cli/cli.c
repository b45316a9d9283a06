/*
 * drover - consumer/cli/cli.c: helpers shared by the subcommands.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void drv_cli_error(const char *fmt, ...) {
        char line[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        fprintf(stderr, "drover: %s\n", line);
}

int drv_cli_wants_help(int argc, char **argv) {
        int i;

        for (i = 1; i < argc; i++)
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
                        return 1;
        return 0;
}
