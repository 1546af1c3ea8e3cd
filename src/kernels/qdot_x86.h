/* The x86 SIMD kernels of qdot.h, written once and compiled twice: qdot_avx2.c and
 * qdot_avx512.c include this file after defining
 *   QX_DOT(u, s)   sum of 4 adjacent u8 * s8 products into each of 8 int32 lanes
 *                  (AVX2: maddubs + madd; AVX-512 VNNI: one dpbusd)
 *   QX_FILL        the name of the table-filling function.
 * Weight blocks are decoded into 32 int8 levels per vector: signed levels use the sign trick
 * (|w| times a with w's sign), unsigned ones (affine types, k-quants with a min) go straight
 * into the u8 side. No level range lets maddubs saturate (|pair| <= 2 * 127 * 127).
 * Tiles: MR weight rows x NC activation columns share each decoded block; every (row, column)
 * pair runs the same operations in every tile shape, so results never depend on tiling. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "formats/blocks.h"
#include "formats/formats.h"
#include "formats/iq4_common.h"
#include "qdot.h"

#define QX_INLINE static inline __attribute__((always_inline))
/* Keep an accumulator a register: GCC reassociates chains of integer adds into trees whose
 * partial results outlive AVX2's 16 registers and spill; an empty asm pins the chain's order. */
#define QX_KEEP(v) __asm__("" : "+x"(v))
#define QX_MR     2   /* rows per tile when several columns share it */
#define QX_NC     4   /* columns per tile */
#define QX_MR1    4   /* rows per tile for one column (generation) */
#define QX_ACT_CACHE (96 * 1024) /* bytes of activations kept hot per column block */

QX_INLINE float qx_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s        = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s        = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

QX_INLINE int qx_hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s         = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s         = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

QX_INLINE float qx_f16(uint16_t h) {
    return _cvtsh_ss(h);
}

/* 16 bytes of nibbles -> 32 levels: low nibbles first (values 0..15), then the high ones */
QX_INLINE __m256i qx_nibbles(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, 0x10 where bit j is set */
QX_INLINE __m256i qx_bits16(const uint8_t *qh) {
    uint32_t x;
    memcpy(&x, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    const __m256i mask = _mm256_set1_epi64x((int64_t)0x8040201008040201ull);
    const __m256i b    = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf), mask);
    return _mm256_and_si256(_mm256_cmpeq_epi8(b, mask), _mm256_set1_epi8(0x10));
}

/* a 16-level int8 grid (IQ4_NL's, XNF4's) in both lanes, for shuffles by nibble */
QX_INLINE __m256i qx_grid8(const int8_t *g) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)g));
}
QX_INLINE __m256i qx_grid(void) {
    return qx_grid8(lb_iq4nl_grid);
}

/* 8 bytes of 2-bit levels (X2_0, X2_1: value 8 s + b in bits 2 s of byte b) -> 32 levels */
QX_INLINE __m256i qx_crumbs(const uint8_t *qs) {
    uint64_t x;
    memcpy(&x, qs, 8);
    return _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x((long long)x), _mm256_setr_epi64x(0, 2, 4, 6)),
                            _mm256_set1_epi8(3));
}

/* ---- activations: the bytes of qdot_ref.c's quantizers ---- */

/* 32 floats -> 32 int8 (x * id rounded to nearest even), their sum in *sum */
QX_INLINE __m256i qx_quant32(const float *x, __m256 id, __m256i *sum32) {
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x), id),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    sum32[0]   = _mm256_add_epi32(i0, i1);
    sum32[1]   = _mm256_add_epi32(i2, i3);
    i0         = _mm256_packs_epi32(i0, i1);
    i2         = _mm256_packs_epi32(i2, i3);
    i0         = _mm256_packs_epi16(i0, i2);
    return _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* max |x| over n floats (n a multiple of 8) */
