/* Gram products in column tiles. OpenBLAS's threaded sgemm and ssyrk round differently on 1
 * and 2 threads (some 8% of a 2048 x 2048 product's elements, measured), and the calibration
 * hook's products ran single-threaded to keep GPTQ's bytes independent of -t. Here each column
 * tile of TILE columns is one single-threaded call whatever the thread count, so the bits are
 * fixed and both cores work. The upper triangle's tiles run from the largest.
 * The bf16 products: X and Y packed in token pairs (kernels/qdot.h's layout), then the Gram
 * kernel's outer products (lb_gram_pairs_fn: vdpbf16ps, no reduction across lanes) into a tile
 * of the thread's, TILE rows by TILE columns, added into S as beta and w ask while it is in
 * cache. The f64 sums (the _add functions) take each tile as it is made: one pass over them,
 * and no n x n f32 matrix. The outputs' squares
 * (lb_gram_out_sq_add) are sgemm's, a tile of TILE rows a call, on X rounded to bf16 as the
 * bf16 products round it. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "gram.h"
#include "kernels/qdot.h"
#include "lowbit/core.h"

#define TILE 256

bool lb_gram_bf16_available(void) { return lb_gram_pairs_get() != NULL; }

/* X [T, n] into token pairs, the kernel's layout (kernels/qdot.h): ceil(n / 16) panels of
 * ceil(T / 2) pairs of 16 lanes, bf16 by lb_f32_to_bf16, zeros past T and n */
static void to_pairs(const float *X, int32_t T, int32_t n, uint32_t *P) {
    const int32_t np = (T + 1) / 2, nq = (n + LB_GRAM_PANEL - 1) / LB_GRAM_PANEL;
#pragma omp parallel for schedule(static) if (n >= 512)
    for (int32_t q = 0; q < nq; q++)
        for (int32_t p = 0; p < np; p++) {
            uint32_t     *d  = P + ((size_t)q * (size_t)np + (size_t)p) * LB_GRAM_PANEL;
            const float  *x0 = X + (size_t)(2 * p) * (size_t)n, *x1 = x0 + n;
            const bool    t1 = 2 * p + 1 < T;
            for (int32_t l = 0; l < LB_GRAM_PANEL; l++) {
                const int32_t j = q * LB_GRAM_PANEL + l;
                d[l] = j >= n ? 0 : (uint32_t)lb_f32_to_bf16(x0[j]) | (t1 ? (uint32_t)lb_f32_to_bf16(x1[j]) << 16 : 0);
            }
        }
}

/* where a product goes: S (f32) = result + beta S, or S64 (f64) += result */
typedef struct {
    float  *S;
    float   beta;
    double *S64;
} sink;

/* a tile's results g[(i - i0) * TILE + r] (column j0 + r of row i; i0 <= i < i1, r < mj), times
 * w, into o; upper: only j >= i */
static void emit(const sink *o, int32_t n, const float *g, int32_t i0, int32_t i1, int32_t j0, int32_t mj, float w,
                 bool upper) {
    for (int32_t i = i0; i < i1; i++) {
        const float  *gi = g + (size_t)(i - i0) * TILE;
        const int32_t r0 = upper && i > j0 ? i - j0 : 0;
        if (o->S64) {
            double *s = o->S64 + (size_t)i * (size_t)n + j0;
#pragma omp simd
            for (int32_t r = r0; r < mj; r++) s[r] += w * gi[r];
        } else {
            float *s = o->S + (size_t)i * (size_t)n + j0;
            for (int32_t r = r0; r < mj; r++) s[r] = w * gi[r] + (o->beta != 0.0f ? o->beta * s[r] : 0.0f);
        }
    }
}

/* w X^T Y (Y = X: upper, the upper triangle) into o, a column tile of TILE a task. f32: each
 * tile one single-threaded sgemm/ssyrk call (alpha w), straight into S, or into the thread's
 * tile then S64; bf16 (k): X and Y packed in token pairs, the kernel called on TILE rows of
 * the tile at a time, each added into o at once. Every buffer is made before any product:
 * false, out of memory, writes nothing. */
