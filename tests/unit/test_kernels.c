/* Quantized dot-product kernels (src/kernels/qdot.h), driven by the kernel tables:
 *   - every ISA's activation quantizer gives the scalar one's bytes;
 *   - every SIMD kernel agrees with its scalar twin (NMSE < 1e-10: only the order of float
 *     additions differs), at odd block counts, odd row counts and 1..9 columns;
 *   - every kernel (scalar and SIMD) agrees with dequantize-then-dot in double on the f32
 *     activations, within the error of 8-bit activations (NMSE bounds below); 11 rows, 9 columns;
 *   - a (row, column) result is bit-identical whatever the other rows (1 or 11: thread splits)
 *     and however the columns are split (9 = 5 + 4), for one column and for several;
 *   - packed weights (8-row groups) give the one-column kernels' bits, at 1 and 9 columns;
 *   - F16 / BF16 prompts (several row blocks, a masked tail): each row's bits alone;
 *   - FAST mode's kernels on rounded activations (BF16 rows on bf16 activations: vdpbf16ps)
 *     against their scalar twin, odd lengths, any split; the bf16 rounding byte for byte;
 *   - extreme levels (Q8_0's -128, activations at +-127) do not saturate;
 *   - the SIMD f16 / bf16 / int8_pc conversions give the scalar ones' bits (every 16-bit
 *     pattern; every int8 level);
 *   - W8A8: the int8 x int8 products of every ISA give the scalar kernel's bits (exact int32
 *     sums) at odd lengths and any tile split; the activation quantizer rounds as roundf.
 * Seeded data (the seed is printed). */
#include <math.h>

#include "formats/formats.h"
#include "kernels/qdot.h"
#include "test_util.h"

#define NR 27 /* rows: 3 groups of 8 (a pair for the 512-bit packed kernels, one alone) and 3 more */
#define NC 13 /* columns: tiles of 8 and 4 and a remainder */

static uint64_t g_rng = 0x5eed1234abcdull;

static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

/* roughly normal values with a few large outliers, as weights and activations are */
static void fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) {
        float v = (frand() + frand() + frand() + frand()) * 0.5f;
        if ((i * 7919) % 97 == 3) v *= 8.0f;
        x[i] = v * scale;
    }
}

static int64_t block_of(lb_type t) {
    return lb_type_get_traits(t)->block_size;
}

/* lengths with odd block counts (1, 3, 5, 9 blocks; odd element counts for F16/BF16) */
static int64_t test_len(lb_type t, int k) {
    const int64_t bs = block_of(t);
    if (bs == 1) { /* odd lengths; a type that packs values in groups (KM3: 8) rounds them up */
        const int64_t lens[] = { 1, 7, 33, 173 };
        return lb_row_size(t, lens[k]) ? lens[k] : (lens[k] + 7) / 8 * 8;
    }
    const int64_t blocks[] = { 1, 3, 5, 9 };
    return bs * blocks[k];
}

typedef struct {
    lb_type  t;
    int64_t  n, nr, nc;
    uint8_t *w;    /* nr rows */
    float   *x;    /* nc activation rows, f32 */
    uint8_t *xa;   /* quantized by the scalar quantizer */
    size_t   ws, as;
    double  *ref;  /* dequantize-then-dot, double: [nc][nr] */
} problem;

static void problem_init(problem *p, lb_type t, int64_t n, int64_t nr, int64_t nc) {
    const lb_qdot *k = lb_qdot_get_isa(t, LB_ISA_REF);
    p->t = t, p->n = n, p->nr = nr, p->nc = nc;
    p->ws  = lb_row_size(t, n);
    p->as  = lb_act_row_size(k->act, n);
    p->w   = malloc(p->ws * (size_t)nr);
    p->x   = malloc((size_t)(n * nc) * sizeof(float));
    p->xa  = malloc(p->as * (size_t)nc);
    p->ref = malloc((size_t)(nr * nc) * sizeof(double));
    float *wf = malloc((size_t)(n * nr) * sizeof(float)), *row = malloc((size_t)n * sizeof(float));
    fill(wf, n * nr, 0.05f);
    fill(p->x, n * nc, 1.0f);
    assert_int_equal(lb_quantize_rows(t, p->w, wf, nr, n, NULL), p->ws * (size_t)nr);
    for (int64_t c = 0; c < nc; c++) {
        if (k->act == LB_ACT_F32) memcpy(p->xa + (size_t)c * p->as, p->x + c * n, p->as);
        else lb_quantize_act_get_isa(k->act, LB_ISA_REF)(p->xa + (size_t)c * p->as, p->x + c * n, n);
    }
    for (int64_t r = 0; r < nr; r++) {
        lb_type_get_traits(t)->to_float(row, p->w + (size_t)r * p->ws, n);
        for (int64_t c = 0; c < nc; c++) {
            double s = 0;
            for (int64_t j = 0; j < n; j++) s += (double)row[j] * p->x[c * n + j];
            p->ref[c * nr + r] = s;
        }
    }
    free(wf);
    free(row);
}