QX_INLINE float qx_amax(const float *x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256       m    = _mm256_setzero_ps();
    for (int j = 0; j < n; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s        = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s        = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static void quantize_q8a(void *dst, const float *x, int64_t n) {
    lb_block_q8a *y = dst;
    for (int64_t i = 0; i < n / LB_QK_A; i++, x += LB_QK_A) {
        const float amax = qx_amax(x, LB_QK_A);
        const float id   = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m256i     s[2];
        _mm256_storeu_si256((__m256i *)y[i].qs, qx_quant32(x, _mm256_set1_ps(id), s));
        y[i].d   = amax / 127.0f;
        y[i].sum = qx_hsum_i32(_mm256_add_epi32(s[0], s[1]));
        y[i].s   = y[i].d * (float)y[i].sum;
    }
}

static void quantize_q8k(void *dst, const float *x, int64_t n) {
    lb_block_q8k *y = dst;
    for (int64_t i = 0; i < n / LB_QK_KA; i++, x += LB_QK_KA) {
        const float  amax = qx_amax(x, LB_QK_KA);
        const __m256 id   = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
        for (int j = 0; j < LB_QK_KA / 32; j++) {
            __m256i s[2];
            _mm256_storeu_si256((__m256i *)(y[i].qs + 32 * j), qx_quant32(x + 32 * j, id, s));
            y[i].bsums[2 * j]     = (int16_t)qx_hsum_i32(s[0]);
            y[i].bsums[2 * j + 1] = (int16_t)qx_hsum_i32(s[1]);
        }
        y[i].d = amax / 127.0f;
    }
}

/* ---- 32-blocks ----
 * Three kinds of levels: signed (Q8_0, IQ4_NL: the sign trick), unsigned with a fixed offset
 * (Q4_0: q - 8, Q5_0: q - 16: the offset times the activations' sum is taken off the integer
 * sum, exactly: OFF * sum from each of the 8 lanes is 8 * OFF * sum), and affine (Q4_1, Q5_1:
 * unsigned levels plus m_w * s_a in float). */

QX_INLINE __m256i dec_q8_0(const lb_block_q8_0 *b) {
    return _mm256_loadu_si256((const __m256i *)b->qs);
}
QX_INLINE __m256i dec_q4_0(const lb_block_q4_0 *b) {
    return qx_nibbles(b->qs);
}
QX_INLINE __m256i dec_q4_1(const lb_block_q4_1 *b) {
    return qx_nibbles(b->qs);
}
QX_INLINE __m256i dec_q5_0(const lb_block_q5_0 *b) {
    return _mm256_or_si256(qx_nibbles(b->qs), qx_bits16(b->qh));
}
QX_INLINE __m256i dec_q5_1(const lb_block_q5_1 *b) {
    return _mm256_or_si256(qx_nibbles(b->qs), qx_bits16(b->qh));
}
QX_INLINE __m256i dec_iq4_nl(const lb_block_iq4_nl *b) {
    return _mm256_shuffle_epi8(qx_grid(), qx_nibbles(b->qs));
}
QX_INLINE __m256i dec_xnf4(const lb_block_xnf4 *b) {
    return _mm256_shuffle_epi8(qx_grid8(lb_nf4_grid8), qx_nibbles(b->qs));
}
QX_INLINE __m256i dec_x2_0(const lb_block_x2_0 *b) { /* signed: u - 2 */
    return _mm256_sub_epi8(qx_crumbs(b->qs), _mm256_set1_epi8(2));
}
QX_INLINE __m256i dec_x2_1(const lb_block_x2_1 *b) {
    return qx_crumbs(b->qs);
}
QX_INLINE __m256i dec_mxfp4(const lb_block_mxfp4 *b) {
    const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lb_mxfp4_values));
    return _mm256_shuffle_epi8(grid, qx_nibbles(b->qs));
}

/* the f16 at p in all 8 lanes */
QX_INLINE __m256 qx_f16x8(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm256_cvtph_ps(_mm_set1_epi16((short)h));
}

/* each 32-block type's scale in 8 lanes: an f16 d, or MXFP4's E8M0 exponent */
#define QX_SCALE_F16(X) \
    QX_INLINE __m256 qx_scale_##X(const lb_block_##X *b) { return qx_f16x8(&b->d); }
QX_SCALE_F16(q8_0)
QX_SCALE_F16(q4_0)
QX_SCALE_F16(q4_1)
QX_SCALE_F16(q5_0)
QX_SCALE_F16(q5_1)
QX_SCALE_F16(iq4_nl)
QX_SCALE_F16(xnf4)
QX_SCALE_F16(x2_0)
QX_SCALE_F16(x2_1)
#undef QX_SCALE_F16
QX_INLINE __m256 qx_scale_mxfp4(const lb_block_mxfp4 *b) { return _mm256_set1_ps(lb_e8m0_half(b->e)); }

/* A tile of mr x nc pairs over nb blocks. KIND: 0 signed levels, 1 affine, OFF > 1: unsigned
 * levels minus OFF (OFF / 8 activation sums off each lane). */
