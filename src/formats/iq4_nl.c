/* IQ4_NL: blocks of 32 values, x = d * grid[q] with q a 4-bit index into the non-linear grid
 * of iq4_common.h and d an f16 scale (4.5 bpw). Nibble j holds value j (low) and j + 16
 * (high). The scale is searched to minimise the x^2-weighted (or importance-weighted) error. */
#include "formats.h"
#include "iq4_common.h"
#include "lowbit/core.h"

size_t lb_quantize_iq4_nl(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                          const float *importance) {
    const int64_t    nb = n_per_row / QK_LEGACY;
    lb_block_iq4_nl *y  = dst;
    for (int64_t r = 0; r < nrow; r++)
        for (int64_t i = 0; i < nb; i++, y++, src += QK_LEGACY)
            lb_iq4_quantize_superblock(src, QK_LEGACY,
                                       importance ? importance + i * QK_LEGACY : NULL, &y->d,
                                       y->qs, NULL, NULL);
    return (size_t)(nrow * nb) * sizeof(lb_block_iq4_nl);
}

/* what llama-quantize does without an importance matrix (ggml's quantize_iq4_nl with none;
 * ggml's quantize_row_iq4_nl_ref, which skips the scale search, is not what it writes) */
void lb_quantize_row_iq4_nl_ref(void *dst, const float *src, int64_t n) {
    lb_quantize_iq4_nl(dst, src, 1, n, NULL);
}

void lb_dequantize_row_iq4_nl(float *y, const void *src, int64_t n) {
    lb_dequantize_grid4(y, src, n, lb_iq4nl_grid);
}
