/* IQ4_XS: super-blocks of 256 values in 8 blocks of 32, x = d * (l - 32) * grid[q]: q a 4-bit
 * index into IQ4_NL's grid (iq4_common.h), l a 6-bit block scale (low 4 bits in scales_l,
 * two blocks per byte, high 2 bits in scales_h), d the f16 super-block scale (4.25 bpw).
 * Within a block, nibble j holds value j (low) and j + 16 (high). */
#include "formats.h"
#include "iq4_common.h"
#include "lowbit/core.h"

size_t lb_quantize_iq4_xs(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                          const float *importance) {
    const int64_t    nb = n_per_row / QK_K;
    lb_block_iq4_xs *y  = dst;
    for (int64_t r = 0; r < nrow; r++)
        for (int64_t i = 0; i < nb; i++, y++, src += QK_K)
            lb_iq4_quantize_superblock(src, QK_K, importance ? importance + i * QK_K : NULL, &y->d,
                                       y->qs, &y->scales_h, y->scales_l);
    return (size_t)(nrow * nb) * sizeof(lb_block_iq4_xs);
}

/* what llama-quantize does without an importance matrix (as ggml's quantize_row_iq4_xs_ref) */
void lb_quantize_row_iq4_xs_ref(void *dst, const float *src, int64_t n) {
    lb_quantize_iq4_xs(dst, src, 1, n, NULL);
}

void lb_dequantize_row_iq4_xs(float *y, const void *src, int64_t n) {
    const lb_block_iq4_xs *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float    d  = lb_f16_to_f32(b[i].d);
        const uint8_t *qs = b[i].qs;
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32, qs += 16) {
            const int   l  = ((b[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                             ((b[i].scales_h >> 2 * ib) & 3) << 4;
            const float dl = d * (float)(l - 32);
            for (int j = 0; j < 16; j++) {
                y[j]      = dl * lb_iq4nl_grid[qs[j] & 0xf];
                y[j + 16] = dl * lb_iq4nl_grid[qs[j] >> 4];
            }
        }
    }
}
