/* The scale search of IQ4_NL and IQ4_XS. Per block of 32: a first scale maps the value of
 * largest magnitude to 127, then 15 scales that map it to -127 +- 7 are tried, and the one
 * with the best weighted least-squares fit is kept. IQ4_XS then rounds its 8 block scales to
 * multiples of one super-block scale. Float operations follow ggml's order exactly, so the
 * chosen indices and scales are bit-identical to llama-quantize's. */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "iq4_common.h"
#include "lowbit/core.h"

const int8_t lb_iq4nl_grid[16] = { -127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113 };

#define IQ4_BLOCK     32
#define IQ4_MAX_SUPER 256
#define IQ4_NTRY      7       /* scales tried on each side of the first guess */
#define IQ4_EPS       1e-15f  /* a block whose largest magnitude is below this is all zero */

/* Index of the grid level nearest to x; a tie goes to the upper level. */
static int nearest_level(float x) {
    if (x <= lb_iq4nl_grid[0]) return 0;
    if (x >= lb_iq4nl_grid[15]) return 15;
    int lo = 0, hi = 15; /* invariant: grid[lo] <= x < grid[hi] */
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < lb_iq4nl_grid[mid]) hi = mid;
        else lo = mid;
    }
    return x - lb_iq4nl_grid[lo] < lb_iq4nl_grid[hi] - x ? lo : hi;
}

/* Round to nearest, ties to even (as ggml's nearest_int for |x| < 2^22). */
static int round_even(float x) {
    return (int)lrintf(x);
}

/* Snap the block x to the grid at inverse scale id; return the sums of the weighted
 * least-squares fit x ~ d * q: sum w q x and sum w q^2 (accumulated in this order). */
static void fit(const float *x, const float *w, float id, float *sumqx, float *sumq2) {
    float sqx = 0, sq2 = 0;
    for (int j = 0; j < IQ4_BLOCK; j++) {
        const float q = lb_iq4nl_grid[nearest_level(id * x[j])];
        sqx += w[j] * q * x[j];
        sq2 += w[j] * q * q;
    }
    *sumqx = sqx;
    *sumq2 = sq2;
}

/* The best scale of one block of 32 under weights w; 0 for an all-zero block. */
static float block_scale(const float *x, const float *w) {
    float amax = 0, max = 0; /* largest magnitude, and that value with its sign */
    for (int j = 0; j < IQ4_BLOCK; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max  = x[j];
        }
    if (amax < IQ4_EPS) return 0;
    /* first guess: d = max / 127 (max maps to 127, snapped to the grid's top, 113), then the
     * least-squares scale for the levels it picks */
    float d = -max / lb_iq4nl_grid[0];
    float sumqx, sumq2;
    fit(x, w, 1 / d, &sumqx, &sumq2);
    d          = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx; /* the error reduction of the fit; larger is better */
    for (int t = -IQ4_NTRY; t <= IQ4_NTRY; t++) {
        /* negative scales: max maps to -127 + t, near the grid's other (longer) end */
        fit(x, w, (float)(t + lb_iq4nl_grid[0]) / max, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d    = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

/* Pack 4-bit indices: byte j of each group of 16 holds value j and value j + 16. */
static void pack_nibbles(uint8_t *qs, const uint8_t *L, int n) {
    for (int b = 0; b < n / IQ4_BLOCK; b++)
        for (int j = 0; j < IQ4_BLOCK / 2; j++)
            qs[16 * b + j] = (uint8_t)(L[32 * b + j] | L[32 * b + 16 + j] << 4);
}

static void snap_block(uint8_t *L, const float *x, float id) {
    for (int j = 0; j < IQ4_BLOCK; j++) L[j] = (uint8_t)nearest_level(id * x[j]);
}

void lb_iq4_quantize_superblock(const float *x, int n, const float *importance, uint16_t *dh,
                                uint8_t *qs, uint16_t *scales_h, uint8_t *scales_l) {
    const int nb = n / IQ4_BLOCK;
    float     scales[IQ4_MAX_SUPER / IQ4_BLOCK], w[IQ4_BLOCK];
    uint8_t   L[IQ4_MAX_SUPER];

    /* with an importance matrix, weight = importance * sqrt(2 mean(x^2) + x^2) */
    float sigma2 = 0;
    for (int j = 0; j < n; j++) sigma2 += x[j] * x[j];
    sigma2 *= 2.0f / (float)n;

    float max_scale = 0, amax_scale = 0; /* the block scale of largest magnitude */
    for (int b = 0; b < nb; b++) {
        const float *xb = x + b * IQ4_BLOCK;
        for (int j = 0; j < IQ4_BLOCK; j++)
            w[j] = importance ? importance[b * IQ4_BLOCK + j] * sqrtf(sigma2 + xb[j] * xb[j])
                              : xb[j] * xb[j];
        scales[b] = block_scale(xb, w);
        if (fabsf(scales[b]) > amax_scale) {
            amax_scale = fabsf(scales[b]);
            max_scale  = scales[b];
        }
    }

    if (nb == 1) { /* IQ4_NL: the scale is stored as is; snap with it */
        *dh            = lb_f32_to_f16(scales[0]);
        const float id = scales[0] != 0.0f ? 1 / scales[0] : 0.0f;
        snap_block(L, x, id);
    } else { /* IQ4_XS: block scale = d * l, l in [-32, 31] stored as l + 32 in 6 bits */
        const float d  = -max_scale / 32;
        const float id = d != 0.0f ? 1 / d : 0.0f;
        *dh            = lb_f32_to_f16(d);
        *scales_h      = 0;
        memset(scales_l, 0, (size_t)nb / 2);
        for (int b = 0; b < nb; b++) {
            int l = round_even(id * scales[b]);
            l     = l < -32 ? -32 : l > 31 ? 31 : l;
            const float dl = d * (float)l;
            snap_block(L + b * IQ4_BLOCK, x + b * IQ4_BLOCK, dl != 0.0f ? 1 / dl : 0.0f);
            const unsigned u = (unsigned)(l + 32);
            scales_l[b / 2] |= (uint8_t)((u & 0xf) << 4 * (b % 2));
            *scales_h |= (uint16_t)((u >> 4) << 2 * b);
        }
    }
    pack_nibbles(qs, L, n);
}

void lb_dequantize_grid4(float *y, const void *src, int64_t n, const int8_t grid[16]) {
    const lb_block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = lb_f16_to_f32(b[i].d);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            y[j]      = d * (float)grid[b[i].qs[j] & 0xF];
            y[j + 16] = d * (float)grid[b[i].qs[j] >> 4];
        }
    }
}