static void problem_free(problem *p) {
    free(p->w), free(p->x), free(p->xa), free(p->ref);
}

static double nmse(const float *y, const double *ref, int64_t n, double *maxdiff) {
    double se = 0, ss = 0;
    *maxdiff  = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)y[i] - ref[i];
        se += d * d;
        ss += ref[i] * ref[i];
        if (fabs(d) > *maxdiff) *maxdiff = fabs(d);
    }
    return ss > 0 ? se / ss : se;
}

/* NMSE against dequantize-then-dot with f32 activations: the 8-bit activations' error, which
 * the outliers (8x, one value in 97) dominate: measured 4.5e-5 (q4_1) .. 3.6e-4 (q6_K) on this
 * data; f32 activations: rounding only (measured < 1e-13). */
static double act_bound(lb_act_kind k) {
    return k == LB_ACT_F32 ? 1e-10 : 1e-3;
}

/* The tiling invariants of a kernel's result out (nr x nc, activations xa of as bytes a row):
 * the same bits whatever the other rows (thread splits) and however the columns are split
 * (5 + the rest); one column (generation) accumulates in another order: the same values
 * (refd) to rounding, and the same bits for each row alone. */
static void check_tiling(const lb_qdot *ks, const problem *p, const uint8_t *xa, size_t as, const float *out,
                         const double *refd) {
    double md;
    for (int64_t r = 0; r < p->nr; r++) {
        float v[NC];
        ks->gemm(p->n, p->w + (size_t)r * p->ws, p->ws, 1, xa, as, p->nc, v, 1);
        for (int64_t c = 0; c < p->nc; c++) assert_memory_equal(&v[c], &out[c * p->nr + r], sizeof(float));
    }
    float part[NR * NC];
    ks->gemm(p->n, p->w, p->ws, p->nr, xa, as, 5, part, p->nr);
    ks->gemm(p->n, p->w, p->ws, p->nr, xa + 5 * as, as, p->nc - 5, part + 5 * p->nr, p->nr);
    assert_memory_equal(part, out, sizeof(float) * (size_t)(p->nr * p->nc));
    for (int64_t c = 0; c < p->nc; c++) {
        float one[NR], v;
        ks->gemm(p->n, p->w, p->ws, p->nr, xa + (size_t)c * as, as, 1, one, p->nr);
        assert_true(nmse(one, refd + c * p->nr, p->nr, &md) < 1e-10);
        for (int64_t r = 0; r < p->nr; r++) {
            ks->gemm(p->n, p->w + (size_t)r * p->ws, p->ws, 1, xa + (size_t)c * as, as, 1, &v, 1);
            assert_memory_equal(&v, &one[r], sizeof v);
        }
    }
}

static void test_activation_quantizers(void **state) {
    (void)state;
    printf("# seed %#llx, kernels chosen: %s\n", (unsigned long long)g_rng, lb_isa_name(lb_qdot_isa()));
    for (int kind = LB_ACT_Q8A; kind <= LB_ACT_Q8K; kind++) {
        const int64_t n = 256 * 5;
        float        *x = malloc((size_t)n * sizeof *x);
        fill(x, n, 3.0f);
        x[17] = 0.5f / 127.0f * 3.0f; /* near a rounding tie */
        for (int64_t j = 512; j < 768; j++) x[j] = 0.0f; /* an all-zero block: d = 0, no NaN */
        const size_t rs = lb_act_row_size((lb_act_kind)kind, n);
        uint8_t     *r  = malloc(rs), *s = malloc(rs);
        lb_quantize_act_get_isa((lb_act_kind)kind, LB_ISA_REF)(r, x, n);
        for (int isa = 1; isa < LB_ISA_COUNT; isa++) {
            const lb_quantize_act_fn f = lb_quantize_act_get_isa((lb_act_kind)kind, (lb_isa)isa);
            if (!f) continue;
            memset(s, 0xAA, rs);
            f(s, x, n);
            assert_memory_equal(r, s, rs);
            printf("# activations %s: %s = scalar, byte for byte\n",
                   kind == LB_ACT_Q8A ? "q8a" : "q8k", lb_isa_name((lb_isa)isa));
        }
        free(x), free(r), free(s);
    }
}

