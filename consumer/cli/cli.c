/*
 * drover - consumer/cli/cli.c: helpers shared by the subcommands.
 */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void drv_cli_error(const char *fmt, ...) {
        char line[1024], safe[4096];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        /* messages carry task, plan and server text: one safe line */
        fprintf(stderr, "drover: %s\n",
                drv_text_escape(line, safe, sizeof(safe)));
}

int drv_cli_wants_help(int argc, char **argv) {
        int i;

        for (i = 1; i < argc; i++)
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
                        return 1;
        return 0;
}

/* The option getopt_long just refused, as written: "-c" for a short one,
 * else the argv element (getopt_long has moved optind past it). */
static const char *refused(char **argv, char shortname[3]) {
        if (optopt > 0 && optopt < DRV_CLI_LONG) {
                shortname[0] = '-';
                shortname[1] = (char)optopt;
                shortname[2] = '\0';
                return shortname;
        }
        return argv[optind - 1];
}

int drv_cli_getopt(int argc, char **argv, const char *shortopts,
                   const struct option *longopts, drv_cli_opt_fn on_opt,
                   void *opaque) {
        char optstring[64], shortname[3];
        const char *arg;
        int c, r, i;

        /* "-": operands come back in order as 1 (the old hand parsers'
         * order, whatever POSIXLY_CORRECT says); ":": a missing value is
         * ':', not '?' */
        snprintf(optstring, sizeof(optstring), "-:%s", shortopts);
        optind = 0; /* glibc and musl: start over, a fresh argv */
        opterr = 0;
        while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
                if (c == '?')
                        arg = refused(argv, shortname);
                else if (c == ':')
                        arg = argv[optind - 1];
                else
                        arg = optarg;
                if ((r = on_opt(opaque, c, arg)))
                        return r;
        }
        for (i = optind; i < argc; i++) /* after "--" */
                if ((r = on_opt(opaque, 1, argv[i])))
                        return r;
        return 0;
}
