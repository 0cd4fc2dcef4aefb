/* Full-size SD v1.5 shapes with random weights (ddps_sd15_random): the UNet
 * (860M parameters, 320..1280 channels, 8 heads, 768-wide cross-attention),
 * the VAE encoder and the CLIP text encoder run on small inputs, give finite
 * outputs of the shapes diffusers gives, and are deterministic. The weights
 * are built once for the whole program (the slow part, above all in the
 * sanitizer build); every forward is on a tiny input. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_util.h"
#include "models/sd.h"
#include "pipeline/stage1.h"
#include "util/rng.h"

static ddps_backend *BE;
static ddps_sd *SD;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Token ids of two short prompts (BOS, a few words, EOS padding). */
static void prompt_ids(int32_t *ids) {
    static const int32_t a[] = {49406, 550, 2867, 539, 1149, 634, 269, 49407};
    static const int32_t b[] = {49406, 49407};
    for (int i = 0; i < 77; i++) {
        ids[i] = i < 8 ? a[i] : 49407;
        ids[77 + i] = i < 2 ? b[i] : 49407;
    }
}

/* ---- the UNet ---- */

#define MAX_TAPS 16

typedef struct {
    int n;
    char name[MAX_TAPS][16];
    int shape[MAX_TAPS][4];
    float *data[MAX_TAPS];
    size_t numel[MAX_TAPS];
} taps;

static void on_tap(void *user, const char *name, const ddps_tensor *t) {
    taps *tp = user;
    if (tp->n == MAX_TAPS) return;
    int k = tp->n++;
    snprintf(tp->name[k], sizeof tp->name[k], "%s", name);
    tp->shape[k][0] = t->n, tp->shape[k][1] = t->h, tp->shape[k][2] = t->w, tp->shape[k][3] = t->c;
    tp->numel[k] = ddps_numel(t);
    tp->data[k] = eu_readback(BE, t);
}

static void taps_free(taps *tp) {
    for (int i = 0; i < tp->n; i++) free(tp->data[i]);
    memset(tp, 0, sizeof *tp);
}

/* One UNet forward on x [2,8,8,4] at t = {100, 700} with text-encoder
 * contexts; eps to host. stop: -1 or the up block to stop after. */
static float *unet_run(const float *x_host, const float *ctx_host, int batch, taps *tp, int stop) {
    size_t mark = ddps_mark(BE);
    ddps_tensor x = eu_upload(BE, batch, 8, 8, 4, x_host);
    ddps_tensor ctx = eu_upload(BE, batch, 1, 77, 768, ctx_host);
    ddps_tensor eps = ddps_new(BE, batch, 8, 8, 4);
    static const float ts[2] = {100, 700};
    ddps_unet_opts o = {on_tap, tp, stop};
    ddps_unet_forward(BE, SD->unet, &x, ts, &ctx, stop < 0 ? &eps : NULL, &o);
    float *e = stop < 0 ? eu_readback(BE, &eps) : NULL;
    ddps_release(BE, mark);
    return e;
}

