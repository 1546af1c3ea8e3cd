/* The non-linear 4-bit grid shared by IQ4_NL and IQ4_XS, and the scale search that both use
 * (ggml's quantize_row_iq4_nl_impl with 7 tries on each side). A value is stored as a 4-bit
 * index into lb_iq4nl_grid; nibble j of a 16-byte group holds value j (low) and j + 16 (high). */
#ifndef LB_FORMATS_IQ4_COMMON_H
#define LB_FORMATS_IQ4_COMMON_H

#include <stdint.h>

/* the 16 levels (ggml's kvalues_iq4nl): denser near zero, where weights are */
extern const int8_t lb_iq4nl_grid[16];

/* Dequantize n values of 32-blocks { f16 d; u8 qs[16] } whose nibbles index a 16-level int8
 * grid: x = d * grid[nibble] (IQ4_NL with lb_iq4nl_grid, the XNF4 layout with lb_nf4_grid8). */
void lb_dequantize_grid4(float *y, const void *src, int64_t n, const int8_t grid[16]);

/* Quantize one super-block of n values, n = 32 (IQ4_NL: one block, its scale stored as f16 in
 * *d) or n = 256 (IQ4_XS: 8 blocks of 32 whose scales are 6-bit multiples of *d, written to
 * scales_h / scales_l; both may be NULL when n = 32). importance (n weights) may be NULL:
 * the error is then weighted by x^2, as ggml does without an importance matrix. */
void lb_iq4_quantize_superblock(const float *x, int n, const float *importance, uint16_t *d,
                                uint8_t *qs, uint16_t *scales_h, uint8_t *scales_l);

#endif
