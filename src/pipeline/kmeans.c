#include "pipeline/kmeans.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"
#include "util/rng.h"

/* Parallel loops only pay off above this many multiply-adds; below it the
 * thread start-up and barriers cost more than the work (and more still on a
 * busy machine). Results do not depend on it. */
#define PAR_WORK (1L << 21)

/* Squared distance of one float row to one double centre, accumulated in
 * double in index order (the same result on every machine). */
static double dist2_row(const float *a, const double *c, int dim) {
    double s = 0;
    for (int d = 0; d < dim; d++) {
        double t = (double)a[d] - c[d];
        s += t * t;
    }
    return s;
}

static void set_centre(double *c, const float *row, int dim) {
    for (int d = 0; d < dim; d++) c[d] = row[d];
}

/* Lowers dmin[i] to the squared distance to centre c where that is closer.
 * Each point is independent, so the parallel loop is deterministic. */
static void lower_dmin(const float *x, int n, int dim, const double *c, double *dmin) {
#pragma omp parallel for schedule(static) if ((long)n * dim >= PAR_WORK)
    for (int i = 0; i < n; i++) {
        double d2 = dist2_row(x + (size_t)i * dim, c, dim);
        if (d2 < dmin[i]) dmin[i] = d2;
    }
}

/* Draws one index with probability dmin[i] / total (total = sum of dmin > 0). */
static int draw_d2(const double *dmin, int n, double total, ddps_rng *rng) {
    double r = ddps_rng_uniform(rng) * total, cum = 0;
    int last_pos = 0;
    for (int i = 0; i < n; i++) {
        if (dmin[i] <= 0) continue;
        last_pos = i;
        cum += dmin[i];
        if (cum > r) return i;
    }
    return last_pos; /* rounding left r just past the sum */
}

/* k-means++ in its greedy form: the first centre is uniform; every next one
 * is the best of L = 2 + ln(k) candidates drawn with probability
 * proportional to the squared distance to the nearest chosen centre (best =
 * lowest total squared distance afterwards). Plain k-means++ (L = 1) lands
 * two centres in one tight blob now and then; the greedy pick makes that
 * rare. Stops early when every point sits on a centre (fewer distinct points
 * than k). tmp: 2n doubles. Returns the number of centres chosen. */
static int seed_plus_plus(const float *x, int n, int dim, int k, ddps_rng *rng, double *c, double *dmin, double *tmp) {
    int first = (int)ddps_rng_below(rng, (uint64_t)n);
    set_centre(c, x + (size_t)first * dim, dim);
    for (int i = 0; i < n; i++) dmin[i] = INFINITY;
    lower_dmin(x, n, dim, c, dmin);
    int trials = 2 + (int)log((double)k);
    double *cand_d = tmp, *best_d = tmp + n;
    int m = 1;
    while (m < k) {
        double total = 0;
        for (int i = 0; i < n; i++) total += dmin[i];
        if (!(total > 0)) break; /* every point coincides with a centre */
        int best = -1;
        double best_pot = INFINITY;
        for (int t = 0; t < trials; t++) {
            int cand = draw_d2(dmin, n, total, rng);
            memcpy(cand_d, dmin, (size_t)n * sizeof *cand_d);
            set_centre(c + (size_t)m * dim, x + (size_t)cand * dim, dim);
            lower_dmin(x, n, dim, c + (size_t)m * dim, cand_d);
            double pot = 0;
            for (int i = 0; i < n; i++) pot += cand_d[i];
            if (t == 0 || pot < best_pot) {
                best_pot = pot;
                best = cand;
                memcpy(best_d, cand_d, (size_t)n * sizeof *best_d);
            }
        }
        set_centre(c + (size_t)m * dim, x + (size_t)best * dim, dim);
        memcpy(dmin, best_d, (size_t)n * sizeof *dmin);
        m++;
    }
    return m;
}

/* Assigns every point to its nearest centre (ties: lower index); d2 gets the
 * squared distance. Returns how many assignments changed. */
static long assign_step(const float *x, int n, int dim, const double *c, int kk, int *assign, double *d2) {
    long changed = 0;
#pragma omp parallel for schedule(static) reduction(+ : changed) if ((long)n * kk * dim >= PAR_WORK)
    for (int i = 0; i < n; i++) {
        const float *row = x + (size_t)i * dim;
        int best = 0;
        double bd = dist2_row(row, c, dim);
        for (int j = 1; j < kk; j++) {
            double dj = dist2_row(row, c + (size_t)j * dim, dim);
            if (dj < bd) {
                bd = dj;
                best = j;
            }
        }
        if (assign[i] != best) changed++;
        assign[i] = best;
        d2[i] = bd;
    }
    return changed;
}

/* Centres = member means (sums in point order, in double). A centre left
 * without members is moved onto the point farthest from its own centre,
 * which is then no longer far from anything; empties are handled in index
 * order so the outcome is fixed. */
