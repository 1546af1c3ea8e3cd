/* Rows of a type without kernels as a type that has them and holds the same values, so the
 * forward pass runs them through that type's kernels (weights.c). An INTn group of g >= 32
 * values is g / 32 blocks that each carry the group's f16 scale [and minimum] and its levels:
 *   symmetric, 2 bits:    X2_0  (level k + 2;  x = d (u - 2); xlayout.c)
 *   affine,    2 bits:    X2_1  (level k;      x = d u + m)
 *   symmetric, 3-4 bits:  Q4_0  (level k + 8;  x = d (q - 8))
 *   affine,    3-4 bits:  Q4_1  (level k;      x = d q + m)
 *   symmetric, 5 bits:    Q5_0  (level k + 16; x = d (q - 16))
 *   affine,    5 bits:    Q5_1
 *   symmetric, 6, 8 bits: Q8_0  (level k;      x = d q)
 * A group of 256 is one super-block where that generates faster (super_of, put_super):
 * symmetric 2 bits X2_K (X2_0's blocks under one d), affine 3 bits Q4_K, and 5 bits Q5_K,
 * symmetric or affine (every sub-block's scale 1, the minimum as the super-block's).
 * Symmetric per-row and per-tensor scales (an f32 d at the start of each row, levels 2-6 and
 * 8 bits) become INT8_PC rows { f32 d; int8 q[n] }, which has kernels (f32 activations).
 * llama.cpp's ternary TQ1_0 and TQ2_0 ({-1, 0, 1} times a block's f16 d, 256 values) become
 * X2_K blocks with that d (level t + 2).
 * The values are the source type's bit for bit (tests/unit/test_formats.c). Affine 6 and 8
 * bits in groups, affine per-row and per-tensor scales, NF4, FP8 and lowbit's ternary have no
 * such type.
 * TQ1_0 and TQ2_0 hold only the trits llama.cpp writes: TQ2_0's code 3 (2 d, out of spec)
 * is read as 0, as before.
 * Where activations are quantized anyway (lb_transcode_approx_target), NF4 becomes XNF4 (its
 * levels in int8, d = absmax / 127 in f16: within absmax / 254 of each value), lowbit's
 * ternary X2_0 and INTn per-row and per-tensor scales the block type of their width (their
 * f32 scale [and minimum] in f16: within 2^-11 relative). A scale below f16's normal range
 * (2^-14; NF4: absmax below 127 * 2^-14 = 0.0078) keeps fewer bits, as a requantized Q8_0's
 * d would. lb_transcode_row writes any target of a source that holds its levels (the tests
 * write TQ2_0 as Q4_0, INTn 2 bits as Q4_0/Q4_1). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "formats.h"
#include "grid_kquants.h"
#include "kquant_common.h"
#include "lowbit/core.h"

/* the block type holding n-bit levels, symmetric or affine, with an f16 scale per 32 */
static lb_type block_of(int32_t bits, bool affine) {
    if (bits == 2) return affine ? LB_TYPE_X2_1 : LB_TYPE_X2_0;
    if (bits <= 4) return affine ? LB_TYPE_Q4_1 : LB_TYPE_Q4_0;
    if (bits == 5) return affine ? LB_TYPE_Q5_1 : LB_TYPE_Q5_0;
    return affine ? LB_TYPE_INVALID : LB_TYPE_Q8_0;
}

/* the super-block type holding a group of 256 n-bit levels under its one scale [and minimum]
 * with every sub-block's scale [and minimum] 1 (symmetric Q5_K: its minimum the offset), where
 * it generates faster than the 32-value block type (bench/README.md, section 15); else INVALID.
 * (Q3_K, Q2_K and Q6_K would hold 3-bit, affine 2-bit and 6-bit groups too, but run slower
 * than Q4_0, X2_1 and Q8_0 do with their extra bytes.) */
static lb_type super_of(int32_t bits, bool affine) {
    if (bits == 2 && !affine) return LB_TYPE_X2_K;
    if (bits == 3 && affine) return LB_TYPE_Q4_K;
    return bits == 5 ? LB_TYPE_Q5_K : LB_TYPE_INVALID;
}