static bool gram(lb_gram_pairs_fn k, int32_t n, int32_t T, float w, const float *X, const float *Y, bool upper,
                 const sink *o) {
    const int64_t np = (T + 1) / 2;
    const size_t  pb = (size_t)(n + LB_GRAM_PANEL - 1) / LB_GRAM_PANEL * (size_t)np * LB_GRAM_PANEL * sizeof(uint32_t);
    uint32_t     *Px = NULL, *Py = NULL;
    bool          ok = true;
    if (k) {
        Px = malloc(pb), Py = Y != X ? malloc(pb) : Px;
        ok = Px && Py;
        if (ok) to_pairs(X, T, n, Px);
        if (ok && Py != Px) to_pairs(Y, T, n, Py);
    }
    const int32_t nt     = (n + TILE - 1) / TILE;
    const bool    direct = !k && !o->S64; /* BLAS writes S itself */
    const int     nth    = omp_get_max_threads();
    float       **tiles  = direct ? NULL : calloc((size_t)nth, sizeof *tiles); /* a thread's, all made first */
    ok                   = ok && (direct || tiles);
    for (int t = 0; ok && !direct && t < nth; t++) ok = (tiles[t] = malloc((size_t)(k ? TILE : n) * TILE * sizeof **tiles)) != NULL;
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (ok && nt > 1)
    for (int32_t q = 0; q < nt; q++) {
        if (!ok) continue;
        const int32_t kk = upper ? nt - 1 - q : q, j0 = kk * TILE, mj = n - j0 < TILE ? n - j0 : TILE;
        const int32_t ni = upper ? j0 + mj : n; /* rows i of S the tile needs */
        float        *tile = direct ? NULL : tiles[omp_get_thread_num()];
        float        *out  = direct ? o->S + j0 : tile;
        const blasint ld   = direct ? n : TILE;
        const float   beta = direct ? o->beta : 0.0f;
        if (k) { /* tile[(i - i0) * TILE + r]: row i of X^T by column j0 + r of Y, TILE rows at a time */
            for (int32_t i0 = 0; i0 < ni; i0 += TILE) {
                const int32_t i1 = ni - i0 < TILE ? ni : i0 + TILE;
                k(np, Px, i0, i1 - i0, Py, j0, mj, tile, TILE);
                emit(o, n, tile, i0, i1, j0, mj, w, upper);
            }
        } else if (upper) {
            if (j0 > 0) /* rows [0, j0) of the tile's columns */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j0, mj, T, w, X, n, X + j0, n, beta, out, ld);
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, mj, T, w, X + j0, n, beta, out + (size_t)j0 * (size_t)ld, ld);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, mj, T, w, X, n, Y + j0, n, beta, out, ld);
        }
        if (!direct && !k) emit(o, n, tile, 0, ni, j0, mj, 1.0f, upper);
    }
    for (int t = 0; tiles && t < nth; t++) free(tiles[t]);
    free(tiles);
    free(Px);
    if (Py != Px) free(Py);
    return ok;
}

/* the f32 products (no kernel) when the bf16 ones cannot run or find no memory */
static bool run(int32_t n, int32_t T, float w, const float *X, const float *Y, bool upper, const sink *o, bool bf16) {
    const lb_gram_pairs_fn k = bf16 ? lb_gram_pairs_get() : NULL;
    return (k && gram(k, n, T, w, X, Y, upper, o)) || gram(NULL, n, T, w, X, Y, upper, o);
}

bool lb_gram_upper(int32_t n, int32_t T, float w, const float *X, float beta, float *S, bool bf16) {
    return run(n, T, w, X, X, true, &(sink){ S, beta, NULL }, bf16);
}

bool lb_gram_cross(int32_t n, int32_t T, const float *X, const float *Y, float beta, float *S, bool bf16) {
    return run(n, T, 1.0f, X, Y, false, &(sink){ S, beta, NULL }, bf16);
}

bool lb_gram_upper_add(int32_t n, int32_t T, float w, const float *X, double *S64, bool bf16) {
    return run(n, T, w, X, X, true, &(sink){ NULL, 0.0f, S64 }, bf16);
}

bool lb_gram_cross_add(int32_t n, int32_t T, const float *X, const float *Y, double *S64, bool bf16) {
    return run(n, T, 1.0f, X, Y, false, &(sink){ NULL, 0.0f, S64 }, bf16);
}

bool lb_gram_out_sq_add(int32_t n, int32_t T, const float *X, const float *R, int64_t m, double *e, bool bf16) {
    const int64_t nt = (m + TILE - 1) / TILE;
    const bool    rd = bf16 && lb_gram_bf16_available(); /* X as the bf16 products round it */
    float        *Y  = malloc((size_t)T * (size_t)(m ? m : 1) * sizeof *Y); /* [m, T]: a row's outputs */
    float        *Xr = rd ? malloc((size_t)T * (size_t)n * sizeof *Xr) : NULL;
    if (!Y || (rd && !Xr)) {
        free(Y), free(Xr);
        return false;
    }
    for (size_t i = 0; rd && i < (size_t)T * (size_t)n; i++) Xr[i] = lb_bf16_to_f32(lb_f32_to_bf16(X[i]));
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1)
    for (int64_t q = 0; q < nt; q++) {
        const int64_t r0 = q * TILE, mr = m - r0 < TILE ? m - r0 : TILE;
        float        *y = Y + (size_t)r0 * (size_t)T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)mr, T, n, 1.0f, R + (size_t)r0 * (size_t)n, n,
                    rd ? Xr : X, n, 0.0f, y, T);
        for (int64_t r = 0; r < mr; r++) {
            double sq = 0;
            for (int32_t t = 0; t < T; t++) sq += (double)y[r * T + t] * y[r * T + t];
            e[r0 + r] += sq;
        }
    }
    free(Y), free(Xr);
    return true;
}
