/* lowbit's own types (INTn, NF4, FP8, ternary), beyond what test_formats.c checks for every
 * row of the table (round trip, determinism, dot product): the generated INTn table against
 * its descriptors, bit layouts, rounding and clamping, per-tensor scales, NF4's levels and
 * nibble order, FP8 conversion over all 256 codes and at known values. */
#include <math.h>

#include "formats/formats.h"
#include "test_util.h"

static void test_own_type_table(void **state) {
    (void)state;
    int n_intn = 0, n_own = 0;
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        const lb_type_traits *tr = lb_type_get_traits((lb_type)t);
        if (!tr || tr->internal || lb_type_to_ggml((lb_type)t) >= 0) continue;
        n_own++;
        lb_intn_desc d;
        if (!lb_intn_desc_of((lb_type)t, &d)) continue;
        n_intn++;
        /* the name says what the descriptor says */
        char        name[32];
        const char *u = d.affine ? "u" : "";
        if (d.group > 0) snprintf(name, sizeof name, "%sint%d_g%d", u, d.bits, d.group);
        else snprintf(name, sizeof name, "%sint%d_%s", u, d.bits, d.group ? "pt" : "pc");
        assert_string_equal(tr->name, name);
        assert_int_equal(lb_intn_type(d.bits, d.affine, d.group), t);
        assert_int_equal(tr->whole_tensor, d.group < 0);
        assert_int_equal(tr->row_size == NULL, d.group > 0);
        if (d.group > 0) /* f16 d [+ f16 m] + g*n/8 bytes */
            assert_int_equal(lb_row_size((lb_type)t, 2 * d.group),
                             2 * ((d.affine ? 4 : 2) + (size_t)(d.group * d.bits / 8)));
        else /* f32 d [+ f32 m] + ceil(n*bits/8) bytes */
            assert_int_equal(lb_row_size((lb_type)t, 172),
                             (d.affine ? 8u : 4u) + (size_t)(172 * d.bits + 7) / 8);
    }
    assert_int_equal(n_intn, 6 * 2 * 6);
    assert_int_equal(n_own, n_intn + 8); /* + nf4, 4 fp8, ternary, km3, km4 */
    assert_int_equal(lb_intn_type(7, false, 32), LB_TYPE_INVALID);
    assert_int_equal(lb_row_size(LB_TYPE_INT4_G32, 172), 0);
    assert_int_equal(lb_row_size(LB_TYPE_INT4_PC, 0), 0);
    assert_int_equal(lb_row_size(LB_TYPE_INT4_PC, INT64_MAX), 0);
    assert_int_equal(lb_row_size(LB_TYPE_NF4, 128), 2 * 36);
    assert_int_equal(lb_row_size(LB_TYPE_FP8_E4M3_PT, 172), 4 + 172);
    assert_int_equal(lb_row_size(LB_TYPE_TERNARY, 172), 4 + 43);
    assert_int_equal(lb_row_size(LB_TYPE_TERNARY, 173), 4 + 44);
    assert_int_equal(lb_row_size(LB_TYPE_KM4, 172), 32 + 86);
    assert_int_equal(lb_row_size(LB_TYPE_KM4, 171), 32 + 86); /* the last byte padded */
    assert_int_equal(lb_row_size(LB_TYPE_KM3, 176), 16 + 66);
    assert_int_equal(lb_row_size(LB_TYPE_KM3, 173), 16 + 65);
    assert_int_equal(lb_row_size(LB_TYPE_KM3, INT64_MAX), 0);
    assert_true(lb_type_get_traits(LB_TYPE_TERNARY)->whole_tensor);
    assert_true(lb_type_get_traits(LB_TYPE_FP8_E5M2_PT)->whole_tensor);
    assert_false(lb_type_get_traits(LB_TYPE_FP8_E5M2_PC)->whole_tensor);
}

