/* Quantized dot products: rows of a GGUF block type times activations quantized on the fly
 * to 8-bit blocks, as ggml pairs its types: the 32-blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
 * IQ4_NL) with lb_block_q8a, the 256-super-blocks (Q2_K .. Q6_K, IQ4_XS) with lb_block_q8k;
 * F16, BF16 and lowbit's INT8_PC rows (one f32 scale, then int8) with f32 activations as
 * they are; in FAST mode BF16 rows may take activations rounded to bf16 instead, as ggml pairs
 * them (the `fast` kernels: AVX512_BF16's vdpbf16ps, and the scalar twin). W8A8's int8 x
 * int8 products (per-token activation scales): lb_gemm_i8_fn below.
 * Every kernel has a scalar twin (qdot_ref.c) and SIMD versions (qdot_avx2.c, qdot_avx512.c,
 * qdot_avx512bf16.c) chosen once from the CPU's features (qdot_dispatch.c); LB_FORCE_REF=1 forces
 * the scalar, LB_MAX_ISA=NAME caps the tier.
 * Invariants: integer partial sums are exact (no saturation for any stored level); the result
 * for one (row, column) pair is computed by the same operations whatever the other rows and
 * columns computed with it, so it never depends on the thread count or the tiling; one
 * column (generation) and several (a batch) accumulate in different orders, so they may
 * differ in the last bits. Kernels never allocate. */
#ifndef LB_KERNELS_QDOT_H
#define LB_KERNELS_QDOT_H

#include <stddef.h>
#include <stdint.h>

#include "lowbit/tensor.h"

#define LB_QK_A 32  /* values per lb_block_q8a */
#define LB_QK_KA 256 /* values per lb_block_q8k */

/* 32 activations: x ~ d * qs, qs in -127..127; sum = sum(qs) (for levels stored with an
 * offset: Q4_0, Q5_0), s = d * sum (for the affine types) */
typedef struct {
    float   d, s;
    int32_t sum;
    int8_t  qs[LB_QK_A];
} lb_block_q8a;

/* 256 activations: x ~ d * qs, qs in -127..127; bsums[g] = sum of qs[16 g .. 16 g + 15] */
typedef struct {
    float   d;
    int16_t bsums[LB_QK_KA / 16];
    int8_t  qs[LB_QK_KA];
} lb_block_q8k;

typedef enum lb_act_kind {
    LB_ACT_F32 = 0, /* activations used as they are (F16, BF16 rows) */
    LB_ACT_Q8A = 1,
    LB_ACT_Q8K = 2,
    LB_ACT_I8  = 3, /* W8A8: a row of int8 with one f32 scale (lb_gemm_i8_fn); quantized by
                       the caller (actq.c), never on the fly */
    LB_ACT_BF16 = 4, /* n bf16 values, each rounded to nearest even (lb_f32_to_bf16) */
    LB_ACT_COUNT,
} lb_act_kind;

typedef enum lb_isa {
    LB_ISA_REF       = 0, /* scalar C */
    LB_ISA_AVX2      = 1, /* AVX2 + FMA + F16C */
    LB_ISA_AVX512VNNI = 2, /* the AVX2 kernels with AVX-512 VNNI dot products (256-bit), and
                              512-bit packed kernels for prompts (qdot_x86_512.h) */
    LB_ISA_AVX512BF16 = 3, /* AVX512_BF16's vdpbf16ps for BF16 rows on bf16 activations; its
                              table holds only that, the rest comes from the tiers below */
    LB_ISA_COUNT,
} lb_isa;

/* out[c * ldo + r] = dot(row r of w, activation row c) for r < nr, c < nc. w holds nr rows of
 * w_stride bytes, a holds nc activation rows of a_stride bytes, n values per row (a multiple
 * of the type's block size). */
