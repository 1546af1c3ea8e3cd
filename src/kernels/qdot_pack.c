/* Packed weights for the quantized kernels (qdot.h): groups of 8 rows of a 32-block type whose
 * blocks are interleaved so that a kernel reads one sequential stream and holds one row per
 * 32-bit lane. For group g (rows 8g .. 8g+7) and block i, at (g * nb + i) * size:
 *   the 8 rows' f16 scales d (16 bytes), then for Q4_1 their f16 minimums m (16 bytes),
 *   then the quants in 4-byte groups: group k of the 8 rows (row r at 4 r) is bytes 32 k ..
 *   32 k + 31: k < 4 for the nibbles of Q4_0 / Q4_1 / IQ4_NL / XNF4, k < 2 for the 2-bit
 *   levels of X2_0 / X2_1 (X2_1 has its m as Q4_1), k < 8 for Q8_0's bytes; for
 *   Q5_0 / Q5_1 group 0 is the rows' 32-bit qh, groups 1..4 their nibbles.
 * X2_K, per 256-block of the 8 rows (528 bytes): d (16 bytes), then its 8 blocks of 32 as X2_0's
 * quants are (64 bytes each: dword k < 2 of the 8 rows).
 * Q4_K, per super-block of the 8 rows (1184 bytes): d (16 bytes), dmin (16), the 6-bit scales
 * unpacked to bytes, group j of row r at 32 + 8 j + r, the mins at 96 + 8 j + r, then the
 * quants: dword k (k < 8) of 32-byte chunk c (c < 4) of the 8 rows at 160 + 256 c + 32 k.
 * Q5_K: Q4_K's 1184 bytes, then dword k (k < 8) of the 8 rows' qh at 1184 + 32 k.
 * Q6_K, per super-block of the 8 rows (1680 bytes): d (16 bytes), the 16 int8 scales, scale
 * j of row r at 16 + 8 j + r, then dword k (k < 8) of ql's 32-byte chunk c (c < 4) of the 8
 * rows at 144 + 256 c + 32 k, and of qh's chunk h (h < 2) at 1168 + 256 h + 32 k.
 * Q3_K, per super-block of 8 rows (912 bytes): d (16 bytes), the 16 signed scales (-32..31)
 * unpacked to int8, scale j of row r at 16 + 8 j + r, then dword k (k < 16) of the rows' qs
 * at 144 + 32 k and dword m (m < 8) of their hmask at 656 + 32 m.
 * Q2_K, per super-block of 8 rows (672 bytes): d (16 bytes), dmin (16), the scale bytes as
 * stored (scale in the low nibble, min in the high one), byte j of row r at 32 + 8 j + r, then
 * dword k (k < 16) of the rows' qs at 160 + 32 k.
 * IQ4_XS, per super-block of 8 rows (1104 bytes): d (16 bytes), the 8 signed group scales
 * (-32..31) as int8, scale j of row r at 16 + 8 j + r, then dword k (k < 32) of the rows' qs
 * at 80 + 32 k.
 * Rows beyond the last whole group stay in the tensor's own layout. */
#include <string.h>

#include "formats/blocks.h"
#include "formats/kquant_common.h"
#include "qdot.h"

typedef struct {
    size_t block;  /* bytes of a block of the type */
    int    scales; /* f16 values at the start of a block (d; d and m) */
    int    groups; /* 4-byte groups of quants in a block */
} pack_desc;

static bool desc_of(lb_type t, pack_desc *d) {
    switch (t) {
    case LB_TYPE_Q4_0:   *d = (pack_desc){ sizeof(lb_block_q4_0), 1, 4 }; return true;
    case LB_TYPE_Q4_1:   *d = (pack_desc){ sizeof(lb_block_q4_1), 2, 4 }; return true;
    case LB_TYPE_IQ4_NL: *d = (pack_desc){ sizeof(lb_block_iq4_nl), 1, 4 }; return true;
    case LB_TYPE_XNF4:   *d = (pack_desc){ sizeof(lb_block_xnf4), 1, 4 }; return true;
    case LB_TYPE_X2_0:   *d = (pack_desc){ sizeof(lb_block_x2_0), 1, 2 }; return true;
    case LB_TYPE_X2_1:   *d = (pack_desc){ sizeof(lb_block_x2_1), 2, 2 }; return true;
    case LB_TYPE_Q8_0:   *d = (pack_desc){ sizeof(lb_block_q8_0), 1, 8 }; return true;
    case LB_TYPE_Q5_0:   *d = (pack_desc){ sizeof(lb_block_q5_0), 1, 5 }; return true; /* qh, then qs */
    case LB_TYPE_Q5_1:   *d = (pack_desc){ sizeof(lb_block_q5_1), 2, 5 }; return true;
    default:             return false;
    }
}

