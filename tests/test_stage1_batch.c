/* Stage I with several images per ddps_stage1_run_batch call (as `ddps score`
 * does on a GPU, --batch-images 8) on the CPU in f32: each image's result must
 * be its result when scored alone (the batch only changes rounding), the
 * accumulator must start from zero whatever the arena held before (NaN bit
 * patterns included), and the CPU kernels must refuse tensors of mismatched
 * sizes as the CUDA backend does (the misuse a batch of 2+ images exposed). */
#include <sys/wait.h>
#include <unistd.h>

#include "stage1_check.h"

static ddps_backend *BE;
static ddps_sd *SD;
static float *CTX;
static int CC;

static const s1c_case CASE = {3, 48, 64, 2, {150, 600}, 32, 8, 11};

/* 1, 2 (2 + 1) and 3 images per call give the same results. */
static void batch_vs_single(void) {
    ddps_stage1_result one[3], two[3], three[3];
    ddps_err err = {{0}};
    int r1 = s1c_run(BE, SD, CTX, CC, &CASE, 1, one, &err);
    CHECKF(r1 == 0, "%s", err.msg);
    int r2 = s1c_run(BE, SD, CTX, CC, &CASE, 2, two, &err);
    CHECKF(r2 == 0, "%s", err.msg);
    int r3 = s1c_run(BE, SD, CTX, CC, &CASE, 3, three, &err);
    CHECKF(r3 == 0, "%s", err.msg);
    if (r1 == 0 && r2 == 0) s1c_compare(two, one, 3, 1e-5, "cpu f32, 2 per call vs 1");
    if (r1 == 0 && r3 == 0) s1c_compare(three, one, 3, 1e-5, "cpu f32, 3 per call vs 1");
    /* the images differ, so a batch cannot have mixed them up */
    if (r1 == 0) CHECK(t_rel_l2(one[0].diff, one[1].diff, (size_t)one[0].h * one[0].w * one[0].c) > 1e-3);
    s1c_free(one, r1 == 0 ? 3 : 0), s1c_free(two, r2 == 0 ? 3 : 0), s1c_free(three, r3 == 0 ? 3 : 0);
}

/* NaN everywhere in the arena first: results are still finite and unchanged. */
static void from_poisoned_arena(void) {
    ddps_stage1_result ref[3], got[3];
    ddps_err err = {{0}};
    int r1 = s1c_run(BE, SD, CTX, CC, &CASE, 3, ref, &err);
    CHECKF(r1 == 0, "%s", err.msg);
    ddps_release(BE, 0);
    size_t n = (size_t)BE->arena.peak / sizeof(float);
    ddps_tensor t = ddps_new(BE, 1, 1, 1, (int)n);
    float *nan_h = ddps_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) nan_h[i] = NAN;
    BE->ops->write(BE, &t, nan_h);
    free(nan_h);
    ddps_release(BE, 0);
    int r2 = s1c_run(BE, SD, CTX, CC, &CASE, 3, got, &err);
    CHECKF(r2 == 0, "%s", err.msg);
    if (r1 == 0 && r2 == 0) s1c_compare(got, ref, 3, 0.0, "cpu f32 after NaN in the arena");
    s1c_free(ref, r1 == 0 ? 3 : 0), s1c_free(got, r2 == 0 ? 3 : 0);
}

/* Runs fn in a child process (the sticky error stays there, BE stays
 * usable here); 1 when fn left the backend failed with an internal error of
 * op `op` ("axpby: internal error: sizes differ ...") and the child went on. */
static int refused(void (*fn)(void), const char *op) {
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        fn();
        ddps_err err = {{0}};
        char want[64];
        snprintf(want, sizeof want, "%s: internal error: sizes differ", op);
        _exit(ddps_backend_error(BE, &err) == -1 && strncmp(err.msg, want, strlen(want)) == 0 ? 0 : 1);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void axpby_one_of_two(void) {
    ddps_tensor y = ddps_new(BE, 1, 4, 4, 4), x = ddps_new(BE, 2, 4, 4, 4);
    BE->ops->axpby(BE, &y, 0.0f, &x, 0.0f, &x); /* what Stage I once did to zero its accumulator */
}

static void axpby_mixed(void) {
    ddps_tensor y = ddps_new(BE, 2, 4, 4, 4), x = ddps_new(BE, 2, 4, 4, 4), z = ddps_new(BE, 1, 4, 4, 4);
    BE->ops->axpby(BE, &y, 1.0f, &x, 1.0f, &z);
}

static void sqdiff_one_of_two(void) {
    ddps_tensor d = ddps_new_map(BE, 1, 4, 4, 4), e = ddps_new(BE, 2, 4, 4, 4);
    BE->ops->sqdiff_acc(BE, &d, &e, &e, &e, 1.0f);
}

static void refuses_mismatched_sizes(void) {
    CHECK(refused(axpby_one_of_two, "axpby"));
    CHECK(refused(axpby_mixed, "axpby"));
    CHECK(refused(sqdiff_one_of_two, "sqdiff_acc"));
    /* and matching sizes are fine */
    size_t m = ddps_mark(BE);
    float h[8] = {1, 2, 3, 4, 5, 6, 7, 8}, o[8];
    ddps_tensor y = ddps_new(BE, 2, 1, 1, 4), x = ddps_new(BE, 2, 1, 1, 4);
    BE->ops->write(BE, &x, h);
    BE->ops->axpby(BE, &y, 2.0f, &x, -1.0f, &x);
    BE->ops->read(BE, o, &y);
    CHECK(memcmp(o, h, sizeof h) == 0);
    ddps_release(BE, m);
}

static void maps(void) {
    double e = s1c_map_precision(BE);
    CHECKF(e <= 1e-4, "CPU f32 maps: rel err %.3g", e);
}

int main(void) {
    if (s1c_open_golden(&BE, &SD) != 0) return t_done();
    CTX = s1c_contexts(BE, SD, &CC);
    TEST(refuses_mismatched_sizes);
    TEST(maps);
    TEST(batch_vs_single);
    TEST(from_poisoned_arena);
    free(CTX);
    ddps_release(BE, 0);
    ddps_sd_free(BE, SD);
    ddps_backend_free(BE);
    return t_done();
}