typedef void (*lb_gemm_q_fn)(int64_t n, const void *w, size_t w_stride, int64_t nr,
                             const void *a, size_t a_stride, int64_t nc, float *out, int64_t ldo);
/* Quantize n activations (a multiple of the block) into dst. */
typedef void (*lb_quantize_act_fn)(void *dst, const float *x, int64_t n);

/* The same product with the first 8 ng rows packed (lb_pack_rows) and nrem more rows in the
 * tensor's layout (row stride ws) after them: out[c * ldo + r], r < 8 ng + nrem. Results are
 * bit-identical to gemm's for one column. */
typedef void (*lb_gemm_packed_fn)(int64_t n, const void *packed, int64_t ng, const void *rem,
                                  size_t ws, int64_t nrem, const void *a, size_t as, int64_t nc,
                                  float *out, int64_t ldo);

typedef struct lb_qdot {
    lb_act_kind       act;
    lb_gemm_q_fn      gemm;
    lb_gemm_packed_fn gemm_packed; /* NULL: the type has no packed layout here */
    bool              any_t;       /* F32 activations: gemm is fast for any number of columns
                                      (else BLAS beyond LB_MATMUL_DIRECT_T of them); other
                                      kinds are used for any number */
} lb_qdot;

/* W8A8 (SmoothQuant, LLM.int8): int8 x int8 products with int32 sums. Weight rows are
 * lowbit's INT8_PC rows { f32 d; int8 q[n] } (x = d q), activation rows the same layout
 * (lb_act_row_size(LB_ACT_I8, n) bytes apart) with levels in -127..127 (weights may hold
 * -128). out[c * ldo + r] = (d_w[r] * d_a[c]) * (float)sum_j q_w[r][j] q_a[c][j]: the sum is
 * exact (n <= LB_I8_MAX_N), so every ISA and every tiling gives the same bits. */
#define LB_I8_MAX_N 131072 /* 131072 * 128 * 127 < 2^31 */
typedef lb_gemm_q_fn lb_gemm_i8_fn;
/* q[j] = x[j] * id rounded half away from zero (roundf), clamped to -127..127 (NaN: -127):
 * the levels of actq.c's quantize-dequantize, byte for byte on every ISA. */
typedef void (*lb_quantize_i8_fn)(int8_t *q, const float *x, int64_t n, float id);

/* Gram products (X^T Y of calibration activations, quant/gram.c) on activations packed in
 * token pairs: panels of 16 columns, each ceil(T/2) pairs of 16 uint32 lanes (lane l of pair
 * p: the bf16 of token 2p's column 16 q + l in the low half, of token 2p + 1's in the high
 * half; zeros past T and past the last column). out[r * ldo + c] = the sum over the np pairs
 * of row i0 + r of P times column j0 + c of Q, for r < nr, c < nc; i0 a multiple of 8, j0 of
 * 16. Each (r, c) is one chain in pair order, the high halves' product added first, then the
 * low halves' (as vdpbf16ps adds them), each product exact: every ISA and every tiling gives
 * the scalar twin's bits, but for subnormals, which vdpbf16ps flushes to zero. */
#define LB_GRAM_PANEL 16
typedef void (*lb_gram_pairs_fn)(int64_t np, const uint32_t *P, int64_t i0, int64_t nr, const uint32_t *Q,
                                 int64_t j0, int64_t nc, float *out, int64_t ldo);

/* Packed weights (qdot_pack.c): groups of 8 rows of Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, XNF4, X2_0,
 * X2_1, X2_K, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K or IQ4_XS with their
 * blocks interleaved, read by gemm_packed. lb_pack_size: bytes for the nr / 8 whole groups
 * of nr rows of n values (0 for other types); lb_pack_rows writes them from the rows. */