/* Symmetric levels as n-bit two's complement, bit-packed little-endian; affine blocks. */
static void test_intn_layout(void **state) {
    (void)state;
    /* int3_pc: d = 3 / 3 = 1, q = x; codes 011 101 001 000 111 010 110 011 from bit 0 up */
    const float   x[8]   = { 3, -3, 1, 0, -1, 2, -2, 3 };
    const uint8_t want[] = { 0x6b, 0x70, 0x79 };
    uint8_t       q[16];
    float         y[64], one;
    assert_int_equal(lb_row_size(LB_TYPE_INT3_PC, 8), 4 + 3);
    assert_int_equal(lb_quantize_rows(LB_TYPE_INT3_PC, q, x, 1, 8, NULL), 7);
    memcpy(&one, q, 4);
    assert_true(one == 1.0f);
    assert_memory_equal(q + 4, want, 3);
    lb_type_get_traits(LB_TYPE_INT3_PC)->to_float(y, q, 8);
    assert_memory_equal(y, x, sizeof x);
    /* uint2_g32: min 0, max 3: d = 1, m = 0 (f16), then values 0 1 2 3 = 0b11100100 a byte */
    float xa[32];
    for (int i = 0; i < 32; i++) xa[i] = (float)(i % 4);
    uint8_t blk[12];
    assert_int_equal(lb_quantize_rows(LB_TYPE_UINT2_G32, blk, xa, 1, 32, NULL), 12);
    assert_int_equal(blk[0] | blk[1] << 8, 0x3c00); /* f16 1.0 */
    assert_int_equal(blk[2] | blk[3] << 8, 0x0000);
    for (int i = 4; i < 12; i++) assert_int_equal(blk[i], 0xe4);
    /* affine keeps an offset range exactly: 10 .. 10 + 255 * 0.5 in uint8_pc */
    float xo[64];
    for (int i = 0; i < 64; i++) xo[i] = 10.0f + 0.5f * (float)((i * 37) % 256);
    xo[0] = 10.0f;
    xo[1] = 10.0f + 127.5f;
    uint8_t qo[72];
    assert_int_equal(lb_quantize_rows(LB_TYPE_UINT8_PC, qo, xo, 1, 64, NULL), 8 + 64);
    lb_type_get_traits(LB_TYPE_UINT8_PC)->to_float(y, qo, 64);
    for (int i = 0; i < 64; i++) assert_true(fabsf(y[i] - xo[i]) < 1e-4f);
    /* rounding to nearest and clamping: int4 levels -7 .. 7 of d = 7 / 7 */
    const float xr[8] = { 7, -7, 0.49f, 0.51f, -2.5f, 6.6f, -6.4f, 1e-9f };
    const float yr[8] = { 7, -7, 0, 1, -3, 7, -6, 0 };
    assert_int_equal(lb_quantize_rows(LB_TYPE_INT4_PC, q, xr, 1, 8, NULL), 8);
    lb_type_get_traits(LB_TYPE_INT4_PC)->to_float(y, q, 8);
    assert_memory_equal(y, yr, sizeof yr);
}

