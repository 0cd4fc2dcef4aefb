/* Stage I in bf16 on the CPU: the maps (accumulated difference, score map,
 * patch scores) stay f32 whatever the precision, and Stage I in bf16 picks
 * the windows f32 picks. Needs a CPU on which the backend offers bf16
 * (oneDNN kernels that are not its reference ones: AVX512-BF16, or
 * AVX512-core's emulation); elsewhere it says so and exits 77 (skipped). */
#include "stage1_check.h"

int main(void) {
    ddps_err err = {{0}};
    ddps_backend *bf = ddps_cpu_backend_new(DDPS_PREC_BF16, 0, &err);
    if (!bf) {
        t_skip("no CPU bf16 backend here (%s)", err.msg);
        return t_done();
    }
    ddps_backend *f32 = ddps_cpu_backend_new(DDPS_PREC_F32, 0, &err);
    CHECKF(f32 != NULL, "%s", err.msg);
    ddps_sd *sb = NULL, *sf = NULL;
    if (!f32 || ddps_sd_load(t_shared("golden/tiny-sd"), bf, DDPS_PART_ALL, &sb, &err) != 0 ||
        ddps_sd_load(t_shared("golden/tiny-sd"), f32, DDPS_PART_ALL, &sf, &err) != 0) {
        CHECKF(0, "%s", err.msg);
    } else {
        fprintf(stderr, "-- maps\n");
        double e = s1c_map_precision(bf);
        CHECKF(e <= 1e-4, "CPU bf16 maps: rel err %.3g (maps must be f32)", e);
        fprintf(stderr, "-- stage1 bf16 vs f32, 2 images per call\n");
        int cc = 0;
        float *ctx = s1c_contexts(f32, sf, &cc);
        s1c_case c = {2, 48, 64, 2, {150, 600}, 32, 8, 5};
        ddps_stage1_result rf[2], rb[2];
        int a = s1c_run(f32, sf, ctx, cc, &c, 2, rf, &err);
        CHECKF(a == 0, "%s", err.msg);
        int b = s1c_run(bf, sb, ctx, cc, &c, 2, rb, &err);
        CHECKF(b == 0, "%s", err.msg);
        if (a == 0 && b == 0) s1c_compare(rb, rf, 2, 3e-2, "cpu bf16 vs f32"); /* measured: diff 2e-2 */
        s1c_free(rf, a == 0 ? 2 : 0), s1c_free(rb, b == 0 ? 2 : 0);
        free(ctx);
    }
    if (sb) ddps_sd_free(bf, sb);
    if (sf) ddps_sd_free(f32, sf);
    ddps_release(bf, 0);
    ddps_backend_free(bf);
    if (f32) {
        ddps_release(f32, 0);
        ddps_backend_free(f32);
    }
    return t_done();
}
