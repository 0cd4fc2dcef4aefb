#include "util/cpu.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The value after "key\t: " on a /proc/cpuinfo line, or NULL. */
static const char *cpuinfo_value(const char *line, const char *key) {
    size_t k = strlen(key);
    if (strncmp(line, key, k) != 0 || (line[k] != '\t' && line[k] != ' ' && line[k] != ':')) return NULL;
    const char *c = strchr(line, ':');
    if (!c) return NULL;
    c++;
    while (*c == ' ') c++;
    return c;
}

/* Whether the space-separated flag list contains flag as a whole word. */
static int has_flag(const char *flags, const char *flag) {
    size_t k = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)) != NULL; p += k)
        if ((p == flags || p[-1] == ' ') && (p[k] == ' ' || p[k] == '\n' || p[k] == 0)) return 1;
    return 0;
}

void ddps_cpu_describe(char *buf, size_t n) {
    if (!n) return;
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192], name[256] = "unknown CPU", flags[8192] = "";
    int family = -1, model = -1, got_flags = 0;
    while (fgets(line, sizeof line, f)) {
        const char *v;
        if ((v = cpuinfo_value(line, "model name")) && !strcmp(name, "unknown CPU")) {
            snprintf(name, sizeof name, "%s", v);
            name[strcspn(name, "\n")] = 0;
        } else if ((v = cpuinfo_value(line, "cpu family")) && family < 0) {
            sscanf(v, "%d", &family);
        } else if ((v = cpuinfo_value(line, "model")) && model < 0) {
            sscanf(v, "%d", &model);
        } else if ((v = cpuinfo_value(line, "flags")) && !got_flags) {
            snprintf(flags, sizeof flags, "%s", v);
            got_flags = 1;
        }
    }
    fclose(f);
    static const char *ext[] = {"avx2", "avx512f", "avx512_bf16", "avx512fp16", "amx_bf16", "amx_tile"};
    char have[160] = "";
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (has_flag(flags, ext[i])) {
            size_t l = strlen(have);
            snprintf(have + l, sizeof have - l, "%s%s", l ? " " : "", ext[i]);
        }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(buf, n, "%s, family %d model %d, %ld cores, %s", name, family, model, cores, have[0] ? have : "no AVX");
}
