/* Unit tests of the CLI's option parser (src/cli/args.c, compiled in):
 * --name value and --name=value, ranges, missing values, unknown flags,
 * flags, --help, integer lists and name lists, and the exit code derived
 * from the error status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "testlib.h"

/* The table every case parses with. */
typedef struct {
    const char *name;
    int n;
    double x;
    int flag;
} vals;

static int parse(vals *v, int argc, char **argv, char **pos, int *npos, ddps_error *err) {
    cli_opt opts[] = {
        {"--name", CLI_OPT_STR, &v->name, "S", "a string", 0, 0},
        {"--n", CLI_OPT_INT, &v->n, "N", "an int in 1..10", 1, 10},
        {"--x", CLI_OPT_DOUBLE, &v->x, "X", "a number in 0..1", 0.0, 1.0},
        {"--any", CLI_OPT_INT, &v->n, "N", "an int, no range", 0, 0},
        {"--flag", CLI_OPT_FLAG, &v->flag, NULL, "a flag", 0, 0},
    };
    memset(v, 0, sizeof *v);
    cli_error_clear(err);
    return cli_args_parse("usage: t", opts, 5, argc, argv, pos, npos, err);
}

#define ARGV(...) ((char *[]){"cmd", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"cmd", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(v, e, ...) parse(v, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), pos, &npos, e)

static void values(void) {
    vals v;
    ddps_error e;
    char *pos[8];
    int npos;
    CHECK(PARSE(&v, &e, "--name", "abc", "--n", "7", "--x", "0.25", "--flag") == 0);
    CHECK(v.name && strcmp(v.name, "abc") == 0 && v.n == 7 && v.x == 0.25 && v.flag == 1 && npos == 0);
    CHECK(e.status == DDPS_OK && cli_exit_code(&e) == 0);
    CHECK(PARSE(&v, &e, "--name=a=b", "--n=3", "p1", "--x=1", "p2") == 0);
    CHECK(v.name && strcmp(v.name, "a=b") == 0 && v.n == 3 && v.x == 1.0 && v.flag == 0);
    CHECK(npos == 2 && strcmp(pos[0], "p1") == 0 && strcmp(pos[1], "p2") == 0);
    /* after "--" everything is positional, "-" alone too */
    CHECK(PARSE(&v, &e, "-", "--", "--n", "5") == 0);
    CHECK(npos == 3 && strcmp(pos[0], "-") == 0 && strcmp(pos[1], "--n") == 0 && v.n == 0);
    /* no range given: any integer */
    CHECK(PARSE(&v, &e, "--any", "-12345") == 0 && v.n == -12345);
}

/* A failing parse: -1, status usage, exit code 2, message containing all of want (NULL-terminated). */
static void refused(const char *label, int rc, const ddps_error *e, const char *w1, const char *w2) {
    CHECKF(rc == -1 && e->status == DDPS_ERR_USAGE && cli_exit_code(e) == 2, "%s: rc %d status %d", label, rc,
           (int)e->status);
    CHECKF(strstr(e->message, w1) && (!w2 || strstr(e->message, w2)), "%s: message '%s'", label, e->message);
    CHECKF(!strchr(e->message, '\n'), "%s: more than one line", label);
}

static void errors(void) {
    vals v;
    ddps_error e;
    char *pos[8];
    int npos;
    refused("int above", PARSE(&v, &e, "--n", "11"), &e, "--n", "11");
    refused("int below", PARSE(&v, &e, "--n=0"), &e, "--n", "between 1 and 10");
    refused("int junk", PARSE(&v, &e, "--n", "3x"), &e, "--n 3x", "not an integer");
    refused("int empty", PARSE(&v, &e, "--n="), &e, "--n", "not an integer");
    refused("double above", PARSE(&v, &e, "--x", "1.5"), &e, "--x 1.5", "between 0 and 1");
    refused("double nan", PARSE(&v, &e, "--x", "nan"), &e, "--x nan", "not a number");
    refused("missing value", PARSE(&v, &e, "--name"), &e, "--name", "missing value");
    refused("unknown", PARSE(&v, &e, "--nope", "1"), &e, "--nope", "unknown option");
    refused("unknown with =", PARSE(&v, &e, "--nope=1"), &e, "--nope", "unknown option");
    refused("prefix is not a match", PARSE(&v, &e, "--na", "x"), &e, "--na", "unknown option");
    refused("flag with value", PARSE(&v, &e, "--flag=1"), &e, "--flag", "takes no value");
    /* the value out of range was not stored */
    CHECK(PARSE(&v, &e, "--n", "99") == -1 && v.n == 0);
}

