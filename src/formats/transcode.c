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
 * Symmetric per-row and per-tensor scales (an f32 d at the start of each row, levels 2-6 and
 * 8 bits) become INT8_PC rows { f32 d; int8 q[n] }, which has kernels (f32 activations).
 * llama.cpp's ternary TQ1_0 and TQ2_0 ({-1, 0, 1} times a block's f16 d, 256 values) become
 * X2_0 blocks with that d (level t + 2).
 * The values are the source type's bit for bit (tests/unit/test_formats.c). Affine 6 and 8
 * bits in groups, affine per-row and per-tensor scales, NF4, FP8 and lowbit's ternary have no
 * such type.
 * Where activations are quantized anyway (lb_transcode_approx_target), NF4 becomes XNF4 (its
 * levels in int8, d = absmax / 127 in f16: within absmax / 254 of each value) and lowbit's
 * ternary X2_0 (its f32 gamma in f16: within 2^-11 relative). */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "formats.h"
#include "lowbit/core.h"

lb_type lb_transcode_target(lb_type t) {
    lb_intn_desc d;
    if (t == LB_TYPE_TQ1_0 || t == LB_TYPE_TQ2_0) return LB_TYPE_X2_0;
    if (!lb_intn_desc_of(t, &d)) return LB_TYPE_INVALID;
    if (d.group <= 0) return d.affine || t == LB_TYPE_INT8_PC ? LB_TYPE_INVALID : LB_TYPE_INT8_PC;
    if (d.group % 32) return LB_TYPE_INVALID;
    if (d.bits == 2) return d.affine ? LB_TYPE_X2_1 : LB_TYPE_X2_0;
    if (d.bits <= 4) return d.affine ? LB_TYPE_Q4_1 : LB_TYPE_Q4_0;
    if (d.bits == 5) return d.affine ? LB_TYPE_Q5_1 : LB_TYPE_Q5_0;
    return d.affine ? LB_TYPE_INVALID : LB_TYPE_Q8_0;
}

