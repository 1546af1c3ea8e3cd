/* Timing harness (in the spirit of zstd's benchfn): a function run after warm-up runs, then
 * repeated; each repetition is timed apart, and the result is the median with the spread.
 * Also the machine's measured read bandwidth, the physical limit of token generation. */
#ifndef LOWBIT_BENCH_H
#define LOWBIT_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One repetition of the work being timed. */
typedef lb_status (*lb_bench_fn)(void *user, lb_error *err);

typedef struct lb_bench_opts {
    int32_t warmup;      /* untimed runs first (default 1) */
    int32_t reps;        /* timed runs, at least (default 5) */
    double  min_seconds; /* keep repeating until this much time was timed (default 0) */
    int32_t max_reps;    /* but never more than this (default 100) */
} lb_bench_opts;

typedef struct lb_bench_result {
    double  median, min, max, mean, stddev; /* seconds per repetition */
    int32_t reps;
} lb_bench_result;

/* Run fn as opts says (NULL: the defaults); the first failure stops and is returned. */
lb_status lb_bench_run(lb_bench_fn fn, void *user, const lb_bench_opts *opts, lb_bench_result *r,
                       lb_error *err);

/* Read bandwidth of main memory in bytes/s: a buffer of `bytes` (far beyond the caches; 0:
 * 512 MiB) read by n_threads threads (<= 0: all), the median of `reps` passes after one
 * warm-up pass. */
lb_status lb_bench_memory_read(size_t bytes, int n_threads, int32_t reps, double *bytes_per_s,
                               lb_error *err);
/* The same with loads of a given width: isa 0 eight-byte words, 1 AVX2 (32 bytes), 2 AVX-512
 * (64 bytes), or the widest below it the CPU has; *width (may be NULL) receives the one used. */
lb_status lb_bench_memory_read_isa(size_t bytes, int n_threads, int32_t reps, int isa, double *bytes_per_s,
                                   int *width, lb_error *err);

/* Read bandwidth as a product kernel sees it: one token's matrix-vector product (the fast,
 * int8-activation path generation takes, rows packed as the forward pass packs them) over a
 * matrix of `type` about `bytes` large (0: 256 MiB; at least 16 MiB), on the threads the
 * library uses; bytes read per second (the matrix's packed and unpacked rows), median of `reps`
 * after one warm-up. LB_ERR_UNSUPPORTED for a type without a kernel. */
lb_status lb_bench_kernel_read(lb_type type, size_t bytes, int32_t reps, double *bytes_per_s, lb_error *err);

/* Where the library's threads run: their CPUs, comma-separated, into buf ("0,1"), as sched_getcpu
 * reports them inside one parallel region. */
void lb_bench_thread_cpus(char *buf, size_t cap);


#ifdef __cplusplus
}
#endif
#endif