static void help(void) {
    vals v;
    ddps_error e;
    char *pos[8];
    int npos;
    fflush(stdout);
    int saved = dup(1);
    FILE *devnull = fopen("/dev/null", "w");
    dup2(fileno(devnull), 1);
    int a = PARSE(&v, &e, "--n", "2", "--help", "--nope");
    int b = PARSE(&v, &e, "-h");
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(devnull);
    CHECK(a == 1 && b == 1 && e.status == DDPS_OK);
}

static void int_lists(void) {
    ddps_error e;
    int out[4];
    cli_error_clear(&e);
    CHECK(cli_parse_int_list("--ipc", "1,10,50", out, 4, 1, 100, &e) == 3 && out[0] == 1 && out[1] == 10 &&
          out[2] == 50);
    CHECK(cli_parse_int_list("--ipc", "7", out, 4, 1, 100, &e) == 1 && out[0] == 7);
    CHECK(cli_parse_int_list("--ipc", "1,2,3,4", out, 4, 1, 100, &e) == 4);
    refused("too many", cli_parse_int_list("--ipc", "1,2,3,4,5", out, 4, 1, 100, &e), &e, "--ipc 1,2,3,4,5",
            "at most 4");
    refused("above", cli_parse_int_list("--ipc", "1,101", out, 4, 1, 100, &e), &e, "101", "outside 1..100");
    refused("below", cli_parse_int_list("--ipc", "0", out, 4, 1, 100, &e), &e, "--ipc 0", "outside 1..100");
    refused("junk", cli_parse_int_list("--ipc", "1,x", out, 4, 1, 100, &e), &e, "--ipc 1,x", "expected integers");
    refused("junk after", cli_parse_int_list("--ipc", "1;2", out, 4, 1, 100, &e), &e, "1;2", "expected integers");
    refused("empty", cli_parse_int_list("--ipc", "", out, 4, 1, 100, &e), &e, "--ipc", "empty list");
    refused("empty item", cli_parse_int_list("--ipc", "1,,2", out, 4, 1, 100, &e), &e, "1,,2", "expected integers");
    refused("trailing comma", cli_parse_int_list("--ipc", "1,2,", out, 4, 1, 100, &e), &e, "1,2,", "trailing comma");
}

static void name_lists(void) {
    ddps_error e;
    char *buf = NULL;
    const char **names = NULL;
    int n = -1;
    cli_error_clear(&e);
    CHECK(cli_split_names("--classes", "cat,dog,n01440764", &buf, &names, &n, &e) == 0 && n == 3);
    CHECK(n == 3 && strcmp(names[0], "cat") == 0 && strcmp(names[1], "dog") == 0 && strcmp(names[2], "n01440764") == 0);
    free(buf);
    free(names);
    CHECK(cli_split_names("--classes", "one", &buf, &names, &n, &e) == 0 && n == 1 && strcmp(names[0], "one") == 0);
    free(buf);
    free(names);
    const char *bad[] = {"", ",a", "a,", "a,,b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        buf = (char *)"sentinel";
        names = (const char **)&buf;
        n = 5;
        int rc = cli_split_names("--classes", bad[i], &buf, &names, &n, &e);
        refused(bad[i], rc, &e, "--classes", "empty name");
        CHECKF(buf == NULL && names == NULL && n == 0, "'%s': something stays allocated", bad[i]);
    }
}

static void exit_codes(void) {
    ddps_error e;
    cli_error_clear(&e);
    CHECK(cli_exit_code(&e) == 0 && e.message[0] == 0);
    CHECK(cli_fail(&e, "a %s\nb", "x") == -1 && e.status == DDPS_ERR_FAILURE && cli_exit_code(&e) == 1);
    CHECK(strcmp(e.message, "a x b") == 0); /* one line */
    CHECK(cli_fail_usage(&e, "u") == -1 && cli_exit_code(&e) == 2);
    ddps_status other[] = {DDPS_ERR_DATA, DDPS_ERR_RESOURCE, DDPS_ERR_CANCELLED};
    for (size_t i = 0; i < 3; i++) {
        e.status = other[i];
        CHECK(cli_exit_code(&e) == 1);
    }
    CHECK(cli_fail(NULL, "no error struct") == -1);
    char *d = cli_strdup("copy");
    CHECK(strcmp(d, "copy") == 0);
    free(d);
}

int main(void) {
    TEST(values);
    TEST(errors);
    TEST(help);
    TEST(int_lists);
    TEST(name_lists);
    TEST(exit_codes);
    return t_done();
}
