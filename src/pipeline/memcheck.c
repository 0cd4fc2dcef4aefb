#include "pipeline/memcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t sat_mul(uint64_t a, uint64_t b) {
    if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
    return a * b;
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

uint64_t ddps_score_memory_estimate(const ddps_vae_config *vae, const ddps_unet_config *unet, int H, int W, int n,
                                    int K, int P, int k, int E) {
    if (H <= 0 || W <= 0 || n <= 0) return 0;
    uint64_t cv = vae && vae->n_blocks > 0 && vae->block_out_channels[0] > 0 ? (uint64_t)vae->block_out_channels[0] : 128;
    uint64_t cu = unet && unet->n_blocks > 0 && unet->block_out_channels[0] > 0 ? (uint64_t)unet->block_out_channels[0]
                                                                                  : 320;
    uint64_t px = sat_mul((uint64_t)H, (uint64_t)W);
    uint64_t tok = sat_mul((uint64_t)(H / 8 + 1), (uint64_t)(W / 8 + 1));
    uint64_t ptok = P > 0 ? sat_mul((uint64_t)(P / 8 + 1), (uint64_t)(P / 8 + 1)) : 0;
    uint64_t lat = sat_add(sat_mul(tok, 2 * (uint64_t)(K > 0 ? K : 1)),
                           sat_mul(ptok, (uint64_t)(k > 0 ? k : 0) * (uint64_t)(E > 0 ? E : 0)));
    uint64_t v = sat_mul(sat_mul(sat_mul(px, (uint64_t)n), cv), 4 * 16);
    uint64_t u = sat_mul(sat_mul(sat_mul(lat, (uint64_t)n), cu), 4 * 128);
    return sat_add(v, u);
}

uint64_t ddps_memory_available(void) {
    const char *lim = getenv("DDPS_MEMORY_LIMIT_MB");
    if (lim && *lim) {
        char *end;
        unsigned long long mb = strtoull(lim, &end, 10);
        if (*end == 0) return sat_mul(mb, 1u << 20);
    }
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return UINT64_MAX;
    char line[256];
    uint64_t avail = 0, swap = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = sat_mul(kb, 1024), found = 1;
        else if (sscanf(line, "SwapFree: %llu kB", &kb) == 1) swap = sat_mul(kb, 1024);
    }
    fclose(f);
    return found ? sat_add(avail, swap) : UINT64_MAX;
}

int ddps_score_memory_check(const ddps_vae_config *vae, const ddps_unet_config *unet, int H, int W, int n, int K,
                            int P, int k, int E, ddps_err *err) {
    uint64_t need = ddps_score_memory_estimate(vae, unet, H, W, n, K, P, k, E), have = ddps_memory_available();
    if (need <= have) return 0;
    return ddps_fail_resource(err, "needs about %.0f MiB of memory to score at %dx%d, %.0f MiB available", need / 1048576.0, W,
                     H, have / 1048576.0);
}
