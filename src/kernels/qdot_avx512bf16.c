/* BF16 rows against activations rounded to bf16, on AVX512_BF16 (vdpbf16ps: 32 products of
 * bf16 pairs into 16 f32 lanes, each product exact; subnormal inputs and outputs flushed to
 * zero, where the scalar twin keeps them), as ggml computes BF16 models: the FAST
 * mode's kernel for BF16 rows (lb_qdot_table.fast), and the Gram kernel on token pairs
 * (lb_gram_pairs_fn). The activations are rounded by the scalar rule (lb_f32_to_bf16: to
 * nearest even, NaN quieted), byte for byte. Prompts and Gram products are outer products
 * (a tile's columns, or rows, broadcast against 48 rows, or columns, packed in pairs): each
 * (row, column) one chain of vdpbf16ps without a reduction across lanes, the scalar twin's bits
 * whatever the tile; one column (generation) reads a row at a time in four chains (bf_row),
 * other bits. This file alone is compiled with -mavx512bf16 (and the AVX-512 VNNI tier's
 * flags); it runs only after lb_cpu_get_features says so. Elsewhere: an empty table. */
#include <string.h>

#include "qdot.h"

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>


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

/* Prompts (two columns or more): outer products on pairs of values, as the Gram kernel below.
 * A thread packs BP_NV panels of 16 rows by BP_KC values at a time into pairs on its stack
 * (lane l of pair p: row 16 v + l's values 2p and 2p + 1), then every column passes in tiles
 * of BP_MT columns x 48 rows, each column's pair broadcast. Between chunks the partial sums wait
 * in out (f32, exact), so each (row, column) is one chain in pair order, the second value's
 * product added first (as vdpbf16ps adds them): the scalar twin's bits for any tiling. */
#define BP_NV 3
#define BP_KC 1024
#define BP_MT 8
#define BP_PANEL ((BP_KC / 2) * 16) /* uint32 a packed panel */

/* r[i] (16 dwords) -> r[j] holding every r[i]'s dword j (a 16 x 16 transpose) */
static inline void tr16x16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2)
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    for (int g = 0; g < 16; g += 4) { /* u[g + k]: rows g .. g + 3 at columns 4 L + k, 128-bit lane L */
        u[g]     = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int k = 0; k < 4; k++) {
        const __m512i v0 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0x88), v1 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0xDD);
        const __m512i w0 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0x88);
        const __m512i w1 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0xDD);
        r[k]      = _mm512_shuffle_i32x4(v0, w0, 0x88);
        r[k + 8]  = _mm512_shuffle_i32x4(v0, w0, 0xDD);
        r[k + 4]  = _mm512_shuffle_i32x4(v1, w1, 0x88);
        r[k + 12] = _mm512_shuffle_i32x4(v1, w1, 0xDD);
    }
}

/* rows [0, nrows) (zeros past them) of values k0 .. k0 + kc into nv panels of pairs: 16 rows x
 * 16 pairs at a time, a transpose of dwords; an odd last value's pair has a zero second half */
static void bp_pack(const uint8_t *w, size_t ws, int nrows, int64_t k0, int64_t kc, int nv, uint32_t *pk) {
    for (int v = 0; v < nv; v++)
        for (int64_t j = 0; j < kc; j += 32) {
            const __mmask32 m = kc - j >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (kc - j)) - 1);
            __m512i         r[16];
            for (int l = 0; l < 16; l++)
                r[l] = 16 * v + l < nrows ? _mm512_maskz_loadu_epi16(m, w + (size_t)(16 * v + l) * ws + 2 * (size_t)(k0 + j))
                                          : _mm512_setzero_si512();
            tr16x16(r);
            uint32_t *d = pk + (size_t)v * BP_PANEL + (size_t)(j / 2) * 16;
            for (int p = 0; p < 16; p++) _mm512_store_si512(d + 16 * p, r[p]);
        }
}

/* one pair p of the tile: nv panels' vectors, each of the mt columns' pair (bytes 4; 2 for an
 * odd last value, the second half zero) broadcast into acc */
