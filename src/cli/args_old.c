#include "cli/args_old.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"

void ddps_args_help(const char *usage, const ddps_opt *opts, int nopts) {
    printf("%s\n\noptions:\n", usage);
    for (int i = 0; i < nopts; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].meta ? " " : "", opts[i].meta ? opts[i].meta : "");
        printf("  %-26s %s\n", left, opts[i].help);
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

static int old_set_value(const ddps_opt *o, const char *v, ddps_err *err) {
    char *end;
    switch (o->type) {
    case OPT_STR: *(const char **)o->dest = v; return 0;
    case OPT_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno) return ddps_fail(err, "%s %s: not an integer", o->name, v);
        if ((o->lo != 0 || o->hi != 0) && (x < o->lo || x > o->hi))
            return ddps_fail(err, "%s %s: must be between %.0f and %.0f", o->name, v, o->lo, o->hi);
        *(int *)o->dest = (int)x;
        return 0;
    }
    case OPT_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) return ddps_fail(err, "%s %s: not a number", o->name, v);
        if ((o->lo != 0 || o->hi != 0) && (x < o->lo || x > o->hi))
            return ddps_fail(err, "%s %s: must be between %g and %g", o->name, v, o->lo, o->hi);
        *(double *)o->dest = x;
        return 0;
    }
    case OPT_FLAG: *(int *)o->dest = 1; return 0;
    }
    return -1;
}

int ddps_args_parse(const char *usage, const ddps_opt *opts, int nopts, int argc, char **argv, char **pos,
                    int *npos, ddps_err *err) {
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
            ddps_args_help(usage, opts, nopts);
            return 1;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const ddps_opt *o = NULL;
        for (int k = 0; k < nopts; k++)
            if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, a, nlen) == 0) o = &opts[k];
        if (!o) return ddps_fail(err, "%.*s: unknown option (see --help)", (int)nlen, a);
        if (o->type == OPT_FLAG) {
            if (eq) return ddps_fail(err, "%s: takes no value", o->name);
            old_set_value(o, "", err);
            continue;
        }
        const char *v;
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return ddps_fail(err, "%s: missing value", o->name);
        if (old_set_value(o, v, err) != 0) return -1;
    }
    return 0;
}

int ddps_parse_int_list(const char *flag, const char *s, int *out, int max, int lo, int hi, ddps_err *err) {
    int n = 0;
    const char *p = s;
    if (!*p) return ddps_fail(err, "%s: empty list", flag);
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || (*end && *end != ','))
            return ddps_fail(err, "%s %s: expected integers separated by commas", flag, s);
        if (x < lo || x > hi) return ddps_fail(err, "%s %s: %ld is outside %d..%d", flag, s, x, lo, hi);
        if (n == max) return ddps_fail(err, "%s %s: at most %d values", flag, s, max);
        out[n++] = (int)x;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p) return ddps_fail(err, "%s %s: trailing comma", flag, s);
    }
    return n;
}

int ddps_split_names(const char *flag, const char *s, char **buf, const char ***names, int *n, ddps_err *err) {
    *buf = ddps_strdup(s);
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *names = ddps_malloc(cap * sizeof **names);
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
            return ddps_fail(err, "%s %s: empty name", flag, s);
        }
        (*names)[(*n)++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