static void test_every_kernel(void **state) {
    (void)state;
    int n_checked = 0, n_packed = 0;
    for (int ti = 0; ti < LB_TYPE_COUNT; ti++) {
        const lb_type  t  = (lb_type)ti;
        const lb_qdot *kr = lb_qdot_get_isa(t, LB_ISA_REF);
        if (!kr) continue;
        double worst_act = 0, worst_simd = 0;
        for (int k = 0; k < 4; k++) {
            problem p;
            problem_init(&p, t, test_len(t, k), NR, NC);
            float *out = malloc((size_t)(p.nr * p.nc) * sizeof *out);
            float *ref = malloc((size_t)(p.nr * p.nc) * sizeof *ref);
            double md;
            kr->gemm(p.n, p.w, p.ws, p.nr, p.xa, p.as, p.nc, ref, p.nr);
            const double e_ref = nmse(ref, p.ref, p.nr * p.nc, &md);
            if (e_ref > worst_act) worst_act = e_ref;
            if (e_ref >= act_bound(kr->act))
                printf("# %s n=%lld: scalar vs dequantize-then-dot NMSE %.3g (max diff %.3g)\n",
                       lb_type_name(t), (long long)p.n, e_ref, md);
            assert_true(e_ref < act_bound(kr->act));
            double *refd = malloc((size_t)(p.nr * p.nc) * sizeof *refd);
            for (int64_t i = 0; i < p.nr * p.nc; i++) refd[i] = ref[i];
            for (int isa = 1; isa < LB_ISA_COUNT; isa++) {
                const lb_qdot *ks = lb_qdot_get_isa(t, (lb_isa)isa);
                if (!ks) continue;
                assert_int_equal(ks->act, kr->act);
                ks->gemm(p.n, p.w, p.ws, p.nr, p.xa, p.as, p.nc, out, p.nr);
                const double e = nmse(out, refd, p.nr * p.nc, &md);
                if (e > worst_simd) worst_simd = e;
                if (e >= 1e-10)
                    printf("# %s n=%lld %s vs scalar: NMSE %.3g, max diff %.3g; first: %g vs %g\n",
                           lb_type_name(t), (long long)p.n, lb_isa_name((lb_isa)isa), e, md,
                           (double)out[0], (double)ref[0]);
                assert_true(e < 1e-10);
                assert_true(nmse(out, p.ref, p.nr * p.nc, &md) < act_bound(ks->act));
                check_tiling(ks, &p, p.xa, p.as, out, refd);
                if (ks->gemm_packed) { /* 8 packed rows + 3 in place: one column's bits */
                    const size_t pz = lb_pack_size(t, p.n, p.nr);
                    uint8_t     *pk = malloc(pz);
                    lb_pack_rows(t, pk, p.w, p.n, p.nr);
                    float pout[NR * NC], one[NR];
                    ks->gemm_packed(p.n, pk, p.nr / 8, p.w + (size_t)(p.nr / 8 * 8) * p.ws, p.ws,
                                    p.nr % 8, p.xa, p.as, p.nc, pout, p.nr);
                    for (int64_t c = 0; c < p.nc; c++) {
                        ks->gemm(p.n, p.w, p.ws, p.nr, p.xa + (size_t)c * p.as, p.as, 1, one, p.nr);
                        assert_memory_equal(one, pout + c * p.nr, sizeof one);
                        ks->gemm_packed(p.n, pk, p.nr / 8, p.w + (size_t)(p.nr / 8 * 8) * p.ws, p.ws,
                                        p.nr % 8, p.xa + (size_t)c * p.as, p.as, 1, one, p.nr);
                        assert_memory_equal(one, pout + c * p.nr, sizeof one);
                    }
                    free(pk);
                    n_packed++;
                }
                n_checked++;
            }
            free(refd), free(out), free(ref);
            problem_free(&p);
        }
        printf("# %-7s act %-3s: scalar vs dequantize-then-dot NMSE <= %.2g; SIMD vs scalar <= %.2g\n",
               lb_type_name(t), kr->act == LB_ACT_F32 ? "f32" : kr->act == LB_ACT_Q8A ? "q8a" : "q8k",
               worst_act, worst_simd);
    }
    printf("# %d SIMD kernel/length pairs checked against the scalar twins, %d packed\n", n_checked,
           n_packed);
}

/* Q8_0 levels at -128 (a file may hold them) and activations at +-127: no int16 saturation */
static void test_extremes(void **state) {
    (void)state;
    const int64_t n = 32 * 3;
    lb_block_q8_0 w[3];
    float         x[96];
    for (int b = 0; b < 3; b++) {
        w[b].d = lb_f32_to_f16(0.01f);
        for (int j = 0; j < 32; j++) w[b].qs[j] = (int8_t)(j % 2 ? -128 : 127);
    }
    for (int j = 0; j < 96; j++) x[j] = j % 2 ? -1.0f : 1.0f;
    uint8_t xa[3 * sizeof(lb_block_q8a)];
    lb_quantize_act_get_isa(LB_ACT_Q8A, LB_ISA_REF)(xa, x, n);
    float ref;
    lb_qdot_get_isa(LB_TYPE_Q8_0, LB_ISA_REF)->gemm(n, w, sizeof w, 1, xa, sizeof xa, 1, &ref, 1);
    const double want = 3 * 0.01 * lb_f16_to_f32(lb_f32_to_f16(0.01f)) / 0.01 * (16 * 127 + 16 * 128) * (1.0 / 127) * 127;
    assert_true(fabs(ref - want) < 1e-3 * fabs(want));
    for (int isa = 1; isa < LB_ISA_COUNT; isa++) {
        const lb_qdot *k = lb_qdot_get_isa(LB_TYPE_Q8_0, (lb_isa)isa);
        if (!k) continue;
        float v;
        k->gemm(n, w, sizeof w, 1, xa, sizeof xa, 1, &v, 1);
        assert_true(fabsf(v - ref) <= 1e-6f * fabsf(ref));
    }
}