#define QX_TILE32(X, KIND)                                                                         \
    QX_INLINE void tile_##X(int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a, size_t as, \
                            float *out, int64_t ldo, const int mr, const int nc) {                \
        __m256 acc[QX_MR1][QX_NC], macc[QX_MR1][QX_NC];                                            \
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                                      \
        _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) {                                     \
            acc[r][c]  = _mm256_setzero_ps();                                                      \
            macc[r][c] = _mm256_setzero_ps();                                                      \
        }                                                                                          \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            __m256i q[QX_MR1], u[QX_MR1];                                                          \
            __m256  d[QX_MR1], m[QX_MR1];                                                          \
            _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) {                                 \
                const lb_block_##X *b = (const lb_block_##X *)(w + (size_t)r * ws) + i;            \
                q[r]                  = dec_##X(b);                                                \
                u[r]                  = KIND == 0 ? _mm256_sign_epi8(q[r], q[r]) : q[r];           \
                d[r]                  = qx_scale_##X(b);                                           \
                m[r] = KIND == 1 ? qx_f16x8((const uint8_t *)b + 2) : _mm256_setzero_ps();         \
            }                                                                                      \
            _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) {                                 \
                const lb_block_q8a *ab = (const lb_block_q8a *)(a + (size_t)c * as) + i;           \
                const __m256i       av = _mm256_loadu_si256((const __m256i *)ab->qs);              \
                const __m256        da = _mm256_set1_ps(ab->d);                                    \
                const __m256i       off = _mm256_set1_epi32(KIND > 1 ? KIND / 8 * ab->sum : 0);    \
                _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) {                             \
                    __m256i p = QX_DOT(u[r], KIND == 0 ? _mm256_sign_epi8(av, q[r]) : av);         \
                    if (KIND > 1) p = _mm256_sub_epi32(p, off);                                    \
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(d[r], da),    \
                                                acc[r][c]);                                        \
                    if (KIND == 1) macc[r][c] = _mm256_fmadd_ps(m[r], _mm256_set1_ps(ab->s), macc[r][c]); \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                                      \
        _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++)                                       \
            out[c * ldo + r] = qx_hsum(acc[r][c]) + _mm256_cvtss_f32(macc[r][c]);                  \
    }

/* ---- super-blocks, decoded to levels, per-16 scales (one vector per 32 values: the scale
 * of the first 16 in the low half, of the next 16 in the high half) and per-16 mins ---- */

typedef struct {
    __m256i q[8], u[8]; /* levels; u = |q| for signed levels */
    __m256i sc[8];
    __m256i mn;         /* 16 int16 mins */
    float   d, dmin;
} qx_deck;

QX_INLINE __m256i qx_sc2(int lo, int hi) {
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

/* Q4_K / Q5_K: scale and min j of the 12 packed bytes (see kquant_common.h) */
QX_INLINE void qx_scales32(qx_deck *o, const uint8_t *q) {
    int16_t mn[16];
    for (int j = 0; j < 8; j++) {
        int sc, m;
        if (j < 4) {
            sc = q[j] & 63;
            m  = q[j + 4] & 63;
        } else {
            sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            m  = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
        o->sc[j]  = _mm256_set1_epi16((short)sc);
        mn[2 * j] = mn[2 * j + 1] = (int16_t)m;
    }
    o->mn = _mm256_loadu_si256((const __m256i *)mn);
}

QX_INLINE void dec_q2_k(qx_deck *o, const lb_block_q2_k *b) {
    const __m256i three = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
        for (int k = 0; k < 4; k++, v = _mm256_srli_epi16(v, 2)) o->q[4 * h + k] = _mm256_and_si256(v, three);
    }
    const __m128i s = _mm_loadu_si128((const __m128i *)b->scales);
    for (int j = 0; j < 8; j++) o->sc[j] = qx_sc2(b->scales[2 * j] & 0xF, b->scales[2 * j + 1] & 0xF);
    o->mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0F)));
    o->d = qx_f16(b->d), o->dmin = qx_f16(b->dmin);
}

QX_INLINE void dec_q3_k(qx_deck *o, const lb_block_q3_k *b) {
    const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256i       hm    = _mm256_loadu_si256((const __m256i *)b->hmask);
    for (int h = 0; h < 2; h++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
        for (int k = 0; k < 4; k++, v = _mm256_srli_epi16(v, 2), hm = _mm256_srli_epi16(hm, 1))
            o->q[4 * h + k] = _mm256_or_si256(_mm256_and_si256(v, three),
                                              _mm256_slli_epi16(_mm256_and_si256(hm, one), 2));
    }
    int16_t s[16];
    for (int g = 0; g < 16; g++) {
        const int lo = g < 8 ? b->scales[g] & 0xF : b->scales[g - 8] >> 4;
        s[g]         = (int16_t)((lo | ((b->scales[8 + g % 4] >> (2 * (g / 4))) & 3) << 4) - 32);
    }
    for (int j = 0; j < 8; j++) o->sc[j] = qx_sc2(s[2 * j], s[2 * j + 1]);
    o->mn = _mm256_slli_epi16(_mm256_loadu_si256((const __m256i *)s), 2); /* 4 s */
    o->d = o->dmin = qx_f16(b->d);
}

QX_INLINE void dec_q4_k(qx_deck *o, const lb_block_q4_k *b) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < 4; c++) {
        const __m256i v  = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
        o->q[2 * c]     = _mm256_and_si256(v, m4);
        o->q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    qx_scales32(o, b->scales);
    o->d = qx_f16(b->d), o->dmin = qx_f16(b->dmin);
}

