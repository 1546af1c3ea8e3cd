/* Grid access (formats/grid.h), for every type that offers it: on blocks quantized by the
 * type's own quantizer, the level of the stored code equals the dequantized value bit for
 * bit; storing any code k at position j makes j decode to levels[k] exactly and leaves every
 * other position as it was; each type has the level count of its bit width. Rounding each
 * original value onto its block's grid (as GPTQ does when nothing is compensated) gives the
 * quantizer's own bytes for the types that round as their quantizer does (INTn, NF4, FP8),
 * and for the others values never farther from the original than RTN's. Row-scaled types
 * (per channel, per tensor): the block is the row. */
#include <math.h>

#include "formats/formats.h"
#include "formats/grid.h"
#include "test_util.h"

#define N_ROW   1024 /* 4 super-blocks, 32 blocks of 32 */
#define N_SEEDS 4
#define N_CODES 4 /* random codes tried per position, besides the first and the last */
#define BS_MAX  N_ROW /* values per block, at most: a row */
#define BB_MAX  2048 /* bytes per block or row, at most */

static uint64_t g_rng;
static double uniform(void) { return test_uniform(&g_rng); }
static float  gauss(void) { return (float)test_gauss(&g_rng); }

/* the number of codes of a position, by type; 0: the type has no grid */
static int32_t expected_levels(lb_type t) {
    lb_intn_desc d;
    if (lb_intn_desc_of(t, &d)) return d.affine ? 1 << d.bits : (1 << d.bits) - 1;
    switch (t) {
    case LB_TYPE_Q8_0:   return 255; /* -127..127, as ggml's reference rounding uses */
    case LB_TYPE_Q4_0:
    case LB_TYPE_Q4_1:
    case LB_TYPE_IQ4_NL:
    case LB_TYPE_Q4_K:
    case LB_TYPE_IQ4_XS: return 16;
    case LB_TYPE_Q5_0:
    case LB_TYPE_Q5_1:
    case LB_TYPE_Q5_K:   return 32;
    case LB_TYPE_Q2_K:   return 4;
    case LB_TYPE_Q3_K:   return 8;
    case LB_TYPE_Q6_K:   return 64;
    case LB_TYPE_NF4:    return 16;
    case LB_TYPE_KM3:    return 8;  /* the row's own codebook */
    case LB_TYPE_KM4:    return 16;
    case LB_TYPE_FP8_E4M3_PC:
    case LB_TYPE_FP8_E4M3_PT:
    case LB_TYPE_FP8_E5M2_PC:
    case LB_TYPE_FP8_E5M2_PT: return 256; /* every byte, NaN and infinity codes included */
    default:             return 0;
    }
}

/* One row of 4 super-blocks of varied shape: Gaussian with scattered zeros and an outlier;
 * Gaussian with a zero block of 32, a constant group of 16 and a negative outlier; all zero;
 * tiny values (1e-4) with one large one. The scale of the whole row varies with the seed. */
