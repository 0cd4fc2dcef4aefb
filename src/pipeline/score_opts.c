/* The scoring settings' pure parts (pipeline/score.h): `ddps score`'s
 * defaults, the one source every default is derived from (ddps.h's
 * ddps_score_params_init, the CLI's help, the README table test_units
 * checks), and the timestep schedule they give. */
#include <math.h>
#include <string.h>

#include "pipeline/score.h"
#include "pipeline/params.h"

void ddps_score_defaults(ddps_score_opts *o) {
    memset(o, 0, sizeof *o);
    ddps_score_params_defaults(&o->p);
}

int ddps_score_timesteps(const ddps_score_opts *o, int T, int *out, ddps_err *err) {
    if (o->p.n_explicit > 0) {
        for (int i = 0; i < o->p.n_explicit; i++) {
            if (o->p.timesteps[i] < 0 || o->p.timesteps[i] >= T)
                return ddps_fail_usage(err, "--timesteps: %d is outside 0..%d", o->p.timesteps[i], T - 1);
            out[i] = o->p.timesteps[i];
        }
        return o->p.n_explicit;
    }
    int K = o->p.n_timesteps;
    if (K < 1 || K > DDPS_MAX_TIMESTEPS) return ddps_fail_usage(err, "--timesteps %d: expected 1..%d", K, DDPS_MAX_TIMESTEPS);
    if (!(o->p.t_lo >= 0 && o->p.t_hi <= 1 && o->p.t_lo <= o->p.t_hi))
        return ddps_fail_usage(err, "--t-range %g,%g: expected 0 <= lo <= hi <= 1", o->p.t_lo, o->p.t_hi);
    for (int i = 0; i < K; i++) {
        double f = K == 1 ? (o->p.t_lo + o->p.t_hi) / 2 : o->p.t_lo + (o->p.t_hi - o->p.t_lo) * i / (K - 1);
        int t = (int)lround(f * T);
        out[i] = t < 0 ? 0 : t > T - 1 ? T - 1 : t;
    }
    return K;
}