lb_type lb_transcode_approx_target(lb_type t) {
    return t == LB_TYPE_NF4 ? LB_TYPE_XNF4 : t == LB_TYPE_TERNARY ? LB_TYPE_X2_0 : LB_TYPE_INVALID;
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

/* 32 levels u (0..3) into X2_0's order: value 8 s + b in bits 2 s of qs[b] */
static void put_x2(uint8_t *qs, const int32_t *u) {
    memset(qs, 0, 8);
    for (int i = 0; i < 32; i++) qs[i % 8] |= (uint8_t)(u[i] << 2 * (i / 8));
}

/* n values t * d (t a trit) as X2_0 blocks with d as f16 (dh) */
static void trits_x2(lb_block_x2_0 *y, const float *v, int64_t n, uint16_t dh) {
    const float d = lb_f16_to_f32(dh);
    int32_t     u[32];
    for (int64_t s = 0; s < n / 32; s++, y++) {
        y->d = dh;
        for (int j = 0; j < 32; j++) u[j] = trit(v[32 * s + j], d) + 2;
        put_x2(y->qs, u);
    }
}

/* TQ1_0, TQ2_0: each 256-value block's trits, read back from its values (exactly t * d) */
static void ternary_row(lb_type from, lb_block_x2_0 *y, const uint8_t *b, int64_t n) {
    const size_t bs = from == LB_TYPE_TQ1_0 ? sizeof(lb_block_tq1_0) : sizeof(lb_block_tq2_0);
    float        v[QK_K];
    for (int64_t k = 0; k < n / QK_K; k++, b += bs, y += QK_K / 32) {
        uint16_t dh;
        memcpy(&dh, b + bs - 2, 2); /* d closes both blocks */
        lb_type_get_traits(from)->to_float(v, b, QK_K);
        trits_x2(y, v, QK_K, dh);
    }
}

/* lowbit's ternary (f32 gamma, then 2-bit codes t + 1) as X2_0 with gamma in f16 */
static void lowbit_ternary_row(lb_block_x2_0 *y, const uint8_t *b, int64_t n) {
    float g;
    memcpy(&g, b, 4);
    const uint16_t dh = lb_f32_to_f16(fminf(fmaxf(g, -65504.0f), 65504.0f));
    int32_t        u[32];
    for (int64_t s = 0; s < n / 32; s++, y++) {
        y->d = dh;
        for (int j = 0; j < 32; j++) {
            const int64_t i = 32 * s + j;
            const int     c = b[4 + i / 4] >> 2 * (i % 4) & 3; /* t + 1 */
            u[j]            = c < 3 ? c + 1 : 3; /* code 3 (2 gamma), never written: gamma */
        }
        put_x2(y->qs, u);
    }
}

/* NF4 (64 values, f32 absmax, even value in the high nibble) as XNF4 (d = absmax / 127) */
static void nf4_row(lb_block_xnf4 *y, const lb_block_nf4 *b, int64_t n) {
    for (int64_t k = 0; k < n / QK_NF4; k++, b++) {
        float a;
        memcpy(&a, &b->d, 4);
        const uint16_t dh = lb_f32_to_f16(fminf(fmaxf(a / 127.0f, -65504.0f), 65504.0f));
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

void lb_transcode_row(lb_type from, void *dst, const void *src, int64_t n) {
    lb_intn_desc d;
    const lb_type to = lb_transcode_target(from);
    if (from == LB_TYPE_TQ1_0 || from == LB_TYPE_TQ2_0) {
        ternary_row(from, dst, src, n);
        return;
    }
    if (from == LB_TYPE_TERNARY) {
        if (n % 32 == 0) lowbit_ternary_row(dst, src, n);
        return;
    }
    if (from == LB_TYPE_NF4) {
        nf4_row(dst, src, n);
        return;
    }
    if (to == LB_TYPE_INVALID || !lb_intn_desc_of(from, &d)) return;
    int32_t k[256];
    if (to == LB_TYPE_INT8_PC) { /* the row's f32 d, then its levels as int8, 256 at a time */
        const uint8_t *b = src;
        int8_t        *q = (int8_t *)((uint8_t *)dst + 4);
        memcpy(dst, b, 4);
        for (int64_t i = 0; i < n; i += 256) {
            const int32_t c = n - i < 256 ? (int32_t)(n - i) : 256;
            levels(&d, k, b + 4 + i * d.bits / 8, c);
            for (int32_t j = 0; j < c; j++) q[i + j] = (int8_t)k[j];
        }
        return;
    }
    const size_t   hb = d.affine ? 4 : 2, bb = LB_INTN_BLOCK_BYTES(d.bits, d.affine, d.group);
    const int32_t  off = to == LB_TYPE_Q8_0 || d.affine ? 0 : to == LB_TYPE_Q5_0 ? 16 : to == LB_TYPE_X2_0 ? 2 : 8;
    const uint8_t *b   = src;
    uint8_t       *o   = dst;
    for (int64_t g = 0; g < n / d.group; g++, b += bb) {
        levels(&d, k, b + hb, d.group);
        for (int32_t s = 0; s < d.group / 32; s++) {
            const int32_t *q = k + 32 * s;
            memcpy(o, b, hb); /* d [and m], f16, as the block types start */
            switch (to) {
            case LB_TYPE_Q8_0: {
                lb_block_q8_0 *y = (lb_block_q8_0 *)o;
                for (int j = 0; j < 32; j++) y->qs[j] = (int8_t)q[j];
                o += sizeof *y;
                break;
            }
            case LB_TYPE_X2_0:
            case LB_TYPE_X2_1: {
                int32_t u[32];
                for (int j = 0; j < 32; j++) u[j] = q[j] + off;
                put_x2(o + hb, u);
                o += to == LB_TYPE_X2_0 ? sizeof(lb_block_x2_0) : sizeof(lb_block_x2_1);
                break;
            }
            case LB_TYPE_Q4_0:
            case LB_TYPE_Q4_1: {
                uint8_t *qs = o + hb;
                for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] + off) | (q[j + 16] + off) << 4);
                o += to == LB_TYPE_Q4_0 ? sizeof(lb_block_q4_0) : sizeof(lb_block_q4_1);
                break;
            }
            default: { /* Q5_0, Q5_1: low nibbles as Q4's, bit 4 of value j in bit j of qh */
                uint8_t *qh = o + hb, *qs = qh + 4;
                uint32_t h  = 0;
                for (int j = 0; j < 16; j++) {
                    const uint32_t a = (uint32_t)(q[j] + off), c = (uint32_t)(q[j + 16] + off);
                    qs[j] = (uint8_t)((a & 15) | (c & 15) << 4);
                    h |= (a >> 4 & 1) << j | (c >> 4 & 1) << (j + 16);
                }
                memcpy(qh, &h, 4);
                o += to == LB_TYPE_Q5_0 ? sizeof(lb_block_q5_0) : sizeof(lb_block_q5_1);
                break;
            }
            }
        }
    }
}