lb_type lb_transcode_target(lb_type t) {
    lb_intn_desc d;
    if (t == LB_TYPE_TQ1_0 || t == LB_TYPE_TQ2_0) return LB_TYPE_X2_K;
    if (!lb_intn_desc_of(t, &d)) return LB_TYPE_INVALID;
    if (d.group <= 0) return d.affine || t == LB_TYPE_INT8_PC ? LB_TYPE_INVALID : LB_TYPE_INT8_PC;
    if (d.group == QK_K && super_of(d.bits, d.affine) != LB_TYPE_INVALID) return super_of(d.bits, d.affine);
    return d.group % 32 ? LB_TYPE_INVALID : block_of(d.bits, d.affine);
}

lb_type lb_transcode_approx_target(lb_type t) {
    lb_intn_desc d;
    if (t == LB_TYPE_NF4) return LB_TYPE_XNF4;
    if (t == LB_TYPE_TERNARY) return LB_TYPE_X2_0;
    return lb_intn_desc_of(t, &d) && d.group <= 0 ? block_of(d.bits, d.affine) : LB_TYPE_INVALID;
}

/* the g levels of a block's packed bits */
static void levels(const lb_intn_desc *d, int32_t *k, const uint8_t *q, int32_t g) {
    lb_intn_reader r = { .q = q };
    for (int32_t i = 0; i < g; i++) k[i] = lb_intn_next(d, &r);
}

/* the trit t of a value t * d (d = 0: the sign of the zero, -0 from t = -1) */
static int trit(float v, float d) {
    if (d == 0.0f) return signbit(v) ? -1 : 0;
    return v == d ? 1 : v == -d ? -1 : 0;
}

/* 32 levels q + off (0..3) in X2_0's order: value 8 s + b in bits 2 s of qs[b] */
static void put_crumbs(uint8_t *qs, const int32_t *q, int32_t off) {
    memset(qs, 0, 8);
    for (int i = 0; i < 32; i++) qs[i % 8] |= (uint8_t)((q[i] + off) << 2 * (i / 8));
}

/* One 32-value block of type `to` at o: the header hdr (f16 d [and m], hb bytes) and the
 * levels q (symmetric: signed; affine: 0..2^n-1) stored with the type's offset. Returns its
 * size. */
static size_t put_block(lb_type to, uint8_t *o, const uint8_t *hdr, size_t hb, const int32_t *q) {
    const int32_t off = to == LB_TYPE_Q4_0 ? 8 : to == LB_TYPE_Q5_0 ? 16 : to == LB_TYPE_X2_0 ? 2 : 0;
    memcpy(o, hdr, hb); /* d [and m], f16, as the block types start */
    uint8_t *qs = o + hb;
    switch (to) {
    case LB_TYPE_Q8_0:
        for (int j = 0; j < 32; j++) qs[j] = (uint8_t)(int8_t)q[j];
        return sizeof(lb_block_q8_0);
    case LB_TYPE_X2_0:
    case LB_TYPE_X2_1:
        put_crumbs(qs, q, off);
        return to == LB_TYPE_X2_0 ? sizeof(lb_block_x2_0) : sizeof(lb_block_x2_1);
    case LB_TYPE_Q4_0:
    case LB_TYPE_Q4_1:
        for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] + off) | (q[j + 16] + off) << 4);
        return to == LB_TYPE_Q4_0 ? sizeof(lb_block_q4_0) : sizeof(lb_block_q4_1);
    default: { /* Q5_0, Q5_1: low nibbles as Q4's, bit 4 of value j in bit j of qh */
        uint8_t *qh = qs;
        uint32_t h  = 0;
        qs += 4;
        for (int j = 0; j < 16; j++) {
            const uint32_t a = (uint32_t)(q[j] + off), c = (uint32_t)(q[j + 16] + off);
            qs[j] = (uint8_t)((a & 15) | (c & 15) << 4);
            h |= (a >> 4 & 1) << j | (c >> 4 & 1) << (j + 16);
        }
        memcpy(qh, &h, 4);
        return to == LB_TYPE_Q5_0 ? sizeof(lb_block_q5_0) : sizeof(lb_block_q5_1);
    }
    }
}

