/* The toy world (see world.h): objects of ten classes with known boxes on
 * cluttered backgrounds. Every number of a picture comes from one random
 * stream seeded by (seed, class, index), drawn before any pixel. */
#include "tools/world.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"
#include "util/rng.h"

static const struct {
    const char *folder, *name;
    double hue; /* < 0: black and white */
    int n_variants;
    const char *variants[DDPS_WORLD_MAX_VARIANTS];
} classes[DDPS_WORLD_CLASSES] = {
    {"red-disc", "red disc", 0, 3, {"solid", "bullseye", "split"}},
    {"blue-square", "blue square", 225, 3, {"solid", "framed", "diamond"}},
    {"green-triangle", "green triangle", 125, 3, {"solid", "hollow", "striped"}},
    {"yellow-star", "yellow star", 55, 3, {"five", "eight", "centred"}},
    {"striped-disc", "striped disc", -1, 2, {"wide", "fine"}},
    {"purple-cross", "purple cross", 280, 3, {"plus", "saltire", "outlined"}},
    {"orange-ring", "orange ring", 28, 3, {"thin", "thick", "double"}},
    {"cyan-hexagon", "cyan hexagon", 185, 3, {"solid", "holed", "dotted"}},
    {"checkered-square", "checkered square", -1, 2, {"coarse", "fine"}},
    {"pink-heart", "pink heart", 325, 2, {"solid", "outlined"}},
};

const char *ddps_world_folder(int cls) { return cls >= 0 && cls < DDPS_WORLD_CLASSES ? classes[cls].folder : NULL; }
const char *ddps_world_name(int cls) { return cls >= 0 && cls < DDPS_WORLD_CLASSES ? classes[cls].name : NULL; }
int ddps_world_variants(int cls) { return cls >= 0 && cls < DDPS_WORLD_CLASSES ? classes[cls].n_variants : 0; }
const char *ddps_world_variant(int cls, int v) {
    return v >= 0 && v < ddps_world_variants(cls) ? classes[cls].variants[v] : NULL;
}

/* ---- shapes: colour index (0 = transparent, 1..3) at (u, v), a point in
   the shape's own frame, scaled so that the shape spans about [-1, 1] ---- */

static int triangle_in(double u, double v, double s) { /* equilateral, circumradius s, apex up */
    return v < 0.5 * s && 0.8660254 * u - 0.5 * v < 0.5 * s && -0.8660254 * u - 0.5 * v < 0.5 * s;
}
static int hexagon_in(double u, double v) {
    for (int k = 0; k < 3; k++)
        if (fabs(u * cos(k * M_PI / 3) + v * sin(k * M_PI / 3)) > 0.87) return 0;
    return 1;
}
static int heart_in(double x, double y) { /* y up */
    const double a = x * x + y * y - 1;
    return a * a * a - x * x * y * y * y < 0;
}
static int cross_in(double u, double v, double w, double len) {
    return (fabs(u) < w && fabs(v) < len) || (fabs(v) < w && fabs(u) < len);
}

