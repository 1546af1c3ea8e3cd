/* Block layouts of the GGUF quantized types, bit-compatible with ggml's (ggml-common.h),
 * then lowbit's own block types (INTn's are computed, in intn.c).
 * Scales are IEEE half floats stored as uint16_t. Each struct is pinned by a static
 * assert; the comment gives the bits per weight. */
#ifndef LB_FORMATS_BLOCKS_H
#define LB_FORMATS_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#define QK_LEGACY 32  /* values per block of the legacy types and IQ4_NL */
#define QK_K      256 /* values per super-block of the k-quants, IQ4_XS, TQ*_0 */
#define K_SCALE_SIZE 12

typedef struct { uint16_t d; int8_t qs[QK_LEGACY]; } lb_block_q8_0;                 /* 8.5 bpw */
static_assert(sizeof(lb_block_q8_0) == 2 + QK_LEGACY, "wrong q8_0 block size");

typedef struct { uint16_t d; uint8_t qs[QK_LEGACY / 2]; } lb_block_q4_0;            /* 4.5 bpw */
static_assert(sizeof(lb_block_q4_0) == 2 + QK_LEGACY / 2, "wrong q4_0 block size");

typedef struct { uint16_t d, m; uint8_t qs[QK_LEGACY / 2]; } lb_block_q4_1;         /* 5.0 bpw */
static_assert(sizeof(lb_block_q4_1) == 4 + QK_LEGACY / 2, "wrong q4_1 block size");

typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK_LEGACY / 2]; } lb_block_q5_0;   /* 5.5 bpw */
static_assert(sizeof(lb_block_q5_0) == 2 + 4 + QK_LEGACY / 2, "wrong q5_0 block size");

typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK_LEGACY / 2]; } lb_block_q5_1; /* 6.0 bpw */
static_assert(sizeof(lb_block_q5_1) == 4 + 4 + QK_LEGACY / 2, "wrong q5_1 block size");

typedef struct { uint16_t d; uint8_t qs[QK_LEGACY / 2]; } lb_block_iq4_nl;          /* 4.5 bpw */
static_assert(sizeof(lb_block_iq4_nl) == 2 + QK_LEGACY / 2, "wrong iq4_nl block size");

/* 2.625 bpw: 16 groups of 16, 4-bit scale and 4-bit min per group, super-block d and dmin */
typedef struct {
    uint8_t  scales[QK_K / 16];
    uint8_t  qs[QK_K / 4];
    uint16_t d, dmin;
} lb_block_q2_k;
static_assert(sizeof(lb_block_q2_k) == QK_K / 16 + QK_K / 4 + 4, "wrong q2_K block size");

/* 3.4375 bpw: 16 groups of 16, 6-bit scales; low 2 bits in qs, high bit in hmask */
typedef struct {
    uint8_t  hmask[QK_K / 8];
    uint8_t  qs[QK_K / 4];
    uint8_t  scales[12];
    uint16_t d;
} lb_block_q3_k;
static_assert(sizeof(lb_block_q3_k) == QK_K / 8 + QK_K / 4 + 12 + 2, "wrong q3_K block size");

/* 4.5 bpw: 8 groups of 32, 6-bit scales and mins packed in 12 bytes */
typedef struct {
    uint16_t d, dmin;
    uint8_t  scales[K_SCALE_SIZE];
    uint8_t  qs[QK_K / 2];
} lb_block_q4_k;
static_assert(sizeof(lb_block_q4_k) == 4 + K_SCALE_SIZE + QK_K / 2, "wrong q4_K block size");

/* 5.5 bpw: as q4_K plus one high bit per value */
typedef struct {
    uint16_t d, dmin;
    uint8_t  scales[K_SCALE_SIZE];
    uint8_t  qh[QK_K / 8];
    uint8_t  qs[QK_K / 2];
} lb_block_q5_k;
static_assert(sizeof(lb_block_q5_k) == 4 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2, "wrong q5_K block size");

/* 6.5625 bpw: 16 groups of 16, 8-bit signed scales; low 4 bits in ql, high 2 in qh */
typedef struct {
    uint8_t  ql[QK_K / 2];
    uint8_t  qh[QK_K / 4];
    int8_t   scales[QK_K / 16];
    uint16_t d;
} lb_block_q6_k;
static_assert(sizeof(lb_block_q6_k) == QK_K / 2 + QK_K / 4 + QK_K / 16 + 2, "wrong q6_K block size");

/* 4.25 bpw: IQ4_NL's non-linear grid in super-blocks of 8 groups with 6-bit scales */
typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t  scales_l[QK_K / 64];
    uint8_t  qs[QK_K / 2];
} lb_block_iq4_xs;
static_assert(sizeof(lb_block_iq4_xs) == 2 + 2 + QK_K / 64 + QK_K / 2, "wrong iq4_xs block size");

/* 1.6875 bpw: ternary, 5 trits per byte (base-3) plus 4 per byte in qh */
typedef struct {
    uint8_t  qs[(QK_K - 4 * QK_K / 64) / 5];
    uint8_t  qh[QK_K / 64];
    uint16_t d;
} lb_block_tq1_0;
static_assert(sizeof(lb_block_tq1_0) == 2 + QK_K / 64 + (QK_K - 4 * QK_K / 64) / 5, "wrong tq1_0 block size");

/* 2.0625 bpw: ternary, 2 bits per value */
typedef struct {
    uint8_t  qs[QK_K / 4];
    uint16_t d;
} lb_block_tq2_0;
static_assert(sizeof(lb_block_tq2_0) == 2 + QK_K / 4, "wrong tq2_0 block size");

