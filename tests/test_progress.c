/* Progress display: duration formatting, silence off a terminal, forced output. */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/progress.h"

static void check_duration(double s, const char *want) {
    char buf[64];
    ddps_format_duration(s, buf, sizeof buf);
    CHECKF(strcmp(buf, want) == 0, "%g s -> '%s', want '%s'", s, buf, want);
}

static void test_format_duration(void) {
    check_duration(0.35, "0.35 s");
    check_duration(0, "0.00 s");
    check_duration(9.994, "9.99 s");
    check_duration(9.996, "10.0 s");
    check_duration(12.34, "12.3 s");
    check_duration(59.94, "59.9 s");
    check_duration(59.96, "1:00"); /* never "60.0 s" */
    check_duration(60, "1:00");
    check_duration(247, "4:07");
    check_duration(247.6, "4:08");
    check_duration(3599.4, "59:59");
    check_duration(3599.6, "1:00:00");
    check_duration(3903, "1:05:03");
    check_duration(100 * 3600 + 5, "100:00:05");
    check_duration(-1, "?");
    check_duration(NAN, "?");
    check_duration(INFINITY, "?");
    check_duration(1e300, "1e+300 s");
    /* Small buffers are truncated, never overrun. */
    char small[4] = "zzz";
    ddps_format_duration(3903, small, sizeof small);
    CHECK(strcmp(small, "1:0") == 0);
    char none[1] = {'q'};
    ddps_format_duration(3903, none, 0);
    CHECK(none[0] == 'q');
}

/* Runs fn with stderr sent to a file and returns what it wrote (heap). No
 * CHECK may run inside fn: its message would land in the file. */
static char *capture_stderr(void (*fn)(void), const char *name) {
    char *path = ddps_path_join(t_tmpdir(name), "stderr.txt");
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
        fprintf(stderr, "cannot redirect stderr\n");
        exit(2);
    }
    close(fd);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *text = NULL;
    size_t len = 0;
    ddps_err err;
    if (ddps_read_file(path, 1 << 20, &text, &len, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(2);
    }
    free(path);
    return text;
}

static int count_char(const char *s, char c) {
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

static void run_unforced(void) {
    ddps_progress *p = ddps_progress_start("scoring", 10, "img", 0);
    for (long i = 1; i <= 10; i++) ddps_progress_update(p, i);
    ddps_progress_end(p);
}

static void run_forced(void) {
    ddps_progress *p = ddps_progress_start("scoring", 10, "img", 1);
    ddps_progress_update(p, 3);
    usleep(300 * 1000); /* past the redraw interval: the next update draws */
    ddps_progress_update(p, 5);
    ddps_progress_end(p);
}

static void run_many_updates(void) {
    ddps_progress *p = ddps_progress_start("tiny", 1000000, "it", 1);
    for (long i = 1; i <= 1000000; i++) ddps_progress_update(p, i);
    ddps_progress_end(p);
}

static void run_unknown_total(void) {
    ddps_progress *p = ddps_progress_start("reading", 0, NULL, 1);
    usleep(300 * 1000);
    ddps_progress_update(p, 7);
    ddps_progress_end(p);
}

static void run_quiet(void) {
    int v = ddps_verbosity;
    ddps_verbosity = 0;
    run_forced();
    ddps_verbosity = v;
}

static void run_null(void) {
    ddps_progress_update(NULL, 3);
    ddps_progress_end(NULL);
}

static void test_silent_off_terminal(void) {
    char *out = capture_stderr(run_unforced, "progress_unforced");
    CHECKF(out[0] == 0, "wrote '%s'", out);
    free(out);
    out = capture_stderr(run_quiet, "progress_quiet");
    CHECKF(out[0] == 0, "verbosity 0 wrote '%s'", out);
    free(out);
    out = capture_stderr(run_null, "progress_null");
    CHECK(out[0] == 0);
    free(out);
}

static void test_forced_output(void) {
    char *out = capture_stderr(run_forced, "progress_forced");
    /* Start draws "scoring 0/10", the late update draws "5/10" with a rate
     * and an ETA, the end line gives the total time and a newline. */
    CHECKF(strstr(out, "\rscoring 0/10") != NULL, "%s", out);
    CHECKF(strstr(out, "\rscoring 5/10  ") != NULL, "%s", out);
    CHECKF(strstr(out, " img/s  ETA 0:0") != NULL, "%s", out);
    CHECKF(strstr(out, "\rscoring 5/10 img in 0.") != NULL, "%s", out);
    size_t n = strlen(out);
    CHECK(n > 0 && out[n - 1] == '\n' && count_char(out, '\n') == 1);
    free(out);

    out = capture_stderr(run_unknown_total, "progress_unknown");
    CHECKF(strstr(out, "\rreading 7  ") && strstr(out, " it/s") && !strstr(out, "ETA") && !strstr(out, "/0"),
           "%s", out);
    CHECKF(strstr(out, "reading 7 it in 0.") != NULL, "%s", out);
    free(out);
}

static void test_throttled(void) {
    char *out = capture_stderr(run_many_updates, "progress_many");
    /* A million updates in well under a second: a handful of redraws, not a million. */
    int draws = count_char(out, '\r');
    CHECKF(draws >= 2 && draws <= 20, "%d redraws", draws);
    CHECKF(strstr(out, "tiny 1000000/1000000 it in ") != NULL, "%s", out);
    CHECK(count_char(out, '\n') == 1);
    free(out);
}

/* The hook protocol's drawer (ddps_progress_stderr): a stage's completion
 * ends its line, the loop's repeated final report is not drawn again, a new
 * stage starts a new line, 0 of 0 is a finished stage. */
static void run_protocol(void) {
    ddps_progress_draw("scoring", "img", 0, 3, 1);
    ddps_progress_draw("scoring", "img", 1, 3, 1);
    ddps_progress_draw("scoring", "img", 3, 3, 1);
    ddps_progress_draw("scoring", "img", 3, 3, 1); /* the loop's end repeats it */
    ddps_progress_draw("clustering", "img", 0, 0, 1);
}

/* A log line in the middle of a drawn line starts on a line of its own. */
static void run_break(void) {
    ddps_progress_draw("scoring", "img", 0, 10, 1);
    ddps_progress_break_line();
    fprintf(stderr, "ddps: a log line\n");
    ddps_progress_draw("scoring", "img", 10, 10, 1);
}

static void run_protocol_unforced(void) { ddps_progress_draw("scoring", "img", 3, 3, 0); }

static void test_hook_protocol(void) {
    char *out = capture_stderr(run_protocol, "progress_protocol");
    const char *a = strstr(out, "scoring 3/3 img in ");
    CHECKF(a && !strstr(a + 1, "scoring 3/3 img in "), "one summary of scoring: %s", out);
    CHECKF(strstr(out, "\rclustering 0 img in ") != NULL, "%s", out);
    CHECKF(count_char(out, '\n') == 2, "%d lines: %s", count_char(out, '\n'), out);
    free(out);
    out = capture_stderr(run_break, "progress_break");
    CHECKF(strstr(out, "\rscoring 0/10\nddps: a log line\n\rscoring 10/10 img in ") != NULL, "%s", out);
    free(out);
    out = capture_stderr(run_protocol_unforced, "progress_protocol_unforced");
    CHECKF(out[0] == 0, "off a terminal, unforced: wrote '%s'", out);
    free(out);
}

int main(void) {
    TEST(test_format_duration);
    TEST(test_hook_protocol);
    TEST(test_silent_off_terminal);
    TEST(test_forced_output);
    TEST(test_throttled);
    return t_done();
}