/* Per-tensor types: one scale for the whole tensor, at the start of every row. */
static void test_whole_tensor_scales(void **state) {
    (void)state;
    enum { R = 3, C = 64 };
    float x[R * C], y[C];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) x[r * C + j] = (float)(r + 1) * 0.01f * (float)(j - 20);
    /* and the bound on the relative rmse of the tensor (measured values in comments) */
    const lb_type types[] = { LB_TYPE_INT8_PT, LB_TYPE_UINT4_PT, LB_TYPE_FP8_E4M3_PT,
                              LB_TYPE_FP8_E5M2_PT, LB_TYPE_TERNARY };
    const double  bound[] = { 0.01 /* 0.0062 */, 0.1 /* 0.077 */, 0.035 /* 0.026 */,
                              0.07 /* 0.054 */, 0.65 /* 0.55: three levels */ };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const lb_type t  = types[k];
        const size_t  rs = lb_row_size(t, C);
        uint8_t      *q  = malloc(rs * R), *q1 = malloc(rs);
        assert_int_equal(lb_quantize_rows(t, q, x, R, C, NULL), rs * R);
        for (int r = 1; r < R; r++) /* the same header in every row */
            assert_memory_equal(q, q + (size_t)r * rs, t == LB_TYPE_UINT4_PT ? 8 : 4);
        /* a row quantized alone gets its own scale: different bytes for row 0 */
        lb_quantize_rows(t, q1, x, 1, C, NULL);
        assert_true(memcmp(q1, q, 4) != 0);
        /* every row reads back on its own */
        double se = 0, sx = 0;
        for (int r = 0; r < R; r++) {
            lb_type_get_traits(t)->to_float(y, q + (size_t)r * rs, C);
            for (int j = 0; j < C; j++) {
                se += ((double)y[j] - x[r * C + j]) * ((double)y[j] - x[r * C + j]);
                sx += (double)x[r * C + j] * x[r * C + j];
            }
        }
        printf("# %s: relative rmse %.4f\n", lb_type_name(t), sqrt(se / sx));
        assert_true(sqrt(se / sx) < bound[k]);
        free(q);
        free(q1);
    }
    /* ternary: gamma = mean |W| over the tensor; q = round(clamp(W / gamma, -1, 1)) */
    double s = 0;
    for (int i = 0; i < R * C; i++) s += fabs((double)x[i]);
    const float gamma = (float)(s / (R * C));
    uint8_t    *q     = malloc(lb_row_size(LB_TYPE_TERNARY, C) * R);
    lb_quantize_rows(LB_TYPE_TERNARY, q, x, R, C, NULL);
    for (int r = 0; r < R; r++) {
        const uint8_t *row = q + (size_t)r * lb_row_size(LB_TYPE_TERNARY, C);
        float          g;
        memcpy(&g, row, 4);
        assert_true(fabsf(g - gamma) <= 1e-6f * gamma);
        lb_type_get_traits(LB_TYPE_TERNARY)->to_float(y, row, C);
        for (int j = 0; j < C; j++) {
            const float v = x[r * C + j] / g, want = roundf(fminf(fmaxf(v, -1.0f), 1.0f)) * g;
            assert_true(y[j] == want);
        }
    }
    free(q);
}

/* With importance the INTn quantizer searches its scale [and minimum]: the importance-weighted
 * error must not exceed the minmax range's, and must drop clearly at 2 and 3 bits on Gaussian
 * weights with log-normal importance; the layout (row sizes, per-tensor headers shared by
 * rows) stays the same. Without importance the bytes are the reference quantizer's. */
static void test_intn_importance_search(void **state) {
    (void)state;
    enum { R = 16, C = 256 };
    static float x[R * C], y[C], imp[C];
    uint64_t     rng = 5;
    for (int i = 0; i < R * C; i++) x[i] = (float)(0.02 * test_gauss(&rng));
    for (int j = 0; j < C; j++) imp[j] = (float)exp(1.5 * test_gauss(&rng));
    const lb_type types[] = { LB_TYPE_INT2_G32, LB_TYPE_INT3_G32, LB_TYPE_UINT3_G32, LB_TYPE_INT4_G128,
                              LB_TYPE_UINT2_G64, LB_TYPE_INT3_PC, LB_TYPE_UINT4_PC, LB_TYPE_INT4_PT };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const lb_type t  = types[k];
        const size_t  rs = lb_row_size(t, C);
        uint8_t      *q0 = malloc(rs * R), *q1 = malloc(rs * R), *qr = malloc(rs);
        assert_int_equal(lb_quantize_rows(t, q0, x, R, C, NULL), rs * R);
        assert_int_equal(lb_quantize_rows(t, q1, x, R, C, imp), rs * R);
        if (!lb_type_get_traits(t)->whole_tensor) { /* NULL importance: the reference's bytes */
            lb_type_get_traits(t)->from_float(qr, x, C);
            assert_memory_equal(qr, q0, rs);
        } else {
            for (int r = 1; r < R; r++) assert_memory_equal(q1, q1 + (size_t)r * rs, 4);
        }
        double e0 = 0, e1 = 0;
        for (int r = 0; r < R; r++) {
            lb_type_get_traits(t)->to_float(y, q0 + (size_t)r * rs, C);
            for (int j = 0; j < C; j++) e0 += imp[j] * (y[j] - x[r * C + j]) * (y[j] - x[r * C + j]);
            lb_type_get_traits(t)->to_float(y, q1 + (size_t)r * rs, C);
            for (int j = 0; j < C; j++) e1 += imp[j] * (y[j] - x[r * C + j]) * (y[j] - x[r * C + j]);
        }
        printf("# %-10s importance-weighted error: minmax %.4g, searched %.4g (%.2fx)\n", lb_type_name(t),
               e0, e1, e0 / e1);
        assert_true(e1 <= e0 * 1.001);
        lb_intn_desc d;
        assert_true(lb_intn_desc_of(t, &d));
        if (d.bits <= 3) assert_true(e1 < 0.9 * e0);
        free(q0);
        free(q1);
        free(qr);
    }
}

