/* Bilinear resampling that reproduces PIL 9.4's Image.resize(size, BILINEAR)
 * on RGB images bit for bit (torchvision's Resize on PIL images calls it).
 *
 * PIL's algorithm, as documented in its sources (libImaging/Resample.c):
 *  - separable: a horizontal pass into an 8-bit intermediate image (only the
 *    rows the vertical pass will read), then a vertical pass; a pass whose
 *    size does not change is skipped, and nothing changing is a copy;
 *  - per output index i: centre c = (i + 0.5) * scale with scale = in / out;
 *    when shrinking the triangle filter's support (1) is widened by the scale
 *    (antialiasing), when enlarging it stays 1; taps run over
 *    [(int)(c - support + 0.5), (int)(c + support + 0.5)) clipped to the
 *    image, weight tri((j - c + 0.5) / filterscale), normalised to sum 1;
 *  - weights become fixed point with 22 fraction bits, rounded half away
 *    from zero; a sum starts at 2^21 (rounding), is shifted right by 22 and
 *    clipped to 0..255.
 * The double arithmetic below keeps PIL's operation order, so the fixed-point
 * weights (and therefore the pixels) are identical. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "util/fs.h"

#define PRECISION_BITS 22

/* Taps of one pass: output index i reads `count[i]` inputs from `first[i]`
 * with weights k[i * ksize ...]. */
typedef struct {
    int ksize;
    int *first, *count;
    int32_t *k;
} taps;

static void taps_free(taps *t) {
    free(t->first);
    free(t->count);
    free(t->k);
}

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static int taps_build(int in_size, int out_size, taps *t, ddps_err *err) {
    /* PIL computes in1 - in0 in float; exact for sizes below 2^24, which the
     * pixel limit guarantees. */
    const double scale = (double)(float)in_size / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale;
    const double ss = 1.0 / filterscale;
    const int ksize = (int)ceil(support) * 2 + 1;
    size_t nk;
    if (ddps_mul_size((size_t)out_size, (size_t)ksize, &nk) != 0 || nk > ((size_t)1 << 31))
        return ddps_fail_resource(err, "resize %d -> %d: coefficient table too large", in_size, out_size);
    t->ksize = ksize;
    t->first = ddps_malloc((size_t)out_size * sizeof(int));
    t->count = ddps_malloc((size_t)out_size * sizeof(int));
    t->k = ddps_calloc(nk, sizeof(int32_t));
    double *w = ddps_malloc((size_t)ksize * sizeof(double));
    for (int i = 0; i < out_size; i++) {
        const double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        if (n > ksize) n = ksize; /* cannot happen; guards the table */
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            w[j] = triangle((j + lo - center + 0.5) * ss);
            sum += w[j];
        }
        int32_t *k = t->k + (size_t)i * ksize;
        for (int j = 0; j < n; j++) {
            double v = sum != 0.0 ? w[j] / sum : w[j];
            k[j] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        t->first[i] = lo;
        t->count[i] = n;
    }
    free(w);
    return 0;
}

static inline uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows [y0, y0 + rows) of src, resampled horizontally into dst (dw wide). */
static void pass_horizontal(const uint8_t *src, int sw, int y0, int rows, const taps *t, uint8_t *dst, int dw) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)(y0 + y) * sw * 3;
        uint8_t *out = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++) {
            const int32_t *k = t->k + (size_t)x * t->ksize;
            const uint8_t *p = in + (size_t)t->first[x] * 3;
            const int n = t->count[x];
            int32_t r = 1 << (PRECISION_BITS - 1), g = r, b = r;
            for (int j = 0; j < n; j++, p += 3) {
                r += p[0] * k[j];
                g += p[1] * k[j];
                b += p[2] * k[j];
            }
            out[x * 3 + 0] = clip8(r);
            out[x * 3 + 1] = clip8(g);
            out[x * 3 + 2] = clip8(b);
        }
    }
}

/* Vertical pass: dst row y = sum over rows first[y] - y0 ... of src. Row at a
 * time over all bytes of a row, which the compiler vectorises; integer sums
 * do not depend on order, so this equals PIL's pixel-at-a-time loop. */
static void pass_vertical(const uint8_t *src, int w, int y0, const taps *t, uint8_t *dst, int dh) {
    const size_t n = (size_t)w * 3;
    int32_t *acc = ddps_malloc(n * sizeof(int32_t));
    for (int y = 0; y < dh; y++) {
        for (size_t i = 0; i < n; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        const int32_t *k = t->k + (size_t)y * t->ksize;
        for (int j = 0; j < t->count[y]; j++) {
            const uint8_t *row = src + (size_t)(t->first[y] - y0 + j) * n;
            const int32_t kj = k[j];
            for (size_t i = 0; i < n; i++) acc[i] += row[i] * kj;
        }
        uint8_t *out = dst + (size_t)y * n;
        for (size_t i = 0; i < n; i++) out[i] = clip8(acc[i]);
    }
    free(acc);
}

int ddps_image_resize(const ddps_image *src, int w, int h, ddps_image *dst, ddps_err *err) {
    dst->w = dst->h = 0;
    dst->px = NULL;
    if (!src->px || src->w <= 0 || src->h <= 0) return ddps_fail(err, "resize: empty source image");
    if (w <= 0 || h <= 0) return ddps_fail(err, "resize: invalid target size %dx%d", w, h);
    if ((uint64_t)w * (uint64_t)h > DDPS_IMAGE_MAX_PIXELS)
        return ddps_fail_resource(err, "resize: target size %dx%d exceeds the %u-pixel limit", w, h, DDPS_IMAGE_MAX_PIXELS);

    if (w == src->w && h == src->h) {
        ddps_image_alloc(dst, w, h);
        memcpy(dst->px, src->px, (size_t)w * h * 3);
        return 0;
    }

    taps tv = {0}, th = {0};
    if (taps_build(src->h, h, &tv, err) != 0) return -1;
    /* Only the source rows the vertical pass reads are resampled horizontally. */
    const int y_first = tv.first[0];
    const int y_last = tv.first[h - 1] + tv.count[h - 1];

    const uint8_t *cur = src->px;
    uint8_t *tmp = NULL;
    int cur_y0 = 0;
    if (w != src->w) {
        if (taps_build(src->w, w, &th, err) != 0) {
            taps_free(&tv);
            return -1;
        }
        const int rows = h != src->h ? y_last - y_first : src->h;
        const int y0 = h != src->h ? y_first : 0;
        tmp = ddps_malloc((size_t)w * rows * 3);
        pass_horizontal(src->px, src->w, y0, rows, &th, tmp, w);
        taps_free(&th);
        cur = tmp;
        cur_y0 = y0;
    }
    ddps_image_alloc(dst, w, h);
    if (h != src->h)
        pass_vertical(cur, w, cur_y0, &tv, dst->px, h);
    else
        memcpy(dst->px, cur, (size_t)w * h * 3);
    free(tmp);
    taps_free(&tv);
    return 0;
}
