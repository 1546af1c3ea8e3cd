/* The kernels' own read bandwidth (lowbit/bench.h, lb_bench_kernel_read): one token's product
 * with a matrix far larger than the caches, as generation computes it, so that a bandwidth
 * figure does not rest on one probe's loop alone. */
#define _GNU_SOURCE 1 /* sched_getcpu */
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "kernels/matmul.h"
#include "kernels/qdot.h"
#include "lowbit/bench.h"
#include "lowbit/core.h"

typedef struct {
    float       *out, *x, *scratch;
    lb_mat       w;
} kernel_job;

static lb_status kernel_pass(void *user, lb_error *err) {
    (void)err;
    kernel_job *j = user;
    lb_matmul(j->out, j->x, j->w, 1, LB_MATMUL_FAST, j->scratch);
    return LB_OK;
}

lb_status lb_bench_kernel_read(lb_type type, size_t bytes, int32_t reps, double *bytes_per_s, lb_error *err) {
    const int64_t cols = 4096;
    if (bytes == 0) bytes = (size_t)256 << 20;
    const size_t rs = lb_row_size(type, cols);
    LB_RETURN_IF(bytes < ((size_t)16 << 20), err, LB_ERR_PARAM,
                 "kernel bandwidth: %zu bytes is within the caches (give at least 16 MiB)", bytes);
    LB_RETURN_IF(rs == 0 || !lb_qdot_get(type), err, LB_ERR_UNSUPPORTED, "kernel bandwidth: %s has no kernel",
                 lb_type_name(type));
    const int64_t rows = (int64_t)(bytes / rs) / 64 * 64;
    lb_tensor     t    = { .type = type, .n_dims = 2, .ne = { cols, rows, 1, 1 } };
    uint8_t      *q    = aligned_alloc(64, ((size_t)rows * rs + 63) / 64 * 64);
    float        *x    = malloc((size_t)cols * sizeof *x);
    kernel_job    j    = { .out = malloc((size_t)rows * sizeof(float)), .x = x,
                           .scratch = aligned_alloc(64, ((size_t)lb_matmul_scratch_floats(cols, 1, omp_get_max_threads()) *
                                                        sizeof(float) + 63) / 64 * 64) };
    void         *pk   = NULL;
    lb_status     st   = LB_OK;
    LB_GOTO_IF(!q || !x || !j.out || !j.scratch, err, LB_ERR_NOMEM, "out of memory for a %zu MiB matrix", bytes >> 20);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < cols; i++) { /* one quantized row of random values, then copies of it */
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) * 0x1.0p-53 - 0.5);
    }
    lb_quantize_rows(type, q, x, 1, cols, NULL);
#pragma omp parallel for schedule(static)
    for (int64_t r = 1; r < rows; r++) memcpy(q + (size_t)r * rs, q, rs); /* pages placed by their readers */
    t.data = q;
    const size_t ps = lb_matmul_pack_size(&t);
    if (ps > 0) { /* as the forward pass holds it: the packed copy alone */
        pk = aligned_alloc(64, (ps + 63) / 64 * 64);
        LB_GOTO_IF(!pk, err, LB_ERR_NOMEM, "out of memory for a %zu MiB matrix", ps >> 20);
        lb_matmul_pack(pk, &t);
    }
    j.w                 = (lb_mat){ .t = &t, .packed = pk };
    const lb_bench_opts o = { .warmup = 1, .reps = reps > 0 ? reps : 5 };
    lb_bench_result     r;
    LB_TRY(lb_bench_run(kernel_pass, &j, &o, &r, err));
    *bytes_per_s = (double)(ps > 0 ? ps : (size_t)rows * rs) / r.median;
fail:
    free(pk);
    free(q);
    free(x);
    free(j.out);
    free(j.scratch);
    return st;
}

void lb_bench_thread_cpus(char *buf, size_t cap) {
    int cpu[256], n = 0;
#pragma omp parallel
    {
        const int i = omp_get_thread_num();
        if (i < 256) cpu[i] = sched_getcpu();
#pragma omp single
        n = omp_get_num_threads() < 256 ? omp_get_num_threads() : 256;
    }
    size_t k = 0;
    buf[0]   = '\0';
    for (int i = 0; i < n && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? "," : "", cpu[i]);
}
