/* Q8_0: blocks of 32 int8 values with one f16 scale d = max|x| / 127 (8.5 bpw). */
#include <math.h>

#include "formats.h"
#include "lowbit/core.h"

void lb_quantize_row_q8_0_ref(void *dst, const float *x, int64_t n) {
    lb_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float amax = 0.0f;
        for (int j = 0; j < QK_LEGACY; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d  = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = lb_f32_to_f16(d);
        for (int j = 0; j < QK_LEGACY; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void lb_dequantize_row_q8_0(float *y, const void *src, int64_t n) {
    const lb_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = lb_f16_to_f32(b[i].d);
        for (int j = 0; j < QK_LEGACY; j++) y[j] = (float)b[i].qs[j] * d;
    }
}
