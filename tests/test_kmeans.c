/* k-means: planted clusters are recovered, results are a Lloyd fixed point,
 * deterministic per seed and per thread count, and degenerate inputs
 * (n < k, n == 1, identical points, bad arguments) behave as documented. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/kmeans.h"
#include "testlib.h"
#include "util/rng.h"

typedef struct {
    int n, dim, k;
    float *x;
    int *label; /* planted blob of each point */
} blobs;

/* nb blobs of per points in dim dimensions: centres N(0, spread^2), noise N(0, noise^2),
 * points of the blobs interleaved so no blob is a contiguous range. */
static blobs make_blobs(int nb, int per, int dim, double spread, double noise, uint64_t seed, int normalise) {
    blobs b = {nb * per, dim, nb, malloc(sizeof(float) * nb * per * dim), malloc(sizeof(int) * nb * per)};
    ddps_rng r;
    ddps_rng_seed(&r, seed);
    double *centre = malloc(sizeof(double) * nb * dim);
    for (int i = 0; i < nb * dim; i++) centre[i] = spread * ddps_rng_normal(&r);
    for (int i = 0; i < b.n; i++) {
        int c = i % nb;
        b.label[i] = c;
        double norm = 0;
        for (int d = 0; d < dim; d++) {
            double v = centre[c * dim + d] + noise * ddps_rng_normal(&r);
            b.x[(size_t)i * dim + d] = (float)v;
            norm += v * v;
        }
        if (normalise)
            for (int d = 0; d < dim; d++) b.x[(size_t)i * dim + d] = (float)(b.x[(size_t)i * dim + d] / sqrt(norm));
    }
    free(centre);
    return b;
}

static void free_blobs(blobs *b) {
    free(b->x);
    free(b->label);
}

/* 1.0 when every cluster holds one blob only and every blob one cluster only. */
static double purity(const int *assign, const int *label, int n, int k) {
    int *blob_of = malloc(sizeof(int) * k), *cl_of = malloc(sizeof(int) * k);
    for (int j = 0; j < k; j++) blob_of[j] = cl_of[j] = -1;
    int good = 0;
    for (int i = 0; i < n; i++) {
        int a = assign[i], l = label[i];
        if (a < 0 || a >= k || l < 0 || l >= k) continue;
        if (blob_of[a] < 0) blob_of[a] = l;
        if (cl_of[l] < 0) cl_of[l] = a;
        if (blob_of[a] == l && cl_of[l] == a) good++;
    }
    free(blob_of);
    free(cl_of);
    return (double)good / n;
}

/* Lloyd fixed point: clusters non-empty, centroids are member means, each
 * point is nearest its own centroid, dist is the distance to it. */
static int check_fixed_point(const float *x, int n, int dim, int ku, const int *assign, const float *cent,
                             const float *dist) {
    int bad = 0;
    double *mean = calloc((size_t)ku * dim, sizeof(double));
    int *cnt = calloc((size_t)ku, sizeof(int));
    for (int i = 0; i < n; i++) {
        if (assign[i] < 0 || assign[i] >= ku) {
            free(mean);
            free(cnt);
            return 1;
        }
        cnt[assign[i]]++;
        for (int d = 0; d < dim; d++) mean[(size_t)assign[i] * dim + d] += x[(size_t)i * dim + d];
    }
    for (int j = 0; j < ku; j++) {
        if (cnt[j] == 0) bad++;
        for (int d = 0; d < dim && cnt[j]; d++) {
            double m = mean[(size_t)j * dim + d] / cnt[j];
            if (fabs(m - cent[(size_t)j * dim + d]) > 1e-6 * (1 + fabs(m))) bad++;
        }
    }
    for (int i = 0; i < n; i++) {
        double best = INFINITY, own = 0;
        for (int j = 0; j < ku; j++) {
            double s = 0;
            for (int d = 0; d < dim; d++) {
                double t = (double)x[(size_t)i * dim + d] - cent[(size_t)j * dim + d];
                s += t * t;
            }
            if (s < best) best = s;
            if (j == assign[i]) own = s;
        }
        if (own > best * (1 + 1e-6) + 1e-9) bad++;
        if (fabs(sqrt(own) - dist[i]) > 1e-4 * (1 + dist[i])) bad++;
    }
    free(mean);
    free(cnt);
    return bad;
}