/* The object of class cls, variant var. */
static int object_at(int cls, int var, double u, double v) {
    const double rho = sqrt(u * u + v * v);
    switch (cls) {
    case 0: /* red disc */
        if (rho >= 1) return 0;
        if (var == 1) return rho < 0.33 ? 1 : rho < 0.66 ? 2 : 1;
        return var == 2 && u >= 0 ? 3 : 1;
    case 1: /* blue square */
        if (var == 2) return fabs(u) + fabs(v) < 1;
        if (fabs(u) >= 0.8 || fabs(v) >= 0.8) return 0;
        return var == 1 && fabs(u) < 0.45 && fabs(v) < 0.45 ? 2 : 1;
    case 2: /* green triangle */
        v -= 0.25; /* centre the extent [-1, 0.5] */
        if (!triangle_in(u, v, 1.0)) return 0;
        if (var == 1) return !triangle_in(u, v, 0.45);
        return var == 2 && ((long)floor((v + 1) / 0.25) & 1) ? 3 : 1;
    case 3: { /* yellow star: radius between 0.42 and 1 by angle */
        const int n = var == 1 ? 8 : 5;
        double f = atan2(u, -v) * n / (2 * M_PI);
        f -= floor(f);
        if (rho >= 0.42 + 0.58 * fabs(f - 0.5) * 2) return 0;
        return var == 2 && rho < 0.3 ? 3 : 1;
    }
    case 4: /* striped disc */
        if (rho >= 1) return 0;
        return ((long)floor(u / (var == 0 ? 0.5 : 0.25)) & 1) ? 1 : 2;
    case 5: /* purple cross */
        if (var == 1) {
            const double a = (u + v) * M_SQRT1_2, b = (v - u) * M_SQRT1_2;
            u = a, v = b;
        }
        if (!cross_in(u, v, 0.3, 1.0)) return 0;
        return var == 2 && cross_in(u, v, 0.12, 0.82) ? 2 : 1;
    case 6: /* orange ring */
        if (var == 0) return rho > 0.72 && rho < 1;
        if (var == 1) return rho > 0.4 && rho < 1;
        return (rho > 0.8 && rho < 1) || (rho > 0.35 && rho < 0.58);
    case 7: { /* cyan hexagon */
        if (!hexagon_in(u, v)) return 0;
        if (var == 1) return rho >= 0.4;
        const double gu = u / 0.4 - floor(u / 0.4 + 0.5), gv = v / 0.4 - floor(v / 0.4 + 0.5);
        return var == 2 && gu * gu + gv * gv < 0.09 ? 3 : 1;
    }
    case 8: { /* checkered square */
        if (fabs(u) >= 0.8 || fabs(v) >= 0.8) return 0;
        const double p = var == 0 ? 0.4 : 0.2;
        return (((long)floor(u / p) + (long)floor(v / p)) & 1) ? 1 : 2;
    }
    default: { /* pink heart */
        const double x = u * 1.15, y = -v * 1.15 + 0.12;
        if (!heart_in(x, y)) return 0;
        return var == 1 && heart_in(x / 0.6, (y - 0.08) / 0.6) ? 2 : 1;
    }
    }
}

/* Distractor kinds of the shared pool. */
enum { D_ELLIPSE, D_OUTLINE, D_LINE, D_DOTS, D_KINDS };

static int distractor_at(int kind, double aspect, double u, double v) {
    switch (kind) {
    case D_ELLIPSE: return u * u + (v / aspect) * (v / aspect) < 1;
    case D_OUTLINE:
        return fabs(u) < 1 && fabs(v) < aspect && !(fabs(u) < 0.75 && fabs(v) < aspect - 0.25);
    case D_LINE: return fabs(v) < 0.12 && fabs(u) < 1;
    default: {
        static const double dx[3] = {-0.5, 0.45, 0.0}, dy[3] = {-0.3, -0.4, 0.5};
        for (int k = 0; k < 3; k++)
            if ((u - dx[k]) * (u - dx[k]) + (v - dy[k]) * (v - dy[k]) < 0.09) return 1;
        return 0;
    }
    }
}

/* One shape placed in the picture. */
typedef struct {
    int object;          /* 1: the class object; 0: a distractor */
    int kind, variant;   /* class and variant, or distractor kind */
    double cx, cy, r;    /* centre and half extent, pixels */
    double cs, sn;       /* rotation */
    double aspect;       /* distractors */
    double col[4][3];    /* colour of index 1..3, 0..255 */
} shape;

static double uni(ddps_rng *g, double lo, double hi) { return lo + (hi - lo) * ddps_rng_uniform(g); }

