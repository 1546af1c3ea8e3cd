/* Ternary: BitNet b1.58's weights. gamma = mean |W| over the whole tensor (absmean),
 * q = round(clamp(W / gamma, -1, 1)) in {-1, 0, +1}, value = q * gamma.
 * Row: { f32 gamma; u8 t[ceil(C/4)] }: 2 + 32/C bpw; t = q + 1 in 2 bits, value i in bits
 * 2*(i%4) .. 2*(i%4)+1 of byte i/4 (packed little-endian, as INTn). The tensor's gamma is
 * stored at the start of every row (rows stay independent for reading); the quantizer sees
 * all rows at once, and quantizing one row alone takes that row's gamma. */
#include <math.h>
#include <string.h>

#include "formats.h"

size_t lb_row_size_ternary(int64_t n) {
    return n < 1 || n > INT64_MAX / 16 ? 0 : sizeof(float) + (size_t)((n + 3) / 4);
}

static float absmean(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)x[i]);
    return n > 0 ? (float)(s / (double)n) : 0.0f;
}

static void quantize_row(uint8_t *y, const float *x, int64_t n, float gamma) {
    memcpy(y, &gamma, sizeof gamma);
    y += sizeof gamma;
    memset(y, 0, (size_t)((n + 3) / 4));
    for (int64_t i = 0; i < n; i++) {
        const float w = gamma != 0.0f ? x[i] / gamma : 0.0f;
        const float v = roundf(fminf(fmaxf(w, -1.0f), 1.0f));
        const unsigned t = v > 0.0f ? 2u : v < 0.0f ? 0u : 1u;
        y[i / 4] |= (uint8_t)(t << 2 * (i % 4));
    }
}

void lb_quantize_row_ternary_ref(void *dst, const float *x, int64_t n) {
    quantize_row(dst, x, n, absmean(x, n));
}

size_t lb_quantize_ternary(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                           const float *importance) {
    (void)importance;
    const float  gamma = absmean(src, nrow * n_per_row);
    const size_t rs    = lb_row_size_ternary(n_per_row);
    for (int64_t r = 0; r < nrow; r++)
        quantize_row((uint8_t *)dst + (size_t)r * rs, src + r * n_per_row, n_per_row, gamma);
    return (size_t)nrow * rs;
}

void lb_dequantize_row_ternary(float *y, const void *src, int64_t n) {
    const uint8_t *q = src;
    float          gamma;
    memcpy(&gamma, q, sizeof gamma);
    q += sizeof gamma;
    for (int64_t i = 0; i < n; i++) {
        const int t = (q[i / 4] >> 2 * (i % 4)) & 3;
        y[i]        = (float)(t - 1) * gamma;
    }
}