static void planted_clusters(void) {
    blobs b = make_blobs(6, 40, 8, 10.0, 0.3, 11, 0);
    int *assign = malloc(sizeof(int) * b.n);
    float *cent = malloc(sizeof(float) * 6 * 8), *dist = malloc(sizeof(float) * b.n);
    for (uint64_t seed = 0; seed < 5; seed++) {
        int ku = -1;
        CHECK(ddps_kmeans(b.x, b.n, b.dim, 6, seed, 100, assign, cent, dist, &ku) == 0);
        CHECK(ku == 6);
        CHECKF(purity(assign, b.label, b.n, 6) == 1.0, "seed %llu purity %g", (unsigned long long)seed,
               purity(assign, b.label, b.n, 6));
        CHECK(check_fixed_point(b.x, b.n, b.dim, ku, assign, cent, dist) == 0);
    }
    free(assign);
    free(cent);
    free(dist);
    free_blobs(&b);
}

/* DIFT-sized vectors (1280, unit length), k = 32 > number of blobs: every
 * cluster still lies inside one blob. */
static void dim_1280(void) {
    blobs b = make_blobs(4, 60, 1280, 1.0, 0.05, 5, 1);
    int *assign = malloc(sizeof(int) * b.n);
    float *cent = malloc(sizeof(float) * 32 * 1280), *dist = malloc(sizeof(float) * b.n);
    int ku = -1;
    CHECK(ddps_kmeans(b.x, b.n, b.dim, 4, 3, 100, assign, cent, dist, &ku) == 0);
    CHECK(ku == 4);
    CHECK(purity(assign, b.label, b.n, 4) == 1.0);
    CHECK(check_fixed_point(b.x, b.n, b.dim, ku, assign, cent, dist) == 0);
    CHECK(ddps_kmeans(b.x, b.n, b.dim, 32, 3, 100, assign, cent, dist, &ku) == 0);
    CHECK(ku == 32);
    int *blob_of = malloc(sizeof(int) * 32), mixed = 0;
    for (int j = 0; j < 32; j++) blob_of[j] = -1;
    for (int i = 0; i < b.n; i++) {
        if (blob_of[assign[i]] < 0) blob_of[assign[i]] = b.label[i];
        if (blob_of[assign[i]] != b.label[i]) mixed++;
    }
    CHECK(mixed == 0);
    CHECK(check_fixed_point(b.x, b.n, b.dim, ku, assign, cent, dist) == 0);
    free(blob_of);
    free(assign);
    free(cent);
    free(dist);
    free_blobs(&b);
}

/* Same seed: bit-identical results, whatever the thread count; another seed
 * on ambiguous data (one Gaussian cloud): a different partition. */