/* HSV (h in degrees, s and v in 0..1) to RGB in 0..255. */
static void hsv(double h, double s, double v, double out[3]) {
    h = fmod(h, 360.0);
    if (h < 0) h += 360.0;
    const double c = v * s, x = c * (1 - fabs(fmod(h / 60.0, 2.0) - 1)), m = v - c;
    const int sector = (int)(h / 60.0);
    const double r[6] = {c, x, 0, 0, x, c}, gg[6] = {x, c, c, x, 0, 0}, b[6] = {0, 0, x, c, c, x};
    out[0] = (r[sector % 6] + m) * 255, out[1] = (gg[sector % 6] + m) * 255, out[2] = (b[sector % 6] + m) * 255;
}

/* Paints s over the picture (rgb: w x h x 3 doubles) with 2x2 supersampling;
   box (may be NULL) gets the bounding box of the pixels it touched. */
static void paint(const shape *s, double *rgb, int w, int h, int box[4]) {
    const double ext = 1.6 * s->r + 2;
    const int x0 = (int)fmax(0, floor(s->cx - ext)), x1 = (int)fmin(w, ceil(s->cx + ext));
    const int y0 = (int)fmax(0, floor(s->cy - ext)), y1 = (int)fmin(h, ceil(s->cy + ext));
    if (box) box[0] = w, box[1] = h, box[2] = box[3] = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            double acc[3] = {0, 0, 0};
            int hit = 0;
            for (int k = 0; k < 4; k++) {
                const double dx = x + 0.25 + 0.5 * (k & 1) - s->cx, dy = y + 0.25 + 0.5 * (k >> 1) - s->cy;
                const double u = (dx * s->cs + dy * s->sn) / s->r, v = (-dx * s->sn + dy * s->cs) / s->r;
                const int c = s->object ? object_at(s->kind, s->variant, u, v) : distractor_at(s->kind, s->aspect, u, v);
                if (!c) continue;
                hit++;
                for (int j = 0; j < 3; j++) acc[j] += s->col[c][j];
            }
            if (!hit) continue;
            double *p = rgb + ((size_t)y * w + x) * 3;
            for (int j = 0; j < 3; j++) p[j] = (acc[j] + p[j] * (4 - hit)) / 4;
            if (box) {
                if (x < box[0]) box[0] = x;
                if (y < box[1]) box[1] = y;
                if (x + 1 > box[2]) box[2] = x + 1;
                if (y + 1 > box[3]) box[3] = y + 1;
            }
        }
}

/* The class object's colours: the class hue, saturated, with white (2) and a
   dark shade (3); or black and white for the patterned classes. */
static void object_colours(int cls, ddps_rng *g, double col[4][3]) {
    if (classes[cls].hue < 0) {
        const double dark = uni(g, 10, 45), light = uni(g, 210, 245);
        for (int j = 0; j < 3; j++) col[1][j] = col[3][j] = dark, col[2][j] = light;
        return;
    }
    hsv(classes[cls].hue + uni(g, -8, 8), uni(g, 0.75, 1.0), uni(g, 0.75, 1.0), col[1]);
    const double white = uni(g, 225, 250);
    for (int j = 0; j < 3; j++) col[2][j] = white, col[3][j] = col[1][j] * 0.45;
}

/* Background: a muted gradient with a soft wave texture. */
static void background(ddps_rng *g, double *rgb, int w, int h) {
    double c0[3], c1[3];
    const double bh = uni(g, 0, 360), bs = uni(g, 0, 0.25);
    const double bv = ddps_rng_below(g, 2) ? uni(g, 0.55, 0.9) : uni(g, 0.12, 0.4);
    hsv(bh, bs, bv, c0);
    hsv(bh + uni(g, -40, 40), bs, fmin(1, fmax(0, bv + uni(g, -0.15, 0.15))), c1);
    const double a = uni(g, 0, 2 * M_PI), amp = uni(g, 3, 12);
    const double fx = uni(g, 0.02, 0.12), fy = uni(g, 0.02, 0.12), ph = uni(g, 0, 2 * M_PI);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double t = 0.5 + ((x - 0.5 * w) * cos(a) + (y - 0.5 * h) * sin(a)) / (w > h ? w : h);
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            const double wave = amp * sin(fx * x + ph) * cos(fy * y - ph);
            for (int j = 0; j < 3; j++) rgb[((size_t)y * w + x) * 3 + j] = c0[j] + (c1[j] - c0[j]) * t + wave;
        }
}

