/* The i-quants' super-block decoders for qdot_x86.h's deck kernels (QX_TILEK mode 0): each 32
 * values become grid-point bytes (u, non-negative for IQ2/IQ3) with their signs applied (q),
 * odd block scales 2 s + 1 per 16 values and the super-block scale (d / 8, d / 4 or d), the
 * same integers as qdot_ref.c's decoders. IQ1's levels are 8 g +- 1 (its +-1/8 shift). */
#ifndef LB_KERNELS_QDOT_X86_IQ_H
#define LB_KERNELS_QDOT_X86_IQ_H

#include "formats/iq_grid.h"

/* 32 bytes of +-1 from 32 sign bits (bit j set: byte j is -1) */
QX_INLINE __m256i qx_signs(uint32_t s) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    const __m256i mask = _mm256_set1_epi64x((int64_t)0x8040201008040201ull);
    const __m256i b    = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)s), shuf), mask);
    return _mm256_or_si256(_mm256_cmpeq_epi8(b, mask), _mm256_set1_epi8(1));
}

QX_INLINE uint64_t qx_pt8(const int8_t *v, uint32_t p) {
    uint64_t x;
    memcpy(&x, v + 8 * p, 8);
    return x;
}

/* four 8-value points (u) and their 32 signs (q = +-u) */
QX_INLINE void qx_iq_put(qx_deck *o, int ib, __m256i pts, uint32_t signs) {
    o->u[ib] = pts;
    o->q[ib] = _mm256_sign_epi8(pts, qx_signs(signs));
}

/* four 7-bit sign indices (bits 0..27 of w) as 32 sign bits */
QX_INLINE uint32_t qx_signs28(uint32_t w) {
    return (uint32_t)lb_iq_signs(w & 127) | (uint32_t)lb_iq_signs(w >> 7 & 127) << 8 |
           (uint32_t)lb_iq_signs(w >> 14 & 127) << 16 | (uint32_t)lb_iq_signs(w >> 21 & 127) << 24;
}

QX_INLINE void dec_iq2_xxs(qx_deck *o, const lb_block_iq2_xxs *b) {
    const int8_t *v = lb_iq_grid_get(LB_IQG_IQ2XXS)->values;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t w[2];
        memcpy(w, b->qs + 4 * ib, sizeof w);
        qx_iq_put(o, ib, _mm256_set_epi64x((int64_t)qx_pt8(v, w[0] >> 24), (int64_t)qx_pt8(v, w[0] >> 16 & 255),
                                           (int64_t)qx_pt8(v, w[0] >> 8 & 255), (int64_t)qx_pt8(v, w[0] & 255)),
                  qx_signs28(w[1]));
        o->sc[ib] = _mm256_set1_epi16((short)(2 * (w[1] >> 28) + 1));
    }
    o->mn = _mm256_setzero_si256();
    o->d = qx_f16(b->d) * 0.125f, o->dmin = 0.0f;
}

QX_INLINE void dec_iq2_xs(qx_deck *o, const lb_block_iq2_xs *b) {
    const int8_t *v = lb_iq_grid_get(LB_IQG_IQ2XS)->values;
    for (int ib = 0; ib < 8; ib++) {
        const uint16_t *q = b->qs + 4 * ib;
        const uint32_t  s = (uint32_t)lb_iq_signs(q[0] >> 9) | (uint32_t)lb_iq_signs(q[1] >> 9) << 8 |
                           (uint32_t)lb_iq_signs(q[2] >> 9) << 16 | (uint32_t)lb_iq_signs(q[3] >> 9) << 24;
        qx_iq_put(o, ib, _mm256_set_epi64x((int64_t)qx_pt8(v, q[3] & 511), (int64_t)qx_pt8(v, q[2] & 511),
                                           (int64_t)qx_pt8(v, q[1] & 511), (int64_t)qx_pt8(v, q[0] & 511)), s);
        o->sc[ib] = qx_sc2(2 * (b->scales[ib] & 15) + 1, 2 * (b->scales[ib] >> 4) + 1);
    }
    o->mn = _mm256_setzero_si256();
    o->d = qx_f16(b->d) * 0.125f, o->dmin = 0.0f;
}

QX_INLINE void dec_iq2_s(qx_deck *o, const lb_block_iq2_s *b) {
    const int8_t *v = lb_iq_grid_get(LB_IQG_IQ2S)->values;
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *q = b->qs + 4 * ib;
        const uint32_t h = b->qh[ib];
        uint32_t       s;
        memcpy(&s, b->qs + 32 + 4 * ib, 4);
        qx_iq_put(o, ib, _mm256_set_epi64x((int64_t)qx_pt8(v, q[3] | (h >> 6 & 3) << 8), (int64_t)qx_pt8(v, q[2] | (h >> 4 & 3) << 8),
                                           (int64_t)qx_pt8(v, q[1] | (h >> 2 & 3) << 8), (int64_t)qx_pt8(v, q[0] | (h & 3) << 8)), s);
        o->sc[ib] = qx_sc2(2 * (b->scales[ib] & 15) + 1, 2 * (b->scales[ib] >> 4) + 1);
    }
    o->mn = _mm256_setzero_si256();
    o->d = qx_f16(b->d) * 0.125f, o->dmin = 0.0f;
}