static void deterministic(void) {
    blobs b = make_blobs(1, 300, 16, 0.0, 1.0, 9, 0);
    int n = b.n, dim = b.dim, k = 12;
    int *a1 = malloc(sizeof(int) * n), *a2 = malloc(sizeof(int) * n);
    float *c1 = malloc(sizeof(float) * k * dim), *c2 = malloc(sizeof(float) * k * dim);
    float *d1 = malloc(sizeof(float) * n), *d2 = malloc(sizeof(float) * n);
    int k1, k2;
    omp_set_num_threads(1);
    CHECK(ddps_kmeans(b.x, n, dim, k, 42, 300, a1, c1, d1, &k1) == 0);
    omp_set_num_threads(4);
    CHECK(ddps_kmeans(b.x, n, dim, k, 42, 300, a2, c2, d2, &k2) == 0);
    CHECK(k1 == k && k2 == k);
    CHECK(memcmp(a1, a2, sizeof(int) * n) == 0);
    CHECK(memcmp(c1, c2, sizeof(float) * k * dim) == 0);
    CHECK(memcmp(d1, d2, sizeof(float) * n) == 0);
    CHECK(check_fixed_point(b.x, n, dim, k1, a1, c1, d1) == 0);
    int differs = 0;
    for (uint64_t s = 43; s < 46; s++) {
        CHECK(ddps_kmeans(b.x, n, dim, k, s, 300, a2, c2, d2, &k2) == 0);
        if (memcmp(a1, a2, sizeof(int) * n) != 0) differs++;
    }
    CHECK(differs == 3);
    free(a1);
    free(a2);
    free(c1);
    free(c2);
    free(d1);
    free(d2);
    free_blobs(&b);

    /* big enough that every loop runs in parallel (kmeans.c: PAR_WORK) */
    b = make_blobs(1, 1800, 1280, 0.0, 1.0, 10, 0);
    n = b.n, dim = b.dim, k = 8;
    a1 = malloc(sizeof(int) * n), a2 = malloc(sizeof(int) * n);
    c1 = malloc(sizeof(float) * k * dim), c2 = malloc(sizeof(float) * k * dim);
    d1 = malloc(sizeof(float) * n), d2 = malloc(sizeof(float) * n);
    omp_set_num_threads(1);
    CHECK(ddps_kmeans(b.x, n, dim, k, 42, 8, a1, c1, d1, &k1) == 0);
    omp_set_num_threads(3);
    CHECK(ddps_kmeans(b.x, n, dim, k, 42, 8, a2, c2, d2, &k2) == 0);
    CHECK(k1 == k && k2 == k);
    CHECK(memcmp(a1, a2, sizeof(int) * n) == 0);
    CHECK(memcmp(c1, c2, sizeof(float) * k * dim) == 0);
    CHECK(memcmp(d1, d2, sizeof(float) * n) == 0);
    free(a1);
    free(a2);
    free(c1);
    free(c2);
    free(d1);
    free(d2);
    free_blobs(&b);
}

static void few_points(void) {
    float x[3 * 2] = {0, 0, 5, 5, -3, 1};
    int assign[3];
    float cent[10 * 2], dist[3];
    int ku = -1;
    CHECK(ddps_kmeans(x, 3, 2, 10, 1, 50, assign, cent, dist, &ku) == 0);
    CHECK(ku == 3);
    CHECK(assign[0] != assign[1] && assign[1] != assign[2] && assign[0] != assign[2]);
    for (int i = 0; i < 3; i++) {
        CHECK(dist[i] == 0);
        CHECK(assign[i] >= 0 && assign[i] < 3);
        CHECK(cent[assign[i] * 2] == x[i * 2] && cent[assign[i] * 2 + 1] == x[i * 2 + 1]);
    }
    /* n == 1 */
    CHECK(ddps_kmeans(x + 2, 1, 2, 32, 7, 50, assign, cent, dist, &ku) == 0);
    CHECK(ku == 1 && assign[0] == 0 && dist[0] == 0 && cent[0] == 5 && cent[1] == 5);
    /* n == 0: nothing to do */
    ku = -1;
    CHECK(ddps_kmeans(NULL, 0, 2, 4, 7, 50, NULL, NULL, NULL, &ku) == 0 && ku == 0);
}

static void identical_points(void) {
    enum { N = 60, D = 4 };
    float x[N * D];
    int assign[N];
    float cent[8 * D], dist[N];
    for (int i = 0; i < N * D; i++) x[i] = 0.25f;
    int ku = -1;
    CHECK(ddps_kmeans(x, N, D, 8, 3, 50, assign, cent, dist, &ku) == 0);
    CHECK(ku == 1);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += assign[i] != 0 || dist[i] != 0;
    CHECK(bad == 0);
    /* two distinct values, each repeated: two clusters, exact */
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) x[i * D + d] = (i % 3 == 0) ? 1.0f : -2.0f;
    CHECK(ddps_kmeans(x, N, D, 8, 3, 50, assign, cent, dist, &ku) == 0);
    CHECK(ku == 2);
    bad = 0;
    for (int i = 0; i < N; i++) bad += assign[i] != assign[i % 3 == 0 ? 0 : 1] || dist[i] != 0;
    CHECK(bad == 0 && assign[0] != assign[1]);
}

/* Many seeds on awkward data (duplicates, far outliers, k close to the number
 * of distinct points) where clusters empty out during Lloyd: the result is
 * always a complete fixed point (no empty cluster, no crash). */
