/* Scoring a dataset: Stage I and II for every image into the store. */
#ifndef DDPS_PIPELINE_SCORE_H
#define DDPS_PIPELINE_SCORE_H

/* `ddps bench score`: per-image seconds split into decode, VAE, UNet, DIFT, clustering. */
int ddps_bench_score(const char *device, const char *precision, int threads, int size, int iters, int json);

#endif
