/* The DDPM noise schedule: betas ("linear" or "scaled_linear"),
 * alphas_cumprod, and add_noise. Computed in f32 the way diffusers does
 * (torch.linspace in f32, squared for scaled_linear, cumulative product in f32). */
#ifndef DDPS_MODELS_SCHEDULER_H
#define DDPS_MODELS_SCHEDULER_H

#include "models/config.h"

/* out has c->num_train_timesteps floats. */
void ddps_alphas_cumprod(const ddps_sched_config *c, float *out);
/* x_t = sqrt(abar) x0 + sqrt(1 - abar) noise, as scalars for the backend's axpby. */
void ddps_noise_coefs(const float *alphas_cumprod, int t, float *a, float *b);

#endif
