/* The per-type functions the traits table (traits.c) points to. Naming, per type X:
 *   lb_quantize_row_X_ref(dst, src, n)   round to nearest, as ggml's quantize_row_X_ref
 *   lb_dequantize_row_X(dst, src, n)     exact dequantization, as ggml's dequantize_row_X
 *   lb_quantize_X(dst, src, nrow, n_per_row, importance)   importance-aware (optional)
 * n is a multiple of the type's block size. */
#ifndef LB_FORMATS_H
#define LB_FORMATS_H

#include <stdbool.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blocks.h"
#include "lowbit/core.h"
#include "lowbit/tensor.h"

/* f16 of x, saturated to its largest finite value (NaN stays NaN): the scales the INTn blocks
 * and the kernel layouts store */
static inline uint16_t lb_f16_sat(float x) {
    return lb_f32_to_f16(isnan(x) ? x : fminf(fmaxf(x, -65504.0f), 65504.0f));
}

#define LB_DECLARE_REF(X)                                                                          \
    void lb_quantize_row_##X##_ref(void *dst, const float *src, int64_t n);                        \
    void lb_dequantize_row_##X(float *dst, const void *src, int64_t n)

/* Importance-aware quantization of the 32-value block types (weighted.c): rows without
 * importance go to `ref`; otherwise each block is fit by `fit` with error weights
 * w_j = imp_j * sqrt(sigma^2 + x_j^2), sigma^2 the row's mean square (as ggml does). */
typedef void (*lb_block_fit_fn)(void *block, const float *x, const float *w);
size_t lb_quantize_rows_weighted(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                                 const float *importance, size_t block_bytes,
                                 void (*ref)(void *dst, const float *src, int64_t n),
                                 lb_block_fit_fn fit);

/* importance-aware quantizers of the legacy types (NULL importance: the _ref rows) */
size_t lb_quantize_q4_0(void *dst, const float *src, int64_t nrow, int64_t n_per_row, const float *imp);
size_t lb_quantize_q4_1(void *dst, const float *src, int64_t nrow, int64_t n_per_row, const float *imp);
size_t lb_quantize_q5_0(void *dst, const float *src, int64_t nrow, int64_t n_per_row, const float *imp);
size_t lb_quantize_q5_1(void *dst, const float *src, int64_t nrow, int64_t n_per_row, const float *imp);

LB_DECLARE_REF(q8_0);
LB_DECLARE_REF(q4_0);
LB_DECLARE_REF(q4_1);
LB_DECLARE_REF(q5_0);
LB_DECLARE_REF(q5_1);
LB_DECLARE_REF(q2_k);
LB_DECLARE_REF(q3_k);
LB_DECLARE_REF(q4_k);
LB_DECLARE_REF(q5_k);
LB_DECLARE_REF(q6_k);

/* The k-quants' importance-aware quantizers (as ggml's quantize_q2_K .. quantize_q6_K):
 * importance NULL gives the _ref rows. */
size_t lb_quantize_q2_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
size_t lb_quantize_q3_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
size_t lb_quantize_q4_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
size_t lb_quantize_q5_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);
size_t lb_quantize_q6_k(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance);

/* the non-linear 4-bit grid types (with importance-aware quantizers) and the ternary types */
LB_DECLARE_REF(iq4_nl);
LB_DECLARE_REF(iq4_xs);
LB_DECLARE_REF(tq1_0);
LB_DECLARE_REF(tq2_0);
size_t lb_quantize_iq4_nl(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                          const float *importance);
size_t lb_quantize_iq4_xs(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                          const float *importance);

/* the i-quants (iq1.c .. iq3.c, their quantizers in iq_quant.c and iq1_quant.c) and MXFP4.
 * The _ref rows are the quantizers without an importance matrix (ggml's fallback weights;
 * llama.cpp refuses IQ1 and IQ2_XXS/XS without one, see the needs_importance trait). */
#define LB_DECLARE_IQ(X)                                                                           \
    LB_DECLARE_REF(X);                                                                             \
    size_t lb_quantize_##X(void *dst, const float *src, int64_t nrow, int64_t n_per_row,           \
                           const float *importance)
LB_DECLARE_IQ(iq2_xxs);
LB_DECLARE_IQ(iq2_xs);
LB_DECLARE_IQ(iq2_s);
LB_DECLARE_IQ(iq3_xxs);
LB_DECLARE_IQ(iq3_s);
LB_DECLARE_IQ(iq1_s);
LB_DECLARE_IQ(iq1_m);
#undef LB_DECLARE_IQ
LB_DECLARE_REF(mxfp4);
/* MXFP4's E2M1 values doubled (0 .. 12, sign in bit 3), and its E8M0 scale halved: 2^(e - 128)
 * (a subnormal for e < 2), as ggml keeps them */
