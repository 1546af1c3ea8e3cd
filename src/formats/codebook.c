/* KM3 and KM4: non-uniform quantization with a codebook per row (per output channel), as
 * SqueezeLLM (Kim et al. 2023) does it: each row's 2^bits levels are an importance-weighted
 * k-means of its values, the weights the importance of each column (the Hessian's diagonal,
 * llama.cpp's importance matrix; 1 without one).
 * Row layout (lowbit's own types, no ggml id):
 *   f16 levels[K], ascending (K = 8 or 16), then each value's level index:
 *   KM4: two a byte, the even value in the low nibble;
 *   KM3: a little-endian bit stream (value j at bits 3j .. 3j+2), the last byte padded.
 * A row of n values takes 2K + ceil(n*bits/8) bytes: KM4 at n = 4096 is 4.06 bits per weight.
 * The quantizer: levels started at the weighted quantiles of the row, then Lloyd's iterations
 * (each value to its nearest level, each level to the weighted mean of its values) until no
 * value moves, at most KM_ITERS times; the levels are then rounded to f16 and every value
 * takes its nearest rounded level. Deterministic: sorts are total orders, sums run in order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "lowbit/core.h"

#define KM_ITERS 30

static int km_bits(int K) { return K == 16 ? 4 : 3; }

size_t lb_row_size_km(int K, int64_t n) {
    if (n < 1 || n > INT64_MAX / 8) return 0;
    return (size_t)(2 * K) + (size_t)((n * km_bits(K) + 7) / 8);
}
size_t lb_row_size_km3(int64_t n) { return lb_row_size_km(8, n); }
size_t lb_row_size_km4(int64_t n) { return lb_row_size_km(16, n); }

static unsigned get_index(const uint8_t *q, int K, int64_t j) {
    if (K == 16) return j & 1 ? q[j / 2] >> 4 : q[j / 2] & 15;
    const int64_t b = 3 * j / 8;
    const int     s = (int)(3 * j % 8); /* a value crossing into the next byte: s 6 or 7 */
    return ((unsigned)q[b] >> s | (s > 5 ? (unsigned)q[b + 1] << (8 - s) : 0u)) & 7;
}

void lb_km_set_index(int K, void *row, int64_t j, unsigned v) {
    uint8_t *q = (uint8_t *)row + 2 * K;
    if (K == 16) {
        q[j / 2] = (uint8_t)(j & 1 ? (q[j / 2] & 0x0f) | v << 4 : (q[j / 2] & 0xf0) | v);
        return;
    }
    const int64_t b = 3 * j / 8;
    const int     s = (int)(3 * j % 8);
    q[b] = (uint8_t)((q[b] & ~(7u << s)) | v << s);
    if (s > 5) q[b + 1] = (uint8_t)((q[b + 1] & ~(7u >> (8 - s))) | v >> (8 - s));
}

/* the nearest of K ascending levels (ties to the lower) */
static unsigned nearest(const float *lv, int K, float x) {
    unsigned lo = 0;
    for (int k = 1; k < K; k++)
        if (x > 0.5f * (lv[k - 1] + lv[k])) lo = (unsigned)k;
    return lo;
}

typedef struct {
    float   x, w;
} wval;

static int by_value(const void *a, const void *b) {
    const wval *p = a, *q = b;
    return p->x < q->x ? -1 : p->x > q->x ? 1 : (p->w > q->w) - (p->w < q->w);
}

/* column j's weight in the k-means: its importance (a zero one kept barely above zero), or 1 */
static float weight_of(const float *imp, int64_t j) {
    return imp ? (imp[j] > 0 ? imp[j] : 1e-12f) : 1.0f;
}