static void test_nf4_levels(void **state) {
    (void)state;
    /* the levels times an absmax of 2 come back exactly; indices 2j, 2j+1 share byte j,
     * the even one in the high nibble */
    float x[QK_NF4], y[QK_NF4];
    for (int j = 0; j < QK_NF4; j++) x[j] = 2.0f * lb_nf4_levels[j % 16];
    lb_block_nf4 b;
    assert_int_equal(lb_row_size(LB_TYPE_NF4, QK_NF4), sizeof b);
    lb_quantize_rows(LB_TYPE_NF4, &b, x, 1, QK_NF4, NULL);
    assert_true(b.d == 2.0f);
    for (int j = 0; j < QK_NF4 / 2; j++)
        assert_int_equal(b.qs[j], ((2 * j) % 16) << 4 | (2 * j + 1) % 16);
    lb_type_get_traits(LB_TYPE_NF4)->to_float(y, &b, QK_NF4);
    assert_memory_equal(x, y, sizeof x);
    /* nearest level: just above / below the midpoint of 0 and 0.0796 */
    for (int j = 0; j < QK_NF4; j++) x[j] = 0.0f;
    x[0] = 1.0f;
    x[1] = 0.0398f + 1e-4f;
    x[2] = 0.0398f - 1e-4f;
    x[3] = -0.9f; /* nearer -1.0 than -0.696 */
    x[4] = -0.8f; /* nearer -0.696 */
    lb_quantize_rows(LB_TYPE_NF4, &b, x, 1, QK_NF4, NULL);
    assert_int_equal(b.qs[0], 15 << 4 | 8);
    assert_int_equal(b.qs[1], 7 << 4 | 0);
    assert_int_equal(b.qs[2] >> 4, 1);
}

/* Every FP8 code: decoding then encoding gives the code back, except NaN (and E5M2's
 * infinities, which the saturating conversion takes to the largest finite value). */
/* KM3/KM4: the f16 levels first (ascending), then the indices (KM4: low nibble first; KM3:
 * eight in three bytes, little-endian); a row of exactly K distinct values is reproduced
 * exactly; importance pulls the levels toward the weighted columns; the look-up-table dot
 * equals dequantize-then-dot. */