static void unet_full(void) {
    /* contexts from the full text encoder */
    int32_t ids[2 * 77];
    prompt_ids(ids);
    size_t mark = ddps_mark(BE);
    ddps_tensor ctx = ddps_new(BE, 2, 1, 77, 768);
    ddps_clip_forward(BE, SD->text, ids, &ctx);
    float *ctx_host = eu_readback(BE, &ctx);
    ddps_release(BE, mark);
    float *x = eu_normal(2 * 8 * 8 * 4, 11);

    taps a = {0}, b = {0}, c = {0}, d = {0};
    double t0 = now();
    float *e1 = unet_run(x, ctx_host, 2, &a, -1);
    double t1 = now();
    float *e2 = unet_run(x, ctx_host, 2, &b, -1);
    fprintf(stderr, "   UNet forward, batch 2, 8x8 latent: %.2f s\n", t1 - t0);

    /* diffusers' shapes (NHWC here): 8x8 -> 4x4 -> 2x2 -> 1x1 and back */
    static const struct {
        const char *name;
        int shape[4];
    } want[] = {{"down0", {2, 4, 4, 320}},   {"down1", {2, 2, 2, 640}},   {"down2", {2, 1, 1, 1280}},
                {"down3", {2, 1, 1, 1280}},  {"mid", {2, 1, 1, 1280}},    {"up0", {2, 2, 2, 1280}},
                {"up1", {2, 4, 4, 1280}},    {"up2", {2, 8, 8, 640}},     {"up3", {2, 8, 8, 320}}};
    int nw = (int)(sizeof want / sizeof *want);
    CHECKF(a.n == nw, "%d taps, expected %d", a.n, nw);
    for (int i = 0; i < a.n && i < nw; i++) {
        CHECKF(strcmp(a.name[i], want[i].name) == 0 && memcmp(a.shape[i], want[i].shape, sizeof want[i].shape) == 0,
               "tap %d: %s [%d,%d,%d,%d], expected %s [%d,%d,%d,%d]", i, a.name[i], a.shape[i][0], a.shape[i][1],
               a.shape[i][2], a.shape[i][3], want[i].name, want[i].shape[0], want[i].shape[1], want[i].shape[2],
               want[i].shape[3]);
        CHECKF(eu_nonfinite(a.data[i], a.numel[i]) == 0, "tap %s: non-finite values", a.name[i]);
        /* not a constant: the layer computed something */
        double dev = 0;
        for (size_t k = 1; k < a.numel[i]; k++) dev += fabs(a.data[i][k] - a.data[i][0]);
        CHECKF(dev > 0, "tap %s is constant", a.name[i]);
    }
    size_t ne = 2 * 8 * 8 * 4;
    CHECK(e1 && eu_nonfinite(e1, ne) == 0);
    double rms = 0;
    for (size_t i = 0; e1 && i < ne; i++) rms += (double)e1[i] * e1[i];
    rms = sqrt(rms / (double)ne);
    fprintf(stderr, "   eps rms %.4f\n", rms);
    CHECK(rms > 1e-4 && rms < 1e4);

    /* two runs: bit-identical */
    CHECK(e1 && e2 && memcmp(e1, e2, ne * sizeof(float)) == 0);
    CHECK(a.n == b.n);
    for (int i = 0; i < a.n && i < b.n; i++)
        CHECKF(a.numel[i] == b.numel[i] && memcmp(a.data[i], b.data[i], a.numel[i] * sizeof(float)) == 0,
               "tap %s differs between runs", a.name[i]);

    /* batch items are independent: item 0 alone gives (nearly) the same */
    float *e3 = unet_run(x, ctx_host, 1, &c, -1);
    double rel = t_rel_l2(e3, e1, ne / 2);
    fprintf(stderr, "   batch 1 vs batch 2, item 0: rel L2 %.3e\n", rel);
    CHECK(rel < 1e-5);
    /* and the two items (other timestep and prompt) differ */
    CHECK(t_rel_l2(e1 + ne / 2, e1, ne / 2) > 1e-3);

    /* an early stop after up_blocks[1] (DIFT) gives the same taps up to there */
    float *none = unet_run(x, ctx_host, 2, &d, 1);
    CHECK(none == NULL);
    CHECKF(d.n == 7 && strcmp(d.name[d.n - 1], "up1") == 0, "early stop: %d taps", d.n);
    for (int i = 0; i < d.n && i < a.n; i++)
        CHECKF(d.numel[i] == a.numel[i] && memcmp(d.data[i], a.data[i], a.numel[i] * sizeof(float)) == 0,
               "tap %s differs with the early stop", d.name[i]);

    taps_free(&a), taps_free(&b), taps_free(&c), taps_free(&d);
    free(e1), free(e2), free(e3), free(x), free(ctx_host);
}

/* ---- the VAE encoder ---- */

