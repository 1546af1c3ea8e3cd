/* The i-quants as vector grids (grid.h's lb_vgrid_ops): for a group of 8 (IQ1, IQ2) or 4
 * (IQ3) values and the block's stored scales, the codewords near the wanted values. Near:
 * each value rounded to the nearest level of the grid's level set and, one position at a
 * time, to the other level around it; each such pattern gives its grid point, or when it is
 * not one, the list of nearest points the quantizers use (iq_grid.h). Signs follow the wanted
 * values; where 7 stored sign bits imply the eighth by parity, the weakest value's sign is
 * flipped to keep it even (as the formats' quantizers do). */
#include <math.h>
#include <string.h>

#include "formats.h"
#include "grid.h"
#include "iq_grid.h"
#include "lowbit/core.h"


/* Grid points near the targets t (values in the grid's byte units, one per position): into
 * pts (deduplicated), at most cap; returns how many. */
static int32_t near_points(const lb_iq_grid *g, const float *t, uint16_t *pts, int32_t cap) {
    int32_t base[8], alt[8], n = 0;
    uint8_t seen[2048 / 8] = { 0 }; /* the largest grid's points */
    for (int32_t i = 0; i < g->dim; i++) {
        int32_t l = 0;
        for (int32_t k = 1; k < g->n_levels; k++)
            if (fabsf(t[i] - g->level[k]) < fabsf(t[i] - g->level[l])) l = k;
        base[i] = l;
        alt[i]  = t[i] > g->level[l] ? (l + 1 < g->n_levels ? l + 1 : -1) : (l > 0 ? l - 1 : -1);
    }
    for (int32_t v = -1; v < g->dim; v++) { /* the nearest pattern, then one position moved */
        if (v >= 0 && alt[v] < 0) continue;
        uint32_t u = 0;
        for (int32_t i = 0; i < g->dim; i++) u |= (uint32_t)(i == v ? alt[i] : base[i]) << (g->bits * i);
        const int32_t   m  = g->map[u];
        const uint16_t  one = (uint16_t)m, *nb = m >= 0 ? &one : g->neighbours - m - 1 + 1;
        const int32_t   nn = m >= 0 ? 1 : g->neighbours[-m - 1];
        for (int32_t k = 0; k < nn && n < cap; k++)
            if (!(seen[nb[k] / 8] >> nb[k] % 8 & 1)) {
                seen[nb[k] / 8] |= (uint8_t)(1 << nb[k] % 8);
                pts[n++] = nb[k];
            }
    }
    return n;
}

/* signs of x (bit i: x_i < 0); with parity, the weakest value's sign flipped to make the
 * number of negatives even (fixed: already-stored sign bits that count toward the parity) */
static uint32_t signs_of(const float *x, int32_t dim, bool parity, uint32_t fixed) {
    uint32_t s = 0;
    int32_t  imin = 0;
    for (int32_t i = 0; i < dim; i++) {
        if (x[i] < 0) s |= 1u << i;
        if (fabsf(x[i]) < fabsf(x[imin])) imin = i;
    }
    if (parity && (__builtin_popcount(s) + __builtin_popcount(fixed)) % 2) s ^= 1u << imin;
    return s;
}

/* candidates of a signed grid: values dl * point * sign (sign bits s), codes point | sc << pbits */
static int32_t signed_candidates(lb_iq_grid_id id, int32_t pbits, float dl, const float *x,
                                 uint32_t s, uint32_t sc, float *vals, uint32_t *codes, int32_t cap) {
    const lb_iq_grid *g = lb_iq_grid_search(id);
    float             t[8];
    uint16_t          pts[LB_VGRID_MAX];
    for (int32_t i = 0; i < g->dim; i++) t[i] = dl > 0 ? fabsf(x[i]) / dl : 0;
    const int32_t n = near_points(g, t, pts, cap);
    for (int32_t c = 0; c < n; c++) {
        for (int32_t i = 0; i < g->dim; i++)
            vals[c * g->dim + i] = dl * (float)(uint8_t)g->values[g->dim * pts[c] + i] * (s >> i & 1 ? -1.f : 1.f);
        codes[c] = pts[c] | sc << pbits;
    }
    return n;
}

/* ---- IQ2_XXS: 8-bit points, 7 sign bits (parity), a 4-bit scale per 32 (top of the block's
 * second word) ---- */

/* 7 stored sign bits, the eighth by parity: x's own signs when even, else (wide) each single
 * flip, or the weakest value's */
