/* Stage I (ddps_stage1_run) and DIFT (ddps_dift_run) on the tiny model,
 * checked by their defining properties rather than by golden numbers
 * (test_golden.c does those): the diff is the paired noise-prediction
 * difference of METHOD.md, the score map its bilinear upsampled channel mean,
 * each patch score the mean of the score map under its window; DIFT features
 * are the pooled, averaged, L2-normalised up_blocks[1] output. */
#include <stdlib.h>
#include <string.h>

#include "engine_util.h"
#include "models/scheduler.h"
#include "models/sd.h"
#include "pipeline/stage1.h"
#include "stage1_check.h"
#include "util/rng.h"

static ddps_backend *BE;
static ddps_sd *SD;
static float *CTX_HOST; /* [2][77][C]: null prompt "", label prompt "An image of tench." */
static int C_TXT;

typedef struct {
    int H, W, K;
    int ts[8];
    int P, S;
    int same_prompts; /* label context = null context */
    uint64_t seed;
} s1_case;

/* Runs Stage I on a seeded image and noise; *noise_out (if not NULL) gets the noise. */
static int run_stage1(const s1_case *c, ddps_stage1_result *r, ddps_err *err, float **noise_out) {
    int h = ddps_vae_latent_size(&SD->vae_cfg, c->H), w = ddps_vae_latent_size(&SD->vae_cfg, c->W);
    int lc = SD->vae_cfg.latent_channels;
    float *img = s1c_image(c->H, c->W, c->seed);
    float *noise = eu_normal((size_t)(c->K > 0 ? c->K : 1) * h * w * lc, c->seed + 1);
    size_t mark = ddps_mark(BE);
    ddps_tensor x = eu_upload(BE, 1, c->H, c->W, 3, img);
    ddps_tensor cn = eu_upload(BE, 1, 1, 77, C_TXT, CTX_HOST);
    ddps_tensor cl = eu_upload(BE, 1, 1, 77, C_TXT, CTX_HOST + (c->same_prompts ? 0 : 77 * C_TXT));
    int rc = ddps_stage1_run(BE, SD, &x, &cn, &cl, c->ts, c->K, noise, c->P, c->S, r, err);
    ddps_release(BE, mark);
    free(img);
    if (noise_out)
        *noise_out = noise;
    else
        free(noise);
    return rc;
}

static double mean_of(const float *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += v[i];
    return s / (double)n;
}

/* PyTorch's bilinear resize (align_corners=False, no antialias) of a
 * one-channel map, in double: the reference for the score map. */
static void bilinear_ref(const double *src, int h, int w, double *dst, int H, int W) {
    for (int y = 0; y < H; y++) {
        double sy = ((double)y + 0.5) * h / H - 0.5;
        if (sy < 0) sy = 0;
        int y0 = (int)sy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        double fy = sy - y0;
        for (int x = 0; x < W; x++) {
            double sx = ((double)x + 0.5) * w / W - 0.5;
            if (sx < 0) sx = 0;
            int x0 = (int)sx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            double fx = sx - x0;
            dst[(size_t)y * W + x] = (1 - fy) * ((1 - fx) * src[y0 * w + x0] + fx * src[y0 * w + x1]) +
                                     fy * ((1 - fx) * src[y1 * w + x0] + fx * src[y1 * w + x1]);
        }
    }
}

/* Channel mean of diff [h][w][c]. */
static double *cmean(const ddps_stage1_result *r) {
    double *m = ddps_malloc((size_t)r->h * r->w * sizeof(double));
    for (int i = 0; i < r->h * r->w; i++) {
        double s = 0;
        for (int k = 0; k < r->c; k++) s += r->diff[(size_t)i * r->c + k];
        m[i] = s / r->c;
    }
    return m;
}

static double rms_of(const float *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s / (double)n);
}

/* Grid sizes for non-square images, every output finite, score map = bilinear
 * upsampled channel mean of diff, patch score = window mean of the score map. */