/* A prompt-sized product through the packed kernels: enough columns that the 512-bit kernels
 * split them into blocks (2816 bytes of Q8 activations a column at n = 2048, 100 columns >
 * 256 KiB), two pairs of groups and an odd one; Q8_0 with levels at -128 and X2_0 at -2 too.
 * Every column has the bits of one-column generation on the same ISA, and stays at the
 * scalar's values. */
static void test_packed_prompt(void **state) {
    (void)state;
    enum { PNR = 40 };
    const int64_t n = 2048, nr = PNR, nc = 100;
    int           n_checked = 0;
    for (int ti = 0; ti < LB_TYPE_COUNT; ti++) {
        const lb_type  t  = (lb_type)ti;
        const lb_qdot *ks = lb_qdot_get(t), *kr = lb_qdot_get_isa(t, LB_ISA_REF);
        if (!ks || !ks->gemm_packed) continue;
        problem p;
        problem_init(&p, t, n, nr, nc);
        if (t == LB_TYPE_Q8_0)
            for (int64_t r = 0; r < nr; r++)
                for (int64_t j = r % 7; j < n; j += 61) ((lb_block_q8_0 *)(p.w + (size_t)r * p.ws))[j / 32].qs[j % 32] = -128;
        if (t == LB_TYPE_X2_0) /* level -2 (u = 0), which int2's two's complement holds */
            for (int64_t r = 0; r < nr; r++)
                for (int64_t j = r % 5; j < n; j += 7)
                    ((lb_block_x2_0 *)(p.w + (size_t)r * p.ws))[j / 32].qs[j % 8] &= (uint8_t) ~(3u << 2 * (j % 32 / 8));
        uint8_t *pk   = malloc(lb_pack_size(t, n, nr));
        float   *out  = malloc((size_t)(nr * nc) * sizeof *out);
        float   *ref  = malloc((size_t)(nr * nc) * sizeof *ref);
        double  *refd = malloc((size_t)(nr * nc) * sizeof *refd);
        float    one[PNR];
        lb_pack_rows(t, pk, p.w, n, nr);
        ks->gemm_packed(n, pk, nr / 8, NULL, p.ws, 0, p.xa, p.as, nc, out, nr);
        kr->gemm(n, p.w, p.ws, nr, p.xa, p.as, nc, ref, nr);
        for (int64_t i = 0; i < nr * nc; i++) refd[i] = ref[i];
        double md;
        assert_true(nmse(out, refd, nr * nc, &md) < 1e-10);
        for (int64_t c = 0; c < nc; c++) {
            ks->gemm(n, p.w, p.ws, nr, p.xa + (size_t)c * p.as, p.as, 1, one, nr);
            assert_memory_equal(one, out + c * nr, sizeof(float) * (size_t)nr);
        }
        n_checked++;
        free(pk), free(out), free(ref), free(refd);
        problem_free(&p);
    }
    printf("# %d packed types: %lld columns, %lld rows at n = %lld give one column's bits (%s)\n",
           n_checked, (long long)nc, (long long)nr, (long long)n, lb_isa_name(lb_qdot_isa()));
    assert_true(n_checked >= 5 || lb_qdot_isa() == LB_ISA_REF);
}

/* F16 and BF16 rows against a prompt's f32 activations: at n = 8200 (a masked last step) the
 * 512-bit kernel takes 12 rows a block, so 30 rows are three blocks, 15 columns two tiles and
 * a remainder; each row alone gives the same bits, and every value stays at the scalar's. */
static void test_f16_prompt(void **state) {
    (void)state;
    const int64_t n = 8200, nr = 30, nc = 15;
    const lb_type types[] = { LB_TYPE_F16, LB_TYPE_BF16 };
    for (size_t ti = 0; ti < 2; ti++) {
        const lb_type  t  = types[ti];
        const lb_qdot *ks = lb_qdot_get(t), *kr = lb_qdot_get_isa(t, LB_ISA_REF);
        assert_non_null(ks), assert_non_null(kr);
        problem p;
        problem_init(&p, t, n, nr, nc);
        float  *out = malloc((size_t)(nr * nc) * sizeof *out), *ref = malloc((size_t)(nr * nc) * sizeof *ref);
        double *refd = malloc((size_t)(nr * nc) * sizeof *refd), md;
        float   v[15];
        ks->gemm(n, p.w, p.ws, nr, p.xa, p.as, nc, out, nr);
        kr->gemm(n, p.w, p.ws, nr, p.xa, p.as, nc, ref, nr);
        for (int64_t i = 0; i < nr * nc; i++) refd[i] = ref[i];
        assert_true(nmse(out, refd, nr * nc, &md) < 1e-10);
        for (int64_t r = 0; r < nr; r++) {
            ks->gemm(n, p.w + (size_t)r * p.ws, p.ws, 1, p.xa, p.as, nc, v, 1);
            for (int64_t c = 0; c < nc; c++) assert_memory_equal(&v[c], &out[c * nr + r], sizeof(float));
        }
        printf("# %s: %lld rows x %lld columns at n = %lld: each row's bits alone (%s)\n", lb_type_name(t),
               (long long)nr, (long long)nc, (long long)n, lb_isa_name(lb_qdot_isa()));
        free(out), free(ref), free(refd);
        problem_free(&p);
    }
}