static void test_codebook(void **state) {
    (void)state;
    for (int K = 8; K <= 16; K += 8) {
        const lb_type t = K == 8 ? LB_TYPE_KM3 : LB_TYPE_KM4;
        float         x[64], y[64];
        uint8_t       q[256];
        for (int j = 0; j < 64; j++) x[j] = (float)((j * 5) % K) - 3.5f; /* K values, f16-exact */
        const size_t rs = lb_row_size(t, 64);
        assert_int_equal(lb_quantize_rows(t, q, x, 1, 64, NULL), rs);
        lb_type_get_traits(t)->to_float(y, q, 64);
        assert_memory_equal(x, y, sizeof x);
        float lv[16];
        lb_km_levels(K, q, lv);
        for (int k = 0; k < K; k++) assert_true(lv[k] == (float)k - 3.5f);
        const uint8_t *ix = q + 2 * K; /* value 1 is level 5; value 2 is level 10 % K */
        if (K == 16) assert_int_equal(ix[0], 5 << 4 | 0);
        else assert_int_equal((ix[0] | ix[1] << 8 | ix[2] << 16) & 0777, 0 | 5 << 3 | 2 << 6);
        /* any length: a row packed here by the layout's definition (levels 0..K-1, index j
         * at bits j*bits.. of the stream) dequantizes to its indices */
        for (int n = 1; n <= 41; n += 4) {
            uint8_t r[128] = { 0 };
            float   u[41];
            const int bits = K == 16 ? 4 : 3;
            for (int k = 0; k < K; k++) {
                const uint16_t h = lb_f32_to_f16((float)k);
                memcpy(r + 2 * k, &h, 2);
            }
            for (int j = 0; j < n; j++)
                for (int b = 0; b < bits; b++)
                    if ((((j * 5 + 1) % K) >> b) & 1) r[2 * K + (j * bits + b) / 8] |= (uint8_t)(1 << ((j * bits + b) % 8));
            assert_int_equal(lb_row_size(t, n), (size_t)(2 * K + (n * bits + 7) / 8));
            lb_type_get_traits(t)->to_float(u, r, n);
            for (int j = 0; j < n; j++) assert_true(u[j] == (float)((j * 5 + 1) % K));
        }
        /* importance: column 7's value, weighted a million times, becomes a level of its own */
        float z[256], imp[256], w[256];
        for (int j = 0; j < 256; j++) z[j] = sinf(0.37f * (float)j) + 0.01f * (float)(j % 13), imp[j] = 1.0f;
        imp[7] = 1e6f;
        uint8_t qi[512], qn[512];
        lb_quantize_rows(t, qi, z, 1, 256, imp);
        lb_quantize_rows(t, qn, z, 1, 256, NULL);
        lb_type_get_traits(t)->to_float(w, qi, 256);
        const float ei = fabsf(w[7] - z[7]);
        lb_type_get_traits(t)->to_float(w, qn, 256);
        assert_true(ei < 2e-3f * fabsf(z[7]) + 1e-3f);
        assert_true(ei <= fabsf(w[7] - z[7]));
        double ref = 0;
        for (int j = 0; j < 256; j++) ref += (double)w[j] * z[j];
        assert_true(fabs(lb_vec_dot_ref(t, qn, z, 256) - ref) < 1e-5 * (fabs(ref) + 1));
    }
}