static void maps_and_windows(void) {
    static const s1_case cases[] = {
        {45, 70, 2, {100, 700}, 20, 7, 0, 1},  /* odd sizes: latent 5x8, not an 8x resize */
        {48, 72, 2, {250, 550}, 32, 8, 0, 2},  /* multiples of 8 */
        {70, 45, 1, {400}, 45, 10, 0, 3},      /* tall; patch = width */
        {64, 40, 3, {100, 400, 700}, 13, 1, 0, 4},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const s1_case *c = &cases[ci];
        ddps_stage1_result r;
        ddps_err err = {{0}};
        if (run_stage1(c, &r, &err, NULL) != 0) {
            CHECKF(0, "%dx%d: %s", c->W, c->H, err.msg);
            continue;
        }
        int h = ddps_vae_latent_size(&SD->vae_cfg, c->H), w = ddps_vae_latent_size(&SD->vae_cfg, c->W);
        int ph = (c->H - c->P) / c->S + 1, pw = (c->W - c->P) / c->S + 1;
        CHECKF(r.H == c->H && r.W == c->W && r.h == h && r.w == w && r.c == 4, "%dx%d: sizes", c->W, c->H);
        CHECKF(r.ph == ph && r.pw == pw, "%dx%d P%d S%d: grid %dx%d, expected %dx%d", c->W, c->H, c->P, c->S, r.pw,
               r.ph, pw, ph);
        size_t nl = (size_t)h * w * 4, nm = (size_t)c->H * c->W, np = (size_t)ph * pw;
        CHECK(eu_nonfinite(r.latent, nl) == 0 && eu_nonfinite(r.diff, nl) == 0);
        CHECK(eu_nonfinite(r.score_map, nm) == 0 && eu_nonfinite(r.patch_scores, np) == 0);
        CHECKF(rms_of(r.diff, nl) > 0, "%dx%d: diff is zero", c->W, c->H);

        /* the score map against the reference resize */
        double *m = cmean(&r), *ref = ddps_malloc(nm * sizeof(double));
        bilinear_ref(m, h, w, ref, c->H, c->W);
        double num = 0, den = 0;
        for (size_t i = 0; i < nm; i++) num += (r.score_map[i] - ref[i]) * (r.score_map[i] - ref[i]), den += ref[i] * ref[i];
        double e = sqrt(num / den);
        CHECKF(e < 1e-5, "%dx%d: score map vs bilinear reference: rel L2 %.3e", c->W, c->H, e);
        /* an exact 8x upsampling keeps the mean (edge clamping included) */
        double ms = mean_of(r.score_map, nm), md = 0;
        for (int i = 0; i < h * w; i++) md += m[i] / (h * w);
        if (c->H == 8 * h && c->W == 8 * w) {
            fprintf(stderr, "   %dx%d: mean score map %.6e, mean channel-mean diff %.6e\n", c->W, c->H, ms, md);
            CHECKF(fabs(ms - md) <= 1e-5 * fabs(md) + 1e-9, "%dx%d: means %.8e vs %.8e", c->W, c->H, ms, md);
        }
        /* every window */
        double worst = 0, scale = 1e-30;
        for (int i = 0; i < ph; i++)
            for (int j = 0; j < pw; j++) {
                double s = 0;
                for (int y = i * c->S; y < i * c->S + c->P; y++)
                    for (int x = j * c->S; x < j * c->S + c->P; x++) s += r.score_map[(size_t)y * c->W + x];
                s /= (double)c->P * c->P;
                double d = fabs(s - r.patch_scores[i * pw + j]);
                if (d > worst) worst = d;
                if (fabs(s) > scale) scale = fabs(s);
            }
        fprintf(stderr, "   %dx%d P%d S%d: grid %dx%d, score map rel L2 %.2e, worst window error %.2e (max |score| %.2e)\n",
                c->W, c->H, c->P, c->S, pw, ph, e, worst, scale);
        CHECKF(worst <= 1e-5 * scale, "%dx%d: a window mean differs by %.3e", c->W, c->H, worst);
        free(m);
        free(ref);
        ddps_stage1_result_free(&r);
        CHECK(r.diff == NULL && r.score_map == NULL);
    }
}

/* diff = mean_k[(eps_k - e_null)^2 - (eps_k - e_label)^2], the UNet run here
 * by hand on z_t = sqrt(abar) z + sqrt(1 - abar) eps_k. */
