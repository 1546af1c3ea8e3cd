/* Q4_K: super-blocks of 256 values in 8 groups of 32, affine per group:
 * x = d * sc * q - dmin * m with q in 0..15, sc and m 6-bit (packed in 12 bytes, see
 * lb_kq_get_scale_min), d and dmin half floats (4.5 bpw). Each 64 values share 32 bytes of
 * qs: the first 32 values in the low nibbles, the next 32 in the high nibbles. */
#include "formats.h"
#include "kquant_common.h"
#include "lowbit/core.h"

static void q4_k_pack(lb_block_q4_k *y, const uint8_t *L) {
    for (int c = 0; c < QK_K / 64; c++)
        for (int l = 0; l < 32; l++)
            y->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + l + 32] << 4);
}

void lb_quantize_row_q4_k_ref(void *dst, const float *x, int64_t n) {
    lb_block_q4_k *y = dst;
    uint8_t        L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        lb_kq_fit_scale_min_ref(x, 15, -1.f, 0.1f, 20, L, y[i].scales, &y[i].d, &y[i].dmin);
        q4_k_pack(&y[i], L);
    }
}

size_t lb_quantize_q4_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    const size_t rs = (size_t)(n_per_row / QK_K) * sizeof(lb_block_q4_k);
    uint8_t      L[QK_K];
    for (int64_t r = 0; r < nrow; r++) {
        lb_block_q4_k *y = (lb_block_q4_k *)((uint8_t *)dst + (size_t)r * rs);
        const float   *x = src + r * n_per_row;
        if (!importance) {
            lb_quantize_row_q4_k_ref(y, x, n_per_row);
            continue;
        }
        for (int64_t i = 0; i < n_per_row / QK_K; i++) {
            lb_kq_fit_scale_min_imatrix(x + i * QK_K, importance + i * QK_K, 15, L, y[i].scales,
                                        &y[i].d, &y[i].dmin);
            q4_k_pack(&y[i], L);
        }
    }
    return (size_t)nrow * rs;
}

void lb_dequantize_row_q4_k(float *y, const void *src, int64_t n) {
    const lb_block_q4_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = lb_f16_to_f32(b[i].d), dmin = lb_f16_to_f32(b[i].dmin);
        for (int g = 0; g < QK_K / 32; g++, y += 32) {
            uint8_t sc, m;
            lb_kq_get_scale_min(g, b[i].scales, &sc, &m);
            const float    dg = d * (float)sc, mg = dmin * (float)m;
            const uint8_t *q  = b[i].qs + 32 * (g / 2);
            const int      shift = 4 * (g % 2); /* odd groups: the high nibbles */
            for (int l = 0; l < 32; l++) y[l] = dg * (float)((q[l] >> shift) & 0xF) - mg;
        }
    }
}
