/* The table of storage types: the single place a type is defined.
 * Adding a type is adding a row (plus its block struct and conversions in its own file);
 * the INTn rows are generated from LB_INTN_TYPES (lowbit/tensor.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "formats.h"
#include "lowbit/core.h"
#include "lowbit/tensor.h"

static void f32_to_float(float *dst, const void *src, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
static void f32_from_float(void *dst, const float *src, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
static void f16_to_float(float *dst, const void *src, int64_t n) {
    const uint8_t *s = src; /* may be unaligned in a file */
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = lb_f16_to_f32(h);
    }
}
static void f16_from_float(void *dst, const float *src, int64_t n) {
    uint8_t *d = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = lb_f32_to_f16(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}
static void bf16_to_float(float *dst, const void *src, int64_t n) {
    const uint8_t *s = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = lb_bf16_to_f32(h);
    }
}
static void bf16_from_float(void *dst, const float *src, int64_t n) {
    uint8_t *d = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = lb_f32_to_bf16(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

static const lb_type_traits k_traits[LB_TYPE_COUNT] = {
    [LB_TYPE_F32]  = { .name = "f32", .block_size = 1, .type_size = 4, .bits_per_weight = 32,
                       .to_float = f32_to_float, .from_float = f32_from_float },
    [LB_TYPE_F16]  = { .name = "f16", .block_size = 1, .type_size = 2, .bits_per_weight = 16,
                       .to_float = f16_to_float, .from_float = f16_from_float },
    [LB_TYPE_BF16] = { .name = "bf16", .block_size = 1, .type_size = 2, .bits_per_weight = 16,
                       .to_float = bf16_to_float, .from_float = bf16_from_float },
#define LEGACY(T, X, bpw, quant)                                                                   \
    [T] = { .name = #X, .block_size = QK_LEGACY, .type_size = sizeof(lb_block_##X),                \
            .bits_per_weight = bpw, .is_quantized = true, .to_float = lb_dequantize_row_##X,       \
            .from_float = lb_quantize_row_##X##_ref, .quantize = quant }
    LEGACY(LB_TYPE_Q8_0, q8_0, 8.5f, NULL), /* ggml has no importance-aware Q8_0 either */
    LEGACY(LB_TYPE_Q4_0, q4_0, 4.5f, lb_quantize_q4_0),
    LEGACY(LB_TYPE_Q4_1, q4_1, 5.0f, lb_quantize_q4_1),
    LEGACY(LB_TYPE_Q5_0, q5_0, 5.5f, lb_quantize_q5_0),
    LEGACY(LB_TYPE_Q5_1, q5_1, 6.0f, lb_quantize_q5_1),
#undef LEGACY
    /* k-quants: super-blocks of 256 with sub-block scales; quantize takes an importance matrix */
#define KQUANT(T, X, NAME, bpw)                                                                   \
    [T] = { .name = NAME, .block_size = QK_K, .type_size = sizeof(lb_block_##X),                  \
            .bits_per_weight = bpw, .is_quantized = true, .to_float = lb_dequantize_row_##X,       \
            .from_float = lb_quantize_row_##X##_ref, .quantize = lb_quantize_##X }
    KQUANT(LB_TYPE_Q2_K, q2_k, "q2_K", 2.625f),
    KQUANT(LB_TYPE_Q3_K, q3_k, "q3_K", 3.4375f),
    KQUANT(LB_TYPE_Q4_K, q4_k, "q4_K", 4.5f),
    KQUANT(LB_TYPE_Q5_K, q5_k, "q5_K", 5.5f),
    KQUANT(LB_TYPE_Q6_K, q6_k, "q6_K", 6.5625f),
#undef KQUANT
    /* non-linear 4-bit grid and ternary types; the IQ4 search takes an importance matrix */
    [LB_TYPE_IQ4_NL] = { .name = "iq4_nl", .block_size = QK_LEGACY,
                         .type_size = sizeof(lb_block_iq4_nl), .bits_per_weight = 4.5f,
                         .is_quantized = true, .to_float = lb_dequantize_row_iq4_nl,
                         .from_float = lb_quantize_row_iq4_nl_ref, .quantize = lb_quantize_iq4_nl },
    [LB_TYPE_IQ4_XS] = { .name = "iq4_xs", .block_size = QK_K,
                         .type_size = sizeof(lb_block_iq4_xs), .bits_per_weight = 4.25f,
                         .is_quantized = true, .to_float = lb_dequantize_row_iq4_xs,
                         .from_float = lb_quantize_row_iq4_xs_ref, .quantize = lb_quantize_iq4_xs },
    [LB_TYPE_TQ1_0]  = { .name = "tq1_0", .block_size = QK_K,
                         .type_size = sizeof(lb_block_tq1_0), .bits_per_weight = 1.6875f,
                         .is_quantized = true, .to_float = lb_dequantize_row_tq1_0,
                         .from_float = lb_quantize_row_tq1_0_ref },
    [LB_TYPE_TQ2_0]  = { .name = "tq2_0", .block_size = QK_K,
                         .type_size = sizeof(lb_block_tq2_0), .bits_per_weight = 2.0625f,
                         .is_quantized = true, .to_float = lb_dequantize_row_tq2_0,
                         .from_float = lb_quantize_row_tq2_0_ref },
    /* the i-quants: a point of a fixed grid per 8 (or 4) values; quantizers in iq*_quant.c */
#define IQUANT(T, X, bpw, imp)                                                                     \
    [T] = { .name = #X, .block_size = QK_K, .type_size = sizeof(lb_block_##X),                    \
            .bits_per_weight = bpw, .is_quantized = true, .needs_importance = imp,                \
            .to_float = lb_dequantize_row_##X, .from_float = lb_quantize_row_##X##_ref,           \
            .quantize = lb_quantize_##X }
    IQUANT(LB_TYPE_IQ2_XXS, iq2_xxs, 2.0625f, true),
    IQUANT(LB_TYPE_IQ2_XS, iq2_xs, 2.3125f, true),
    IQUANT(LB_TYPE_IQ2_S, iq2_s, 2.5625f, false),
    IQUANT(LB_TYPE_IQ3_XXS, iq3_xxs, 3.0625f, false),
    IQUANT(LB_TYPE_IQ3_S, iq3_s, 3.4375f, false),
    IQUANT(LB_TYPE_IQ1_S, iq1_s, 1.5625f, true),
    IQUANT(LB_TYPE_IQ1_M, iq1_m, 1.75f, true),
#undef IQUANT
    [LB_TYPE_MXFP4]  = { .name = "mxfp4", .block_size = QK_LEGACY,
                         .type_size = sizeof(lb_block_mxfp4), .bits_per_weight = 4.25f,
                         .is_quantized = true, .to_float = lb_dequantize_row_mxfp4,
                         .from_float = lb_quantize_row_mxfp4_ref },
    /* lowbit's own types (no ggml id): see their files for layouts; the row-scaled ones
     * carry a scale at the start of each row, their bpw excludes it */
    [LB_TYPE_NF4] = { .name = "nf4", .block_size = QK_NF4, .type_size = sizeof(lb_block_nf4),
                      .bits_per_weight = 4.5f, .is_quantized = true,
                      .to_float = lb_dequantize_row_nf4, .from_float = lb_quantize_row_nf4_ref },
#define FP8(T, X, NAME, PT)                                                                        \
    [T] = { .name = NAME, .block_size = 1, .type_size = 1, .bits_per_weight = 8,                   \
            .is_quantized = true, .whole_tensor = PT, .row_size = lb_row_size_fp8,                 \
            .to_float = lb_dequantize_row_fp8_##X, .from_float = lb_quantize_row_fp8_##X##_ref,   \
            .quantize = PT ? lb_quantize_fp8_##X##_pt : NULL }
    FP8(LB_TYPE_FP8_E4M3_PC, e4m3, "fp8_e4m3_pc", false),
    FP8(LB_TYPE_FP8_E4M3_PT, e4m3, "fp8_e4m3_pt", true),
    FP8(LB_TYPE_FP8_E5M2_PC, e5m2, "fp8_e5m2_pc", false),
    FP8(LB_TYPE_FP8_E5M2_PT, e5m2, "fp8_e5m2_pt", true),
#undef FP8
    /* codebooks per row (codebook.c): the levels at the start of each row, bpw without them */
#define KM(T, X, BITS)                                                                             \
    [T] = { .name = #X, .block_size = 1, .type_size = 1, .bits_per_weight = BITS,                  \
            .is_quantized = true, .row_size = lb_row_size_##X, .to_float = lb_dequantize_row_##X,  \
            .from_float = lb_quantize_row_##X##_ref, .quantize = lb_quantize_##X,                  \
            .vec_dot = lb_vec_dot_##X }
    KM(LB_TYPE_KM3, km3, 3),
    KM(LB_TYPE_KM4, km4, 4),
#undef KM
    [LB_TYPE_TERNARY] = { .name = "ternary", .block_size = 1, .type_size = 1,
                          .bits_per_weight = 2, .is_quantized = true, .whole_tensor = true,
                          .row_size = lb_row_size_ternary, .to_float = lb_dequantize_row_ternary,
                          .from_float = lb_quantize_row_ternary_ref,
                          .quantize = lb_quantize_ternary },
    /* kernel layouts (xlayout.c): internal, in memory only */
#define XLAYOUT(T, X, bpw)                                                                         \
    [T] = { .name = #X, .block_size = QK_LEGACY, .type_size = sizeof(lb_block_##X),                \
            .bits_per_weight = bpw, .is_quantized = true, .internal = true,                        \
            .to_float = lb_dequantize_row_##X, .from_float = lb_quantize_row_##X##_ref }
    XLAYOUT(LB_TYPE_X2_0, x2_0, 2.5f),
    XLAYOUT(LB_TYPE_X2_1, x2_1, 3.0f),
    XLAYOUT(LB_TYPE_XNF4, xnf4, 4.5f),
#undef XLAYOUT
    [LB_TYPE_X2_K] = { .name = "x2_k", .block_size = QK_K, .type_size = sizeof(lb_block_x2_k),
                       .bits_per_weight = 2.0625f, .is_quantized = true, .internal = true,
                       .to_float = lb_dequantize_row_x2_k, .from_float = lb_quantize_row_x2_k_ref },
    /* INTn, one row per entry of LB_INTN_TYPES: group types are blocks of GROUP values;
     * per-row (GROUP 0) and per-tensor (GROUP -1) types are row-scaled */
#define INTN_BPW(BITS, AFFINE, GROUP)                                                              \
    ((float)(BITS) + ((GROUP) > 0 ? ((AFFINE) ? 32.0f : 16.0f) / (float)(GROUP) : 0.0f))
#define INTN(U, L, ID, BITS, AFFINE, GROUP)                                                        \
    [LB_TYPE_##U] = { .name = #L, .block_size = (GROUP) > 0 ? (GROUP) : 1,                         \
                      .type_size = (GROUP) > 0 ? LB_INTN_BLOCK_BYTES(BITS, AFFINE, GROUP) : 1,     \
                      .bits_per_weight = INTN_BPW(BITS, AFFINE, GROUP),                            \
                      .is_quantized = true, .whole_tensor = (GROUP) < 0,                           \
                      .row_size = (GROUP) > 0 ? NULL : lb_row_size_##L,                            \
                      .to_float = lb_dequantize_row_##L, .from_float = lb_quantize_row_##L##_ref,  \
                      .quantize = lb_quantize_##L },
    LB_INTN_TYPES(INTN)
#undef INTN
#undef INTN_BPW
};

const lb_type_traits *lb_type_get_traits(lb_type t) {
    if ((int)t < 0 || t >= LB_TYPE_COUNT || !k_traits[t].name) return NULL;
    return &k_traits[t];
}

size_t lb_quantize_rows(lb_type t, void *dst, const float *src, int64_t nrow, int64_t n_per_row,
                        const float *importance) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    if (tr->quantize) return tr->quantize(dst, src, nrow, n_per_row, importance);
    const size_t rs = lb_row_size(t, n_per_row);
    for (int64_t r = 0; r < nrow; r++)
        tr->from_float((uint8_t *)dst + (size_t)r * rs, src + r * n_per_row, n_per_row);
    return (size_t)nrow * rs;
}

double lb_vec_dot_ref(lb_type t, const void *row, const float *x, int64_t n) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    if (tr->vec_dot) return tr->vec_dot(row, x, n);
    float  buf[256];
    double sum = 0;
    if (tr->row_size) { /* row-scaled: the whole row at once */
        float *y = n <= 256 ? buf : malloc((size_t)n * sizeof *y);
        if (!y) return NAN;
        tr->to_float(y, row, n);
        for (int64_t j = 0; j < n; j++) sum += (double)y[j] * x[j];
        if (y != buf) free(y);
        return sum;
    }
    /* dequantize a block at a time, accumulate in double */
    const int64_t bs = tr->block_size > 1 ? tr->block_size : 256;
    for (int64_t i = 0; i < n; i += bs) {
        const int64_t m = n - i < bs ? n - i : bs;
        tr->to_float(buf, (const uint8_t *)row + lb_row_size(t, i), m);
        for (int64_t j = 0; j < m; j++) sum += (double)buf[j] * x[i + j];
    }
    return sum;
}

const char *lb_type_name(lb_type t) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    return tr ? tr->name : "invalid";
}

lb_type lb_type_from_name(const char *name) {
    for (int t = 0; t < LB_TYPE_COUNT; t++)
        if (k_traits[t].name && !k_traits[t].internal && strcasecmp(name, k_traits[t].name) == 0)
            return (lb_type)t;
    return LB_TYPE_INVALID;
}

size_t lb_row_size(lb_type t, int64_t n) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    if (!tr || n < 0) return 0;
    if (tr->row_size) return tr->row_size(n);
    if (n % tr->block_size != 0 || (uint64_t)(n / tr->block_size) > SIZE_MAX / tr->type_size)
        return 0;
    return (size_t)(n / tr->block_size) * tr->type_size;
}

int64_t lb_tensor_nelements(const lb_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

size_t lb_tensor_nbytes(const lb_tensor *t) {
    return lb_row_size(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

const void *lb_tensor_row(const lb_tensor *t, int64_t i) {
    return (const uint8_t *)t->data + (size_t)i * lb_row_size(t->type, t->ne[0]);
}

void lb_tensor_get_row_f32(const lb_tensor *t, int64_t i, float *dst) {
    lb_type_get_traits(t->type)->to_float(dst, lb_tensor_row(t, i), t->ne[0]);
}