/* FAST mode's kernels on activations rounded to bf16 (lb_qdot_table.fast): every ISA's
 * rounding gives the scalar one's bytes (ties, NaN, infinities, subnormals, a masked tail);
 * every ISA's kernel gives the scalar twin's bits at odd lengths (1, 7, 33, 173 and a
 * prompt's 8200: chunks and an odd last value), 27 rows x 13 columns (one column: its values),
 * gives each row's bits alone and the same bits however the columns are split; the twin is the exact product
 * of the rounded values (so near the f32 one, within bf16's rounding of the activations). */
static void test_fast_kernels(void **state) {
    (void)state;
    const int64_t m = 1000 + 13;
    float        *x = malloc((size_t)m * sizeof *x);
    fill(x, m, 3.0f);
    const uint32_t special[] = { 0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0xbf808000u, 0x7fc00001u, 0xff800001u,
                                 0x7f800000u, 0xff800000u, 0x00000001u, 0x80008000u, 0x7f7fffffu, 0x007fffffu };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        memcpy(&x[3 * i], &special[i], 4);
        memcpy(&x[m - 1 - i], &special[i], 4); /* in the masked tail too */
    }
    uint16_t *r = malloc((size_t)m * 2), *g = malloc((size_t)m * 2);
    lb_quantize_act_get_isa(LB_ACT_BF16, LB_ISA_REF)(r, x, m);
    for (int64_t j = 0; j < m; j++) assert_int_equal(r[j], lb_f32_to_bf16(x[j]));
    assert_int_equal(r[0], 0x3f80), assert_int_equal(r[3], 0x3f82); /* ties to even */
    for (int isa = 1; isa < LB_ISA_COUNT; isa++) {
        const lb_quantize_act_fn f = lb_quantize_act_get_isa(LB_ACT_BF16, (lb_isa)isa);
        if (!f) continue;
        memset(g, 0x55, (size_t)m * 2);
        f(g, x, m);
        assert_memory_equal(g, r, (size_t)m * 2);
        printf("# activations bf16: %s = scalar, byte for byte\n", lb_isa_name((lb_isa)isa));
    }
    free(x), free(r), free(g);

    const int64_t lens[] = { 1, 7, 33, 173, 8200 };
    int           n_checked = 0;
    assert_non_null(lb_qdot_get_fast_isa(LB_TYPE_BF16, LB_ISA_REF));
    for (int ti = 0; ti < LB_TYPE_COUNT; ti++) {
        const lb_qdot *kr = lb_qdot_get_fast_isa((lb_type)ti, LB_ISA_REF);
        if (!kr) continue;
        assert_int_equal(kr->act, LB_ACT_BF16);
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            problem p; /* p.xa: f32 rows; round them */
            problem_init(&p, (lb_type)ti, lens[li], NR, NC);
            const size_t as = lb_act_row_size(LB_ACT_BF16, p.n);
            uint8_t     *xa = malloc(as * NC);
            for (int64_t c = 0; c < NC; c++)
                lb_quantize_act_get_isa(LB_ACT_BF16, LB_ISA_REF)(xa + (size_t)c * as, p.x + c * p.n, p.n);
            float  ref[NR * NC], out[NR * NC];
            double refd[NR * NC], md;
            kr->gemm(p.n, p.w, p.ws, NR, xa, as, NC, ref, NR);
            assert_true(nmse(ref, p.ref, NR * NC, &md) < 1e-4);
            for (int64_t i = 0; i < NR * NC; i++) refd[i] = ref[i];
            for (int isa = 1; isa < LB_ISA_COUNT; isa++) {
                const lb_qdot *ks = lb_qdot_get_fast_isa((lb_type)ti, (lb_isa)isa);
                if (!ks) continue;
                assert_int_equal(ks->act, LB_ACT_BF16);
                ks->gemm(p.n, p.w, p.ws, NR, xa, as, NC, out, NR);
                assert_true(nmse(out, refd, NR * NC, &md) < 1e-10);
                assert_memory_equal(out, ref, sizeof out); /* columns together: the twin's bits */
                check_tiling(ks, &p, xa, as, out, refd);
                n_checked++;
            }
            free(xa);
            problem_free(&p);
        }
        printf("# %s on bf16 activations: scalar twin within bf16 rounding of the f32 product\n",
               lb_type_name((lb_type)ti));
    }
    /* BF16 prompts past one tile of 48 rows and 8 columns: 53 rows x 19 columns, n = 2053 (two
     * packed chunks and an odd last value), the twin's bits; the rows and columns split apart */
    for (int isa = 1; isa < LB_ISA_COUNT; isa++) {
        const lb_qdot *ks = lb_qdot_get_fast_isa(LB_TYPE_BF16, (lb_isa)isa), *kr = lb_qdot_get_fast_isa(LB_TYPE_BF16, LB_ISA_REF);
        if (!ks) continue;
        enum { R = 53, C = 19, N = 2053 };
        uint16_t *w = malloc((size_t)R * N * 2), *a = malloc((size_t)C * N * 2);
        float    *ref = malloc(R * C * sizeof *ref), *out = malloc(R * C * sizeof *out);
        for (int i = 0; i < R * N; i++) w[i] = lb_f32_to_bf16(frand() * 0.05f);
        for (int i = 0; i < C * N; i++) a[i] = lb_f32_to_bf16(frand());
        kr->gemm(N, w, 2 * N, R, a, 2 * N, C, ref, R);
        ks->gemm(N, w, 2 * N, R, a, 2 * N, C, out, R);
        assert_memory_equal(out, ref, R * C * sizeof *out);
        ks->gemm(N, w, 2 * N, 50, a, 2 * N, 11, out, R); /* rows 0..49 x columns 0..10, then the rest */
        ks->gemm(N, w + 50 * N, 2 * N, R - 50, a, 2 * N, 11, out + 50, R);
        ks->gemm(N, w, 2 * N, R, a + 11 * N, 2 * N, C - 11, out + 11 * R, R);
        assert_memory_equal(out, ref, R * C * sizeof *out);
        free(w), free(a), free(ref), free(out);
        n_checked++;
    }
    printf("# %d SIMD fast-kernel/length pairs checked against the scalar twin\n", n_checked);
    assert_true(n_checked >= 5 || !lb_isa_runs(LB_ISA_AVX512BF16));
    /* FAST mode takes the SIMD fast kernel where there is one, never the scalar twin */
    const lb_qdot *kf = lb_qdot_get_fast(LB_TYPE_BF16);
    const bool     simd = lb_qdot_isa() > LB_ISA_REF && lb_qdot_get_fast_isa(LB_TYPE_BF16, lb_qdot_isa());
    assert_int_equal(kf->act, simd ? LB_ACT_BF16 : LB_ACT_F32);
}