/* The picture's size: base x base, or one in five another aspect ratio. */
static void picture_size(ddps_rng *g, int base, int *w, int *h) {
    static const double ratio[5] = {1.25, 0.8, 1.5, 2.0 / 3.0, 1.125};
    *w = *h = base;
    if (ddps_rng_below(g, 5) != 0) return;
    const double r = ratio[ddps_rng_below(g, 5)];
    if (r > 1) *w = (int)lround(base * r);
    else *h = (int)lround(base / r);
}

int ddps_world_draw(int cls, int index, uint64_t seed, int base, ddps_image *img, ddps_world_item *item,
                    ddps_err *err) {
    if (cls < 0 || cls >= DDPS_WORLD_CLASSES) return ddps_fail_usage(err, "world: class %d out of 0..9", cls);
    if (base < 16 || base > 2048) return ddps_fail_usage(err, "world: image size %d out of 16..2048", base);
    if (index < 0) return ddps_fail_usage(err, "world: negative picture index %d", index);
    ddps_rng g;
    ddps_rng_seed(&g, ddps_seed_mix(ddps_seed_mix(seed, (uint64_t)cls + 1), (uint64_t)index));
    int w, h;
    picture_size(&g, base, &w, &h);
    memset(item, 0, sizeof *item);
    item->cls = cls;
    item->variant = (int)ddps_rng_below(&g, (uint64_t)classes[cls].n_variants);
    item->jpeg = ddps_rng_below(&g, 4) == 0;
    const int short_side = w < h ? w : h;
    double *rgb = ddps_malloc((size_t)w * h * 3 * sizeof *rgb);
    background(&g, rgb, w, h);
    const int n_distract = 4 + (int)ddps_rng_below(&g, 6);
    for (int i = 0; i < n_distract; i++) {
        shape d = {.object = 0, .kind = (int)ddps_rng_below(&g, D_KINDS), .aspect = uni(&g, 0.4, 1.0)};
        d.r = uni(&g, 0.04, 0.09) * short_side;
        d.cx = uni(&g, 0, w), d.cy = uni(&g, 0, h);
        const double a = uni(&g, 0, M_PI);
        d.cs = cos(a), d.sn = sin(a);
        hsv(uni(&g, 0, 360), uni(&g, 0, 0.3), uni(&g, 0.25, 0.85), d.col[1]);
        paint(&d, rgb, w, h, NULL);
    }
    shape o = {.object = 1, .kind = cls, .variant = item->variant};
    o.r = 0.5 * uni(&g, 0.2, 0.5) * short_side;
    o.cx = uni(&g, 1.2 * o.r, w - 1.2 * o.r), o.cy = uni(&g, 1.2 * o.r, h - 1.2 * o.r);
    const double a = uni(&g, -20, 20) * M_PI / 180;
    o.cs = cos(a), o.sn = sin(a);
    object_colours(cls, &g, o.col);
    paint(&o, rgb, w, h, item->box);
    const double noise = uni(&g, 1, 6);
    if (ddps_image_alloc(img, w, h) != 0) {
        free(rgb);
        return ddps_fail_kind(err, DDPS_KIND_RESOURCE, "world: no memory for a %dx%d picture", w, h);
    }
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        const double v = floor(rgb[i] + noise * ddps_rng_normal(&g) + 0.5);
        img->px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    free(rgb);
    return 0;
}

/* Writes one split's pictures into dir/split/<folder>/NNNN.png|jpg and their
   entries into the boxes.json stream js (",\n" separated; *first tracks it). */
