/* The timing harness and the memory bandwidth probe of lowbit/bench.h. Times are wall-clock
 * (lb_time_sec, monotonic). The bandwidth probe reads a buffer far larger than the caches
 * with independent wide sums per thread, which the CPU issues faster than memory delivers,
 * so memory is what is measured. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/fail.h"
#include "lowbit/bench.h"
#include "lowbit/core.h"

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

lb_status lb_bench_run(lb_bench_fn fn, void *user, const lb_bench_opts *opts, lb_bench_result *r,
                       lb_error *err) {
    const lb_bench_opts def = { .warmup = 1, .reps = 5, .min_seconds = 0, .max_reps = 100 };
    const lb_bench_opts *o  = opts ? opts : &def;
    const int32_t max_reps  = o->max_reps > 0 ? o->max_reps : 100;
    const int32_t reps      = o->reps > 0 ? (o->reps < max_reps ? o->reps : max_reps) : 1;
    double       *t         = malloc((size_t)max_reps * sizeof *t);
    LB_RETURN_IF(!t, err, LB_ERR_NOMEM, "out of memory");
    lb_status st = LB_OK;
    for (int32_t i = 0; i < o->warmup && !st; i++) st = fn(user, err);
    int32_t n     = 0;
    double  total = 0;
    while (!st && n < max_reps && (n < reps || total < o->min_seconds)) {
        const double t0 = lb_time_sec();
        st              = fn(user, err);
        t[n]            = lb_time_sec() - t0;
        total += t[n++];
    }
    if (!st) {
        memset(r, 0, sizeof *r);
        r->reps = n;
        for (int32_t i = 0; i < n; i++) r->mean += t[i] / n;
        for (int32_t i = 0; i < n; i++) r->stddev += (t[i] - r->mean) * (t[i] - r->mean);
        r->stddev = n > 1 ? sqrt(r->stddev / (n - 1)) : 0;
        qsort(t, (size_t)n, sizeof *t, cmp_double);
        r->min    = t[0];
        r->max    = t[n - 1];
        r->median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    }
    free(t);
    return st;
}

/* The sum of n 64-bit words (n a multiple of 16, p 64-byte aligned): the result is used, so
 * the reads happen. 32-byte loads where the CPU has them: one core reading 8 bytes at a time
 * measures its own issue rate (16 GB/s here), not memory's (23 GB/s). */
static uint64_t read_words_scalar(const uint64_t *p, size_t n) {
    uint64_t s[8] = { 0 };
    for (size_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += p[i + (size_t)k];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}
#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"))) static uint64_t read_words_avx2(const uint64_t *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 16) {
        a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *)(p + i + 4)));
        c = _mm256_add_epi64(c, _mm256_load_si256((const __m256i *)(p + i + 8)));
        d = _mm256_add_epi64(d, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) + (uint64_t)_mm256_extract_epi64(a, 1) +
           (uint64_t)_mm256_extract_epi64(a, 2) + (uint64_t)_mm256_extract_epi64(a, 3);
}
__attribute__((target("avx512f"))) static uint64_t read_words_avx512(const uint64_t *p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a;
    for (size_t i = 0; i < n; i += 16) {
        a = _mm512_add_epi64(a, _mm512_load_si512((const void *)(p + i)));
        b = _mm512_add_epi64(b, _mm512_load_si512((const void *)(p + i + 8)));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(a, b));
}
/* the widest loads asked for that the CPU has: 2 AVX-512, 1 AVX2, 0 8-byte words */
static int read_width(int isa) {
    const lb_cpu_features *f = lb_cpu_get_features();
    return isa >= 2 && f->avx512f ? 2 : isa >= 1 && f->avx2 ? 1 : 0;
}
static uint64_t read_words(const uint64_t *p, size_t n, int width) {
    return width == 2 ? read_words_avx512(p, n) : width == 1 ? read_words_avx2(p, n) : read_words_scalar(p, n);
}
#else
static int read_width(int isa) {
    (void)isa;
    return 0;
}
static uint64_t read_words(const uint64_t *p, size_t n, int width) {
    (void)width;
    return read_words_scalar(p, n);
}
#endif

typedef struct {
    const uint64_t   *buf;
    size_t            words;
    int               threads, width;
    volatile uint64_t sink;
} read_job;

static lb_status read_pass(void *user, lb_error *err) {
    (void)err;
    read_job     *j     = user;
    uint64_t      total = 0;
    const int64_t parts = 256; /* 2 MiB pieces of a 512 MiB buffer */
    const size_t  per   = j->words / (size_t)parts / 16 * 16;
#pragma omp parallel for num_threads(j->threads) schedule(static) reduction(+ : total)
    for (int64_t i = 0; i < parts; i++) total += read_words(j->buf + (size_t)i * per, per, j->width);
    j->sink = total;
    return LB_OK;
}

lb_status lb_bench_memory_read(size_t bytes, int n_threads, int32_t reps, double *bytes_per_s,
                               lb_error *err) {
    return lb_bench_memory_read_isa(bytes, n_threads, reps, 1, bytes_per_s, NULL, err);
}

lb_status lb_bench_memory_read_isa(size_t bytes, int n_threads, int32_t reps, int isa, double *bytes_per_s,
                                   int *width, lb_error *err) {
    if (bytes == 0) bytes = (size_t)512 << 20;
    LB_RETURN_IF(bytes < ((size_t)16 << 20), err, LB_ERR_PARAM,
                 "memory bandwidth: %zu bytes is within the caches (give at least 16 MiB)", bytes);
    uint64_t *buf = aligned_alloc(64, bytes / 64 * 64);
    LB_RETURN_IF(!buf, err, LB_ERR_NOMEM, "out of memory for a %zu MiB buffer", bytes >> 20);
    read_job j = { .buf = buf, .words = bytes / 8, .threads = n_threads > 0 ? n_threads : omp_get_num_procs(),
                   .width = read_width(isa) };
    if (width) *width = j.width;
#pragma omp parallel for num_threads(j.threads) schedule(static)
    for (int64_t i = 0; i < (int64_t)j.words; i++) buf[i] = (uint64_t)i; /* placed by its reader */
    const lb_bench_opts o = { .warmup = 1, .reps = reps > 0 ? reps : 5 };
    lb_bench_result     r;
    lb_status           st = lb_bench_run(read_pass, &j, &o, &r, err);
    if (!st) *bytes_per_s = (double)(j.words / 256 / 16 * 16 * 256 * 8) / r.median;
    free(buf);
    return st;
}

size_t lb_peak_rss(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
    return (size_t)u.ru_maxrss * 1024; /* Linux: KiB */
}