static void awkward_data(void) {
    enum { N = 40, D = 2 };
    float x[N * D];
    ddps_rng r;
    ddps_rng_seed(&r, 1);
    for (int i = 0; i < N; i++) {
        int g = i % 4;
        x[i * D] = (float)(g == 3 ? 1000.0 * (i % 7) : (double)(i % 5));
        x[i * D + 1] = (float)(g == 2 ? ddps_rng_normal(&r) : 0.0);
    }
    int assign[N], ku, bad = 0, fails = 0;
    float cent[20 * D], dist[N];
    for (uint64_t seed = 0; seed < 200; seed++) {
        int k = 2 + (int)(seed % 18);
        if (ddps_kmeans(x, N, D, k, seed, 1000, assign, cent, dist, &ku) != 0) fails++;
        if (ku < 1 || ku > k)
            bad++;
        else
            bad += check_fixed_point(x, N, D, ku, assign, cent, dist);
    }
    CHECK(fails == 0);
    CHECKF(bad == 0, "%d violations", bad);
}

/* A centre that attracts no point is moved onto the point farthest from its
 * centroid (ties: lowest index), which then forms its own cluster. */
static void empty_cluster_reseeded(void) {
    float x[5] = {0, 1, 10, 11, 12};
    float init[3] = {0.5f, 100.0f, 11.0f};
    int assign[5];
    float cent[3], dist[5];
    CHECK(ddps_kmeans_from(x, 5, 1, 3, init, 50, assign, cent, dist) == 0);
    /* first update: centres 0.5, (empty), 11; the farthest points are 10 and 12
     * (distance 1 from 11): the lower index, 10, seeds cluster 1. */
    CHECK(assign[0] == 0 && assign[1] == 0);
    CHECK(assign[2] == 1 && assign[3] == 2 && assign[4] == 2);
    CHECK(cent[0] == 0.5f && cent[1] == 10.0f && cent[2] == 11.5f);
    CHECK(check_fixed_point(x, 5, 1, 3, assign, cent, dist) == 0);
    /* every centre starts empty but one: all get re-seeded, no crash */
    float init2[3] = {-100.0f, 500.0f, 600.0f};
    CHECK(ddps_kmeans_from(x, 5, 1, 3, init2, 50, assign, cent, dist) == 0);
    CHECK(check_fixed_point(x, 5, 1, 3, assign, cent, dist) == 0);
    CHECK(ddps_kmeans_from(x, 5, 1, 3, NULL, 50, assign, cent, dist) == -1);
}

static void bad_arguments(void) {
    float x[4] = {1, 2, 3, 4};
    int assign[2], ku = 5;
    float cent[4], dist[2];
    CHECK(ddps_kmeans(x, -1, 2, 1, 0, 10, assign, cent, dist, &ku) == -1 && ku == 0);
    CHECK(ddps_kmeans(x, 2, 0, 1, 0, 10, assign, cent, dist, &ku) == -1);
    CHECK(ddps_kmeans(x, 2, 2, 0, 0, 10, assign, cent, dist, &ku) == -1);
    CHECK(ddps_kmeans(x, 2, 2, 1, 0, -1, assign, cent, dist, &ku) == -1);
    CHECK(ddps_kmeans(x, 2, 2, 1, 0, 10, NULL, cent, dist, &ku) == -1);
    x[3] = NAN;
    CHECK(ddps_kmeans(x, 2, 2, 1, 0, 10, assign, cent, dist, &ku) == -1);
    x[3] = INFINITY;
    CHECK(ddps_kmeans(x, 2, 2, 1, 0, 10, assign, cent, dist, &ku) == -1);
    /* max_iter 0: seeding and one assignment only, still consistent */
    x[3] = 4;
    CHECK(ddps_kmeans(x, 2, 2, 2, 0, 0, assign, cent, dist, &ku) == 0 && ku == 2 && assign[0] != assign[1]);
}

int main(void) {
    TEST(planted_clusters);
    TEST(dim_1280);
    TEST(deterministic);
    TEST(few_points);
    TEST(identical_points);
    TEST(awkward_data);
    TEST(empty_cluster_reseeded);
    TEST(bad_arguments);
    return t_done();
}