static inline __attribute__((always_inline)) void bp_step(const uint32_t *pk, int64_t p, const uint8_t *a, size_t as,
                                                          int mt, const int nv, const int bytes,
                                                          __m512 acc[BP_MT][BP_NV]) {
    __m512bh q[BP_NV];
    _Pragma("GCC unroll 3") for (int v = 0; v < nv; v++)
        q[v] = (__m512bh)_mm512_load_si512(pk + (size_t)v * BP_PANEL + (size_t)p * 16);
    _Pragma("GCC unroll 8") for (int t = 0; t < BP_MT; t++) {
        if (t >= mt) break;
        int32_t u = 0;
        memcpy(&u, a + (size_t)t * as + 4 * (size_t)p, (size_t)bytes);
        const __m512bh b = (__m512bh)_mm512_set1_epi32(u);
        _Pragma("GCC unroll 3") for (int v = 0; v < nv; v++) acc[t][v] = _mm512_dpbf16_ps(acc[t][v], q[v], b);
    }
}

static inline __attribute__((always_inline)) void bp_tile(int64_t kc, const uint32_t *pk, const uint8_t *a, size_t as,
                                                          int mt, float *out, int64_t ldo, int nrows, bool first,
                                                          const int nv) {
    __m512    acc[BP_MT][BP_NV];
    __mmask16 m[BP_NV];
    _Pragma("GCC unroll 3") for (int v = 0; v < BP_NV; v++) {
        const int k = nrows - 16 * v;
        m[v]        = k >= 16 ? (__mmask16)0xFFFF : k > 0 ? (__mmask16)((1u << k) - 1) : 0;
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < BP_MT; t++)
    _Pragma("GCC unroll 3") for (int v = 0; v < BP_NV; v++)
        acc[t][v] = t < mt && !first ? _mm512_maskz_loadu_ps(m[v], out + t * ldo + 16 * v) : _mm512_setzero_ps();
    const int64_t np = kc / 2; /* whole pairs, then an odd last value alone */
    for (int64_t p = 0; p < np; p++) bp_step(pk, p, a, as, mt, nv, 4, acc);
    if (kc & 1) bp_step(pk, np, a, as, mt, nv, 2, acc); /* its pair's second half zero */
    _Pragma("GCC unroll 8") for (int t = 0; t < BP_MT; t++) {
        if (t >= mt) break;
        _Pragma("GCC unroll 3") for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(out + t * ldo + 16 * v, m[v], acc[t][v]);
    }
}

static void gemm_bf16_bf16(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, int64_t nc,
                           float *out, int64_t ldo) {
    const uint8_t *W = w, *A = a;
    if (nc == 1) {
        for (int64_t r = 0; r < nr; r++) out[r] = bf_row(n, W + (size_t)r * ws, A);
        return;
    }
    if (n == 0) {
        for (int64_t c = 0; c < nc; c++)
            for (int64_t r = 0; r < nr; r++) out[c * ldo + r] = 0.0f;
        return;
    }
    uint32_t pk[BP_NV * BP_PANEL] __attribute__((aligned(64))); /* 96 KB of the thread's stack */
    for (int64_t r0 = 0; r0 < nr; r0 += 16 * BP_NV) {
        const int nrows = nr - r0 < 16 * BP_NV ? (int)(nr - r0) : 16 * BP_NV, nv = (nrows + 15) / 16;
        for (int64_t k0 = 0; k0 < n; k0 += BP_KC) {
            const int64_t kc = n - k0 < BP_KC ? n - k0 : BP_KC;
            bp_pack(W + (size_t)r0 * ws, ws, nrows, k0, kc, nv, pk);
            for (int64_t c = 0; c < nc; c += BP_MT) {
                const int      mt    = nc - c < BP_MT ? (int)(nc - c) : BP_MT;
                const uint8_t *ac    = A + (size_t)c * as + 2 * (size_t)k0;
                float         *o     = out + c * ldo + r0;
                const bool     first = k0 == 0;
                if (mt == BP_MT && nv == 3) bp_tile(kc, pk, ac, as, BP_MT, o, ldo, nrows, first, 3);
                else if (nv == 3) bp_tile(kc, pk, ac, as, mt, o, ldo, nrows, first, 3);
                else if (nv == 2) bp_tile(kc, pk, ac, as, mt, o, ldo, nrows, first, 2);
                else bp_tile(kc, pk, ac, as, mt, o, ldo, nrows, first, 1);
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
