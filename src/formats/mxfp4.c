/* MXFP4 (OCP microscaling): blocks of 32 E2M1 codes with an E8M0 power-of-two scale. The
 * codes' values are kept doubled (0 .. 12) and the scale halved, as ggml does; nibble j of the
 * 16 bytes holds value j (low) and j + 16 (high). */
#include <string.h>

#include "formats.h"
#include "lowbit/core.h"

const int8_t lb_mxfp4_values[16] = { 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12 };
#define k_fp4 lb_mxfp4_values

/* the nearest code to x at scale d (first of equals) */
static uint8_t nearest(float x, float d) {
    uint8_t best = 0;
    float   err  = fabsf((float)k_fp4[0] * d - x);
    for (uint8_t i = 1; i < 16; i++) {
        const float e = fabsf((float)k_fp4[i] * d - x);
        if (e < err) best = i, err = e;
    }
    return best;
}

/* as ggml's quantize_row_mxfp4_ref: e = floor(log2(amax)) - 2 + 127, so amax lands in 4 .. 8 */
void lb_quantize_row_mxfp4_ref(void *dst, const float *x, int64_t n) {
    lb_block_mxfp4 *y = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float amax = 0;
        for (int j = 0; j < QK_LEGACY; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float e = amax > 0 ? floorf(log2f(amax)) - 2 + 127 : 0; /* below 0: subnormal amax */
        y[i].e        = (uint8_t)fminf(fmaxf(e, 0), 254);
        const float d = lb_e8m0_half(y[i].e);
        for (int j = 0; j < QK_LEGACY / 2; j++)
            y[i].qs[j] = (uint8_t)(nearest(x[j], d) | nearest(x[j + QK_LEGACY / 2], d) << 4);
    }
}

void lb_dequantize_row_mxfp4(float *y, const void *src, int64_t n) {
    const lb_block_mxfp4 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = lb_e8m0_half(b[i].e);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            y[j]                 = (float)k_fp4[b[i].qs[j] & 15] * d;
            y[j + QK_LEGACY / 2] = (float)k_fp4[b[i].qs[j] >> 4] * d;
        }
    }
}
