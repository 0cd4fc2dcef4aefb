/* TEMPORARY (removed in the next commits): the old parser, until score/select/distill/merge/report move to cli/args.h. */
/* A small declarative parser for long options: "--name value" or
 * "--name=value". Errors name the flag and the value. */
#ifndef DDPS_CLI_ARGS_OLD_H
#define DDPS_CLI_ARGS_OLD_H

#include "util/err.h"

typedef enum {
    OPT_STR,    /* const char **            */
    OPT_INT,    /* int *, checked against [lo, hi] */
    OPT_DOUBLE, /* double *, checked against [lo, hi] */
    OPT_FLAG,   /* int *, set to 1, takes no value */
} ddps_opt_type;

typedef struct {
    const char *name; /* "--ipc" */
    ddps_opt_type type;
    void *dest;
    const char *meta; /* value name for --help, e.g. "N" */
    const char *help;
    double lo, hi;    /* range for OPT_INT / OPT_DOUBLE (ignored when lo == hi == 0) */
} ddps_opt;

/* Parses argv[1..argc-1] (argv[0] is the command name). Positional
 * arguments are collected into pos (caller provides room for argc). Returns
 * 0 when parsed, 1 when --help was printed (exit 0), -1 on error. */
int ddps_args_parse(const char *usage, const ddps_opt *opts, int nopts, int argc, char **argv, char **pos,
                    int *npos, ddps_err *err);
void ddps_args_help(const char *usage, const ddps_opt *opts, int nopts);

/* Parses "1,10,50" into up to max ints within [lo, hi]; returns the count or -1. */
int ddps_parse_int_list(const char *flag, const char *s, int *out, int max, int lo, int hi, ddps_err *err);

/* Splits "a,b,c" into names pointing into *buf (heap, free both *buf and
 * *names); empty names are an error naming flag, and then nothing stays
 * allocated (*buf and *names are NULL). */
int ddps_split_names(const char *flag, const char *s, char **buf, const char ***names, int *n, ddps_err *err);

#endif