static void vae_full(void) {
    CHECK(ddps_vae_latent_size(&SD->vae_cfg, 16) == 2);
    CHECK(ddps_vae_latent_size(&SD->vae_cfg, 256) == 32 && ddps_vae_latent_size(&SD->vae_cfg, 341) == 42);
    float *img = eu_normal(16 * 16 * 3, 5);
    for (int i = 0; i < 16 * 16 * 3; i++) img[i] = tanhf(img[i]); /* in [-1, 1] */
    float *out[2][2];
    for (int run = 0; run < 2; run++) {
        size_t mark = ddps_mark(BE);
        ddps_tensor x = eu_upload(BE, 1, 16, 16, 3, img);
        ddps_tensor mean = ddps_new(BE, 1, 2, 2, 4), logvar = ddps_new(BE, 1, 2, 2, 4);
        ddps_vae_encode(BE, SD->vae, &x, &mean, &logvar);
        out[run][0] = eu_readback(BE, &mean);
        out[run][1] = eu_readback(BE, &logvar);
        ddps_release(BE, mark);
    }
    CHECK(eu_nonfinite(out[0][0], 16) == 0 && eu_nonfinite(out[0][1], 16) == 0);
    CHECK(memcmp(out[0][0], out[1][0], 16 * sizeof(float)) == 0 && memcmp(out[0][1], out[1][1], 16 * sizeof(float)) == 0);
    CHECK(t_rel_l2(out[0][0], out[0][1], 16) > 1e-3); /* mean and logvar are different halves */
    /* the Stage I latent is the mean times 0.18215 */
    size_t mark = ddps_mark(BE);
    ddps_tensor x = eu_upload(BE, 1, 16, 16, 3, img), z = ddps_new(BE, 1, 2, 2, 4);
    ddps_encode_latent(BE, SD, &x, &z);
    float *zh = eu_readback(BE, &z);
    for (int i = 0; i < 16; i++) out[1][0][i] *= 0.18215f;
    CHECK(t_rel_l2(zh, out[1][0], 16) < 1e-6);
    ddps_release(BE, mark);
    free(zh);
    for (int r = 0; r < 2; r++) free(out[r][0]), free(out[r][1]);
    free(img);
}

/* ---- the text encoder ---- */

static void text_full(void) {
    int32_t ids[2 * 77];
    prompt_ids(ids);
    float *y[3];
    for (int run = 0; run < 3; run++) {
        if (run == 2) ids[5] = 2368; /* another word at position 5 of prompt 0 */
        size_t mark = ddps_mark(BE);
        ddps_tensor t = ddps_new(BE, 2, 1, 77, 768);
        ddps_clip_forward(BE, SD->text, ids, &t);
        y[run] = eu_readback(BE, &t);
        ddps_release(BE, mark);
    }
    size_t n = 2 * 77 * 768, row = 768;
    CHECK(eu_nonfinite(y[0], n) == 0);
    CHECK(memcmp(y[0], y[1], n * sizeof(float)) == 0);
    /* final LayerNorm: each position has mean ~ beta's mean, not all equal */
    CHECK(t_rel_l2(y[0], y[0] + 77 * row, 77 * row) > 1e-3);
    /* causal attention: positions before the change are untouched, later ones move */
    double before = eu_max_abs_diff(y[2], y[0], 5 * row);
    double at = t_rel_l2(y[2] + 5 * row, y[0] + 5 * row, row);
    double after = t_rel_l2(y[2] + 6 * row, y[0] + 6 * row, 71 * row);
    double other = eu_max_abs_diff(y[2] + 77 * row, y[0] + 77 * row, 77 * row);
    fprintf(stderr, "   token change at 5: before %.2e, at %.2e, after %.2e, other prompt %.2e\n", before, at, after,
            other);
    CHECK(before < 1e-5 && at > 1e-3 && after > 1e-4 && other < 1e-5);
    for (int r = 0; r < 3; r++) free(y[r]);
}

int main(void) {
    ddps_err err = {{0}};
    BE = ddps_cpu_backend_new(DDPS_PREC_F32, 0, &err);
    CHECKF(BE != NULL, "%s", err.msg);
    if (!BE) return t_done();
    double t0 = now();
    int rc = ddps_sd15_random(BE, DDPS_PART_TEXT | DDPS_PART_VAE | DDPS_PART_UNET, 1234, &SD, &err);
    CHECKF(rc == 0, "%s", err.msg);
    fprintf(stderr, "   random SD v1.5 weights: %.1f s\n", now() - t0);
    if (rc == 0) {
        CHECK(SD->unet_cfg.block_out_channels[3] == 1280 && SD->unet_cfg.cross_attention_dim == 768);
        CHECK(ddps_dift_dim(&SD->unet_cfg) == 1280);
        TEST(unet_full);
        TEST(text_full);
        TEST(vae_full);
    }
    ddps_release(BE, 0);
    ddps_sd_free(BE, SD);
    ddps_backend_free(BE);
    return t_done();
}