/* W8A8 rows { f32 d; int8 q[n] } */
static void i8_rows(uint8_t *rows, size_t stride, int64_t nr, int64_t n, int lo, float dscale) {
    for (int64_t r = 0; r < nr; r++) {
        const float d = dscale * (1.5f + frand());
        memcpy(rows + (size_t)r * stride, &d, 4);
        int8_t *q = (int8_t *)(rows + (size_t)r * stride + 4);
        for (int64_t j = 0; j < n; j++) {
            int v = (int)lroundf(frand() * 127.0f);
            if ((j * 31 + r) % 53 == 0) v = lo; /* extreme levels now and then */
            if ((j * 17 + r) % 59 == 0) v = 127;
            q[j] = (int8_t)v;
        }
    }
}

/* The W8A8 product: every ISA gives the scalar kernel's bits (the int32 sum is exact), at odd
 * lengths (a tail past the last 32), for any tile split; the scalar one is the exact integer
 * sum times the two scales; weights at -128 and activations at +-127 do not saturate. */
static void test_w8a8_kernels(void **state) {
    (void)state;
    const int64_t lens[] = { 1, 7, 31, 32, 33, 63, 173, 1000, 4096 + 17 };
    int           n_checked = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li];
        const size_t  ws = lb_row_size(LB_TYPE_INT8_PC, n), as = lb_act_row_size(LB_ACT_I8, n);
        assert_int_equal(ws, 4 + (size_t)n);
        uint8_t *w = malloc(ws * NR), *a = malloc(as * NC);
        i8_rows(w, ws, NR, n, -128, 0.01f); /* a file may hold -128 */
        i8_rows(a, as, NC, n, -127, 0.05f); /* the quantizer never gives -128 */
        float ref[NR * NC], out[NR * NC], one[NR], v;
        lb_gemm_i8_get_isa(LB_ISA_REF)(n, w, ws, NR, a, as, NC, ref, NR);
        for (int64_t r = 0; r < NR; r++)
            for (int64_t c = 0; c < NC; c++) {
                const int8_t *qw = (const int8_t *)(w + (size_t)r * ws + 4), *qa = (const int8_t *)(a + (size_t)c * as + 4);
                int64_t       s  = 0;
                float         dw, da;
                for (int64_t j = 0; j < n; j++) s += qw[j] * qa[j];
                memcpy(&dw, w + (size_t)r * ws, 4);
                memcpy(&da, a + (size_t)c * as, 4);
                const float want = (dw * da) * (float)s;
                assert_memory_equal(&want, &ref[c * NR + r], sizeof want);
            }
        for (int isa = 0; isa < LB_ISA_COUNT; isa++) {
            const lb_gemm_i8_fn g = lb_gemm_i8_get_isa((lb_isa)isa);
            if (!g) continue;
            memset(out, 0, sizeof out);
            g(n, w, ws, NR, a, as, NC, out, NR);
            assert_memory_equal(out, ref, sizeof out);
            for (int64_t c = 0; c < NC; c++) { /* one column; one row at a time */
                g(n, w, ws, NR, a + (size_t)c * as, as, 1, one, NR);
                assert_memory_equal(one, ref + c * NR, sizeof one);
                for (int64_t r = 0; r < NR; r++) {
                    g(n, w + (size_t)r * ws, ws, 1, a + (size_t)c * as, as, 1, &v, 1);
                    assert_memory_equal(&v, &ref[c * NR + r], sizeof v);
                }
            }
            g(n, w, ws, NR, a, as, 5, out, NR); /* columns split 5 + 4 */
            g(n, w, ws, NR, a + 5 * as, as, 4, out + 5 * NR, NR);
            assert_memory_equal(out, ref, sizeof out);
            n_checked++;
        }
        free(w), free(a);
    }
    /* the worst case: every pair at +-128 * 127 */
    const int64_t n  = 4096;
    const size_t  ws = lb_row_size(LB_TYPE_INT8_PC, n), as = lb_act_row_size(LB_ACT_I8, n);
    uint8_t      *w = calloc(1, ws), *a = calloc(1, as);
    const float   one = 1.0f;
    memcpy(w, &one, 4), memcpy(a, &one, 4);
    for (int64_t j = 0; j < n; j++) ((int8_t *)(w + 4))[j] = -128, ((int8_t *)(a + 4))[j] = -127;
    for (int isa = 0; isa < LB_ISA_COUNT; isa++) {
        const lb_gemm_i8_fn g = lb_gemm_i8_get_isa((lb_isa)isa);
        float               v;
        if (!g) continue;
        g(n, w, ws, 1, a, as, 1, &v, 1);
        assert_true(v == (float)(n * 128 * 127));
    }
    free(w), free(a);
    printf("# W8A8 int8 x int8: %d ISA/length pairs give the scalar kernel's bits (%s chosen)\n",
           n_checked, lb_isa_name(lb_qdot_isa()));
}

