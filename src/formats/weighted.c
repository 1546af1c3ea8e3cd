/* The row loop shared by the importance-aware quantizers of the 32-value block types: per
 * row, sigma^2 = mean x^2; per block, the error weights imp_j * sqrt(sigma^2 + x_j^2) (how
 * ggml turns an importance vector into a block's weights); then the type's block fit. */
#include "formats.h"

size_t lb_quantize_rows_weighted(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                                 const float *importance, size_t block_bytes,
                                 void (*ref)(void *dst, const float *src, int64_t n),
                                 lb_block_fit_fn fit) {
    const size_t rs = (size_t)(n_per_row / QK_LEGACY) * block_bytes;
    for (int64_t r = 0; r < nrow; r++) {
        const float *x = src + r * n_per_row;
        uint8_t     *y = (uint8_t *)dst + (size_t)r * rs;
        if (!importance) {
            ref(y, x, n_per_row);
            continue;
        }
        float sum = 0;
        for (int64_t j = 0; j < n_per_row; j++) sum += x[j] * x[j];
        const float sigma2 = sum / (float)n_per_row;
        for (int64_t b = 0; b < n_per_row / QK_LEGACY; b++) {
            const float *xb = x + b * QK_LEGACY, *ib = importance + b * QK_LEGACY;
            float        w[QK_LEGACY];
            for (int j = 0; j < QK_LEGACY; j++) w[j] = ib[j] * sqrtf(sigma2 + xb[j] * xb[j]);
            fit(y + (size_t)b * block_bytes, xb, w);
        }
    }
    return (size_t)nrow * rs;
}