#define Q4_K_PACKED 1184
#define Q5_K_PACKED (Q4_K_PACKED + 256)

void lb_pack_q6_k_block(uint8_t *o, const uint8_t *const rows[8]) {
    for (int r = 0; r < 8; r++) {
        const lb_block_q6_k *b = (const lb_block_q6_k *)rows[r];
        memcpy(o + 2 * r, &b->d, 2);
        for (int j = 0; j < 16; j++) o[16 + 8 * j + r] = (uint8_t)b->scales[j];
        for (int c = 0; c < 4; c++)
            for (int k = 0; k < 8; k++) memcpy(o + 144 + 256 * c + 32 * k + 4 * r, b->ql + 32 * c + 4 * k, 4);
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 8; k++) memcpy(o + 1168 + 256 * h + 32 * k + 4 * r, b->qh + 32 * h + 4 * k, 4);
    }
}

void lb_pack_q3_k_block(uint8_t *o, const uint8_t *const rows[8]) {
    for (int r = 0; r < 8; r++) {
        const lb_block_q3_k *b = (const lb_block_q3_k *)rows[r];
        memcpy(o + 2 * r, &b->d, 2);
        for (int j = 0; j < 16; j++) o[16 + 8 * j + r] = (uint8_t)(int8_t)lb_q3_k_scale(b->scales, j);
        for (int k = 0; k < 16; k++) memcpy(o + 144 + 32 * k + 4 * r, b->qs + 4 * k, 4);
        for (int m = 0; m < 8; m++) memcpy(o + 656 + 32 * m + 4 * r, b->hmask + 4 * m, 4);
    }
}

void lb_pack_q2_k_block(uint8_t *o, const uint8_t *const rows[8]) {
    for (int r = 0; r < 8; r++) {
        const lb_block_q2_k *b = (const lb_block_q2_k *)rows[r];
        memcpy(o + 2 * r, &b->d, 2);
        memcpy(o + 16 + 2 * r, &b->dmin, 2);
        for (int j = 0; j < 16; j++) o[32 + 8 * j + r] = b->scales[j];
        for (int k = 0; k < 16; k++) memcpy(o + 160 + 32 * k + 4 * r, b->qs + 4 * k, 4);
    }
}

void lb_pack_iq4_xs_block(uint8_t *o, const uint8_t *const rows[8]) {
    for (int r = 0; r < 8; r++) {
        const lb_block_iq4_xs *b = (const lb_block_iq4_xs *)rows[r];
        memcpy(o + 2 * r, &b->d, 2);
        for (int j = 0; j < 8; j++) {
            const int l = ((b->scales_l[j / 2] >> 4 * (j % 2)) & 0xF) | ((b->scales_h >> 2 * j) & 3) << 4;
            o[16 + 8 * j + r] = (uint8_t)(int8_t)(l - 32);
        }
        for (int k = 0; k < 32; k++) memcpy(o + 80 + 32 * k + 4 * r, b->qs + 4 * k, 4);
    }
}

/* X2_K: each 256-block of 8 rows: the rows' d, then block s's 2 dwords of the 8 rows */
static void pack_x2_k(uint8_t *o, const uint8_t *src, int64_t n, int64_t nr) {
    const int64_t nb = n / 256;
    const size_t  rs = (size_t)nb * sizeof(lb_block_x2_k);
    for (int64_t g = 0; g < nr / 8; g++)
        for (int64_t i = 0; i < nb; i++, o += 16 + 64 * 8)
            for (int r = 0; r < 8; r++) {
                const lb_block_x2_k *b = (const lb_block_x2_k *)(src + (size_t)(8 * g + r) * rs) + i;
                memcpy(o + 2 * r, &b->d, 2);
                for (int s = 0; s < 8; s++)
                    for (int k = 0; k < 2; k++) memcpy(o + 16 + 64 * s + 32 * k + 4 * r, b->qs + 8 * s + 4 * k, 4);
            }
}

size_t lb_pack_block_bytes(lb_type t) {
    pack_desc d;
    if (t == LB_TYPE_Q4_K) return Q4_K_PACKED;
    if (t == LB_TYPE_Q5_K) return Q5_K_PACKED;
    if (t == LB_TYPE_Q6_K) return LB_Q6_K_PACKED;
    if (t == LB_TYPE_Q3_K) return LB_Q3_K_PACKED;
    if (t == LB_TYPE_Q2_K) return LB_Q2_K_PACKED;
    if (t == LB_TYPE_IQ4_XS) return LB_IQ4_XS_PACKED;
    if (t == LB_TYPE_X2_K) return 16 + 64 * 8;
    return desc_of(t, &d) ? (size_t)8 * (2 * (size_t)d.scales + 4 * (size_t)d.groups) : 0;
}

