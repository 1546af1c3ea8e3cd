/* BF16 rows against activations rounded to bf16, on AVX512_BF16 (vdpbf16ps: 32 products of
 * bf16 pairs into 16 f32 lanes, each product exact; subnormal inputs and outputs flushed to
 * zero, where the scalar twin keeps them), as ggml computes BF16 models: the FAST
 * mode's kernel for BF16 rows (lb_qdot_table.fast). The activations are rounded by the scalar
 * rule (lb_f32_to_bf16: to nearest even, NaN quieted), byte for byte. Tiles of up to 4 rows x
 * 6 columns (24 accumulators) in row blocks that stay in L2 while the columns pass; a masked
 * last step for any n. Each (row, column) is one chain of vdpbf16ps and one reduction whatever
 * the tile, so any split of the rows or columns gives the same bits; one column (generation)
 * reads a row at a time in four chains (bf_row), other bits. This file alone is
 * compiled with -mavx512bf16 (and the AVX-512 VNNI tier's flags); it runs only after
 * lb_cpu_get_features says so. Elsewhere: an empty table. */
#include <string.h>

#include "qdot.h"

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>

#define BF_MR   4
#define BF_NC   6
#define BF_ROWS (192 * 1024) /* bytes of weight rows a block */

/* lb_f32_to_bf16's integer steps on 16 lanes: (x + 0x7fff + lsb) >> 16, a NaN (x >> 16) | 64 */
static inline __m256i bf_round(__m512 v) {
    const __m512i   x   = _mm512_castps_si512(v);
    const __m512i   hi  = _mm512_srli_epi32(x, 16);
    const __m512i   inc = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(hi, _mm512_set1_epi32(1)));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    const __m512i   r   = _mm512_mask_or_epi32(_mm512_srli_epi32(_mm512_add_epi32(x, inc), 16), nan, hi,
                                               _mm512_set1_epi32(64));
    return _mm512_cvtepi32_epi16(r);
}

static void quantize_bf16(void *dst, const float *x, int64_t n) {
    uint8_t *d = dst;
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        _mm256_mask_storeu_epi16(d + 2 * j, m, bf_round(_mm512_maskz_loadu_ps(m, x + j)));
    }
}

/* always inlined with mr, nc known (or bounded) where it is called: the accumulators stay in
 * registers */
static inline __attribute__((always_inline)) void bf_tile(int64_t n, const uint8_t *w, size_t ws, const uint8_t *a,
                                                          size_t as, float *out, int64_t ldo, const int mr,
                                                          const int nc) {
    __m512 acc[BF_MR][BF_NC];
    _Pragma("GCC unroll 4") for (int r = 0; r < BF_MR; r++)
    _Pragma("GCC unroll 6") for (int c = 0; c < BF_NC; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 32) {
        const __mmask32 m = n - j >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (n - j)) - 1);
        __m512bh        wv[BF_MR];
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)
            wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + (size_t)r * ws + 2 * (size_t)j);
        _Pragma("GCC unroll 6") for (int c = 0; c < nc; c++) {
            const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, a + (size_t)c * as + 2 * (size_t)j);
            _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], wv[r], xv);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)
    _Pragma("GCC unroll 6") for (int c = 0; c < nc; c++) out[c * ldo + r] = _mm512_reduce_add_ps(acc[r][c]);
}

/* One column (generation): a row at a time, one sequential stream with a line prefetched
 * BF_PF bytes ahead per 64 read, four chains of 32 values (as the f32-activation gemv:
 * tiles of 4 rows kept too few misses in flight). */
#define BF_PF 8192
static float bf_row(int64_t n, const uint8_t *w, const uint8_t *x) {
    __m512        acc[4];
    const int64_t n128 = n & ~(int64_t)127;
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n128; j += 128) {
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
            const size_t o = 2 * (size_t)(j + 32 * k);
            _mm_prefetch((const char *)w + o + BF_PF, _MM_HINT_T0);
            acc[k] = _mm512_dpbf16_ps(acc[k], (__m512bh)_mm512_loadu_si512(w + o), (__m512bh)_mm512_loadu_si512(x + o));
        }
    }
    for (int64_t j = n128; j < n; j += 32) {
        const __mmask32 m = n - j >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (n - j)) - 1);
        acc[0] = _mm512_dpbf16_ps(acc[0], (__m512bh)_mm512_maskz_loadu_epi16(m, w + 2 * (size_t)j),
                                  (__m512bh)_mm512_maskz_loadu_epi16(m, x + 2 * (size_t)j));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

