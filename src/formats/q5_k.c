/* Q5_K: as Q4_K with 5-bit levels, q in 0..31 (5.5 bpw). The low 4 bits are stored as
 * Q4_K's; the fifth bit of value 64 c + l (l < 32) is bit 2c of qh[l], that of value
 * 64 c + 32 + l bit 2c + 1. */
#include <string.h>

#include "formats.h"
#include "kquant_common.h"
#include "lowbit/core.h"

static void q5_k_pack(lb_block_q5_k *y, const uint8_t *L) {
    memset(y->qh, 0, sizeof y->qh);
    for (int c = 0; c < QK_K / 64; c++)
        for (int l = 0; l < 32; l++) {
            const int lo = L[64 * c + l], hi = L[64 * c + l + 32];
            y->qs[32 * c + l] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
            y->qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
        }
}

void lb_quantize_row_q5_k_ref(void *dst, const float *x, int64_t n) {
    lb_block_q5_k *y = dst;
    uint8_t        L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        lb_kq_fit_scale_min_ref(x, 31, -0.5f, 0.1f, 15, L, y[i].scales, &y[i].d, &y[i].dmin);
        q5_k_pack(&y[i], L);
    }
}

size_t lb_quantize_q5_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    const size_t rs = (size_t)(n_per_row / QK_K) * sizeof(lb_block_q5_k);
    uint8_t      L[QK_K];
    for (int64_t r = 0; r < nrow; r++) {
        lb_block_q5_k *y = (lb_block_q5_k *)((uint8_t *)dst + (size_t)r * rs);
        const float   *x = src + r * n_per_row;
        if (!importance) {
            lb_quantize_row_q5_k_ref(y, x, n_per_row);
            continue;
        }
        for (int64_t i = 0; i < n_per_row / QK_K; i++) {
            lb_kq_fit_scale_min_imatrix(x + i * QK_K, importance + i * QK_K, 31, L, y[i].scales,
                                        &y[i].d, &y[i].dmin);
            q5_k_pack(&y[i], L);
        }
    }
    return (size_t)nrow * rs;
}

void lb_dequantize_row_q5_k(float *y, const void *src, int64_t n) {
    const lb_block_q5_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = lb_f16_to_f32(b[i].d), dmin = lb_f16_to_f32(b[i].dmin);
        for (int g = 0; g < QK_K / 32; g++, y += 32) {
            uint8_t sc, m;
            lb_kq_get_scale_min(g, b[i].scales, &sc, &m);
            const float    dg = d * (float)sc, mg = dmin * (float)m;
            const uint8_t *ql = b[i].qs + 32 * (g / 2);
            const int      shift = 4 * (g % 2); /* odd groups: the high nibbles */
            for (int l = 0; l < 32; l++) {
                const int q = ((ql[l] >> shift) & 0xF) | ((b[i].qh[l] >> g) & 1) << 4;
                y[l]        = dg * (float)q - mg;
            }
        }
    }
}