size_t lb_pack_size(lb_type t, int64_t n, int64_t nr) {
    const int64_t values = t == LB_TYPE_X2_K || t == LB_TYPE_IQ4_XS || t == LB_TYPE_Q2_K || t == LB_TYPE_Q3_K || t == LB_TYPE_Q4_K || t == LB_TYPE_Q5_K || t == LB_TYPE_Q6_K ? QK_K : 32;
    return (size_t)(nr / 8) * (size_t)(n / values) * lb_pack_block_bytes(t);
}

/* Q4_K, and Q5_K with its qh after (five) */
static void pack_q45_k(uint8_t *o, const uint8_t *s, int64_t n, int64_t nr, bool five) {
    const int64_t nb = n / QK_K;
    const size_t  bs = five ? sizeof(lb_block_q5_k) : sizeof(lb_block_q4_k), rs = (size_t)nb * bs;
    for (int64_t g = 0; g < nr / 8; g++)
        for (int64_t i = 0; i < nb; i++, o += five ? Q5_K_PACKED : Q4_K_PACKED)
            for (int r = 0; r < 8; r++) {
                const uint8_t       *p  = s + (size_t)(8 * g + r) * rs + (size_t)i * bs;
                const lb_block_q4_k *b  = (const lb_block_q4_k *)p;  /* d, dmin, scales: the same */
                const uint8_t       *qs = five ? ((const lb_block_q5_k *)p)->qs : b->qs;
                memcpy(o + 2 * r, &b->d, 2);
                memcpy(o + 16 + 2 * r, &b->dmin, 2);
                for (int j = 0; j < 8; j++)
                    lb_kq_get_scale_min(j, b->scales, o + 32 + 8 * j + r, o + 96 + 8 * j + r);
                for (int c = 0; c < 4; c++)
                    for (int k = 0; k < 8; k++)
                        memcpy(o + 160 + 256 * c + 32 * k + 4 * r, qs + 32 * c + 4 * k, 4);
                for (int k = 0; five && k < 8; k++)
                    memcpy(o + Q4_K_PACKED + 32 * k + 4 * r, ((const lb_block_q5_k *)p)->qh + 4 * k, 4);
            }
}

void lb_pack_rows(lb_type t, void *dst, const void *src, int64_t n, int64_t nr) {
    pack_desc d;
    if (t == LB_TYPE_X2_K) {
        pack_x2_k(dst, src, n, nr);
        return;
    }
    if (t == LB_TYPE_Q4_K || t == LB_TYPE_Q5_K) {
        pack_q45_k(dst, src, n, nr, t == LB_TYPE_Q5_K);
        return;
    }
    if (t == LB_TYPE_Q6_K || t == LB_TYPE_Q3_K || t == LB_TYPE_Q2_K || t == LB_TYPE_IQ4_XS) { /* a super-block of 8 rows at a time */
        const size_t  bs  = lb_type_get_traits(t)->type_size;
        const size_t  pb  = lb_pack_block_bytes(t);
        const int64_t nb  = n / QK_K;
        const size_t  rs  = (size_t)nb * bs;
        uint8_t      *o   = dst;
        for (int64_t g = 0; g < nr / 8; g++)
            for (int64_t i = 0; i < nb; i++, o += pb) {
                const uint8_t *rows[8];
                for (int r = 0; r < 8; r++) rows[r] = (const uint8_t *)src + (size_t)(8 * g + r) * rs + (size_t)i * bs;
                if (t == LB_TYPE_Q6_K) lb_pack_q6_k_block(o, rows);
                else if (t == LB_TYPE_Q3_K) lb_pack_q3_k_block(o, rows);
                else if (t == LB_TYPE_Q2_K) lb_pack_q2_k_block(o, rows);
                else lb_pack_iq4_xs_block(o, rows);
            }
        return;
    }
    if (!desc_of(t, &d)) return;
    const int64_t  nb = n / 32;
    const size_t   pb = lb_pack_block_bytes(t), rs = (size_t)nb * d.block;
    uint8_t       *o  = dst;
    const uint8_t *s  = src;
    for (int64_t g = 0; g < nr / 8; g++)
        for (int64_t i = 0; i < nb; i++, o += pb)
            for (int r = 0; r < 8; r++) {
                const uint8_t *b = s + (size_t)(8 * g + r) * rs + (size_t)i * d.block;
                for (int k = 0; k < d.scales; k++) memcpy(o + 16 * k + 2 * r, b + 2 * k, 2);
                for (int k = 0; k < d.groups; k++)
                    memcpy(o + 16 * d.scales + 32 * k + 4 * r, b + 2 * d.scales + 4 * k, 4);
            }
}