static int32_t parity_candidates(lb_iq_grid_id id, int32_t pbits, float dl, const float *x, bool wide,
                                 float *vals, uint32_t *codes) {
    const uint32_t s0 = signs_of(x, 8, false, 0);
    if (!wide || __builtin_popcount(s0) % 2 == 0) {
        const uint32_t s = signs_of(x, 8, true, 0);
        return signed_candidates(id, pbits, dl, x, s, s & 127, vals, codes, LB_VGRID_MAX);
    }
    int32_t n = 0;
    for (int i = 0; i < 8 && n < LB_VGRID_MAX; i++) {
        const uint32_t s = s0 ^ 1u << i;
        n += signed_candidates(id, pbits, dl, x, s, s & 127, vals + 8 * n, codes + n, LB_VGRID_MAX - n);
    }
    return n;
}

static int32_t iq2_xxs_cand(const void *vb, int32_t g, const float *x, bool wide, float *vals, uint32_t *codes) {
    const lb_block_iq2_xxs *b  = vb;
    const float             dl = lb_f16_to_f32(b->d) * (0.5f + (float)(b->qs[4 * (g / 4) + 3] >> 12)) * 0.25f;
    return parity_candidates(LB_IQG_IQ2XXS, 8, dl, x, wide, vals, codes);
}
static int32_t iq2_xxs_get_scale(const void *vb, int32_t s) { return ((const lb_block_iq2_xxs *)vb)->qs[4 * s + 3] >> 12; }
static void    iq2_xxs_set_scale(void *vb, int32_t s, int32_t code) {
    uint16_t *q = &((lb_block_iq2_xxs *)vb)->qs[4 * s + 3];
    *q          = (uint16_t)((*q & 0x0fff) | code << 12);
}
static void iq2_xxs_set(void *vb, int32_t g, uint32_t code) {
    lb_block_iq2_xxs *b = vb;
    uint32_t          w[2];
    const int32_t     l = g % 4;
    memcpy(w, b->qs + 4 * (g / 4), sizeof w);
    w[0] = (w[0] & ~(255u << 8 * l)) | (code & 255) << 8 * l;
    w[1] = (w[1] & ~(127u << 7 * l)) | (code >> 8 & 127) << 7 * l;
    memcpy(b->qs + 4 * (g / 4), w, sizeof w);
}

/* ---- IQ2_XS: a uint16 per group (9-bit point, 7 sign bits), a 4-bit scale per 16 ---- */

static float half_scale(const uint8_t *scales, int32_t g16) {
    return 0.5f + (float)(scales[g16 / 2] >> 4 * (g16 % 2) & 15);
}
static int32_t nibble_get(const uint8_t *q, int32_t s) { return q[s / 2] >> 4 * (s % 2) & 15; }
static void    nibble_set(uint8_t *q, int32_t s, int32_t code) {
    q[s / 2] = (uint8_t)((q[s / 2] & ~(15u << 4 * (s % 2))) | (uint32_t)code << 4 * (s % 2));
}
static int32_t iq2_xs_cand(const void *vb, int32_t g, const float *x, bool wide, float *vals, uint32_t *codes) {
    const lb_block_iq2_xs *b  = vb;
    const float            dl = lb_f16_to_f32(b->d) * half_scale(b->scales, g / 2) * 0.25f;
    return parity_candidates(LB_IQG_IQ2XS, 9, dl, x, wide, vals, codes);
}
static int32_t iq2_xs_get_scale(const void *vb, int32_t s) { return nibble_get(((const lb_block_iq2_xs *)vb)->scales, s); }
static void    iq2_xs_set_scale(void *vb, int32_t s, int32_t code) { nibble_set(((lb_block_iq2_xs *)vb)->scales, s, code); }
static void iq2_xs_set(void *vb, int32_t g, uint32_t code) { ((lb_block_iq2_xs *)vb)->qs[g] = (uint16_t)code; }

/* ---- IQ2_S: 10-bit points (2 high bits in qh), 8 explicit signs, a 4-bit scale per 16 ---- */

static int32_t iq2_s_get_scale(const void *vb, int32_t s) { return nibble_get(((const lb_block_iq2_s *)vb)->scales, s); }
static void    iq2_s_set_scale(void *vb, int32_t s, int32_t code) { nibble_set(((lb_block_iq2_s *)vb)->scales, s, code); }
static int32_t iq2_s_cand(const void *vb, int32_t g, const float *x, bool wide, float *vals, uint32_t *codes) {
    (void)wide;
    const lb_block_iq2_s *b  = vb;
    const float           dl = lb_f16_to_f32(b->d) * half_scale(b->scales, g / 2) * 0.25f;
    const uint32_t        s  = signs_of(x, 8, false, 0);
    return signed_candidates(LB_IQG_IQ2S, 10, dl, x, s, s, vals, codes, LB_VGRID_MAX);
}
static void iq2_s_set(void *vb, int32_t g, uint32_t code) {
    lb_block_iq2_s *b = vb;
    b->qs[g]          = (uint8_t)code;
    b->qh[g / 4]      = (uint8_t)((b->qh[g / 4] & ~(3u << 2 * (g % 4))) | (code >> 8 & 3) << 2 * (g % 4));
    b->qs[32 + g]     = (uint8_t)(code >> 10);
}

