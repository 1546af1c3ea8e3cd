/* lowbit core services: half-precision conversion, CPU features, threads, timing,
 * a progress bar, and a bounds-checked read-only file source (mmap or memory). */
#ifndef LOWBIT_CORE_H
#define LOWBIT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- f16 / bf16 (IEEE binary16 and bfloat16, round to nearest even) ---- */
float    lb_f16_to_f32(uint16_t h);
uint16_t lb_f32_to_f16(float f);
float    lb_bf16_to_f32(uint16_t h);
uint16_t lb_f32_to_bf16(float f);

/* ---- CPU features, detected once at run time ---- */
typedef struct lb_cpu_features {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16;
} lb_cpu_features;
const lb_cpu_features *lb_cpu_get_features(void);
/* "avx2 fma avx512f ..." for logs. */
const char *lb_cpu_features_str(void);

/* ---- threads (OpenMP underneath; also sets the BLAS thread count) ---- */
void lb_threads_set(int n); /* n <= 0: all cores */
int  lb_threads_get(void);

/* ---- time ---- */
double lb_time_sec(void); /* monotonic seconds */

/* ---- progress bar on stderr, drawn only when stderr is a TTY and the job is slow ---- */
typedef struct lb_progress {
    const char *label;
    int64_t     total;
    int64_t     done;
    double      t_start;
    double      t_last;
    bool        enabled;
    bool        drawn;
} lb_progress;
void lb_progress_begin(lb_progress *p, const char *label, int64_t total);
void lb_progress_update(lb_progress *p, int64_t done);
void lb_progress_end(lb_progress *p);

/* ---- read-only byte source: a whole file mmapped, or a caller's memory ---- */
typedef struct lb_source {
    const uint8_t *data;
    size_t         size;
    char          *name; /* file name, for error messages */
    void          *map;  /* non-NULL when data is an mmap we own */
} lb_source;

lb_status lb_source_open_file(lb_source *src, const char *path, lb_error *err);
/* Borrow memory (not copied; must outlive the source). */
lb_status lb_source_open_memory(lb_source *src, const void *data, size_t size, const char *name,
                                lb_error *err);
void      lb_source_close(lb_source *src);

/* Read an entire file into a malloc'd, NUL-terminated buffer. */
lb_status lb_read_file(const char *path, char **out, size_t *out_size, lb_error *err);

#ifdef __cplusplus
}
#endif
#endif