QX_INLINE void dec_q5_k(qx_deck *o, const lb_block_q5_k *b) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256i       hb = _mm256_loadu_si256((const __m256i *)b->qh);
    for (int c = 0; c < 4; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
        o->q[2 * c]     = _mm256_or_si256(_mm256_and_si256(v, m4),
                                          _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
        hb              = _mm256_srli_epi16(hb, 1);
        o->q[2 * c + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                          _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
        hb              = _mm256_srli_epi16(hb, 1);
    }
    qx_scales32(o, b->scales);
    o->d = qx_f16(b->d), o->dmin = qx_f16(b->dmin);
}

QX_INLINE void dec_q6_k(qx_deck *o, const lb_block_q6_k *b) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
        __m256i       hi = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        const __m256i lo[4] = { _mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
                                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4) };
        for (int k = 0; k < 4; k++, hi = _mm256_srli_epi16(hi, 2))
            o->q[4 * h + k] = _mm256_or_si256(lo[k], _mm256_slli_epi16(_mm256_and_si256(hi, three), 4));
    }
    for (int j = 0; j < 8; j++) o->sc[j] = qx_sc2(b->scales[2 * j], b->scales[2 * j + 1]);
    o->mn = _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales)), 5);
    o->d = o->dmin = qx_f16(b->d);
}

QX_INLINE void dec_iq4_xs(qx_deck *o, const lb_block_iq4_xs *b) {
    const __m256i grid = qx_grid();
    for (int ib = 0; ib < 8; ib++) {
        o->q[ib]  = _mm256_shuffle_epi8(grid, qx_nibbles(b->qs + 16 * ib));
        o->u[ib]  = _mm256_sign_epi8(o->q[ib], o->q[ib]);
        const int l = ((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | ((b->scales_h >> 2 * ib) & 3) << 4;
        o->sc[ib] = _mm256_set1_epi16((short)(l - 32));
    }
    o->mn = _mm256_setzero_si256();
    o->d = qx_f16(b->d), o->dmin = 0.0f;
}

#include "qdot_x86_iq.h"

/* MODE 0: signed levels, no min; 1: unsigned levels, min scaled by dmin; 2: unsigned levels
 * whose offset is a min scaled by d (Q3_K, Q6_K): folded into the integer sum. */
#define QX_TILEK(X, MODE)                                                                          \
    QX_INLINE void tile_##X(int64_t nb, const uint8_t *w, size_t ws, const uint8_t *a, size_t as, \
                            float *out, int64_t ldo, const int mr, const int nc) {                \
        __m256 acc[QX_MR1][QX_NC];                                                                 \
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                                      \
        _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) acc[r][c] = _mm256_setzero_ps();      \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            qx_deck dk[QX_MR1];                                                                    \
            _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                                   \
                dec_##X(&dk[r], (const lb_block_##X *)(w + (size_t)r * ws) + i);                   \
            _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) {                                 \
                const lb_block_q8k *ab = (const lb_block_q8k *)(a + (size_t)c * as) + i;           \
                __m256i             is[QX_MR1];                                                    \
                _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) is[r] = _mm256_setzero_si256(); \
                _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {                              \
                    const __m256i av = _mm256_loadu_si256((const __m256i *)(ab->qs + 32 * j));     \
                    _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) {                         \
                        const __m256i p = MODE == 0                                                \
                            ? _mm256_maddubs_epi16(dk[r].u[j], _mm256_sign_epi8(av, dk[r].q[j]))   \
                            : _mm256_maddubs_epi16(dk[r].q[j], av);                                \
                        is[r] = _mm256_add_epi32(is[r], _mm256_madd_epi16(p, dk[r].sc[j]));        \
                    }                                                                              \
                }                                                                                  \
                const __m256i bs = _mm256_loadu_si256((const __m256i *)ab->bsums);                 \
                _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) {                             \
                    if (MODE == 2) is[r] = _mm256_sub_epi32(is[r], _mm256_madd_epi16(dk[r].mn, bs)); \
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[r]),                         \
                                                _mm256_set1_ps(dk[r].d * ab->d), acc[r][c]);       \
                    if (MODE == 1)                                                                 \
                        acc[r][c] = _mm256_fnmadd_ps(                                              \
                            _mm256_cvtepi32_ps(_mm256_madd_epi16(dk[r].mn, bs)),                   \
                            _mm256_set1_ps(dk[r].dmin * ab->d), acc[r][c]);                        \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                                      \
        _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) out[c * ldo + r] = qx_hsum(acc[r][c]); \
    }

/* ---- F16 / BF16 rows, f32 activations (8 values a step, a scalar tail) ---- */