/* ---- IQ3_XXS: groups of 4, 8-bit points; per 32 a word of four 7-bit sign indices (each
 * over two groups, parity) and a 4-bit scale. The second group of a sign byte keeps the
 * parity with the first's stored signs. ---- */

static uint32_t iq3_word(const lb_block_iq3_xxs *b, int32_t ib) {
    uint32_t w;
    memcpy(&w, b->qs + 64 + 4 * ib, 4);
    return w;
}
static int32_t iq3_xxs_get_scale(const void *vb, int32_t s) { return (int32_t)(iq3_word(vb, s) >> 28); }
static void    iq3_xxs_set_scale(void *vb, int32_t s, int32_t code) {
    uint8_t *q = ((lb_block_iq3_xxs *)vb)->qs + 64 + 4 * s + 3;
    *q         = (uint8_t)((*q & 15) | code << 4);
}
static int32_t iq3_xxs_cand(const void *vb, int32_t g, const float *x, bool wide, float *vals, uint32_t *codes) {
    (void)wide;
    const lb_block_iq3_xxs *b   = vb;
    const uint32_t          w   = iq3_word(b, g / 8), pair = g % 8 / 2;
    const float             dl  = lb_f16_to_f32(b->d) * (0.5f + (float)(w >> 28)) * 0.5f;
    const uint32_t          s   = g % 2 ? signs_of(x, 4, true, w >> 7 * pair & 15) : signs_of(x, 4, false, 0);
    return signed_candidates(LB_IQG_IQ3XXS, 8, dl, x, s, s, vals, codes, LB_VGRID_MAX);
}
static void iq3_xxs_set(void *vb, int32_t g, uint32_t code) {
    lb_block_iq3_xxs *b = vb;
    uint32_t          w = iq3_word(b, g / 8);
    const uint32_t    at = 7 * (g % 8 / 2) + 4 * (g % 2), m = g % 2 ? 7u : 15u; /* bit 7: parity */
    b->qs[g]           = (uint8_t)code;
    w                  = (w & ~(m << at)) | (code >> 8 & m) << at;
    memcpy(b->qs + 64 + 4 * (g / 8), &w, 4);
}

/* ---- IQ3_S: groups of 4, 9-bit points (ninth bit in qh), explicit signs, a 4-bit scale per
 * 32: dl = d (1 + 2 s) ---- */

static int32_t iq3_s_get_scale(const void *vb, int32_t s) { return nibble_get(((const lb_block_iq3_s *)vb)->scales, s); }
static void    iq3_s_set_scale(void *vb, int32_t s, int32_t code) { nibble_set(((lb_block_iq3_s *)vb)->scales, s, code); }
static int32_t iq3_s_cand(const void *vb, int32_t g, const float *x, bool wide, float *vals, uint32_t *codes) {
    (void)wide;
    const lb_block_iq3_s *b  = vb;
    const int32_t         ib = g / 8;
    const float           dl = lb_f16_to_f32(b->d) * (float)(1 + 2 * (b->scales[ib / 2] >> 4 * (ib % 2) & 15));
    const uint32_t        s  = signs_of(x, 4, false, 0);
    return signed_candidates(LB_IQG_IQ3S, 9, dl, x, s, s, vals, codes, LB_VGRID_MAX);
}
static void iq3_s_set(void *vb, int32_t g, uint32_t code) {
    lb_block_iq3_s *b = vb;
    const int32_t   ib = g / 8, k = g % 8;
    b->qs[g]            = (uint8_t)code;
    b->qh[ib]           = (uint8_t)((b->qh[ib] & ~(1u << k)) | (code >> 8 & 1) << k);
    b->signs[g / 2]     = (uint8_t)((b->signs[g / 2] & ~(15u << 4 * (g % 2))) | (code >> 9 & 15) << 4 * (g % 2));
}

/* ---- IQ1: values dl (point + delta), points of the ternary grid, delta = +-1/8 ---- */

static int32_t iq1_candidates(float dl, float delta, uint32_t dbit, const float *x, float *vals,
                              uint32_t *codes, int32_t cap) {
    const lb_iq_grid *g = lb_iq_grid_search(LB_IQG_IQ1S);
    float             t[8];
    uint16_t          pts[LB_VGRID_MAX];
    for (int32_t i = 0; i < 8; i++) t[i] = dl > 0 ? x[i] / dl - delta : 0;
    const int32_t n = near_points(g, t, pts, cap);
    for (int32_t c = 0; c < n; c++) {
        for (int32_t i = 0; i < 8; i++) vals[8 * c + i] = dl * ((float)g->values[8 * pts[c] + i] + delta);
        codes[c] = pts[c] | dbit << 11;
    }
    return n;
}

