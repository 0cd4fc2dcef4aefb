/* The CLI's option parser, error helpers and allocation (cli/args.h). */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Formats into err with status st; newlines become spaces (one line). */
static void vfail(ddps_error *err, ddps_status st, const char *fmt, va_list ap) {
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    err->status = st;
    for (char *p = err->message; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

int cli_fail(ddps_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vfail(err, DDPS_ERR_FAILURE, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int cli_fail_usage(ddps_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vfail(err, DDPS_ERR_USAGE, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void cli_error_clear(ddps_error *err) {
    err->status = DDPS_OK;
    err->message[0] = 0;
}

int cli_exit_code(const ddps_error *err) {
    if (err->status == DDPS_OK) return 0;
    return err->status == DDPS_ERR_USAGE ? 2 : 1;
}

void *cli_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "ddps: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

char *cli_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = cli_malloc(n);
    memcpy(d, s, n);
    return d;
}

void cli_args_help(const char *usage, const cli_opt *opts, int nopts) {
    printf("%s\n\noptions:\n", usage);
    for (int i = 0; i < nopts; i++) {
        if (!opts[i].help) continue; /* an alias kept for compatibility */
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].meta ? " " : "", opts[i].meta ? opts[i].meta : "");
        printf("  %-26s %s\n", left, opts[i].help);
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

/* Stores v into o's destination after checking its type and range; 0 or -1 (usage). */
static int set_value(const cli_opt *o, const char *v, ddps_error *err) {
    char *end;
    switch (o->type) {
    case CLI_OPT_STR: *(const char **)o->dest = v; return 0;
    case CLI_OPT_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno) return cli_fail_usage(err, "%s %s: not an integer", o->name, v);
        if ((o->lo != 0 || o->hi != 0) && (x < o->lo || x > o->hi))
            return cli_fail_usage(err, "%s %s: must be between %.0f and %.0f", o->name, v, o->lo, o->hi);
        *(int *)o->dest = (int)x;
        return 0;
    }
    case CLI_OPT_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) return cli_fail_usage(err, "%s %s: not a number", o->name, v);
        if ((o->lo != 0 || o->hi != 0) && (x < o->lo || x > o->hi))
            return cli_fail_usage(err, "%s %s: must be between %g and %g", o->name, v, o->lo, o->hi);
        *(double *)o->dest = x;
        return 0;
    }
    case CLI_OPT_FLAG: *(int *)o->dest = 1; return 0;
    }
    return cli_fail_usage(err, "%s: unknown option type", o->name);
}

/* The option of opts named by the first nlen characters of a, or NULL. */
static const cli_opt *find_opt(const cli_opt *opts, int nopts, const char *a, size_t nlen) {
    for (int k = 0; k < nopts; k++)
        if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, a, nlen) == 0) return &opts[k];
    return NULL;
}

int cli_args_parse(const char *usage, const cli_opt *opts, int nopts, int argc, char **argv, char **pos, int *npos,
                   ddps_error *err) {
    *npos = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == 0) {
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_args_help(usage, opts, nopts);
            return 1;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = find_opt(opts, nopts, a, nlen);
        if (!o) return cli_fail_usage(err, "%.*s: unknown option (see --help)", (int)nlen, a);
        if (o->type == CLI_OPT_FLAG) {
            if (eq) return cli_fail_usage(err, "%s: takes no value", o->name);
            *(int *)o->dest = 1;
            continue;
        }
        const char *v;
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return cli_fail_usage(err, "%s: missing value", o->name);
        if (set_value(o, v, err) != 0) return -1;
    }
    return 0;
}

int cli_args_options(const char *usage, const cli_opt *opts, int nopts, int argc, char **argv, ddps_error *err) {
    char **pos = cli_malloc(sizeof *pos * (size_t)(argc > 0 ? argc : 1));
    int npos = 0;
    int rc = cli_args_parse(usage, opts, nopts, argc, argv, pos, &npos, err);
    if (rc == 0 && npos > 0) rc = cli_fail_usage(err, "%s: unexpected argument (see --help)", pos[0]);
    free(pos);
    return rc;
}

int cli_parse_int_list(const char *flag, const char *s, int *out, int max, int lo, int hi, ddps_error *err) {
    int n = 0;
    const char *p = s;
    if (!*p) return cli_fail_usage(err, "%s: empty list", flag);
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || (*end && *end != ','))
            return cli_fail_usage(err, "%s %s: expected integers separated by commas", flag, s);
        if (x < lo || x > hi) return cli_fail_usage(err, "%s %s: %ld is outside %d..%d", flag, s, x, lo, hi);
        if (n == max) return cli_fail_usage(err, "%s %s: at most %d values", flag, s, max);
        out[n++] = (int)x;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p) return cli_fail_usage(err, "%s %s: trailing comma", flag, s);
    }
    return n;
}

int cli_split_names(const char *flag, const char *s, char **buf, const char ***names, int *n, ddps_error *err) {
    *buf = cli_strdup(s);
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *names = cli_malloc(cap * sizeof **names);
    *n = 0;
    char *p = *buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        if (!*p) { /* nothing left allocated on failure */
            free(*buf);
            free(*names);
            *buf = NULL;
            *names = NULL;
            *n = 0;
            return cli_fail_usage(err, "%s %s: empty name", flag, s);
        }
        (*names)[(*n)++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}
