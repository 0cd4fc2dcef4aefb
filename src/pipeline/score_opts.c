/* The scoring settings' pure parts (pipeline/score.h): `ddps score`'s
 * defaults, the one source every default is derived from (ddps.h's
 * ddps_score_params_init, the CLI's help, the README table test_units
 * checks), and the timestep schedule they give. */
#include <math.h>
#include <string.h>

#include "pipeline/score.h"

void ddps_score_defaults(ddps_score_opts *o) {
    memset(o, 0, sizeof *o);
    o->prompt = "An image of {}.";
    o->null_prompt = "";
    o->n_timesteps = 5;
    o->t_lo = 0.1;
    o->t_hi = 0.7;
    o->size = 256;
    o->patch = 192;
    o->stride = 16;
    o->patches_per_image = 1;
    o->dift_t = 160;
    o->dift_ensemble = 4;
    o->clusters = 32;
    o->device = "cpu";
    o->precision = "f32";
    o->command = "score";
}

int ddps_score_timesteps(const ddps_score_opts *o, int T, int *out, ddps_err *err) {
    if (o->n_explicit > 0) {
        for (int i = 0; i < o->n_explicit; i++) {
            if (o->timesteps[i] < 0 || o->timesteps[i] >= T)
                return ddps_fail_usage(err, "--timesteps: %d is outside 0..%d", o->timesteps[i], T - 1);
            out[i] = o->timesteps[i];
        }
        return o->n_explicit;
    }
    int K = o->n_timesteps;
    if (K < 1 || K > DDPS_MAX_TIMESTEPS) return ddps_fail_usage(err, "--timesteps %d: expected 1..%d", K, DDPS_MAX_TIMESTEPS);
    if (!(o->t_lo >= 0 && o->t_hi <= 1 && o->t_lo <= o->t_hi))
        return ddps_fail_usage(err, "--t-range %g,%g: expected 0 <= lo <= hi <= 1", o->t_lo, o->t_hi);
    for (int i = 0; i < K; i++) {
        double f = K == 1 ? (o->t_lo + o->t_hi) / 2 : o->t_lo + (o->t_hi - o->t_lo) * i / (K - 1);
        int t = (int)lround(f * T);
        out[i] = t < 0 ? 0 : t > T - 1 ? T - 1 : t;
    }
    return K;
}
