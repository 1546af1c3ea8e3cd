/* Kernel layouts: lowbit-internal block types that exist only in memory. At load, the forward
 * pass transcodes rows of types without kernels of their own to one of these (transcode.c),
 * whose kernels read fewer bytes than the GGUF block type that would also hold the values:
 *   X2_0  { f16 d; u8 qs[8] } per 32 values (2.5 bpw): levels u in 0..3, x = d (u - 2).
 *         INTn's symmetric 2 bits (levels -2..1 as stored) and lowbit's ternary ({-1, 0, 1})
 *         hold their values here.
 *   X2_1  { f16 d; f16 m; u8 qs[8] } (3 bpw): x = d u + m, INTn's affine 2 bits.
 *   X2_K  { f16 d; u8 qs[64] } per 256 values (2.0625 bpw): X2_0's 8 blocks of 32 levels under
 *         one d: TQ1_0 and TQ2_0 hold their values here.
 *   XNF4  IQ4_NL's block { f16 d; u8 qs[16] } with NF4's levels in int8 (lb_nf4_grid8):
 *         x = d grid8[u]. NF4 rows become it with d = absmax / 127 in f16: the int8 grid and
 *         the f16 scale are within absmax / 254 of NF4's values (as Q8_0 would be).
 * The 2-bit order serves the kernels: value 8 s + b sits in bits 2 s .. 2 s + 1 of qs[b], so
 * one shift and mask of 4 bytes gives 4 consecutive values. These types have no user-visible
 * name (traits.c: internal) and are never written to a file; their quantizers below exist for
 * the tests (round to nearest). */
#include <math.h>
#include <string.h>

#include "formats.h"
#include "iq4_common.h"
#include "lowbit/core.h"

/* round(127 * lb_nf4_levels[k]) */
const int8_t lb_nf4_grid8[16] = { -127, -88, -67, -50, -36, -23, -12, 0, 10, 20, 31, 43, 56, 71, 92, 127 };

static int crumb(const uint8_t *qs, int i) {
    return qs[i % 8] >> 2 * (i / 8) & 3;
}

static void put_crumbs(uint8_t *qs, const int *u) {
    memset(qs, 0, 8);
    for (int i = 0; i < 32; i++) qs[i % 8] |= (uint8_t)(u[i] << 2 * (i / 8));
}

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* X2_0 (g = 32) and X2_K (g = 256): blocks { f16 d; u8 qs[g / 4] }, d = the group's largest
 * magnitude, levels -1..1 (+ 2) in 32-value runs of X2_0's order */
static void quantize_x2(uint8_t *y, const float *x, int64_t n, int g) {
    for (int64_t i = 0; i < n / g; i++, x += g, y += 2 + g / 4) {
        float amax = 0.0f;
        for (int j = 0; j < g; j++) amax = fmaxf(amax, fabsf(x[j]));
        const uint16_t h = lb_f16_sat(amax);
        memcpy(y, &h, 2);
        const float d = lb_f16_to_f32(h), id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int s = 0; s < g / 32; s++) {
            int u[32];
            for (int j = 0; j < 32; j++) u[j] = clampi((int)lroundf(x[32 * s + j] * id), -1, 1) + 2;
            put_crumbs(y + 2 + 8 * s, u);
        }
    }
}

static void dequantize_x2(float *y, const uint8_t *b, int64_t n, int g) {
    for (int64_t i = 0; i < n / g; i++, y += g, b += 2 + g / 4) {
        uint16_t h;
        memcpy(&h, b, 2);
        const float d = lb_f16_to_f32(h);
        for (int j = 0; j < g; j++) y[j] = d * (float)(crumb(b + 2 + 8 * (j / 32), j % 32) - 2);
    }
}

void lb_quantize_row_x2_0_ref(void *dst, const float *x, int64_t n) {
    quantize_x2(dst, x, n, QK_LEGACY);
}
void lb_dequantize_row_x2_0(float *y, const void *src, int64_t n) {
    dequantize_x2(y, src, n, QK_LEGACY);
}
void lb_quantize_row_x2_k_ref(void *dst, const float *x, int64_t n) {
    quantize_x2(dst, x, n, QK_K);
}
void lb_dequantize_row_x2_k(float *y, const void *src, int64_t n) {
    dequantize_x2(y, src, n, QK_K);
}

void lb_quantize_row_x2_1_ref(void *dst, const float *x, int64_t n) {
    lb_block_x2_1 *y = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float lo = x[0], hi = x[0];
        for (int j = 1; j < QK_LEGACY; j++) lo = fminf(lo, x[j]), hi = fmaxf(hi, x[j]);
        y[i].d = lb_f16_sat((hi - lo) / 3.0f);
        y[i].m = lb_f16_sat(lo);
        const float d = lb_f16_to_f32(y[i].d), m = lb_f16_to_f32(y[i].m), id = d != 0.0f ? 1.0f / d : 0.0f;
        int         u[32];
        for (int j = 0; j < QK_LEGACY; j++) u[j] = clampi((int)lroundf((x[j] - m) * id), 0, 3);
        put_crumbs(y[i].qs, u);
    }
}

void lb_dequantize_row_x2_1(float *y, const void *src, int64_t n) {
    const lb_block_x2_1 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, y += QK_LEGACY) {
        const float d = lb_f16_to_f32(b[i].d), m = lb_f16_to_f32(b[i].m);
        for (int j = 0; j < QK_LEGACY; j++) y[j] = d * (float)crumb(b[i].qs, j) + m;
    }
}

/* the index of the grid level nearest to v (ties to the lower) */
static int nearest8(float v) {
    int best = 0;
    for (int k = 1; k < 16; k++)
        if (fabsf(v - lb_nf4_grid8[k]) < fabsf(v - lb_nf4_grid8[best])) best = k;
    return best;
}

void lb_quantize_row_xnf4_ref(void *dst, const float *x, int64_t n) {
    lb_block_xnf4 *y = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float amax = 0.0f;
        for (int j = 0; j < QK_LEGACY; j++) amax = fmaxf(amax, fabsf(x[j]));
        y[i].d        = lb_f16_sat(amax / 127.0f);
        const float d = lb_f16_to_f32(y[i].d), id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < QK_LEGACY / 2; j++)
            y[i].qs[j] = (uint8_t)(nearest8(x[j] * id) | nearest8(x[j + 16] * id) << 4);
    }
}

void lb_dequantize_row_xnf4(float *y, const void *src, int64_t n) {
    lb_dequantize_grid4(y, src, n, lb_nf4_grid8);
}