static int write_split(const char *dir, const char *split, uint64_t seed, int n_classes, int per_class, int base,
                       FILE *js, int *first, ddps_err *err) {
    int rc = 0;
    for (int c = 0; c < n_classes && rc == 0; c++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s/%s", split, classes[c].folder);
        char *folder = ddps_path_join(dir, sub);
        rc = ddps_mkdirs(folder, err);
        for (int i = 0; i < per_class && rc == 0; i++) {
            ddps_image img = {0};
            ddps_world_item it;
            rc = ddps_world_draw(c, i, seed, base, &img, &it, err);
            if (rc != 0) break;
            char rel[320];
            snprintf(rel, sizeof rel, "%s/%04d.%s", sub, i, it.jpeg ? "jpg" : "png");
            char *path = ddps_path_join(dir, rel);
            rc = ddps_image_save(path, &img, it.jpeg ? 92 : 0, err);
            free(path);
            ddps_image_free(&img);
            fprintf(js, "%s  \"%s\": {\"class\": \"%s\", \"variant\": \"%s\", \"box\": [%d, %d, %d, %d]}",
                    *first ? "" : ",\n", rel, classes[c].folder, classes[c].variants[it.variant], it.box[0],
                    it.box[1], it.box[2], it.box[3]);
            *first = 0;
        }
        free(folder);
    }
    return rc;
}

/* dir/classes.tsv: folder<TAB>prompt name, one class a line. */
static int write_class_names(const char *dir, int n_classes, ddps_err *err) {
    char text[DDPS_WORLD_CLASSES * 64] = "";
    size_t n = 0;
    for (int c = 0; c < n_classes; c++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\t%s\n", classes[c].folder, classes[c].name);
    char *path = ddps_path_join(dir, "classes.tsv");
    const int rc = ddps_write_file_atomic(path, text, n, err);
    free(path);
    return rc;
}

uint64_t ddps_world_split_seed(uint64_t seed, int split) { return ddps_seed_mix(seed, (uint64_t)split + 1); }

int ddps_world_generate(const char *dir, uint64_t seed, int n_classes, int train, int val, int test, int base,
                     ddps_err *err) {
    if (!dir || !*dir) return ddps_fail_usage(err, "world: an output folder is required");
    if (n_classes < 1 || n_classes > DDPS_WORLD_CLASSES)
        return ddps_fail_usage(err, "world: number of classes %d out of 1..%d", n_classes, DDPS_WORLD_CLASSES);
    const int counts[3] = {train, val, test};
    for (int s = 0; s < 3; s++)
        if (counts[s] < 0 || counts[s] > 100000)
            return ddps_fail_usage(err, "world: %d images per class out of 0..100000", counts[s]);
    if (train + val + test == 0) return ddps_fail_usage(err, "world: no images asked for (all splits 0)");
    if (base < 16 || base > 2048) return ddps_fail_usage(err, "world: image size %d out of 16..2048", base);
    if (ddps_mkdirs(dir, err) != 0) return -1;
    char *buf = NULL;
    size_t len = 0;
    FILE *js = open_memstream(&buf, &len);
    if (!js) return ddps_fail_kind(err, DDPS_KIND_RESOURCE, "world: no memory for boxes.json");
    fputs("{\n", js);
    static const char *const split[3] = {"train", "val", "test"};
    int first = 1, rc = 0;
    for (int s = 0; s < 3 && rc == 0; s++)
        if (counts[s] > 0)
            rc = write_split(dir, split[s], ddps_world_split_seed(seed, s), n_classes, counts[s], base, js,
                             &first, err);
    fputs("\n}\n", js);
    fclose(js);
    if (rc == 0) rc = write_class_names(dir, n_classes, err);
    if (rc == 0) {
        char *path = ddps_path_join(dir, "boxes.json");
        rc = ddps_write_file_atomic(path, buf, len, err);
        free(path);
    }
    free(buf);
    return rc;
}
