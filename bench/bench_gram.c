/* The calibration's products on the 7b shape, one window at a time, as GPTQ's passes make
 * them: the Gram products into f64 sums (src/quant/gram.c: X^T X's upper triangle and the
 * f32 target's X^T Y, n = 4096 and 11008, T = 512 tokens) and the unquantized model's BF16
 * products on bf16 activations (FAST mode's kernel, kernels/qdot.h: rows split between the
 * threads as the matmul splits them). Each figure is the best of `reps` calls, after one
 * unmeasured call that maps the sums' pages. Random data: the time does not depend on it.
 * Built by CMake (build/bench_gram); it links against any build's liblowbit.a too:
 *   build/bench_gram [reps]
 *   gcc -O2 -fopenmp -Isrc -Iinclude bench/bench_gram.c OTHER/build/liblowbit.a -lopenblas -lm */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/qdot.h"
#include "lowbit/core.h"
#include "lowbit/kernels.h"
#include "quant/gram.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xFFFFFF) / (float)(1 << 24) - 0.5f;
}

static double best_of(int reps, void (*f)(void *), void *arg) {
    double best = 1e30;
    f(arg); /* the sums' pages */
    for (int r = 0; r < reps; r++) {
        const double t0 = omp_get_wtime();
        f(arg);
        const double t = omp_get_wtime() - t0;
        if (t < best) best = t;
    }
    return best;
}

typedef struct {
    int32_t      n, T;
    const float *X, *Y;
    double      *S;
} gram_job;

static void run_upper(void *a) {
    const gram_job *g = a;
    if (!lb_gram_upper_add(g->n, g->T, 1.0f, g->X, g->S, true)) exit(1);
}

static void run_cross(void *a) {
    const gram_job *g = a;
    if (!lb_gram_cross_add(g->n, g->T, g->X, g->Y, g->S, true)) exit(1);
}

typedef struct {
    const lb_qdot  *k;
    int64_t         n, nr, nc;
    const uint16_t *W, *A;
    float          *out;
} gemm_job;

static void run_gemm(void *a) {
    const gemm_job *g = a;
#pragma omp parallel
    {
        const int64_t th = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t r0 = g->nr * th / nt / 16 * 16, r1 = th + 1 == nt ? g->nr : g->nr * (th + 1) / nt / 16 * 16;
        g->k->gemm(g->n, g->W + (size_t)r0 * (size_t)g->n, 2 * (size_t)g->n, r1 - r0, g->A, 2 * (size_t)g->n, g->nc,
                   g->out + r0, g->nr);
    }
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 3;
    if (reps < 1) {
        fprintf(stderr, "usage: bench_gram [reps]\n");
        return 2;
    }
    uint64_t      s = 42;
    const int32_t T = 512, widths[] = { 4096, 11008 };
    printf("threads %d, kernels %s, bf16 Gram %s\n", omp_get_max_threads(), lb_kernels_name(),
           lb_gram_bf16_available() ? "yes" : "no (sgemm)");
    for (int w = 0; w < 2; w++) {
        const int32_t n = widths[w];
        float        *X = malloc((size_t)T * (size_t)n * sizeof *X), *Y = malloc((size_t)T * (size_t)n * sizeof *Y);
        double       *S = malloc((size_t)n * (size_t)n * sizeof *S);
        if (!X || !Y || !S) return 1;
        for (size_t i = 0; i < (size_t)T * (size_t)n; i++) X[i] = frand(&s), Y[i] = frand(&s);
        for (size_t i = 0; i < (size_t)n * (size_t)n; i++) S[i] = 0.0;
        gram_job     g  = { n, T, X, Y, S };
        const double tu = best_of(reps, run_upper, &g), tc = best_of(reps, run_cross, &g);
        printf("gram n %5d T %d: X^T X (upper) %.4f s %6.1f GMAC/s   X^T Y %.4f s %6.1f GMAC/s\n", n, T, tu,
               0.5 * n * (double)n * T / tu * 1e-9, tc, (double)n * n * T / tc * 1e-9);
        free(X), free(Y), free(S);
    }
    const lb_qdot *k = lb_qdot_get_fast(LB_TYPE_BF16);
    if (!k || k->act != LB_ACT_BF16) {
        printf("bf16 products: no bf16-activation kernel here\n");
        return 0;
    }
    const int64_t shapes[][3] = { { 4096, 4096, 512 }, { 4096, 11008, 512 }, { 11008, 4096, 512 }, { 4096, 4096, 64 },
                                  { 4096, 4096, 16 },  { 4096, 4096, 2 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t n = shapes[i][0], nr = shapes[i][1], nc = shapes[i][2];
        uint16_t     *W = malloc((size_t)(n * nr) * 2), *A = malloc((size_t)(n * nc) * 2);
        float        *out = malloc((size_t)(nr * nc) * sizeof *out);
        if (!W || !A || !out) return 1;
        for (int64_t j = 0; j < n * nr; j++) W[j] = lb_f32_to_bf16(frand(&s));
        for (int64_t j = 0; j < n * nc; j++) A[j] = lb_f32_to_bf16(frand(&s));
        gemm_job     g = { k, n, nr, nc, W, A, out };
        const double t = best_of(reps, run_gemm, &g);
        printf("bf16 n %5lld rows %5lld columns %3lld: %.4f s %6.1f GMAC/s\n", (long long)n, (long long)nr, (long long)nc,
               t, (double)(n * nr) * (double)nc / t * 1e-9);
        free(W), free(A), free(out);
    }
    return 0;
}