size_t lb_pack_block_bytes(lb_type t);
/* Q6_K, Q3_K, Q2_K, IQ4_XS: one super-block of 8 rows (rows[r]: row r's block) in the packed layout */
#define LB_Q6_K_PACKED 1680
#define LB_Q3_K_PACKED 912
#define LB_Q2_K_PACKED 672
#define LB_IQ4_XS_PACKED 1104
void   lb_pack_q6_k_block(uint8_t *dst, const uint8_t *const rows[8]);
void   lb_pack_q3_k_block(uint8_t *dst, const uint8_t *const rows[8]);
void   lb_pack_q2_k_block(uint8_t *dst, const uint8_t *const rows[8]);
void   lb_pack_iq4_xs_block(uint8_t *dst, const uint8_t *const rows[8]);
size_t lb_pack_size(lb_type t, int64_t n, int64_t nr);
void   lb_pack_rows(lb_type t, void *dst, const void *src, int64_t n, int64_t nr);

/* The kernel of type t on this CPU (LB_FORCE_REF=1: the scalar one); NULL when t has none.
 * lb_qdot_get_fast: the kernel for FAST mode, where activations are rounded anyway: the best
 * ISA's `fast` kernel (bf16 activations for BF16 rows) when that SIMD ISA has one, else the
 * same as lb_qdot_get (the scalar table's `fast` kernels are the SIMD ones' twins, for tests:
 * a CPU without vdpbf16ps keeps f32 activations). */
const lb_qdot     *lb_qdot_get(lb_type t);
const lb_qdot     *lb_qdot_get_fast(lb_type t);
lb_quantize_act_fn lb_quantize_act_get(lb_act_kind k);
lb_isa             lb_qdot_isa(void); /* the best ISA this CPU runs, up to LB_MAX_ISA (LB_FORCE_REF:
                                         scalar) */
bool               lb_isa_runs(lb_isa isa); /* this build has it and the CPU runs it */
const char        *lb_isa_name(lb_isa isa);

/* One ISA's table (for tests and benchmarks): NULL when this build or CPU lacks it or the
 * type has no kernel there. */
const lb_qdot     *lb_qdot_get_isa(lb_type t, lb_isa isa);
const lb_qdot     *lb_qdot_get_fast_isa(lb_type t, lb_isa isa); /* the table's `fast` kernel only */
lb_quantize_act_fn lb_quantize_act_get_isa(lb_act_kind k, lb_isa isa);

/* The W8A8 kernels on this CPU (LB_FORCE_REF=1: scalar), and one ISA's (NULL: absent). */
lb_gemm_i8_fn     lb_gemm_i8_get(void);
lb_quantize_i8_fn lb_quantize_i8_get(void);
lb_gemm_i8_fn     lb_gemm_i8_get_isa(lb_isa isa);
lb_quantize_i8_fn lb_quantize_i8_get_isa(lb_isa isa);

/* The Gram kernel of the best SIMD ISA here (NULL without one: the scalar twin is for tests,
 * and the Gram products take sgemm then), and one ISA's (NULL: absent). */
lb_gram_pairs_fn lb_gram_pairs_get(void);
lb_gram_pairs_fn lb_gram_pairs_get_isa(lb_isa isa);

/* Bytes of n activations of kind k (n a multiple of its block; any n for LB_ACT_I8: the
 * f32 scale, n int8, padded to 4 bytes; for LB_ACT_BF16: 2 n). */
size_t lb_act_row_size(lb_act_kind k, int64_t n);

/* The conversion of t's rows to f32: the traits table's, or a SIMD one giving the same values. */
lb_to_float_fn lb_qdot_to_float(lb_type t);

/* The types with kernels, their function-name part and the activations they take: every
 * ISA's table is filled from this one list (X(type, name, act) -> gemm_<name>...). */
