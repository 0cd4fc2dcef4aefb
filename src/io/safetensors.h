/* safetensors files: a reader that trusts nothing and a writer.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {str: str}}, then the data area. Offsets are relative to
 * the data area.
 *
 * The reader mmaps the file and validates everything before any use: header
 * length against the file size, JSON syntax, duplicate names, dtype names,
 * shapes, offsets inside the data area and not overlapping, and
 * byte length == product(shape) * dtype size. Tensor data stays in the
 * mapping; ddps_st_to_f32 converts one tensor at a time so that a model can be
 * converted without two full copies in memory, and ddps_st_release drops a
 * tensor's pages once it has been converted.
 */
#ifndef DDPS_IO_SAFETENSORS_H
#define DDPS_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef enum {
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_I32,
    ST_I64,
    ST_F64,
    ST_I8,
    ST_U8,
    ST_I16,
    ST_BOOL,
} st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    size_t offset;     /* inside the data area */
    const void *data;  /* points into the mapping */
} st_tensor;

typedef struct {
    char *path;
    int fd;
    void *map;
    size_t map_size;
    size_t data_start;
    int n;
    st_tensor *t; /* sorted by name */
} st_file;

size_t ddps_st_dtype_size(st_dtype dt);
const char *ddps_st_dtype_name(st_dtype dt);

int ddps_st_open(st_file *f, const char *path, ddps_err *err);
void ddps_st_close(st_file *f);
/* Tensor by exact name, or NULL. */
const st_tensor *ddps_st_find(const st_file *f, const char *name);
/* Converts a float tensor (F32/F16/BF16/F64) or integer tensor to f32.
 * dst holds numel floats. Returns the number of non-finite values seen. */
size_t ddps_st_to_f32(const st_tensor *t, float *dst);
/* Converts an integer tensor (I32/I64) to int64; fails for other dtypes or
 * values outside [lo, hi]. */
int ddps_st_to_i64(const st_file *f, const st_tensor *t, int64_t lo, int64_t hi, int64_t *dst, ddps_err *err);
/* Tells the kernel the tensor's pages are no longer needed (keeps RSS low
 * while a large model is converted). */
void ddps_st_release(const st_file *f, const st_tensor *t);

/* Writer: tensors given by name, dtype, shape and host data. */
typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
} st_out;

/* Writes path atomically. */
int ddps_st_write(const char *path, const st_out *t, int n, ddps_err *err);

/* f16/bf16 <-> f32 conversions (round to nearest even). */
float ddps_st_f16_to_f32(uint16_t h);
float ddps_st_bf16_to_f32(uint16_t h);
uint16_t ddps_st_f32_to_f16(float f);
uint16_t ddps_st_f32_to_bf16(float f);

#endif