/* The Gram kernel (lb_gram_pairs_fn) on token pairs packed as qdot.h says, an odd token count
 * and column count (padded pairs and panels): the scalar twin against an f64 sum, every ISA's
 * kernel against the twin bit for bit (values far from the subnormals vdpbf16ps flushes), for
 * the whole matrix and for a sub-block at the allowed offsets; nothing written past the block. */
static void test_gram_kernels(void **state) {
    (void)state;
    enum { T = 37, N = 173, NP = (T + 1) / 2, NQ = (N + LB_GRAM_PANEL - 1) / LB_GRAM_PANEL };
    static float    X[T * N], Y[T * N], ref[N * N], out[N * N];
    static uint32_t P[NQ * NP * LB_GRAM_PANEL], Q[NQ * NP * LB_GRAM_PANEL];
    for (int i = 0; i < T * N; i++) X[i] = frand() * 4.0f, Y[i] = frand() * 0.25f;
    for (int q = 0; q < NQ; q++)
        for (int p = 0; p < NP; p++)
            for (int l = 0; l < LB_GRAM_PANEL; l++) {
                const int j = q * LB_GRAM_PANEL + l, k = (q * NP + p) * LB_GRAM_PANEL + l;
                uint32_t  x = 0, y = 0;
                for (int h = 0; h < 2; h++)
                    if (j < N && 2 * p + h < T) {
                        x |= (uint32_t)lb_f32_to_bf16(X[(2 * p + h) * N + j]) << 16 * h;
                        y |= (uint32_t)lb_f32_to_bf16(Y[(2 * p + h) * N + j]) << 16 * h;
                    }
                P[k] = x, Q[k] = y;
            }
    const lb_gram_pairs_fn twin = lb_gram_pairs_get_isa(LB_ISA_REF);
    assert_non_null(twin);
    twin(NP, P, 0, N, Q, 0, N, ref, N);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int t = 0; t < T; t++) {
                const double a = lb_bf16_to_f32(lb_f32_to_bf16(X[t * N + i])), b = lb_bf16_to_f32(lb_f32_to_bf16(Y[t * N + j]));
                s += a * b, mag += fabs(a * b);
            }
            assert_true(fabs(ref[i * N + j] - s) <= 1e-6 * mag + 1e-30);
        }
    int n_checked = 0;
    for (int isa = 1; isa < LB_ISA_COUNT; isa++) {
        const lb_gram_pairs_fn g = lb_gram_pairs_get_isa((lb_isa)isa);
        if (!g) continue;
        memset(out, 0, sizeof out);
        g(NP, P, 0, N, Q, 0, N, out, N);
        assert_memory_equal(out, ref, sizeof out);
        const int i0 = 8, nr = 13, j0 = 16, nc = 50; /* ragged rows and columns, ldo N */
        for (int k = 0; k < N * N; k++) out[k] = -7.0f;
        g(NP, P, i0, nr, Q, j0, nc, out, N);
        for (int r = 0; r < N; r++)
            for (int c = 0; c < N; c++) {
                const float want = r < nr && c < nc ? ref[(i0 + r) * N + j0 + c] : -7.0f;
                assert_memory_equal(&out[r * N + c], &want, sizeof want);
            }
        n_checked++;
    }
    printf("# Gram on token pairs: %d SIMD kernels give the scalar twin's bits\n", n_checked);
}