QX_INLINE __m256 qx_load_f16(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
QX_INLINE __m256 qx_load_bf16(const uint8_t *p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
QX_INLINE float qx_f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
QX_INLINE float qx_bf16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    const uint32_t x = (uint32_t)h << 16;
    float          f;
    memcpy(&f, &x, 4);
    return f;
}

/* F16 / BF16 to f32 (exact: the values of the scalar conversions) */
#define QX_TO_FLOAT(X)                                                                             \
    static void to_float_##X(float *dst, const void *src, int64_t n) {                             \
        const uint8_t *s = src;                                                                    \
        int64_t        j = 0;                                                                      \
        for (; j + 8 <= n; j += 8) _mm256_storeu_ps(dst + j, qx_load_##X(s + 2 * j));            \
        for (; j < n; j++) dst[j] = qx_##X##_at(s + 2 * j);                                        \
    }
QX_TO_FLOAT(f16)
QX_TO_FLOAT(bf16)

#define QX_TILE16(X)                                                                               \
    QX_INLINE void tile_##X(int64_t n, const uint8_t *w, size_t ws, const uint8_t *a, size_t as,  \
                            float *out, int64_t ldo, const int mr, const int nc) {                \
        __m256 acc[QX_MR1][QX_NC];                                                                 \
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                                      \
        _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) acc[r][c] = _mm256_setzero_ps();      \
        const int64_t n8 = n & ~(int64_t)7;                                                        \
        for (int64_t j = 0; j < n8; j += 8) {                                                      \
            __m256 wv[QX_MR1];                                                                     \
            _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                                   \
                wv[r] = qx_load_##X(w + (size_t)r * ws + 2 * (size_t)j);                           \
            _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) {                                 \
                const __m256 xv = _mm256_loadu_ps((const float *)(a + (size_t)c * as) + j);        \
                _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                               \
                    acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);                             \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                                      \
        _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) {                                     \
            const float *x = (const float *)(a + (size_t)c * as);                                  \
            float        s = qx_hsum(acc[r][c]);                                                   \
            for (int64_t j = n8; j < n; j++) s += qx_##X##_at(w + (size_t)r * ws + 2 * (size_t)j) * x[j]; \
            out[c * ldo + r] = s;                                                                  \
        }                                                                                          \
    }

/* ---- W8A8: int8 rows { f32 d; int8 q[n] } x int8 activation rows of the same layout ----
 * Signed x signed through the unsigned-times-signed dot: |w| and a with w's sign (exact for
 * activations in -127..127, weights in -128..127: a pair sums to at most 2 * 128 * 127 in
 * maddubs' int16). 32 values a step into int32 lanes, a scalar tail; the int32 sum is exact,
 * so every tile shape gives the scalar reference's bits. */
#ifdef __AVX512VNNI__
#define QX_DPADD(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#else
#define QX_DPADD(acc, u, s) _mm256_add_epi32((acc), QX_DOT((u), (s)))
#endif

QX_INLINE void tile_i8(int64_t n, const uint8_t *w, size_t ws, const uint8_t *a, size_t as,
                       float *out, int64_t ldo, const int mr, const int nc) {
    __m256i acc[QX_MR1][QX_NC];
    _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)
    _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) acc[r][c] = _mm256_setzero_si256();
    const int64_t n32 = n & ~(int64_t)31;
    for (int64_t j = 0; j < n32; j += 32) {
        __m256i q[QX_MR1], u[QX_MR1];
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) {
            q[r] = _mm256_loadu_si256((const __m256i *)(w + (size_t)r * ws + 4 + (size_t)j));
            u[r] = _mm256_sign_epi8(q[r], q[r]);
        }
        _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) {
            const __m256i av = _mm256_loadu_si256((const __m256i *)(a + (size_t)c * as + 4 + (size_t)j));
            _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)
                acc[r][c] = QX_DPADD(acc[r][c], u[r], _mm256_sign_epi8(av, q[r]));
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)
    _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) {
        const int8_t *qw = (const int8_t *)(w + (size_t)r * ws + 4);
        const int8_t *qa = (const int8_t *)(a + (size_t)c * as + 4);
        int32_t       s  = qx_hsum_i32(acc[r][c]);
        for (int64_t j = n32; j < n; j++) s += qw[j] * qa[j];
        float dw, da;
        memcpy(&dw, w + (size_t)r * ws, 4);
        memcpy(&da, a + (size_t)c * as, 4);
        out[c * ldo + r] = (dw * da) * (float)s;
    }
}

/* INT8_PC rows with f32 activations (8 values a step, a scalar tail), the row's scale once
 * at the end */
QX_INLINE void tile_int8_pc(int64_t n, const uint8_t *w, size_t ws, const uint8_t *a, size_t as,
                            float *out, int64_t ldo, const int mr, const int nc) {
    __m256 acc[QX_MR1][QX_NC];
    _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)
    _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) acc[r][c] = _mm256_setzero_ps();
    const int64_t n8 = n & ~(int64_t)7;
    for (int64_t j = 0; j < n8; j += 8) {
        __m256 wv[QX_MR1];
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)
            wv[r] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                _mm_loadl_epi64((const __m128i *)(w + (size_t)r * ws + 4 + (size_t)j))));
        _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) {
            const __m256 xv = _mm256_loadu_ps((const float *)(a + (size_t)c * as) + j);
            _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) {
        const int8_t *q = (const int8_t *)(w + (size_t)r * ws + 4);
        float         dw;
        memcpy(&dw, w + (size_t)r * ws, 4);
        _Pragma("GCC unroll 4") for (int c = 0; c < nc; c++) {
            const float *x = (const float *)(a + (size_t)c * as);
            float        s = qx_hsum(acc[r][c]);
            for (int64_t j = n8; j < n; j++) s += (float)q[j] * x[j];
            out[c * ldo + r] = dw * s;
        }
    }
}