/* One 256-value super-block of type `to` (X2_K, Q4_K, Q5_K) at o holding the levels k
 * (symmetric: signed; affine: 0..2^n-1) of a group with f16 scale hdr[0] [and minimum
 * hdr[1]]: x = d k [+ m] with every sub-scale 1; the minimum is the k-quants' dmin negated,
 * symmetric Q5_K's offset 16 is m = 16 under dmin = d. The products d k are exact, so the
 * values are the group's bit for bit. Returns its size. */
static size_t put_super(lb_type to, uint8_t *o, const uint16_t *hdr, bool affine, const int32_t *k) {
    const size_t bs = lb_row_size(to, QK_K);
    memset(o, 0, bs);
    if (to == LB_TYPE_X2_K) {
        memcpy(o, hdr, 2);
        for (int s = 0; s < QK_K / 32; s++) put_crumbs(o + 2 + 8 * s, k + 32 * s, 2);
        return bs;
    }
    lb_block_q4_k *b = (lb_block_q4_k *)o; /* Q5_K starts the same: d, dmin, 6-bit scales and minimums */
    uint8_t        ls[8], lm[8];
    memset(ls, 1, sizeof ls);
    memset(lm, affine ? 1 : 16, sizeof lm);
    b->d = hdr[0], b->dmin = affine ? hdr[1] ^ 0x8000u : hdr[0];
    lb_kq_pack_scale_min(b->scales, ls, lm);
    void (*set)(void *, int32_t, int32_t) = to == LB_TYPE_Q4_K ? lb_grid_q4_k_set : lb_grid_q5_k_set;
    for (int32_t j = 0; j < QK_K; j++) set(o, j, k[j] + (affine ? 0 : 16));
    return bs;
}

/* TQ1_0, TQ2_0: each 256-value block's trits, read back from its values (exactly t * d) */
static void tq_row(lb_type from, lb_type to, uint8_t *o, const uint8_t *b, int64_t n) {
    const size_t bs = from == LB_TYPE_TQ1_0 ? sizeof(lb_block_tq1_0) : sizeof(lb_block_tq2_0);
    float        v[QK_K];
    int32_t      q[32];
    for (int64_t k = 0; k < n / QK_K; k++, b += bs) {
        uint8_t dh[2];
        memcpy(dh, b + bs - 2, 2); /* d closes both blocks */
        const float d = lb_f16_to_f32((uint16_t)(dh[0] | dh[1] << 8));
        lb_type_get_traits(from)->to_float(v, b, QK_K);
        if (to == LB_TYPE_X2_K) memcpy(o, dh, 2), o += 2;
        for (int s = 0; s < QK_K / 32; s++) {
            for (int j = 0; j < 32; j++) q[j] = trit(v[32 * s + j], d);
            if (to != LB_TYPE_X2_K) {
                o += put_block(to, o, dh, 2, q);
                continue;
            }
            put_crumbs(o, q, 2); /* X2_0's quants alone, under the 256-block's d */
            o += 8;
        }
    }
}

/* lowbit's ternary (f32 gamma, then 2-bit codes t + 1) with gamma in f16; code 3 (2 gamma,
 * never written) stays 2 where the target holds it, else gamma */
static void ternary_row(lb_type to, uint8_t *o, const uint8_t *b, int64_t n) {
    float g;
    memcpy(&g, b, 4);
    const uint16_t h     = lb_f16_sat(g);
    const uint8_t  dh[2] = { (uint8_t)(h & 0xFF), (uint8_t)(h >> 8) };
    int32_t        q[32];
    for (int64_t s = 0; s < n / 32; s++) {
        for (int j = 0; j < 32; j++) {
            const int64_t i = 32 * s + j;
            const int     c = b[4 + i / 4] >> 2 * (i % 4) & 3;
            q[j]            = c < 3 || to != LB_TYPE_X2_0 ? c - 1 : 1;
        }
        o += put_block(to, o, dh, 2, q);
    }
}