static void diff_by_hand(void) {
    s1_case c = {40, 56, 2, {150, 600}, 16, 8, 0, 9};
    ddps_stage1_result r;
    ddps_err err = {{0}};
    float *noise = NULL;
    if (run_stage1(&c, &r, &err, &noise) != 0) {
        CHECKF(0, "%s", err.msg);
        free(noise);
        return;
    }
    int h = r.h, w = r.w, lc = r.c, K = c.K;
    size_t nl = (size_t)h * w * lc;
    size_t mark = ddps_mark(BE);
    /* the latent */
    float *img = s1c_image(c.H, c.W, c.seed);
    ddps_tensor x = eu_upload(BE, 1, c.H, c.W, 3, img), z = ddps_new(BE, 1, h, w, lc);
    ddps_encode_latent(BE, SD, &x, &z);
    float *zh = eu_readback(BE, &z);
    CHECKF(memcmp(zh, r.latent, nl * sizeof(float)) == 0, "latent differs from ddps_encode_latent");
    /* 2K noisy latents, null then label per timestep */
    float *xt = ddps_malloc(2 * K * nl * sizeof(float)), *ctx = ddps_malloc((size_t)2 * K * 77 * C_TXT * sizeof(float));
    float ts[16];
    for (int k = 0; k < K; k++) {
        float a, b;
        ddps_noise_coefs(SD->alphas_cumprod, c.ts[k], &a, &b);
        for (int j = 0; j < 2; j++) {
            for (size_t i = 0; i < nl; i++) xt[(2 * k + j) * nl + i] = a * zh[i] + b * noise[k * nl + i];
            memcpy(ctx + (size_t)(2 * k + j) * 77 * C_TXT, CTX_HOST + (size_t)j * 77 * C_TXT, 77 * C_TXT * sizeof(float));
            ts[2 * k + j] = (float)c.ts[k];
        }
    }
    ddps_tensor tx = eu_upload(BE, 2 * K, h, w, lc, xt), tc = eu_upload(BE, 2 * K, 1, 77, C_TXT, ctx), te = ddps_new(BE, 2 * K, h, w, lc);
    ddps_unet_forward(BE, SD->unet, &tx, ts, &tc, &te, NULL);
    float *e = eu_readback(BE, &te);
    ddps_release(BE, mark);
    double *d = ddps_calloc(nl, sizeof(double));
    for (int k = 0; k < K; k++)
        for (size_t i = 0; i < nl; i++) {
            double en = noise[k * nl + i] - e[(2 * k) * nl + i], el = noise[k * nl + i] - e[(2 * k + 1) * nl + i];
            d[i] += (en * en - el * el) / K;
        }
    double num = 0, den = 0;
    for (size_t i = 0; i < nl; i++) num += (r.diff[i] - d[i]) * (r.diff[i] - d[i]), den += d[i] * d[i];
    double rel = sqrt(num / den);
    fprintf(stderr, "   diff vs by-hand: rel L2 %.3e\n", rel);
    CHECK(rel < 1e-5);
    free(d), free(e), free(xt), free(ctx), free(zh), free(img), free(noise);
    ddps_stage1_result_free(&r);
}

/* Same inputs, same noise: identical results. Same prompt twice: diff is zero
 * (the null and label predictions share the noise draw). */
static void determinism_and_pairing(void) {
    s1_case c = {48, 40, 3, {100, 400, 700}, 24, 8, 0, 21};
    ddps_stage1_result a, b, z;
    ddps_err err = {{0}};
    int ra = run_stage1(&c, &a, &err, NULL), rb = run_stage1(&c, &b, &err, NULL);
    CHECKF(ra == 0 && rb == 0, "%s", err.msg);
    if (ra == 0 && rb == 0) {
        size_t nl = (size_t)a.h * a.w * a.c;
        CHECK(memcmp(a.latent, b.latent, nl * sizeof(float)) == 0);
        CHECK(memcmp(a.diff, b.diff, nl * sizeof(float)) == 0);
        CHECK(memcmp(a.score_map, b.score_map, (size_t)a.H * a.W * sizeof(float)) == 0);
        CHECK(memcmp(a.patch_scores, b.patch_scores, (size_t)a.ph * a.pw * sizeof(float)) == 0);
    }
    /* another noise draw changes the result */
    s1_case c2 = c;
    c2.seed = 22;
    ddps_stage1_result o;
    if (run_stage1(&c2, &o, &err, NULL) == 0) {
        CHECK(ra != 0 || memcmp(a.diff, o.diff, (size_t)a.h * a.w * a.c * sizeof(float)) != 0);
        ddps_stage1_result_free(&o);
    }
    c.same_prompts = 1;
    if (run_stage1(&c, &z, &err, NULL) == 0) {
        size_t nl = (size_t)z.h * z.w * z.c;
        double dz = rms_of(z.diff, nl), ref = ra == 0 ? rms_of(a.diff, nl) : 1;
        fprintf(stderr, "   same prompt twice: diff rms %.3e (label vs null: %.3e)\n", dz, ref);
        CHECK(dz <= 1e-6 * ref);
        ddps_stage1_result_free(&z);
    } else {
        CHECKF(0, "%s", err.msg);
    }
    if (ra == 0) ddps_stage1_result_free(&a);
    if (rb == 0) ddps_stage1_result_free(&b);
}