static void make_row(float *x, int seed) {
    const float s = seed == 1 ? 1e-3f : seed == 2 ? 50.0f : 1.0f;
    for (int i = 0; i < N_ROW; i++) x[i] = s * gauss();
    for (int i = 0; i < 256; i += 7) x[i] = 0;
    x[(uint64_t)(uniform() * 9007199254740992.0) % 256] = s * 30.0f;
    for (int i = 256 + 64; i < 256 + 96; i++) x[i] = 0;
    for (int i = 256 + 160; i < 256 + 176; i++) x[i] = s * 0.75f;
    x[256 + 200 + (uint64_t)(uniform() * 9007199254740992.0) % 56] = -s * 25.0f;
    for (int i = 512; i < 768; i++) x[i] = 0;
    for (int i = 768; i < 1024; i++) x[i] *= 1e-4f;
    x[768 + (uint64_t)(uniform() * 9007199254740992.0) % 256] = s * 8.0f;
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Every position of one block: the stored code's level, then codes stored one at a time. */
static void check_block(lb_type t, const lb_grid_ops *g, const uint8_t *blk, size_t ts, int32_t bs) {
    static float   ref[BS_MAX], out[BS_MAX];
    static uint8_t tmp[BB_MAX];
    float          lv[LB_GRID_MAX], lv2[LB_GRID_MAX];
    const lb_type_traits *tr = lb_type_get_traits(t);
    assert_true(ts <= sizeof tmp && bs <= BS_MAX);
    tr->to_float(ref, blk, bs);
    /* ggml's types: every position; lowbit's own (ids from NF4 on: one codec per family, in
     * blocks up to a row): the first 40, then every 7th (29th in a row; odd steps reach every
     * bit offset of a packed code) */
    const int32_t step = t < LB_TYPE_NF4 ? 1 : bs > 256 ? 29 : 7;
    for (int32_t j = 0; j < bs; j += j >= 40 ? step : 1) {
        const int32_t nl = g->levels(blk, j, lv);
        assert_int_equal(nl, expected_levels(t));
        int32_t kj = -1, matches = 0; /* the stored code: its level is the dequantized value */
        for (int32_t k = 0; k < nl; k++)
            if (same_bits(lv[k], ref[j])) {
                if (kj < 0) kj = k;
                matches++;
            }
        if (kj < 0) fail_msg("%s: position %d decodes to %a, on none of its %d levels", tr->name, j, (double)ref[j], nl);
        int32_t codes[N_CODES + 2] = { 0, nl - 1 };
        for (int c = 2; c < N_CODES + 2; c++) codes[c] = (int32_t)((uint64_t)(uniform() * 9007199254740992.0) % (uint64_t)nl);
        for (int c = 0; c < N_CODES + 2; c++) {
            const int32_t k = codes[c];
            memcpy(tmp, blk, ts);
            g->set_code(tmp, j, k);
            tr->to_float(out, tmp, bs);
            if (!same_bits(out[j], lv[k]))
                fail_msg("%s: code %d at position %d decodes to %a, its level is %a", tr->name, k, j,
                         (double)out[j], (double)lv[k]);
            for (int32_t i = 0; i < bs; i++)
                if (i != j && !same_bits(out[i], ref[i]))
                    fail_msg("%s: code %d at position %d changed position %d", tr->name, k, j, i);
            assert_int_equal(g->levels(tmp, j, lv2), nl); /* the scales are untouched */
            assert_memory_equal(lv2, lv, (size_t)nl * sizeof *lv);
            /* storing the original code back restores the value, and the bytes when the
             * stored code is the only one with that level */
            g->set_code(tmp, j, kj);
            tr->to_float(out, tmp, bs);
            assert_memory_equal(out, ref, (size_t)bs * sizeof *ref);
            if (matches == 1) assert_memory_equal(tmp, blk, ts);
        }
    }
}

/* values and bytes of a block: the row for row-scaled types */
static void block_shape(const lb_type_traits *tr, lb_type t, int32_t *bs, size_t *bb) {
    *bs = tr->row_size ? N_ROW : tr->block_size;
    *bb = tr->row_size ? lb_row_size(t, N_ROW) : tr->type_size;
}

static void test_grid_every_type(void **state) {
    (void)state;
    static float   x[N_ROW], imp[N_ROW];
    static uint8_t q[N_ROW * 4];
    int            n_types = 0;
    for (int ti = 0; ti < LB_TYPE_COUNT; ti++) {
        const lb_type         t  = (lb_type)ti;
        const lb_type_traits *tr = lb_type_get_traits(t);
        const lb_grid_ops    *g  = lb_type_grid(t);
        if (!tr || !g) {
            assert_int_equal(expected_levels(t), 0); /* every type with a known grid offers it */
            continue;
        }
        assert_true(expected_levels(t) > 0);
        assert_true(N_ROW % tr->block_size == 0);
        const size_t rs = lb_row_size(t, N_ROW);
        int32_t      bs;
        size_t       bb;
        block_shape(tr, t, &bs, &bb);
        assert_true(rs <= sizeof q && bb <= BB_MAX);
        for (int seed = 0; seed < N_SEEDS; seed++) {
            g_rng = 1000u + (uint64_t)seed;
            make_row(x, seed);
            for (int i = 0; i < N_ROW; i++) imp[i] = (float)(0.1 + uniform());
            /* odd seeds: the importance-aware quantizer, which sets the scales differently */
            assert_int_equal(lb_quantize_rows(t, q, x, 1, N_ROW, seed % 2 ? imp : NULL), rs);
            for (int b = 0; b < N_ROW / bs; b++) check_block(t, g, q + (size_t)b * bb, bb, bs);
        }
        printf("# %-12s grid of %3d levels: %d blocks x %d seeds checked\n", tr->name,
               expected_levels(t), N_ROW / bs, N_SEEDS);
        n_types++;
    }
    assert_int_equal(n_types, 12 + 72 + 1 + 4 + 2); /* ggml's, INTn, NF4, FP8, KM3/KM4 */
}

/* Rounding the original values onto the grids of the quantizer's blocks (what GPTQ does when
 * nothing is compensated): the types that round as their quantizer does (a nearest op: INTn,
 * NF4, FP8) give exactly its bytes; the others (ggml's, which round with the scale before
 * its f16 rounding, or search) the nearest level, never farther from x than RTN's value.
 * The level lb_grid_round returns is the value stored. */
/* The affine grids' scans (lb_grid_ops.scan, a few levels seen) against a scan of all the
 * levels (the nearest, the first of equals), code and level bit for bit: on the quantizer's
 * blocks of every seed, at every position, for the levels themselves, the midpoints between
 * neighbours (ties), a step either side of them, values far outside, zeros, infinities, NaN. */
static void test_grid_scan(void **state) {
    (void)state;
    static float   x[N_ROW];
    static uint8_t q[N_ROW * 4];
    int            n_types = 0;
    for (int ti = 0; ti < LB_TYPE_COUNT; ti++) {
        const lb_type         t  = (lb_type)ti;
        const lb_type_traits *tr = lb_type_get_traits(t);
        const lb_grid_ops    *g  = lb_type_grid(t);
        if (!tr || !g || !g->scan) continue;
        assert_null(g->nearest); /* a scan stands in for the scan only */
        int32_t bs;
        size_t  bb;
        block_shape(tr, t, &bs, &bb);
        int64_t n_tried = 0;
        for (int seed = 0; seed < N_SEEDS; seed++) {
            g_rng = 3000u + (uint64_t)seed;
            make_row(x, seed);
            lb_quantize_rows(t, q, x, 1, N_ROW, NULL);
            for (int32_t i = 0; i < N_ROW; i++) {
                const uint8_t *blk = q + (size_t)(i / bs) * bb;
                const int32_t  j   = i % bs;
                float          lv[LB_GRID_MAX], tries[LB_GRID_MAX * 4 + 16];
                const int32_t  nl = g->levels(blk, j, lv);
                int32_t        nt = 0;
                for (int32_t k = 0; k < nl; k += nl > 64 ? 7 : 1) { /* Q8_0: every 7th */
                    tries[nt++] = lv[k];
                    if (k + 1 < nl) tries[nt++] = 0.5f * (lv[k] + lv[k + 1]);
                    tries[nt++] = nextafterf(lv[k], INFINITY);
                    tries[nt++] = nextafterf(lv[k], -INFINITY);
                }
                const float far = 1e3f * (fabsf(lv[0]) + fabsf(lv[nl - 1]) + 1.0f);
                const float extra[] = { x[i], far, -far, 0.0f, -0.0f, INFINITY, -INFINITY, NAN, 3e38f, -3e38f };
                for (size_t e = 0; e < sizeof extra / sizeof extra[0]; e++) tries[nt++] = extra[e];
                for (int32_t a = 0; a < nt; a++) {
                    const float v    = tries[a];
                    int32_t     want = 0;
                    for (int32_t l = 1; l < nl; l++)
                        if (fabsf(lv[l] - v) < fabsf(lv[want] - v)) want = l;
                    float         got_lv;
                    const int32_t got = g->scan(blk, j, v, &got_lv);
                    if (got != want || !same_bits(got_lv, lv[want]))
                        fail_msg("%s: position %d, x = %a: the scan says code %d (%a), all levels %d (%a)", tr->name, j,
                                 (double)v, got, (double)got_lv, want, (double)lv[want]);
                    n_tried++;
                }
            }
        }
        printf("# %-12s scan of %3d levels: %lld values give the full scan's code\n", tr->name, expected_levels(t),
               (long long)n_tried);
        n_types++;
    }
    assert_int_equal(n_types, 9); /* Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q3_K, Q4_K, Q5_K, Q6_K */
}

static void test_grid_round_is_rtn(void **state) {
    (void)state;
    static float   x[N_ROW], lv[N_ROW], dq[N_ROW], dr[N_ROW];
    static uint8_t q[N_ROW * 4], r[N_ROW * 4];
    int            n_exact = 0;
    for (int ti = 0; ti < LB_TYPE_COUNT; ti++) {
        const lb_type         t  = (lb_type)ti;
        const lb_type_traits *tr = lb_type_get_traits(t);
        const lb_grid_ops    *g  = lb_type_grid(t);
        if (!tr || !g) continue;
        const size_t rs = lb_row_size(t, N_ROW);
        int32_t      bs;
        size_t       bb;
        block_shape(tr, t, &bs, &bb);
        int64_t differ = 0;
        for (int seed = 0; seed < N_SEEDS; seed++) {
            g_rng = 2000u + (uint64_t)seed;
            make_row(x, seed);
            lb_quantize_rows(t, q, x, 1, N_ROW, NULL);
            memcpy(r, q, rs);
            for (int i = 0; i < N_ROW; i++) lv[i] = lb_grid_round(g, r + (size_t)(i / bs) * bb, i % bs, x[i]);
            tr->to_float(dq, q, N_ROW);
            tr->to_float(dr, r, N_ROW);
            assert_memory_equal(dr, lv, sizeof dr);
            if (g->nearest) assert_memory_equal(r, q, rs);
            for (int i = 0; i < N_ROW; i++) {
                differ += !same_bits(dq[i], dr[i]);
                if (fabsf(dr[i] - x[i]) > fabsf(dq[i] - x[i]))
                    fail_msg("%s: value %d (%a) rounds to %a, RTN's %a is nearer", tr->name, i, (double)x[i],
                             (double)dr[i], (double)dq[i]);
            }
        }
        n_exact += g->nearest != NULL;
        printf("# %-12s rounded onto its grid (%s): %4lld of %d values differ from RTN's\n", tr->name,
               g->nearest ? "the quantizer's rounding" : "the nearest level", (long long)differ,
               N_SEEDS * N_ROW);
    }
    assert_int_equal(n_exact, 72 + 1 + 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_every_type),
        cmocka_unit_test(test_grid_scan),
        cmocka_unit_test(test_grid_round_is_rtn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