extern const int8_t lb_mxfp4_values[16];
static inline float lb_e8m0_half(uint8_t e) {
    const uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float          f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ---- lowbit's own types (no ggml id). Row-scaled types add, per type X:
 *   lb_row_size_X(n)                     bytes of a row of n values
 *   lb_quantize_X(dst, src, nrow, ...)   the whole-tensor quantizer (importance ignored)
 * and their _ref / dequantize functions take whole rows. ---- */

/* INTn (intn.c): one generic codec, parameterized by this descriptor. */
typedef struct lb_intn_desc {
    int32_t bits;   /* 2, 3, 4, 5, 6 or 8 */
    bool    affine; /* levels 0 .. 2^bits-1 plus a minimum; else symmetric signed levels */
    int32_t group;  /* > 0: values per block; 0: one scale per row; -1: one per tensor */
} lb_intn_desc;

/* Reading an INTn level stream: n-bit fields, least significant first; symmetric levels are
 * n-bit two's complement. Start with (lb_intn_reader){ .q = packed bytes }. */
typedef struct lb_intn_reader {
    const uint8_t *q;
    uint32_t       acc;
    int            nb;
} lb_intn_reader;
static inline int32_t lb_intn_next(const lb_intn_desc *d, lb_intn_reader *r) {
    const uint32_t mask = (1u << d->bits) - 1, sign = 1u << (d->bits - 1);
    for (; r->nb < d->bits; r->nb += 8) r->acc |= (uint32_t)*r->q++ << r->nb;
    const uint32_t c = r->acc & mask;
    r->acc >>= d->bits;
    r->nb -= d->bits;
    return d->affine || c < sign ? (int32_t)c : (int32_t)c - (int32_t)(2 * sign);
}

/* The descriptor of t; false when t is not an INTn type. */
bool    lb_intn_desc_of(lb_type t, lb_intn_desc *out);
/* The INTn type of a descriptor; LB_TYPE_INVALID when there is none. */
lb_type lb_intn_type(int32_t bits, bool affine, int32_t group);
/* transcode.c: an INTn group type's rows as the block type holding the same values
 * (X2_0, X2_1, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0; groups of 256 as X2_K, Q4_K or Q5_K where that
 * runs faster; TQ1_0 and TQ2_0 as X2_K; symmetric per-row and per-tensor scales as INT8_PC),
 * for its kernels; LB_TYPE_INVALID when none does (affine 6/8
 * bits, affine per-row and per-tensor scales). lb_transcode_approx_target: where activations
 * are quantized (8-bit) anyway, a target within the activations' error for types no block
 * type holds (NF4 -> XNF4, ternary -> X2_0) or holds only at 8 bits with f32 activations
 * (per-row and per-tensor scales -> the block type of their width, scales in f16; W8A8
 * models keep INT8_PC, weights.c);
 * LB_TYPE_INVALID for the others. lb_transcode_row writes one row of n as `to`: a target
 * either function gives, or another 32-value block type with room for the levels (Q4_0 for
 * 2 bits). */
lb_type lb_transcode_target(lb_type t);
lb_type lb_transcode_approx_target(lb_type t);
void    lb_transcode_row(lb_type from, lb_type to, void *dst, const void *src, int64_t n);
/* Bytes of one block of a group type. */
#define LB_INTN_BLOCK_BYTES(bits, affine, group) (((affine) ? 4 : 2) + (group) * (bits) / 8)

#define LB_INTN_DECLARE(U, L, ID, BITS, AFFINE, GROUP)                                            \
    LB_DECLARE_REF(L);                                                                             \
    size_t lb_quantize_##L(void *dst, const float *src, int64_t nrow, int64_t n_per_row,           \
                           const float *importance);                                               \
    size_t lb_row_size_##L(int64_t n);
LB_INTN_TYPES(LB_INTN_DECLARE)
#undef LB_INTN_DECLARE

/* NF4 (nf4.c): bitsandbytes' 16 normal-float levels, blocks of 64 with an f32 absmax. */
LB_DECLARE_REF(nf4);
extern const float lb_nf4_levels[16];

/* Kernel layouts (xlayout.c, blocks.h): X2_0, X2_1, X2_K, XNF4. lb_nf4_grid8: NF4's levels times
 * 127, rounded (the int8 grid XNF4's kernels multiply). */
LB_DECLARE_REF(x2_0);
LB_DECLARE_REF(x2_1);
LB_DECLARE_REF(xnf4);
LB_DECLARE_REF(x2_k);
extern const int8_t lb_nf4_grid8[16];

/* FP8 (fp8.c): E4M3 ("fn": no infinities, max 448) and E5M2 (max 57344) codes, converted
 * saturating with round to nearest even; rows carry an f32 scale (per row or per tensor). */
uint8_t lb_f32_to_fp8_e4m3(float x);
float   lb_fp8_e4m3_to_f32(uint8_t c);
uint8_t lb_f32_to_fp8_e5m2(float x);
float   lb_fp8_e5m2_to_f32(uint8_t c);
size_t  lb_row_size_fp8(int64_t n);
LB_DECLARE_REF(fp8_e4m3);
LB_DECLARE_REF(fp8_e5m2);
size_t lb_quantize_fp8_e4m3_pt(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                               const float *importance);
size_t lb_quantize_fp8_e5m2_pt(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                               const float *importance);

/* KM3, KM4 (codebook.c): a k-means codebook of 8 or 16 f16 levels per row, 3- or 4-bit
 * indices; importance-weighted (SqueezeLLM). */
LB_DECLARE_REF(km3);
LB_DECLARE_REF(km4);
size_t lb_row_size_km(int K, int64_t n);
size_t lb_row_size_km3(int64_t n);
size_t lb_row_size_km4(int64_t n);
size_t lb_quantize_km3(void *dst, const float *src, int64_t nrow, int64_t n_per_row, const float *importance);
size_t lb_quantize_km4(void *dst, const float *src, int64_t nrow, int64_t n_per_row, const float *importance);
void   lb_km_levels(int K, const void *row, float *levels);
void   lb_km_set_index(int K, void *row, int64_t j, unsigned level); /* value j's level index */
double lb_km_dot(int K, const void *row, const float *x, int64_t n);
double lb_vec_dot_km3(const void *row, const float *x, int64_t n);
double lb_vec_dot_km4(const void *row, const float *x, int64_t n);

/* Ternary (ternary.c): BitNet b1.58's absmean scale over the whole tensor, 2 bits a value. */
LB_DECLARE_REF(ternary);
size_t lb_row_size_ternary(int64_t n);
size_t lb_quantize_ternary(void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                           const float *importance);

#endif