static void stage1_errors(void) {
    struct {
        s1_case c;
        const char *needle;
    } bad[] = {
        {{40, 56, 1, {100}, 41, 8, 0, 1}, "patch 41"},  /* taller than the image */
        {{56, 40, 1, {100}, 41, 8, 0, 1}, "patch 41"},  /* wider than the image */
        {{40, 56, 1, {100}, 0, 8, 0, 1}, "patch 0"},
        {{40, 56, 1, {100}, 16, 0, 0, 1}, "stride 0"},
        {{40, 56, 0, {0}, 16, 8, 0, 1}, "timestep"},
        {{40, 56, 2, {100, 1000}, 16, 8, 0, 1}, "timestep 1000"},
        {{40, 56, 1, {-1}, 16, 8, 0, 1}, "timestep -1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ddps_stage1_result r;
        ddps_err err = {{0}};
        int rc = run_stage1(&bad[i].c, &r, &err, NULL);
        CHECKF(rc != 0 && strstr(err.msg, bad[i].needle) && !strchr(err.msg, '\n'), "case %zu: rc %d, '%s'", i, rc,
               err.msg);
        CHECK(r.latent == NULL && r.diff == NULL && r.score_map == NULL && r.patch_scores == NULL);
        if (rc == 0) ddps_stage1_result_free(&r);
    }
    /* P equal to the short side is fine: one window across */
    s1_case ok = {40, 56, 1, {100}, 40, 8, 0, 1};
    ddps_stage1_result r;
    ddps_err err = {{0}};
    CHECKF(run_stage1(&ok, &r, &err, NULL) == 0, "%s", err.msg);
    CHECK(r.ph == 1 && r.pw == 3);
    ddps_stage1_result_free(&r);
}

/* ---- DIFT ---- */

typedef struct {
    float *up1; /* host copy of the up1 tap */
    int n, h, w, c;
} up1_tap;

static void grab_up1(void *u, const char *name, const ddps_tensor *t) {
    up1_tap *g = u;
    if (strcmp(name, "up1") != 0) return;
    g->up1 = eu_readback(BE, t);
    g->n = t->n, g->h = t->h, g->w = t->w, g->c = t->c;
}

/* Patches [n,p,p,3]: crops of one image at different places. */
static float *patches_of(int n, int p) {
    int H = 64, W = 96;
    float *img = s1c_image(H, W, 77), *out = ddps_malloc((size_t)n * p * p * 3 * sizeof(float));
    for (int k = 0; k < n; k++) {
        int oy = (k * 13) % (H - p + 1), ox = (k * 29) % (W - p + 1);
        for (int y = 0; y < p; y++)
            memcpy(out + ((size_t)k * p + y) * p * 3, img + ((size_t)(oy + y) * W + ox) * 3, (size_t)p * 3 * sizeof(float));
    }
    free(img);
    return out;
}

static void dift(void) {
    int n = 3, p = 32, E = 2, t = 160;
    int h = ddps_vae_latent_size(&SD->vae_cfg, p), lc = SD->vae_cfg.latent_channels;
    size_t nl = (size_t)h * h * lc;
    float *pat = patches_of(n, p), *noise = eu_normal((size_t)n * E * nl, 5);
    int nb = SD->unet_cfg.n_blocks, want_dim = SD->unet_cfg.block_out_channels[nb - 2];
    CHECK(ddps_dift_dim(&SD->unet_cfg) == want_dim);
    float *f[2];
    int dim = 0;
    for (int run = 0; run < 2; run++) {
        f[run] = ddps_calloc((size_t)n * want_dim, sizeof(float));
        size_t mark = ddps_mark(BE);
        ddps_tensor tp = eu_upload(BE, n, p, p, 3, pat), cl = eu_upload(BE, 1, 1, 77, C_TXT, CTX_HOST + 77 * C_TXT);
        ddps_err err = {{0}};
        CHECKF(ddps_dift_run(BE, SD, &tp, &cl, t, E, noise, f[run], &dim, &err) == 0, "%s", err.msg);
        ddps_release(BE, mark);
    }
    CHECKF(dim == want_dim, "dim %d, up_blocks[1] has %d channels", dim, want_dim);
    CHECK(eu_nonfinite(f[0], (size_t)n * want_dim) == 0);
    CHECK(memcmp(f[0], f[1], (size_t)n * want_dim * sizeof(float)) == 0);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < want_dim; j++) s += (double)f[0][i * want_dim + j] * f[0][i * want_dim + j];
        CHECKF(fabs(sqrt(s) - 1) < 1e-5, "feature %d has norm %.7f", i, sqrt(s));
        for (int k = 0; k < i; k++) {
            double dot = 0;
            for (int j = 0; j < want_dim; j++) dot += (double)f[0][i * want_dim + j] * f[0][k * want_dim + j];
            fprintf(stderr, "   patches %d and %d: cosine %.6f\n", k, i, dot);
            CHECKF(dot < 0.99999, "patches %d and %d have the same feature (cos %.7f)", k, i, dot);
        }
    }

    /* by hand: encode, noise, UNet to the up1 tap, pool, average over E, normalise */
    size_t mark = ddps_mark(BE);
    ddps_tensor tp = eu_upload(BE, n, p, p, 3, pat), z = ddps_new(BE, n, h, h, lc);
    ddps_encode_latent(BE, SD, &tp, &z);
    float *zh = eu_readback(BE, &z);
    float a, b;
    ddps_noise_coefs(SD->alphas_cumprod, t, &a, &b);
    float *xt = ddps_malloc((size_t)n * E * nl * sizeof(float)), *ctx = ddps_malloc((size_t)n * E * 77 * C_TXT * sizeof(float));
    float *ts = ddps_malloc((size_t)n * E * sizeof(float));
    for (int k = 0; k < n * E; k++) {
        for (size_t i = 0; i < nl; i++) xt[k * nl + i] = a * zh[(k / E) * nl + i] + b * noise[k * nl + i];
        memcpy(ctx + (size_t)k * 77 * C_TXT, CTX_HOST + 77 * C_TXT, 77 * C_TXT * sizeof(float));
        ts[k] = (float)t;
    }
    ddps_tensor tx = eu_upload(BE, n * E, h, h, lc, xt), tc = eu_upload(BE, n * E, 1, 77, C_TXT, ctx), te = ddps_new(BE, n * E, h, h, lc);
    up1_tap g = {0};
    ddps_unet_opts o = {grab_up1, &g, -1};
    ddps_unet_forward(BE, SD->unet, &tx, ts, &tc, &te, &o);
    ddps_release(BE, mark);
    CHECKF(g.up1 && g.c == want_dim && g.n == n * E, "up1 tap: %d channels", g.c);
    if (g.up1 && g.c == want_dim) {
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double v[1024] = {0}, norm = 0;
            for (int e = 0; e < E; e++)
                for (int s = 0; s < g.h * g.w; s++)
                    for (int j = 0; j < want_dim && j < 1024; j++)
                        v[j] += g.up1[(((size_t)i * E + e) * g.h * g.w + s) * want_dim + j] / ((double)E * g.h * g.w);
            for (int j = 0; j < want_dim && j < 1024; j++) norm += v[j] * v[j];
            for (int j = 0; j < want_dim && j < 1024; j++) {
                double d = fabs(v[j] / sqrt(norm) - f[0][i * want_dim + j]);
                if (d > worst) worst = d;
            }
        }
        fprintf(stderr, "   DIFT vs by-hand: max abs difference %.3e\n", worst);
        CHECK(worst < 1e-5);
    }
    free(g.up1), free(zh), free(xt), free(ctx), free(ts);

    /* errors */
    ddps_err err = {{0}};
    mark = ddps_mark(BE);
    ddps_tensor tp2 = eu_upload(BE, n, p, p, 3, pat), cl = eu_upload(BE, 1, 1, 77, C_TXT, CTX_HOST + 77 * C_TXT);
    CHECK(ddps_dift_run(BE, SD, &tp2, &cl, 1000, E, noise, f[1], &dim, &err) != 0 && strstr(err.msg, "timestep 1000"));
    CHECK(ddps_dift_run(BE, SD, &tp2, &cl, 160, 0, noise, f[1], &dim, &err) != 0 && strstr(err.msg, "noise"));
    ddps_release(BE, mark);
    free(f[0]), free(f[1]), free(pat), free(noise);
}

int main(void) {
    if (s1c_open_golden(&BE, &SD) != 0) return t_done();
    /* the two prompt contexts */
    C_TXT = SD->clip_cfg.hidden_size;
    int32_t ids[2 * 77];
    ddps_tokenize(SD->tok, "", ids);
    ddps_tokenize(SD->tok, "An image of tench.", ids + 77);
    ddps_tensor ctx = ddps_new(BE, 2, 1, 77, C_TXT);
    ddps_clip_forward(BE, SD->text, ids, &ctx);
    CTX_HOST = eu_readback(BE, &ctx);
    ddps_release(BE, 0);
    TEST(maps_and_windows);
    TEST(diff_by_hand);
    TEST(determinism_and_pairing);
    TEST(stage1_errors);
    TEST(dift);
    free(CTX_HOST);
    ddps_release(BE, 0);
    ddps_sd_free(BE, SD);
    ddps_backend_free(BE);
    return t_done();
}