/* INT8_PC to f32: the traits' values (k d + 0: a -0 becomes +0 as there) */
static void to_float_int8_pc(float *dst, const void *src, int64_t n) {
    const uint8_t *s = src;
    const int8_t  *q = (const int8_t *)(s + 4);
    float          d;
    memcpy(&d, s, 4);
    const __m256 vd = _mm256_set1_ps(d), zero = _mm256_setzero_ps();
    int64_t      j  = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256i k = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + j)));
        _mm256_storeu_ps(dst + j, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(k), vd), zero));
    }
    for (; j < n; j++) dst[j] = (float)q[j] * d + 0.0f;
}

/* roundf(x * id) clamped to +-127: trunc, then one step away from zero where the dropped
 * fraction (exact: t - trunc(t)) is at least a half; max before min sends NaN to -127 */
static void quantize_i8(int8_t *q, const float *x, int64_t n, float id) {
    const __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256i v[4];
        for (int k = 0; k < 4; k++) {
            const __m256 t = _mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vid);
            __m256       r = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m256 m = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(t, r)), half, _CMP_GE_OQ);
            r = _mm256_add_ps(r, _mm256_and_ps(m, _mm256_or_ps(_mm256_and_ps(sign, t), one)));
            v[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
        }
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i *)(q + j),
                            _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
    for (; j < n; j++) q[j] = (int8_t)fminf(fmaxf(roundf(x[j] * id), -127.0f), 127.0f);
}

#include "qdot_x86_rows.h"

/* The other types against one activation row: QX_MR1 rows a tile. */
#define QX_GEMV_TILES(X)                                                                           \
    static void gemv_##X(int64_t nb, const uint8_t *W, size_t ws, int64_t nr, const uint8_t *A,   \
                         size_t as, float *out) {                                                  \
        int64_t r = 0;                                                                             \
        for (; r + QX_MR1 <= nr; r += QX_MR1) tile_##X(nb, W + (size_t)r * ws, ws, A, as, out + r, 1, QX_MR1, 1); \
        for (; r < nr; r++) tile_##X(nb, W + (size_t)r * ws, ws, A, as, out + r, 1, 1, 1);         \
    }

/* The gemm around the tiles: one column (generation) through gemv_X; several columns go in
 * blocks whose activations stay in cache, QX_MR x QX_NC a tile, remainders as 1s. */