static void update_step(const float *x, int n, int dim, double *c, int kk, const int *assign, double *d2, double *sum,
                        long *count) {
    memset(sum, 0, (size_t)kk * dim * sizeof *sum);
    memset(count, 0, (size_t)kk * sizeof *count);
    for (int i = 0; i < n; i++) {
        double *s = sum + (size_t)assign[i] * dim;
        const float *row = x + (size_t)i * dim;
        for (int d = 0; d < dim; d++) s[d] += row[d];
        count[assign[i]]++;
    }
    int empties = 0;
    for (int j = 0; j < kk; j++) {
        if (count[j] == 0) {
            empties++;
            continue;
        }
        for (int d = 0; d < dim; d++) c[(size_t)j * dim + d] = sum[(size_t)j * dim + d] / (double)count[j];
    }
    if (!empties) return;
        /* Distances to the moved centres, then re-seed each empty cluster. */
#pragma omp parallel for schedule(static) if ((long)n * dim >= PAR_WORK)
    for (int i = 0; i < n; i++) d2[i] = dist2_row(x + (size_t)i * dim, c + (size_t)assign[i] * dim, dim);
    for (int j = 0; j < kk; j++) {
        if (count[j] != 0) continue;
        int far = -1;
        double fd = 0;
        for (int i = 0; i < n; i++)
            if (d2[i] > fd) {
                fd = d2[i];
                far = i;
            }
        if (far < 0) break; /* every point sits on a centre: nothing to move */
        set_centre(c + (size_t)j * dim, x + (size_t)far * dim, dim);
        lower_dmin(x, n, dim, c + (size_t)j * dim, d2);
    }
}

/* Lloyd iterations from the centres in c (kk of them), then the outputs. */
static void lloyd(const float *x, int n, int dim, double *c, int kk, int max_iter, int *assign, float *centroids,
                  float *dist, double *d2) {
    double *sum = ddps_malloc((size_t)kk * dim * sizeof *sum);
    long *count = ddps_malloc((size_t)kk * sizeof *count);
    for (int i = 0; i < n; i++) assign[i] = -1;
    assign_step(x, n, dim, c, kk, assign, d2);
    for (int it = 0; it < max_iter; it++) {
        update_step(x, n, dim, c, kk, assign, d2, sum, count);
        if (assign_step(x, n, dim, c, kk, assign, d2) == 0) break;
    }
    for (int i = 0; i < n; i++) dist[i] = (float)sqrt(d2[i]);
    for (size_t i = 0; i < (size_t)kk * dim; i++) centroids[i] = (float)c[i];
    free(sum);
    free(count);
}

/* Shared argument checks; 0 when usable. */
static int check_args(const float *x, int n, int dim, int k, int max_iter, const int *assign, const float *centroids,
                      const float *dist) {
    size_t nd, kd;
    if (n < 0 || dim < 1 || k < 1 || max_iter < 0) return -1;
    if (n == 0) return 0;
    if (!x || !assign || !centroids || !dist) return -1;
    if (ddps_mul_size((size_t)n, (size_t)dim, &nd) != 0 || ddps_mul_size((size_t)k, (size_t)dim, &kd) != 0 ||
        kd > SIZE_MAX / sizeof(double) || (size_t)n > SIZE_MAX / (2 * sizeof(double)))
        return -1;
    for (size_t i = 0; i < nd; i++)
        if (!isfinite(x[i])) return -1;
    return 0;
}

int ddps_kmeans(const float *x, int n, int dim, int k, uint64_t seed, int max_iter, int *assign, float *centroids,
                float *dist, int *k_used) {
    if (!k_used) return -1;
    *k_used = 0;
    if (check_args(x, n, dim, k, max_iter, assign, centroids, dist) != 0) return -1;
    if (n == 0) return 0;
    if (k > n) k = n; /* never more centres than points */
    double *c = ddps_malloc((size_t)k * dim * sizeof *c);
    double *d2 = ddps_malloc((size_t)n * sizeof *d2);
    double *tmp = ddps_malloc(2 * (size_t)n * sizeof *tmp);
    ddps_rng rng;
    ddps_rng_seed(&rng, seed);
    int kk = seed_plus_plus(x, n, dim, k, &rng, c, d2, tmp);
    lloyd(x, n, dim, c, kk, max_iter, assign, centroids, dist, d2);
    *k_used = kk;
    free(c);
    free(d2);
    free(tmp);
    return 0;
}

int ddps_kmeans_from(const float *x, int n, int dim, int k, const float *init, int max_iter, int *assign,
                     float *centroids, float *dist) {
    if (check_args(x, n, dim, k, max_iter, assign, centroids, dist) != 0 || (n > 0 && !init)) return -1;
    if (n == 0) return 0;
    for (size_t i = 0; i < (size_t)k * dim; i++)
        if (!isfinite(init[i])) return -1;
    double *c = ddps_malloc((size_t)k * dim * sizeof *c);
    double *d2 = ddps_malloc((size_t)n * sizeof *d2);
    for (size_t i = 0; i < (size_t)k * dim; i++) c[i] = init[i];
    lloyd(x, n, dim, c, k, max_iter, assign, centroids, dist, d2);
    free(c);
    free(d2);
    return 0;
}