/* ---- the i-quants: 8 (IQ1, IQ2) or 4 (IQ3) values at a time as a point of a fixed grid
 * (iq_grid.h), with signs and block scales; and MXFP4 ---- */

/* 2.0625 bpw: per 32 values, four 8-bit grid indices, then 4 x 7 sign bits and a 4-bit scale */
typedef struct { uint16_t d; uint16_t qs[QK_K / 8]; } lb_block_iq2_xxs;
static_assert(sizeof(lb_block_iq2_xxs) == 2 + QK_K / 4, "wrong iq2_xxs block size");

/* 2.3125 bpw: 9-bit grid index + 7 sign bits per 8 values, two 4-bit scales per 32 */
typedef struct { uint16_t d; uint16_t qs[QK_K / 8]; uint8_t scales[QK_K / 32]; } lb_block_iq2_xs;
static_assert(sizeof(lb_block_iq2_xs) == 2 + QK_K / 4 + QK_K / 32, "wrong iq2_xs block size");

/* 2.5625 bpw: 10-bit grid indices (low 8 in qs, high 2 in qh), 8 explicit sign bits per 8
 * values (after the indices in qs), two 4-bit scales per 32 */
typedef struct { uint16_t d; uint8_t qs[QK_K / 4]; uint8_t qh[QK_K / 32]; uint8_t scales[QK_K / 32]; } lb_block_iq2_s;
static_assert(sizeof(lb_block_iq2_s) == 2 + QK_K / 4 + QK_K / 16, "wrong iq2_s block size");

/* 3.0625 bpw: 8-bit grid indices per 4 values, then per 32: 4 x 7 sign bits and a 4-bit scale */
typedef struct { uint16_t d; uint8_t qs[3 * QK_K / 8]; } lb_block_iq3_xxs;
static_assert(sizeof(lb_block_iq3_xxs) == 2 + 3 * QK_K / 8, "wrong iq3_xxs block size");

/* 3.4375 bpw: 9-bit grid indices per 4 values (high bits in qh), 8 sign bits per 8 values,
 * a 4-bit scale per 32 */
typedef struct {
    uint16_t d;
    uint8_t  qs[QK_K / 4];
    uint8_t  qh[QK_K / 32];
    uint8_t  signs[QK_K / 8];
    uint8_t  scales[QK_K / 64];
} lb_block_iq3_s;
static_assert(sizeof(lb_block_iq3_s) == 2 + 13 * (QK_K / 32) + QK_K / 64, "wrong iq3_s block size");

/* 1.5625 bpw: 11-bit indices into the ternary grid (low 8 in qs; per 32 in qh: 4 x 3 high
 * bits, a 3-bit scale and the sign of a +-1/8 shift) */
typedef struct { uint16_t d; uint8_t qs[QK_K / 8]; uint16_t qh[QK_K / 32]; } lb_block_iq1_s;
static_assert(sizeof(lb_block_iq1_s) == 2 + QK_K / 8 + QK_K / 16, "wrong iq1_s block size");

/* 1.75 bpw: as IQ1_S with a shift sign per 8 values and two 3-bit scales per 32; the f16
 * super-block scale is spread over the scales' top nibbles */
typedef struct { uint8_t qs[QK_K / 8]; uint8_t qh[QK_K / 16]; uint8_t scales[QK_K / 32]; } lb_block_iq1_m;
static_assert(sizeof(lb_block_iq1_m) == QK_K / 8 + QK_K / 16 + QK_K / 32, "wrong iq1_m block size");

/* 4.25 bpw: OCP microscaling FP4 (E2M1 codes) with a power-of-two E8M0 scale per 32 */
typedef struct { uint8_t e; uint8_t qs[QK_LEGACY / 2]; } lb_block_mxfp4;
static_assert(sizeof(lb_block_mxfp4) == 1 + QK_LEGACY / 2, "wrong mxfp4 block size");

/* ---- lowbit's own block types (no ggml id) ---- */
#define QK_NF4 64 /* values per NF4 block, as bitsandbytes' default blocksize */

/* 4.5 bpw: bitsandbytes' NF4 levels, f32 absmax (read with memcpy), two 4-bit indices a byte */
typedef struct { float d; uint8_t qs[QK_NF4 / 2]; } lb_block_nf4;
static_assert(sizeof(lb_block_nf4) == 4 + QK_NF4 / 2, "wrong nf4 block size");

/* ---- kernel layouts (xlayout.c): internal types other types are transcoded to at load ---- */
/* 2.5 bpw: levels u in 0..3, value 8 s + b in bits 2 s of qs[b]; x = d (u - 2) */
typedef struct { uint16_t d; uint8_t qs[QK_LEGACY / 4]; } lb_block_x2_0;
static_assert(sizeof(lb_block_x2_0) == 2 + QK_LEGACY / 4, "wrong x2_0 block size");
/* 3 bpw: as x2_0 with x = d u + m */
typedef struct { uint16_t d, m; uint8_t qs[QK_LEGACY / 4]; } lb_block_x2_1;
static_assert(sizeof(lb_block_x2_1) == 4 + QK_LEGACY / 4, "wrong x2_1 block size");
/* 2.0625 bpw: 8 of x2_0's blocks of 32 levels (qs[8 s .. 8 s + 7] block s) under one f16 d */
typedef struct { uint16_t d; uint8_t qs[QK_K / 4]; } lb_block_x2_k;
static_assert(sizeof(lb_block_x2_k) == 2 + QK_K / 4, "wrong x2_k block size");
/* 4.5 bpw: IQ4_NL's layout with NF4's levels in int8 (lb_nf4_grid8): x = d grid8[u] */
typedef lb_block_iq4_nl lb_block_xnf4;

#endif
