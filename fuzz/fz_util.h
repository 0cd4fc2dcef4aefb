/* Shared helpers of the fuzz harnesses: most parsers read files, so each
 * input is written to a per-process scratch folder on tmpfs first. */
#ifndef DDPS_FUZZ_UTIL_H
#define DDPS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The scratch folder (/dev/shm/ddps-fuzz-<pid>, else /tmp/...), created once. */
const char *fz_dir(void);
/* fz_dir()/name, in a static buffer per slot (0..7). */
const char *fz_path(int slot, const char *name);
/* Writes data to path (truncating); 0 on success. */
int fz_write(const char *path, const void *data, size_t len);
/* Splits data at the first occurrence of sep (a NUL-free marker): part a is
 * [0, i), part b follows the marker; b_len = 0 and b = data + len when absent. */
void fz_split(const uint8_t *data, size_t len, const char *sep, const uint8_t **b, size_t *a_len, size_t *b_len);
/* Quietens ddps_warn/ddps_info (they would flood the fuzzer's output). */
void fz_quiet(void);

#endif