/* The W8A8 activation quantizer: roundf (ties away from zero), clamped to +-127, NaN to
 * -127, on every ISA byte for byte, tails included */
static void test_w8a8_quantizer(void **state) {
    (void)state;
    const int64_t n = 1000 + 13;
    float        *x = malloc((size_t)n * sizeof *x);
    const float   id = 32.0f; /* a power of two: x * id is exact, ties are ties */
    fill(x, n, 2.0f);
    for (int64_t j = 0; j < 40; j++) x[j] = ((float)j - 20.0f + 0.5f) / id; /* ties, both signs */
    x[41] = 0.49999997f / id, x[42] = -0.49999997f / id, x[43] = -0.0f;
    x[44] = NAN, x[45] = INFINITY, x[46] = -INFINITY, x[47] = 1e30f, x[48] = -1e30f;
    x[49] = 126.5f / id, x[50] = -127.49f / id, x[51] = 200.0f / id;
    x[n - 1] = NAN, x[n - 2] = 2.5f / id; /* in the scalar tail too */
    int8_t *ref = malloc((size_t)n), *got = malloc((size_t)n);
    for (int64_t j = 0; j < n; j++) {
        const float t = x[j] * id;
        ref[j] = (int8_t)(isnan(t) ? -127 : t >= 127.0f ? 127 : t <= -127.0f ? -127 : (int)roundf(t));
    }
    assert_int_equal(ref[45], 127), assert_int_equal(ref[44], -127), assert_int_equal(ref[41], 0);
    for (int isa = 0; isa < LB_ISA_COUNT; isa++) {
        const lb_quantize_i8_fn f = lb_quantize_i8_get_isa((lb_isa)isa);
        if (!f) continue;
        memset(got, 0x55, (size_t)n);
        f(got, x, n, id);
        for (int64_t j = 0; j < n; j++)
            if (got[j] != ref[j]) printf("# %s: x[%lld] * id = %.9g -> %d, want %d\n", lb_isa_name((lb_isa)isa),
                                         (long long)j, (double)(x[j] * id), got[j], ref[j]);
        assert_memory_equal(got, ref, (size_t)n);
    }
    free(x), free(ref), free(got);
}

/* the SIMD f16 / bf16 conversions give the scalar ones' bits for every 16-bit pattern (a NaN
 * stays a NaN, though F16C sets the quiet bit of a signalling one) */
static void test_conversions(void **state) {
    (void)state;
    const int64_t n   = 65536 + 5; /* a tail past the last vector */
    uint16_t     *h   = malloc((size_t)n * sizeof *h);
    float        *ref = malloc((size_t)n * sizeof *ref), *got = malloc((size_t)n * sizeof *got);
    for (int64_t i = 0; i < n; i++) h[i] = (uint16_t)(i * 40503u);
    const lb_type types[] = { LB_TYPE_F16, LB_TYPE_BF16 };
    for (int k = 0; k < 2; k++) {
        lb_type_get_traits(types[k])->to_float(ref, h, n);
        lb_qdot_to_float(types[k])(got, h, n);
        for (int64_t i = 0; i < n; i++) /* F16C quiets signalling NaNs: NaN stays NaN */
            if (!(isnan(ref[i]) && isnan(got[i]))) assert_memory_equal(&ref[i], &got[i], sizeof *ref);
    }
    free(h), free(ref), free(got);
    /* INT8_PC rows (every level, a tail past the last vector) */
    const int64_t m = 256 + 7;
    uint8_t       row[4 + 256 + 7];
    float         a[256 + 7], b[256 + 7];
    const float   d = -0.0123f;
    memcpy(row, &d, 4);
    for (int64_t j = 0; j < m; j++) row[4 + j] = (uint8_t)j;
    lb_type_get_traits(LB_TYPE_INT8_PC)->to_float(a, row, m);
    lb_qdot_to_float(LB_TYPE_INT8_PC)(b, row, m);
    assert_memory_equal(a, b, sizeof a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_quantizers),
        cmocka_unit_test(test_every_kernel),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_packed_prompt),
        cmocka_unit_test(test_f16_prompt),
        cmocka_unit_test(test_fast_kernels),
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_w8a8_kernels),
        cmocka_unit_test(test_gram_kernels),
        cmocka_unit_test(test_w8a8_quantizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