/* One row: levels and indices into dst (lb_row_size_km bytes); s: scratch of n wvals. */
static void quantize_row(uint8_t *dst, const float *x, const float *imp, int64_t n, int K, wval *s,
                         unsigned *idx) {
    float  lv[16];
    double tw = 0;
    for (int64_t j = 0; j < n; j++) {
        const float w = weight_of(imp, j);
        s[j] = (wval){ x[j], w };
        tw += w;
    }
    qsort(s, (size_t)n, sizeof *s, by_value);
    /* start: the weighted quantiles (k + 1/2) / K */
    double acc = 0;
    int64_t j  = 0;
    for (int k = 0; k < K; k++) {
        const double at = (k + 0.5) / K * tw;
        while (j < n - 1 && acc + s[j].w < at) acc += s[j++].w;
        lv[k] = s[j].x;
    }
    for (int it = 0; it < KM_ITERS; it++) {
        double sw[16] = { 0 }, sx[16] = { 0 };
        bool   moved  = false;
        for (int64_t i = 0; i < n; i++) {
            const unsigned k = nearest(lv, K, x[i]);
            moved |= it == 0 || k != idx[i];
            idx[i] = k;
            const float w = weight_of(imp, i);
            sw[k] += w, sx[k] += (double)w * x[i];
        }
        for (int k = 0; k < K; k++)
            if (sw[k] > 0) lv[k] = (float)(sx[k] / sw[k]); /* an empty level stays */
        for (int k = 1; k < K; k++) /* keep them ascending (equal means may cross by rounding) */
            if (lv[k] < lv[k - 1]) lv[k] = lv[k - 1];
        if (!moved) break;
    }
    uint16_t h[16];
    for (int k = 0; k < K; k++) {
        h[k]  = lb_f32_to_f16(lv[k]);
        lv[k] = lb_f16_to_f32(h[k]);
    }
    memcpy(dst, h, (size_t)(2 * K));
    uint8_t *q = dst + 2 * K;
    memset(q, 0, (size_t)((n * km_bits(K) + 7) / 8));
    for (int64_t i = 0; i < n; i++) lb_km_set_index(K, dst, i, nearest(lv, K, x[i]));
}

static size_t quantize_rows(int K, void *dst, const float *src, int64_t nrow, int64_t n, const float *imp) {
    const size_t rs = lb_row_size_km(K, n);
    wval        *s  = malloc((size_t)n * sizeof *s);
    unsigned    *ix = malloc((size_t)n * sizeof *ix);
    if (!rs || !s || !ix) { /* no way to report: rows of zero levels */
        if (rs) memset(dst, 0, rs * (size_t)nrow);
        free(s), free(ix);
        return rs * (size_t)nrow;
    }
    for (int64_t r = 0; r < nrow; r++) quantize_row((uint8_t *)dst + rs * (size_t)r, src + r * n, imp, n, K, s, ix);
    free(s), free(ix);
    return rs * (size_t)nrow;
}

size_t lb_quantize_km3(void *dst, const float *src, int64_t nrow, int64_t n, const float *imp) {
    return quantize_rows(8, dst, src, nrow, n, imp);
}
size_t lb_quantize_km4(void *dst, const float *src, int64_t nrow, int64_t n, const float *imp) {
    return quantize_rows(16, dst, src, nrow, n, imp);
}
void lb_quantize_row_km3_ref(void *dst, const float *x, int64_t n) { quantize_rows(8, dst, x, 1, n, NULL); }
void lb_quantize_row_km4_ref(void *dst, const float *x, int64_t n) { quantize_rows(16, dst, x, 1, n, NULL); }

/* a row's levels as f32 */
void lb_km_levels(int K, const void *row, float *lv) {
    uint16_t h[16];
    memcpy(h, row, (size_t)(2 * K));
    for (int k = 0; k < K; k++) lv[k] = lb_f16_to_f32(h[k]);
}

static void dequantize(int K, float *y, const void *src, int64_t n) {
    float lv[16];
    lb_km_levels(K, src, lv);
    const uint8_t *q = (const uint8_t *)src + 2 * K;
    for (int64_t j = 0; j < n; j++) y[j] = lv[get_index(q, K, j)];
}
void lb_dequantize_row_km3(float *y, const void *src, int64_t n) { dequantize(8, y, src, n); }
void lb_dequantize_row_km4(float *y, const void *src, int64_t n) { dequantize(16, y, src, n); }

/* The look-up-table dot product: the activations summed per level, then one product per
 * level (K multiplies for the whole row). */
double lb_km_dot(int K, const void *row, const float *x, int64_t n) {
    float          lv[16];
    double         bucket[16] = { 0 }, sum = 0;
    const uint8_t *q = (const uint8_t *)row + 2 * K;
    lb_km_levels(K, row, lv);
    for (int64_t j = 0; j < n; j++) bucket[get_index(q, K, j)] += x[j];
    for (int k = 0; k < K; k++) sum += bucket[k] * lv[k];
    return sum;
}
double lb_vec_dot_km3(const void *row, const float *x, int64_t n) { return lb_km_dot(8, row, x, n); }
double lb_vec_dot_km4(const void *row, const float *x, int64_t n) { return lb_km_dot(16, row, x, n); }