/* NF4 (64 values, f32 absmax, even value in the high nibble) as XNF4 (d = absmax / 127) */
static void nf4_row(lb_block_xnf4 *y, const lb_block_nf4 *b, int64_t n) {
    for (int64_t k = 0; k < n / QK_NF4; k++, b++) {
        float a;
        memcpy(&a, &b->d, 4);
        const uint16_t dh = lb_f16_sat(a / 127.0f);
        for (int h = 0; h < 2; h++, y++) {
            y->d = dh;
            for (int j = 0; j < 16; j++) {
                const int i0 = 32 * h + j, i1 = i0 + 16;
                const int u0 = b->qs[i0 / 2] >> (i0 % 2 ? 0 : 4) & 15, u1 = b->qs[i1 / 2] >> (i1 % 2 ? 0 : 4) & 15;
                y->qs[j]     = (uint8_t)(u0 | u1 << 4);
            }
        }
    }
}

/* INTn per row or per tensor: { f32 d; [f32 m;] levels }: as INT8_PC rows (exact), or as
 * blocks of `to` with d [and m] in f16 */
static void row_scaled(const lb_intn_desc *d, lb_type to, uint8_t *o, const uint8_t *b, int64_t n) {
    const size_t rh = d->affine ? 8 : 4;
    int32_t      k[256];
    if (to == LB_TYPE_INT8_PC) { /* the row's f32 d, then its levels as int8, 256 at a time */
        memcpy(o, b, 4);
        for (int64_t i = 0; i < n; i += 256) {
            const int32_t c = n - i < 256 ? (int32_t)(n - i) : 256;
            levels(d, k, b + 4 + i * d->bits / 8, c);
            for (int32_t j = 0; j < c; j++) o[4 + i + j] = (uint8_t)(int8_t)k[j];
        }
        return;
    }
    float dm[2] = { 0, 0 };
    memcpy(dm, b, rh);
    uint8_t hdr[4];
    for (int v = 0; v < 2; v++) {
        const uint16_t h = lb_f16_sat(dm[v]);
        hdr[2 * v] = (uint8_t)(h & 0xFF), hdr[2 * v + 1] = (uint8_t)(h >> 8);
    }
    for (int64_t i = 0; i < n; i += 256) { /* 256 values start on a byte for any width */
        const int32_t c = n - i < 256 ? (int32_t)(n - i) : 256;
        levels(d, k, b + rh + i * d->bits / 8, c);
        for (int32_t s = 0; s < c / 32; s++) o += put_block(to, o, hdr, d->affine ? 4 : 2, k + 32 * s);
    }
}

void lb_transcode_row(lb_type from, lb_type to, void *dst, const void *src, int64_t n) {
    lb_intn_desc d;
    if (to == LB_TYPE_INVALID) return;
    if (from == LB_TYPE_TQ1_0 || from == LB_TYPE_TQ2_0) {
        tq_row(from, to, dst, src, n);
        return;
    }
    if (from == LB_TYPE_TERNARY) {
        if (n % 32 == 0) ternary_row(to, dst, src, n);
        return;
    }
    if (from == LB_TYPE_NF4) {
        if (to == LB_TYPE_XNF4) nf4_row(dst, src, n);
        return;
    }
    if (!lb_intn_desc_of(from, &d)) return;
    if (d.group <= 0) {
        if (to == LB_TYPE_INT8_PC || n % 32 == 0) row_scaled(&d, to, dst, src, n);
        return;
    }
    const size_t   hb = d.affine ? 4 : 2, bb = LB_INTN_BLOCK_BYTES(d.bits, d.affine, d.group);
    const uint8_t *b  = src;
    uint8_t       *o  = dst;
    int32_t        k[256];
    const bool     super = d.group == QK_K && to == super_of(d.bits, d.affine); /* else 32-value blocks */
    for (int64_t g = 0; g < n / d.group; g++, b += bb) {
        levels(&d, k, b + hb, d.group);
        if (super) {
            uint16_t hdr[2] = { 0, 0 };
            memcpy(hdr, b, hb);
            o += put_super(to, o, hdr, d.affine, k);
            continue;
        }
        for (int32_t s = 0; s < d.group / 32; s++) o += put_block(to, o, b, hb, k + 32 * s);
    }
}
