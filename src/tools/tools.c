/* Helpers shared by the tools (see tools.h): report lines and memory figures. */
#include "tools/tools.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void ddps_tools_out(const ddps_hooks *h, const char *fmt, ...) {
    if (!h || !h->log) return;
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->log(h->user, DDPS_LOG_OUTPUT, line);
}

void ddps_tools_out_text(const ddps_hooks *h, const char *text) {
    if (!h || !h->log || !text) return;
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t)(nl - text) : strlen(text);
        char *line = malloc(n + 1);
        if (!line) return;
        memcpy(line, text, n);
        line[n] = 0;
        h->log(h->user, DDPS_LOG_OUTPUT, line);
        free(line);
        text += n + (nl ? 1 : 0);
    }
}

/* A "Vm...:  N kB" field of /proc/self/status in MB; 0 when unknown. */
static double status_mb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) kb = atof(line + n);
    fclose(f);
    return kb / 1024.0;
}

double ddps_tools_peak_rss_mb(void) { return status_mb("VmHWM:"); }

double ddps_tools_rss_mb(void) { return status_mb("VmRSS:"); }