static void test_fp8_exhaustive(void **state) {
    (void)state;
    int n_nan[2] = { 0, 0 };
    for (int c = 0; c < 256; c++) {
        const float a = lb_fp8_e4m3_to_f32((uint8_t)c), b = lb_fp8_e5m2_to_f32((uint8_t)c);
        if (isnan(a)) {
            assert_true((c & 0x7f) == 0x7f);
            n_nan[0]++;
        } else {
            assert_int_equal(lb_f32_to_fp8_e4m3(a), c);
        }
        if (isnan(b)) {
            assert_true((c & 0x7c) == 0x7c && (c & 3) != 0);
            n_nan[1]++;
        } else if (isinf(b)) {
            assert_true((c & 0x7f) == 0x7c);
            assert_int_equal(lb_f32_to_fp8_e5m2(b), (c & 0x80) | 0x7b);
        } else {
            assert_int_equal(lb_f32_to_fp8_e5m2(b), c);
        }
        /* codes are ordered as their values (sign-magnitude) */
        if ((c & 0x7f) > 0 && !isnan(a) && (c & 0x7f) != 0x7f)
            assert_true(fabsf(a) > fabsf(lb_fp8_e4m3_to_f32((uint8_t)(c - 1))));
    }
    assert_int_equal(n_nan[0], 2);
    assert_int_equal(n_nan[1], 6);
    /* known values: E4M3 */
    assert_true(lb_fp8_e4m3_to_f32(0x7e) == 448.0f);
    assert_int_equal(lb_f32_to_fp8_e4m3(448.0f), 0x7e);
    assert_int_equal(lb_f32_to_fp8_e4m3(-448.0f), 0xfe);
    assert_int_equal(lb_f32_to_fp8_e4m3(1e6f), 0x7e);   /* saturates */
    assert_int_equal(lb_f32_to_fp8_e4m3(-1e6f), 0xfe);
    assert_int_equal(lb_f32_to_fp8_e4m3(INFINITY), 0x7e);
    assert_int_equal(lb_f32_to_fp8_e4m3(464.0f), 0x7e); /* tie between 448 and 480: even 448 */
    assert_int_equal(lb_f32_to_fp8_e4m3(470.0f), 0x7e); /* rounds to 480: saturates */
    assert_int_equal(lb_f32_to_fp8_e4m3(NAN) & 0x7f, 0x7f);
    assert_true(lb_fp8_e4m3_to_f32(0x01) == 0.001953125f); /* smallest subnormal 2^-9 */
    assert_int_equal(lb_f32_to_fp8_e4m3(0.001953125f), 0x01);
    assert_int_equal(lb_f32_to_fp8_e4m3(0.0009765625f), 0x00);      /* 2^-10: tie to even 0 */
    assert_int_equal(lb_f32_to_fp8_e4m3(0.0009765626f), 0x01);      /* just above the tie */
    assert_int_equal(lb_f32_to_fp8_e4m3(3 * 0.0009765625f), 0x02);  /* 1.5 units: tie to 2 */
    assert_int_equal(lb_f32_to_fp8_e4m3(7.5f * 0.001953125f), 0x08); /* to the smallest normal */
    assert_true(lb_fp8_e4m3_to_f32(0x08) == 0.015625f);
    assert_int_equal(lb_f32_to_fp8_e4m3(1.0f), 0x38);
    assert_int_equal(lb_f32_to_fp8_e4m3(1.0625f), 0x38); /* tie: 1.0 (even) */
    assert_int_equal(lb_f32_to_fp8_e4m3(1.1875f), 0x3a); /* tie: 1.25 (even) */
    assert_int_equal(lb_f32_to_fp8_e4m3(1.07f), 0x39);
    assert_int_equal(lb_f32_to_fp8_e4m3(-0.0f), 0x80);
    assert_int_equal(lb_f32_to_fp8_e4m3(1e-30f), 0x00);
    /* E5M2 */
    assert_true(lb_fp8_e5m2_to_f32(0x7b) == 57344.0f);
    assert_int_equal(lb_f32_to_fp8_e5m2(57344.0f), 0x7b);
    assert_int_equal(lb_f32_to_fp8_e5m2(1e6f), 0x7b);
    assert_int_equal(lb_f32_to_fp8_e5m2(-1e6f), 0xfb);
    assert_true(isinf(lb_fp8_e5m2_to_f32(0x7c)));
    assert_true(lb_fp8_e5m2_to_f32(0x01) == 1.52587890625e-05f); /* 2^-16 */
    assert_int_equal(lb_f32_to_fp8_e5m2(1.0f), 0x3c);
    assert_int_equal(lb_f32_to_fp8_e5m2(1.125f), 0x3c); /* tie: 1.0 (even) */
    assert_int_equal(lb_f32_to_fp8_e5m2(1.375f), 0x3e); /* tie: 1.5 (even) */
}

/* FP8 rows: the largest |x| maps to the format's max; scale = amax / max. */
static void test_fp8_scale(void **state) {
    (void)state;
    float x[16], y[16];
    for (int i = 0; i < 16; i++) x[i] = 0.01f * (float)(i - 5);
    uint8_t q[20];
    float   scale;
    assert_int_equal(lb_quantize_rows(LB_TYPE_FP8_E4M3_PC, q, x, 1, 16, NULL), 20);
    memcpy(&scale, q, 4);
    assert_true(scale == x[15] / 448.0f);
    assert_int_equal(q[4 + 15], 0x7e);
    lb_type_get_traits(LB_TYPE_FP8_E4M3_PC)->to_float(y, q, 16);
    for (int i = 0; i < 16; i++) assert_true(fabsf(y[i] - x[i]) <= 0.0625f * fabsf(x[i]));
    assert_int_equal(lb_quantize_rows(LB_TYPE_FP8_E5M2_PC, q, x, 1, 16, NULL), 20);
    memcpy(&scale, q, 4);
    assert_true(scale == x[15] / 57344.0f);
    assert_int_equal(q[4 + 15], 0x7b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_type_table), cmocka_unit_test(test_intn_layout),
        cmocka_unit_test(test_whole_tensor_scales),
        cmocka_unit_test(test_intn_importance_search), cmocka_unit_test(test_nf4_levels),
        cmocka_unit_test(test_fp8_exhaustive), cmocka_unit_test(test_fp8_scale),
        cmocka_unit_test(test_codebook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