/* eight 4-value points of an IQ3 grid, indices idx[0..7] */
QX_INLINE __m256i qx_pt4x8(const int8_t *v, __m256i idx) {
    return _mm256_i32gather_epi32((const int *)(const void *)v, idx, 4);
}

QX_INLINE void dec_iq3_xxs(qx_deck *o, const lb_block_iq3_xxs *b) {
    const int8_t *v = lb_iq_grid_get(LB_IQG_IQ3XXS)->values;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t w;
        memcpy(&w, b->qs + 64 + 4 * ib, 4);
        const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b->qs + 8 * ib)));
        qx_iq_put(o, ib, qx_pt4x8(v, idx), qx_signs28(w));
        o->sc[ib] = _mm256_set1_epi16((short)(2 * (w >> 28) + 1));
    }
    o->mn = _mm256_setzero_si256();
    o->d = qx_f16(b->d) * 0.25f, o->dmin = 0.0f;
}

QX_INLINE void dec_iq3_s(qx_deck *o, const lb_block_iq3_s *b) {
    const int8_t *v     = lb_iq_grid_get(LB_IQG_IQ3S)->values;
    const __m256i bit   = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (int ib = 0; ib < 8; ib++) {
        const __m256i lo  = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b->qs + 8 * ib)));
        const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(b->qh[ib]), bit), bit);
        const __m256i ix  = _mm256_or_si256(lo, _mm256_and_si256(set, _mm256_set1_epi32(256))); /* bit 8 */
        uint32_t      s;
        memcpy(&s, b->signs + 4 * ib, 4);
        qx_iq_put(o, ib, qx_pt4x8(v, ix), s);
        o->sc[ib] = _mm256_set1_epi16((short)(2 * (b->scales[ib / 2] >> 4 * (ib % 2) & 15) + 1));
    }
    o->mn = _mm256_setzero_si256();
    o->d = qx_f16(b->d), o->dmin = 0.0f;
}

/* IQ1: four ternary points (bytes -1 0 1) as 8 g, plus the per-8 shifts (bytes +-1) */
QX_INLINE void qx_iq1_put(qx_deck *o, int ib, __m256i pts, __m256i delta) {
    o->q[ib] = _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), pts), delta);
    o->u[ib] = _mm256_sign_epi8(o->q[ib], o->q[ib]);
}

QX_INLINE uint64_t qx_delta8(int neg) {
    return neg ? 0xffffffffffffffffull : 0x0101010101010101ull;
}

QX_INLINE void dec_iq1_s(qx_deck *o, const lb_block_iq1_s *b) {
    const int8_t *v = lb_iq_grid_get(LB_IQG_IQ1S)->values;
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t h = b->qh[ib];
        const uint8_t *q = b->qs + 4 * ib;
        qx_iq1_put(o, ib, _mm256_set_epi64x((int64_t)qx_pt8(v, q[3] | (h >> 9 & 7) << 8), (int64_t)qx_pt8(v, q[2] | (h >> 6 & 7) << 8),
                                            (int64_t)qx_pt8(v, q[1] | (h >> 3 & 7) << 8), (int64_t)qx_pt8(v, q[0] | (h & 7) << 8)),
                   _mm256_set1_epi64x((int64_t)qx_delta8(h & 0x8000)));
        o->sc[ib] = _mm256_set1_epi16((short)(2 * (h >> 12 & 7) + 1));
    }
    o->mn = _mm256_setzero_si256();
    o->d = qx_f16(b->d) * 0.125f, o->dmin = 0.0f;
}

QX_INLINE void dec_iq1_m(qx_deck *o, const lb_block_iq1_m *b) {
    const int8_t *v = lb_iq_grid_get(LB_IQG_IQ1S)->values;
    uint16_t      sc[4];
    memcpy(sc, b->scales, sizeof sc);
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *q = b->qs + 4 * ib;
        const uint32_t h0 = b->qh[2 * ib], h1 = b->qh[2 * ib + 1];
        qx_iq1_put(o, ib, _mm256_set_epi64x((int64_t)qx_pt8(v, q[3] | (h1 >> 4 & 7) << 8), (int64_t)qx_pt8(v, q[2] | (h1 & 7) << 8),
                                            (int64_t)qx_pt8(v, q[1] | (h0 >> 4 & 7) << 8), (int64_t)qx_pt8(v, q[0] | (h0 & 7) << 8)),
                   _mm256_set_epi64x((int64_t)qx_delta8(h1 & 0x80), (int64_t)qx_delta8(h1 & 0x08),
                                     (int64_t)qx_delta8(h0 & 0x80), (int64_t)qx_delta8(h0 & 0x08)));
        const int s = sc[ib / 2] >> 6 * (ib % 2);
        o->sc[ib]   = qx_sc2(2 * (s & 7) + 1, 2 * (s >> 3 & 7) + 1);
    }
    o->mn = _mm256_setzero_si256();
    o->d = qx_f16(lb_iq1m_d(sc)) * 0.125f, o->dmin = 0.0f;
}

#endif
