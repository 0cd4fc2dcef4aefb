#include "models/scheduler.h"

#include <math.h>

/* torch.linspace for f32: start + i*step for the first half, end - (n-1-i)*step
 * for the second, step computed in f32. */
static float linspace_at(float start, float end, int n, int i) {
    float step = (end - start) / (float)(n - 1);
    return i < n / 2 ? start + step * (float)i : end - step * (float)(n - 1 - i);
}

void ddps_alphas_cumprod(const ddps_sched_config *c, float *out) {
    int T = c->num_train_timesteps;
    float prod = 1.0f;
    for (int i = 0; i < T; i++) {
        float beta;
        if (c->scaled_linear) {
            float r = linspace_at(sqrtf(c->beta_start), sqrtf(c->beta_end), T, i);
            beta = r * r;
        } else {
            beta = linspace_at(c->beta_start, c->beta_end, T, i);
        }
        prod *= 1.0f - beta;
        out[i] = prod;
    }
}

void ddps_noise_coefs(const float *ac, int t, float *a, float *b) {
    *a = sqrtf(ac[t]);
    *b = sqrtf(1.0f - ac[t]);
}