#define LB_QDOT_TYPES(X)                                                                           \
    X(LB_TYPE_Q8_0, q8_0, LB_ACT_Q8A)     X(LB_TYPE_Q4_0, q4_0, LB_ACT_Q8A)                          \
    X(LB_TYPE_Q4_1, q4_1, LB_ACT_Q8A)     X(LB_TYPE_Q5_0, q5_0, LB_ACT_Q8A)                          \
    X(LB_TYPE_Q5_1, q5_1, LB_ACT_Q8A)     X(LB_TYPE_IQ4_NL, iq4_nl, LB_ACT_Q8A)                      \
    X(LB_TYPE_Q2_K, q2_k, LB_ACT_Q8K)     X(LB_TYPE_Q3_K, q3_k, LB_ACT_Q8K)                          \
    X(LB_TYPE_Q4_K, q4_k, LB_ACT_Q8K)     X(LB_TYPE_Q5_K, q5_k, LB_ACT_Q8K)                          \
    X(LB_TYPE_Q6_K, q6_k, LB_ACT_Q8K)     X(LB_TYPE_IQ4_XS, iq4_xs, LB_ACT_Q8K)                      \
    X(LB_TYPE_IQ2_XXS, iq2_xxs, LB_ACT_Q8K) X(LB_TYPE_IQ2_XS, iq2_xs, LB_ACT_Q8K)                    \
    X(LB_TYPE_IQ2_S, iq2_s, LB_ACT_Q8K)   X(LB_TYPE_IQ3_XXS, iq3_xxs, LB_ACT_Q8K)                    \
    X(LB_TYPE_IQ3_S, iq3_s, LB_ACT_Q8K)   X(LB_TYPE_IQ1_S, iq1_s, LB_ACT_Q8K)                        \
    X(LB_TYPE_IQ1_M, iq1_m, LB_ACT_Q8K)   X(LB_TYPE_MXFP4, mxfp4, LB_ACT_Q8A)                        \
    X(LB_TYPE_F16, f16, LB_ACT_F32)       X(LB_TYPE_BF16, bf16, LB_ACT_F32)                          \
    X(LB_TYPE_INT8_PC, int8_pc, LB_ACT_F32)                                                         \
    X(LB_TYPE_X2_0, x2_0, LB_ACT_Q8A)     X(LB_TYPE_X2_1, x2_1, LB_ACT_Q8A)                          \
    X(LB_TYPE_XNF4, xnf4, LB_ACT_Q8A)     X(LB_TYPE_X2_K, x2_k, LB_ACT_Q8A)

/* ---- per-ISA tables, filled by qdot_ref.c, qdot_avx2.c, qdot_avx512.c, qdot_avx512bf16.c ---- */
typedef struct lb_qdot_table {
    lb_qdot            kern[LB_TYPE_COUNT]; /* gemm NULL: no kernel */
    lb_qdot            fast[LB_TYPE_COUNT]; /* FAST mode's kernels on rounded activations where
                                               kern's take f32 (BF16), or gemm NULL */
    lb_quantize_act_fn quantize_act[LB_ACT_COUNT]; /* by lb_act_kind; [LB_ACT_F32], [LB_ACT_I8] NULL */
    lb_gemm_i8_fn      gemm_i8;             /* W8A8 */
    lb_quantize_i8_fn  quantize_i8;
    lb_gram_pairs_fn   gram_pairs;          /* Gram products on token pairs */
    lb_to_float_fn     to_float[LB_TYPE_COUNT]; /* faster conversions (same values), or NULL */
} lb_qdot_table;

void lb_qdot_fill_ref(lb_qdot_table *t);
void lb_qdot_fill_avx2(lb_qdot_table *t);   /* leaves t empty when not built for x86 */
void lb_qdot_fill_avx512(lb_qdot_table *t); /* likewise */
void lb_qdot_fill_avx512bf16(lb_qdot_table *t); /* likewise */

/* Round to nearest, ties to even, for |x| < 2^22 (the FPU does the rounding): the same
 * result as _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT), so every ISA quantizes
 * activations to the same bytes. */
static inline float lb_round_even(float x) {
    return (x + 12582912.f) - 12582912.f;
}

#endif