#define QX_GEMM(X, BLOCK_VALUES)                                                                   \
    static void gemm_##X(int64_t n, const void *w, size_t ws, int64_t nr, const void *a,          \
                         size_t as, int64_t nc, float *out, int64_t ldo) {                         \
        const int64_t  nb = n / (BLOCK_VALUES);                                                    \
        const uint8_t *W = w, *A = a;                                                              \
        if (nc == 1) {                                                                             \
            gemv_##X(nb, W, ws, nr, A, as, out);                                                   \
            return;                                                                                \
        }                                                                                          \
        int64_t cb = (int64_t)(QX_ACT_CACHE / (as ? as : 1)) / QX_NC * QX_NC;                      \
        if (cb < QX_NC) cb = QX_NC;                                                                \
        for (int64_t c0 = 0; c0 < nc; c0 += cb) {                                                  \
            const int64_t c1 = nc - c0 < cb ? nc : c0 + cb;                                        \
            for (int64_t r = 0; r < nr; r += QX_MR) {                                              \
                const uint8_t *wr = W + (size_t)r * ws;                                            \
                int64_t        c  = c0;                                                            \
                if (nr - r >= QX_MR) {                                                             \
                    for (; c + QX_NC <= c1; c += QX_NC)                                            \
                        tile_##X(nb, wr, ws, A + (size_t)c * as, as, out + c * ldo + r, ldo, QX_MR, QX_NC); \
                    for (; c < c1; c++)                                                            \
                        tile_##X(nb, wr, ws, A + (size_t)c * as, as, out + c * ldo + r, ldo, QX_MR, 1); \
                } else {                                                                           \
                    for (; c + QX_NC <= c1; c += QX_NC)                                            \
                        tile_##X(nb, wr, ws, A + (size_t)c * as, as, out + c * ldo + r, ldo, 1, QX_NC); \
                    for (; c < c1; c++)                                                            \
                        tile_##X(nb, wr, ws, A + (size_t)c * as, as, out + c * ldo + r, ldo, 1, 1); \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

QX_TILE32(q8_0, 0)
QX_TILE32(q4_0, 8)
QX_TILE32(q4_1, 1)
QX_TILE32(q5_0, 16)
QX_TILE32(q5_1, 1)
QX_TILE32(iq4_nl, 0)
QX_TILE32(mxfp4, 0)
QX_TILE32(xnf4, 0)
QX_TILE32(x2_0, 0)
QX_TILE32(x2_1, 1)
QX_TILEK(q2_k, 1)
QX_TILEK(q3_k, 2)
QX_TILEK(q4_k, 1)
QX_TILEK(q5_k, 1)
QX_TILEK(q6_k, 2)
QX_TILEK(iq4_xs, 0)
QX_TILEK(iq2_xxs, 0)
QX_TILEK(iq2_xs, 0)
QX_TILEK(iq2_s, 0)
QX_TILEK(iq3_xxs, 0)
QX_TILEK(iq3_s, 0)
QX_TILEK(iq1_s, 0)
QX_TILEK(iq1_m, 0)
QX_TILE16(f16)
QX_TILE16(bf16)

QX_ROW1(q4_0, 8)
QX_ROW1(q4_1, 1)
QX_ROW1(iq4_nl, 0)
QX_ROW1(q8_0, 0)
QX_ROW1(q5_0, 16)
QX_ROW1(q5_1, 1)
QX_ROW1(xnf4, 0)
QX_ROW1(x2_0, 0)
QX_ROW1(x2_1, 1)
QX_Q5(q5_0, 16)
QX_Q5(q5_1, 1)
QX_GEMM_PACKED(q5_0, 176, 32)
QX_GEMM_PACKED(q5_1, 192, 32)
QX_PACKED_NIBBLES(q4_0, 8, lb_iq4nl_grid)
QX_PACKED_NIBBLES(q4_1, 1, lb_iq4nl_grid)
QX_PACKED_NIBBLES(iq4_nl, 0, lb_iq4nl_grid)
QX_PACKED_NIBBLES(xnf4, 0, lb_nf4_grid8)
QX_PACKED_CRUMBS(x2_0, 2, 1)
QX_PACKED_CRUMBS(x2_1, 1, 1)
QX_PACKED_CRUMBS(x2_k, 2, 8)
QX_GEMM_PACKED(q4_0, 144, 32)
QX_GEMM_PACKED(q4_1, 160, 32)
QX_GEMM_PACKED(iq4_nl, 144, 32)
QX_GEMM_PACKED(xnf4, 144, 32)
QX_GEMM_PACKED(x2_0, 80, 32)
QX_GEMM_PACKED(x2_1, 96, 32)
QX_GEMM_PACKED(x2_k, 16 + 64 * 8, 256)
QX_GEMM_PACKED(q8_0, 272, 32)
QX_GEMM_PACKED(q4_k, 1184, 256)
QX_GEMM_PACKED(q5_k, 1440, 256)
QX_GEMM_PACKED(q6_k, LB_Q6_K_PACKED, 256)
QX_GEMM_PACKED(q3_k, LB_Q3_K_PACKED, 256)
QX_GEMM_PACKED(q2_k, LB_Q2_K_PACKED, 256)
QX_GEMM_PACKED(iq4_xs, LB_IQ4_XS_PACKED, 256)
QX_GEMV_X8(q4_0, 8, 2, 4, lb_iq4nl_grid)
QX_GEMV_X8(q4_1, 1, 4, 4, lb_iq4nl_grid)
QX_GEMV_X8(iq4_nl, 0, 2, 4, lb_iq4nl_grid)
QX_GEMV_X8(xnf4, 0, 2, 4, lb_nf4_grid8)
QX_GEMV_X8(q8_0, 0, 2, 8, lb_iq4nl_grid)
QX_GEMV_ROW1(x2_0)
QX_GEMV_ROW1(x2_1)
QX_GEMV_TILES(mxfp4)
QX_GEMV_TILES(iq2_xxs)
QX_GEMV_TILES(iq2_xs)
QX_GEMV_TILES(iq2_s)
QX_GEMV_TILES(iq3_xxs)
QX_GEMV_TILES(iq3_s)
QX_GEMV_TILES(iq1_s)
QX_GEMV_TILES(iq1_m)
QX_GEMV16(f16)
QX_GEMV16(bf16)
/* one activation row, 8 weight rows a step (more loads in flight than a tile's 4), then the
 * tiles: the same exact integer sums and the same final expression as tile_i8 */
static void gemv_i8(int64_t n, const uint8_t *W, size_t ws, int64_t nr, const uint8_t *A, size_t as,
                    float *out) {
    const int64_t n32 = n & ~(int64_t)31;
    int64_t       r   = 0;
    for (; r + 8 <= nr; r += 8) {
        const uint8_t *w = W + (size_t)r * ws;
        __m256i        acc[8];
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_si256();
        for (int64_t j = 0; j < n32; j += 32) {
            const __m256i av = _mm256_loadu_si256((const __m256i *)(A + 4 + (size_t)j));
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(w + (size_t)k * ws + 4 + (size_t)j));
                acc[k] = QX_DPADD(acc[k], _mm256_sign_epi8(q, q), _mm256_sign_epi8(av, q));
            }
        }
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
            const int8_t *qw = (const int8_t *)(w + (size_t)k * ws + 4), *qa = (const int8_t *)(A + 4);
            int32_t       s  = qx_hsum_i32(acc[k]);
            for (int64_t j = n32; j < n; j++) s += qw[j] * qa[j];
            float dw, da;
            memcpy(&dw, w + (size_t)k * ws, 4);
            memcpy(&da, A, 4);
            out[r + k] = (dw * da) * (float)s;
        }
    }
    (void)as;
    for (; r + QX_MR1 <= nr; r += QX_MR1) tile_i8(n, W + (size_t)r * ws, ws, A, as, out + r, 1, QX_MR1, 1);
    for (; r < nr; r++) tile_i8(n, W + (size_t)r * ws, ws, A, as, out + r, 1, 1, 1);
}
QX_GEMV_TILES(int8_pc)

QX_GEMM(q8_0, 32)
QX_GEMM(q4_0, 32)
QX_GEMM(q4_1, 32)
QX_GEMM(q5_0, 32)
QX_GEMM(q5_1, 32)
QX_GEMM(iq4_nl, 32)
QX_GEMM(mxfp4, 32)
QX_GEMM(xnf4, 32)
QX_GEMM(x2_0, 32)
QX_GEMM(x2_1, 32)
/* X2_K: every column through the one-row kernel (its rows are packed wherever speed matters) */
static void gemm_x2_k(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, int64_t nc,
                      float *out, int64_t ldo) {
    for (int64_t r = 0; r < nr; r++) row1_x2_k(n / 256, (const uint8_t *)w + (size_t)r * ws, a, as, nc, out + r, ldo);
}
QX_GEMM(q2_k, 256)
QX_GEMM(q3_k, 256)
QX_GEMM(q4_k, 256)
QX_GEMM(q5_k, 256)
QX_GEMM(q6_k, 256)
QX_GEMM(iq4_xs, 256)
QX_GEMM(iq2_xxs, 256)
QX_GEMM(iq2_xs, 256)
QX_GEMM(iq2_s, 256)
QX_GEMM(iq3_xxs, 256)
QX_GEMM(iq3_s, 256)
QX_GEMM(iq1_s, 256)
QX_GEMM(iq1_m, 256)
QX_GEMM(f16, 1)
QX_GEMM(bf16, 1)
QX_GEMM(i8, 1)
QX_GEMM(int8_pc, 1)

void QX_FILL(lb_qdot_table *t) {
    memset(t, 0, sizeof *t);
#define K(T, X, ACT) t->kern[T] = (lb_qdot){ .act = ACT, .gemm = gemm_##X };
    LB_QDOT_TYPES(K)
#undef K
    t->kern[LB_TYPE_Q4_0].gemm_packed   = gemm_packed_q4_0;
    t->kern[LB_TYPE_Q4_1].gemm_packed   = gemm_packed_q4_1;
    t->kern[LB_TYPE_IQ4_NL].gemm_packed = gemm_packed_iq4_nl;
    t->kern[LB_TYPE_XNF4].gemm_packed   = gemm_packed_xnf4;
    t->kern[LB_TYPE_X2_0].gemm_packed   = gemm_packed_x2_0;
    t->kern[LB_TYPE_X2_1].gemm_packed   = gemm_packed_x2_1;
    t->kern[LB_TYPE_X2_K].gemm_packed   = gemm_packed_x2_k;
    t->kern[LB_TYPE_Q8_0].gemm_packed   = gemm_packed_q8_0;
    t->kern[LB_TYPE_Q5_0].gemm_packed   = gemm_packed_q5_0;
    t->kern[LB_TYPE_Q5_1].gemm_packed   = gemm_packed_q5_1;
    t->kern[LB_TYPE_Q4_K].gemm_packed   = gemm_packed_q4_k;
    t->kern[LB_TYPE_Q5_K].gemm_packed   = gemm_packed_q5_k;
    t->kern[LB_TYPE_Q6_K].gemm_packed   = gemm_packed_q6_k;
    t->kern[LB_TYPE_Q3_K].gemm_packed   = gemm_packed_q3_k;
    t->kern[LB_TYPE_Q2_K].gemm_packed   = gemm_packed_q2_k;
    t->kern[LB_TYPE_IQ4_XS].gemm_packed = gemm_packed_iq4_xs;
    t->to_float[LB_TYPE_F16]            = to_float_f16;
    t->to_float[LB_TYPE_BF16]           = to_float_bf16;
    t->to_float[LB_TYPE_INT8_PC]        = to_float_int8_pc;
    t->quantize_act[LB_ACT_Q8A] = quantize_q8a;
    t->quantize_act[LB_ACT_Q8K] = quantize_q8k;
    t->gemm_i8                  = gemm_i8;
    t->quantize_i8              = quantize_i8;
}
