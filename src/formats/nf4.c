/* NF4: bitsandbytes' 4-bit normal float. Blocks of 64 values { f32 absmax; u8 qs[32] }
 * (4.5 bpw): each value is stored as the index (0..15) of the NF4 level nearest to
 * x / absmax (ties to the lower level, as bitsandbytes' decision tree), two indices a byte,
 * the even value in the high nibble as bitsandbytes packs them; value = level * absmax.
 * The absmax is read and written with memcpy (no alignment assumed). */
#include <math.h>
#include <string.h>

#include "formats.h"

/* bitsandbytes' NF4 code book (functional.py, get_4bit_type("nf4")), ascending */
const float lb_nf4_levels[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

static unsigned nearest_level(float v) {
    unsigned best = 0;
    float    bd   = fabsf(v - lb_nf4_levels[0]);
    for (unsigned k = 1; k < 16; k++) {
        const float e = fabsf(v - lb_nf4_levels[k]);
        if (e < bd) {
            bd   = e;
            best = k;
        }
    }
    return best;
}

void lb_quantize_row_nf4_ref(void *dst, const float *x, int64_t n) {
    lb_block_nf4 *y = dst;
    for (int64_t i = 0; i < n / QK_NF4; i++, x += QK_NF4) {
        float amax = 0.0f;
        for (int j = 0; j < QK_NF4; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
        memcpy(&y[i].d, &amax, sizeof amax);
        for (int j = 0; j < QK_NF4 / 2; j++)
            y[i].qs[j] = (uint8_t)(nearest_level(x[2 * j] * id) << 4 | nearest_level(x[2 * j + 1] * id));
    }
}

void lb_dequantize_row_nf4(float *y, const void *src, int64_t n) {
    const lb_block_nf4 *b = src;
    for (int64_t i = 0; i < n / QK_NF4; i++, y += QK_NF4) {
        float d;
        memcpy(&d, &b[i].d, sizeof d);
        for (int j = 0; j < QK_NF4 / 2; j++) {
            y[2 * j]     = lb_nf4_levels[b[i].qs[j] >> 4] * d;
            y[2 * j + 1] = lb_nf4_levels[b[i].qs[j] & 0x0f] * d;
        }
    }
}
