/* Candidate windows from a patch score grid (pipeline/window.h). */
#include "pipeline/window.h"

#include <assert.h>
#include <stdlib.h>

#include "util/fs.h"

static double iou(int ai, int aj, int bi, int bj, int patch, int stride) {
    double ox = patch - abs(aj - bj) * (double)stride, oy = patch - abs(ai - bi) * (double)stride;
    if (ox <= 0 || oy <= 0) return 0;
    double inter = ox * oy, a = (double)patch * patch;
    return inter / (2 * a - inter);
}

int ddps_pick_windows(const float *scores, int ph, int pw, int patch, int stride, int k, int *ij) {
    int n = ph * pw;
    if (k > n) k = n;
    int *order = ddps_malloc((size_t)n * sizeof *order);
    char *used = ddps_calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) order[i] = i;
    /* stable sort by score descending (ties: raster order) */
    for (int i = 1; i < n; i++) {
        int x = order[i], j = i - 1;
        while (j >= 0 && scores[order[j]] < scores[x]) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = x;
    }
    int got = 0;
    for (int pass = 0; pass < 2 && got < k; pass++)
        for (int a = 0; a < n && got < k; a++) {
            int w = order[a];
            if (used[w]) continue;
            int ok = 1;
            for (int b = 0; pass == 0 && b < got && ok; b++)
                ok = iou(w / pw, w % pw, ij[2 * b], ij[2 * b + 1], patch, stride) <= 0.5;
            if (!ok) continue;
            used[w] = 1;
            ij[2 * got] = w / pw;
            ij[2 * got + 1] = w % pw;
            got++;
        }
    free(order);
    free(used);
    assert(got == (k < 0 ? 0 : k)); /* the fill pass always completes k (k <= n) */
    return got;
}