static int32_t iq1_s_get_scale(const void *vb, int32_t s) { return ((const lb_block_iq1_s *)vb)->qh[s] >> 12 & 7; }
static void    iq1_s_set_scale(void *vb, int32_t s, int32_t code) {
    uint16_t *h = &((lb_block_iq1_s *)vb)->qh[s];
    *h          = (uint16_t)((*h & ~(7u << 12)) | (uint32_t)code << 12);
}
static int32_t iq1_s_cand(const void *vb, int32_t g, const float *x, bool wide, float *vals, uint32_t *codes) {
    (void)wide;
    const lb_block_iq1_s *b  = vb;
    const uint32_t        qh = b->qh[g / 4];
    const float           dl = lb_f16_to_f32(b->d) * (float)(2 * (qh >> 12 & 7) + 1);
    return iq1_candidates(dl, qh & 0x8000 ? -LB_IQ1_DELTA : LB_IQ1_DELTA, 0, x, vals, codes, LB_VGRID_MAX);
}
static void iq1_s_set(void *vb, int32_t g, uint32_t code) {
    lb_block_iq1_s *b = vb;
    const int32_t   at = 3 * (g % 4);
    b->qs[g]           = (uint8_t)code;
    b->qh[g / 4]       = (uint16_t)((b->qh[g / 4] & ~(7u << at)) | (code >> 8 & 7) << at);
}

/* IQ1_M: a 3-bit scale per 16, the f16 d in the scale words' top nibbles; the shift's sign is
 * the group's own: both are offered */
static int32_t iq1_m_get_scale(const void *vb, int32_t s) {
    uint16_t sc;
    memcpy(&sc, ((const lb_block_iq1_m *)vb)->scales + 2 * (s / 4), 2);
    return sc >> 3 * (s % 4) & 7;
}
static void iq1_m_set_scale(void *vb, int32_t s, int32_t code) {
    uint8_t *p = ((lb_block_iq1_m *)vb)->scales + 2 * (s / 4);
    uint16_t sc;
    memcpy(&sc, p, 2);
    sc = (uint16_t)((sc & ~(7u << 3 * (s % 4))) | (uint32_t)code << 3 * (s % 4));
    memcpy(p, &sc, 2);
}
static int32_t iq1_m_cand(const void *vb, int32_t g, const float *x, bool wide, float *vals, uint32_t *codes) {
    (void)wide;
    const lb_block_iq1_m *b = vb;
    uint16_t              sc[4];
    memcpy(sc, b->scales, sizeof sc);
    const int32_t  g16 = g / 2;
    const float    dl  = lb_f16_to_f32(lb_iq1m_d(sc)) * (float)(2 * (sc[g16 / 4] >> 3 * (g16 % 4) & 7) + 1);
    const int32_t  n   = iq1_candidates(dl, LB_IQ1_DELTA, 0, x, vals, codes, LB_VGRID_MAX / 2);
    return n + iq1_candidates(dl, -LB_IQ1_DELTA, 1, x, vals + 8 * n, codes + n, LB_VGRID_MAX / 2);
}
static void iq1_m_set(void *vb, int32_t g, uint32_t code) {
    lb_block_iq1_m *b  = vb;
    const int32_t   at = 4 * (g % 2);
    b->qs[g]           = (uint8_t)code;
    b->qh[g / 2]       = (uint8_t)((b->qh[g / 2] & ~(15u << at)) | ((code >> 8 & 7) | (code >> 11 & 1) << 3) << at);
}

const lb_vgrid_ops *lb_type_vgrid(lb_type t) {
    static const lb_vgrid_ops ops[] = {
#define OPS(X, DIM, SUB, NS) { DIM, SUB, NS, X##_cand, X##_set, X##_get_scale, X##_set_scale }
        OPS(iq2_xxs, 8, 32, 16), OPS(iq2_xs, 8, 16, 16), OPS(iq2_s, 8, 16, 16), OPS(iq3_xxs, 4, 32, 16),
        OPS(iq3_s, 4, 32, 16),   OPS(iq1_s, 8, 32, 8),   OPS(iq1_m, 8, 16, 8),
#undef OPS
    };
    switch (t) {
    case LB_TYPE_IQ2_XXS: return &ops[0];
    case LB_TYPE_IQ2_XS:  return &ops[1];
    case LB_TYPE_IQ2_S:   return &ops[2];
    case LB_TYPE_IQ3_XXS: return &ops[3];
    case LB_TYPE_IQ3_S:   return &ops[4];
    case LB_TYPE_IQ1_S:   return &ops[5];
    case LB_TYPE_IQ1_M:   return &ops[6];
    default:              return NULL;
    }
}