static void gemm_bf16_bf16(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, int64_t nc,
                           float *out, int64_t ldo) {
    const uint8_t *W = w, *A = a;
    if (nc == 1) {
        for (int64_t r = 0; r < nr; r++) out[r] = bf_row(n, W + (size_t)r * ws, A);
        return;
    }
    int64_t        rb = (int64_t)(BF_ROWS / ws) / BF_MR * BF_MR;
    if (rb < BF_MR) rb = BF_MR;
    for (int64_t r0 = 0; r0 < nr; r0 += rb) {
        const int64_t r1 = nr - r0 < rb ? nr : r0 + rb;
        for (int64_t c = 0; c < nc; c += BF_NC) {
            const int64_t k = nc - c < BF_NC ? nc - c : BF_NC;
            for (int64_t r = r0; r < r1; r += BF_MR) {
                const uint8_t *wr = W + (size_t)r * ws, *ac = A + (size_t)c * as;
                float         *o  = out + c * ldo + r;
                if (r1 - r >= BF_MR && k == BF_NC) bf_tile(n, wr, ws, ac, as, o, ldo, BF_MR, BF_NC);
                else if (r1 - r >= BF_MR)
                    for (int64_t q = 0; q < k; q++) bf_tile(n, wr, ws, ac + (size_t)q * as, as, o + q * ldo, ldo, BF_MR, 1);
                else
                    for (int64_t i = r; i < r1; i++) bf_tile(n, W + (size_t)i * ws, ws, ac, as, out + c * ldo + i, ldo, 1, (int)k);
            }
        }
    }
}

/* Gram products on token pairs (qdot.h: lb_gram_pairs_fn) as outer products: a tile of 8
 * rows x 3 panels (48 columns, 24 accumulators) takes each pair's 3 column vectors and 8 row
 * broadcasts, so nothing is reduced across lanes; row blocks of GP_RB rows stay in L2 while
 * the tile's columns pass. Rows past the last are the panel's zeros: computed, not stored. */
#define GP_MR 8
#define GP_NV 3
#define GP_RB 256

static inline __attribute__((always_inline)) void gp_tile(int64_t np, const uint32_t *pi, const uint32_t *pj,
                                                          size_t ps, float *out, int64_t ldo, int mr, int nc,
                                                          const int nv) {
    __m512 acc[GP_MR][GP_NV];
    _Pragma("GCC unroll 8") for (int r = 0; r < GP_MR; r++)
    _Pragma("GCC unroll 3") for (int v = 0; v < GP_NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (int64_t p = 0; p < np; p++) {
        __m512bh q[GP_NV];
        _Pragma("GCC unroll 3") for (int v = 0; v < nv; v++)
            q[v] = (__m512bh)_mm512_loadu_si512(pj + (size_t)v * ps + (size_t)p * LB_GRAM_PANEL);
        _Pragma("GCC unroll 8") for (int r = 0; r < GP_MR; r++) {
            const __m512bh b = (__m512bh)_mm512_set1_epi32((int)pi[(size_t)p * LB_GRAM_PANEL + r]);
            _Pragma("GCC unroll 3") for (int v = 0; v < nv; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], q[v], b);
        }
    }
    for (int r = 0; r < mr; r++)
        _Pragma("GCC unroll 3") for (int v = 0; v < nv; v++) {
            const int       k = nc - 16 * v;
            const __mmask16 m = k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1);
            _mm512_mask_storeu_ps(out + r * ldo + 16 * v, m, acc[r][v]);
        }
}

static void gram_pairs(int64_t np, const uint32_t *P, int64_t i0, int64_t nr, const uint32_t *Q, int64_t j0,
                       int64_t nc, float *out, int64_t ldo) {
    const size_t ps = (size_t)np * LB_GRAM_PANEL;
    for (int64_t r0 = 0; r0 < nr; r0 += GP_RB) {
        const int64_t r1 = nr - r0 < GP_RB ? nr : r0 + GP_RB;
        for (int64_t c = 0; c < nc; c += 16 * GP_NV) {
            const int       k  = nc - c < 16 * GP_NV ? (int)(nc - c) : 16 * GP_NV;
            const uint32_t *pj = Q + (size_t)((j0 + c) / LB_GRAM_PANEL) * ps;
            for (int64_t r = r0; r < r1; r += GP_MR) {
                const int64_t   i  = i0 + r;
                const uint32_t *pi = P + (size_t)(i / LB_GRAM_PANEL) * ps + i % LB_GRAM_PANEL;
                const int       mr = r1 - r < GP_MR ? (int)(r1 - r) : GP_MR;
                float          *o  = out + r * ldo + c;
                if (k > 32) gp_tile(np, pi, pj, ps, o, ldo, mr, k, 3);
                else if (k > 16) gp_tile(np, pi, pj, ps, o, ldo, mr, k, 2);
                else gp_tile(np, pi, pj, ps, o, ldo, mr, k, 1);
            }
        }
    }
}

void lb_qdot_fill_avx512bf16(lb_qdot_table *t) {
    memset(t, 0, sizeof *t);
    t->gram_pairs = gram_pairs;
    t->quantize_act[LB_ACT_BF16] = quantize_bf16;
    t->fast[LB_TYPE_BF16]        = (lb_qdot){ .act = LB_ACT_BF16, .gemm = gemm_bf16_bf16, .any_t = true };
}
#else
void lb_qdot_fill_avx512bf16(lb_qdot_table *t) {
    memset(t, 0, sizeof *t);
}
#endif
