/* Procedural pictures for the synthetic demo dataset (see synth.h). */
#include "tools/demo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "util/fs.h"
#include "util/rng.h"

static const char *const class_names[DDPS_SYNTH_MAX_CLASSES] = {
    "circle", "square", "triangle", "stripes", "checkerboard", "ring", "cross", "gradient",
};

/* One picture's random parameters, all drawn before any pixel. */
typedef struct {
    double fg[3], bg0[3], bg1[3]; /* colours in 0..255; background goes bg0 -> bg1 */
    double bg_dx, bg_dy;          /* background gradient direction (unit or zero) */
    double cx, cy, r, cs, sn;     /* shape centre, size, rotation (cos, sin) */
    double period;                /* stripes and checkerboard cell size */
    double noise;                 /* Gaussian noise sigma, in 0..255 units */
} params;

static double uni(ddps_rng *g, double lo, double hi) { return lo + (hi - lo) * ddps_rng_uniform(g); }

/* HSV (h in degrees, s and v in 0..1) to RGB in 0..255. */
static void hsv(double h, double s, double v, double out[3]) {
    h = fmod(h, 360.0);
    if (h < 0) h += 360.0;
    const double c = v * s, x = c * (1 - fabs(fmod(h / 60.0, 2.0) - 1)), m = v - c;
    double r, g, b;
    switch ((int)(h / 60.0)) {
    case 0: r = c, g = x, b = 0; break;
    case 1: r = x, g = c, b = 0; break;
    case 2: r = 0, g = c, b = x; break;
    case 3: r = 0, g = x, b = c; break;
    case 4: r = x, g = 0, b = c; break;
    default: r = c, g = 0, b = x; break;
    }
    out[0] = (r + m) * 255, out[1] = (g + m) * 255, out[2] = (b + m) * 255;
}

static void draw_params(int cls, int size, ddps_rng *g, params *p) {
    /* Foreground: the class's hue (45 degrees apart) +- 20, saturated. */
    hsv(cls * 45.0 + uni(g, -20, 20), uni(g, 0.55, 1.0), uni(g, 0.6, 1.0), p->fg);
    /* Background: a desaturated colour, dark or light, sometimes a gentle gradient. */
    const int light = ddps_rng_below(g, 2) != 0;
    const double bh = uni(g, 0, 360), bs = uni(g, 0, 0.3);
    const double bv = light ? uni(g, 0.7, 0.95) : uni(g, 0.05, 0.35);
    hsv(bh, bs, bv, p->bg0);
    hsv(bh + uni(g, -30, 30), bs, fmin(1.0, fmax(0.0, bv + uni(g, -0.15, 0.15))), p->bg1);
    if (ddps_rng_below(g, 2)) {
        const double a = uni(g, 0, 2 * M_PI);
        p->bg_dx = cos(a), p->bg_dy = sin(a);
    } else {
        p->bg_dx = p->bg_dy = 0;
    }
    p->cx = uni(g, 0.3, 0.7) * size;
    p->cy = uni(g, 0.3, 0.7) * size;
    p->r = uni(g, 0.18, 0.34) * size;
    const double a = uni(g, 0, M_PI);
    p->cs = cos(a), p->sn = sin(a);
    p->period = uni(g, 0.1, 0.25) * size;
    p->noise = uni(g, 0, 10);
}

/* Foreground amount (0..1) at a point (u, v) in the shape's rotated frame. */
static double coverage(int cls, const params *p, double u, double v, int size) {
    const double r = p->r;
    switch (cls) {
    case 0: return u * u + v * v < r * r;
    case 1: return fabs(u) < 0.8 * r && fabs(v) < 0.8 * r;
    case 2: { /* equilateral triangle with circumradius r: inradius r / 2 */
        static const double nx[3] = {0, -0.86602540378443865, 0.86602540378443865};
        static const double ny[3] = {1, -0.5, -0.5};
        for (int k = 0; k < 3; k++)
            if (u * nx[k] + v * ny[k] > 0.5 * r) return 0;
        return 1;
    }
    case 3: return u / p->period - floor(u / p->period) < 0.5;
    case 4: return ((long)floor(u / p->period) + (long)floor(v / p->period)) & 1;
    case 5: {
        const double d2 = u * u + v * v;
        return d2 < r * r && d2 > 0.36 * r * r;
    }
    case 6: {
        const double w = 0.3 * r;
        return (fabs(u) < w && fabs(v) < r) || (fabs(v) < w && fabs(u) < r);
    }
    default: { /* gradient: background to foreground across the image */
        const double t = u / (0.8 * size) + 0.5;
        return t < 0 ? 0 : t > 1 ? 1 : t;
    }
    }
}

void ddps_synth_draw(int cls, int index, int size, uint64_t seed, uint8_t *rgb) {
    ddps_rng g;
    ddps_rng_seed(&g, ddps_seed_mix(ddps_seed_mix(seed, (uint64_t)cls + 1), (uint64_t)index));
    params p;
    draw_params(cls, size, &g, &p);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            /* 2x2 supersampling smooths the shape edges. */
            double a = 0;
            for (int s = 0; s < 4; s++) {
                const double dx = x + 0.25 + 0.5 * (s & 1) - p.cx, dy = y + 0.25 + 0.5 * (s >> 1) - p.cy;
                a += coverage(cls, &p, dx * p.cs + dy * p.sn, -dx * p.sn + dy * p.cs, size);
            }
            a *= 0.25;
            double t = 0.5 + ((x - 0.5 * size) * p.bg_dx + (y - 0.5 * size) * p.bg_dy) / size;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            uint8_t *o = rgb + ((size_t)y * size + x) * 3;
            for (int c = 0; c < 3; c++) {
                const double bg = p.bg0[c] + (p.bg1[c] - p.bg0[c]) * t;
                double v = bg + (p.fg[c] - bg) * a + p.noise * ddps_rng_normal(&g);
                v = floor(v + 0.5);
                o[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

const char *ddps_synth_class_name(int cls) {
    return cls >= 0 && cls < DDPS_SYNTH_MAX_CLASSES ? class_names[cls] : NULL;
}

int ddps_synth_dataset(const char *root, int n_classes, int per_class, int size, uint64_t seed, const char **names,
                       ddps_err *err) {
    if (n_classes < 1 || n_classes > DDPS_SYNTH_MAX_CLASSES)
        return ddps_fail(err, "synthetic dataset: number of classes must be 1..%d, got %d", DDPS_SYNTH_MAX_CLASSES,
                         n_classes);
    if (per_class < 1 || per_class > 100000)
        return ddps_fail(err, "synthetic dataset: images per class must be 1..100000, got %d", per_class);
    if (size < 8 || size > 4096) return ddps_fail(err, "synthetic dataset: image size must be 8..4096, got %d", size);
    if (ddps_mkdirs(root, err) != 0) return -1;
    ddps_image img;
    if (ddps_image_alloc(&img, size, size) != 0) return ddps_fail(err, "synthetic dataset: size %d too large", size);
    int rc = 0;
    for (int c = 0; c < n_classes && rc == 0; c++) {
        char *dir = ddps_path_join(root, class_names[c]);
        rc = ddps_mkdirs(dir, err);
        for (int i = 0; i < per_class && rc == 0; i++) {
            char file[64];
            snprintf(file, sizeof file, "%s_%03d.png", class_names[c], i);
            char *path = ddps_path_join(dir, file);
            ddps_synth_draw(c, i, size, seed, img.px);
            rc = ddps_image_save(path, &img, 0, err);
            free(path);
        }
        free(dir);
        if (names) names[c] = class_names[c];
    }
    ddps_image_free(&img);
    return rc;
}
