/* TQ2_0: ternary super-blocks of 256 values, x = t * d with t in {-1, 0, 1} and d = max |x|
 * (f16), 2.0625 bpw. t + 1 is stored in 2 bits: in each half of 128 values, byte m of the
 * half's 32 bytes holds values m, m + 32, m + 64, m + 96 in bits 0-1, 2-3, 4-5, 6-7. */
#include <math.h>

#include "formats.h"
#include "lowbit/core.h"

void lb_quantize_row_tq2_0_ref(void *dst, const float *x, int64_t n) {
    lb_block_tq2_0 *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float amax = 0.0f;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
        const float d  = amax;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d         = lb_f32_to_f16(d);
        for (int h = 0; h < QK_K / 128; h++, x += 128)
            for (int m = 0; m < 32; m++) {
                unsigned q = 0;
                for (int k = 0; k < 4; k++)
                    q |= ((unsigned)(lroundf(x[m + 32 * k] * id) + 1) & 3u) << 2 * k;
                y[i].qs[32 * h + m] = (uint8_t)q;
            }
    }
}

void lb_dequantize_row_tq2_0(float *y, const void *src, int64_t n) {
    const lb_block_tq2_0 *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = lb_f16_to_f32(b[i].d);
        for (int h = 0; h < QK_K / 128; h++)
            for (int k = 0; k < 4; k++)
                for (int m = 0; m < 32; m++) {
                    const int t = (b[i].qs[32 * h + m] >> 2 * k) & 3;
                    *y++        = (float)(t - 1) * d;
                }
    }
}
