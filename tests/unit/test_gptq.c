/* GPTQ: on a layer with strongly correlated inputs its output error is well below
 * round-to-nearest's; the blocked (lazy-batch) implementation agrees with a slow
 * column-by-column reference; act-order keeps every value in its own column; the i-quants'
 * lattices (codewords of 8 or 4 values) are well below RTN too; types without grid access
 * still improve on RTN; the stored bytes are what W receives; with uncorrelated
 * inputs (diagonal H: nothing to compensate) types that round as their quantizer does
 * (INTn, NF4, FP8) store exactly RTN's bytes. */
#include <math.h>

#include "formats/grid.h"
#include "quant/gram.h"
#include "lowbit/quant.h"
#include "test_util.h"

#define N_OUT 32
#define N_IN  256
#define N_TOK 1024

static uint64_t g_rng = 12345;
static double   gauss(void) { return test_gauss(&g_rng); }

/* W ~ N(0, 1) with a few outlier columns; X = Z A: correlated channels of varied scale */
static void make_layer(float *W, double *H) {
    static float X[N_TOK * N_IN], A[N_IN * N_IN];
    for (int i = 0; i < N_OUT * N_IN; i++) W[i] = (float)gauss() * ((i % N_IN) % 29 == 0 ? 4.0f : 1.0f);
    for (int i = 0; i < N_IN * N_IN; i++) A[i] = (float)gauss() * (i / N_IN == i % N_IN ? 1.0f : 0.3f);
    for (int t = 0; t < N_TOK; t++) {
        float z[N_IN];
        for (int i = 0; i < N_IN; i++) z[i] = (float)gauss() * (1.0f + (float)(i % 7));
        for (int j = 0; j < N_IN; j++) {
            float s = 0;
            for (int i = 0; i < N_IN; i++) s += z[i] * A[i * N_IN + j];
            X[t * N_IN + j] = s;
        }
    }
    for (int i = 0; i < N_IN; i++)
        for (int j = 0; j < N_IN; j++) {
            double s = 0;
            for (int t = 0; t < N_TOK; t++) s += (double)X[t * N_IN + i] * X[t * N_IN + j];
            H[i * N_IN + j] = s;
        }
}

static double rtn_error(const float *W, const double *H, lb_type t) {
    static float Wq[N_OUT * N_IN];
    static uint8_t q[N_OUT * N_IN * 2];
    const size_t rs = lb_row_size(t, N_IN);
    lb_quantize_rows(t, q, W, N_OUT, N_IN, NULL);
    for (int r = 0; r < N_OUT; r++) lb_type_get_traits(t)->to_float(Wq + r * N_IN, q + r * rs, N_IN);
    return lb_output_error(W, Wq, N_OUT, N_IN, H);
}

static double gptq_error(const float *W, const double *H, lb_type t, bool act_order, float *Wq, uint8_t *q) {
    lb_error             err = { 0 };
    const lb_gptq_params p   = { .damp = 0.01, .block = 32, .act_order = act_order };
    memcpy(Wq, W, sizeof(float) * N_OUT * N_IN);
    assert_int_equal(lb_gptq_quantize(Wq, N_OUT, N_IN, H, t, &p, NULL, q, &err), LB_OK);
    return lb_output_error(W, Wq, N_OUT, N_IN, H);
}

static void test_gptq_beats_rtn(void **state) {
    (void)state;
    static float  W[N_OUT * N_IN], Wq[N_OUT * N_IN], chk[N_IN];
    static double H[N_IN * N_IN];
    static uint8_t q[N_OUT * N_IN * 2];
    make_layer(W, H);
    const lb_type types[] = { LB_TYPE_Q4_0, LB_TYPE_Q4_1, LB_TYPE_Q5_0, LB_TYPE_IQ4_NL, LB_TYPE_Q8_0,
                              LB_TYPE_Q4_K, LB_TYPE_Q3_K, LB_TYPE_Q2_K, LB_TYPE_Q5_K, LB_TYPE_Q6_K,
                              LB_TYPE_IQ4_XS, LB_TYPE_TQ2_0, LB_TYPE_INT3_G32, LB_TYPE_INT2_G32,
                              LB_TYPE_UINT3_G32, LB_TYPE_INT4_G128, LB_TYPE_UINT4_G64, LB_TYPE_INT8_G32,
                              LB_TYPE_INT3_PC, LB_TYPE_UINT4_PC, LB_TYPE_INT4_PT, LB_TYPE_UINT2_PT,
                              LB_TYPE_NF4, LB_TYPE_FP8_E4M3_PC, LB_TYPE_FP8_E5M2_PT,
                              LB_TYPE_IQ2_XXS, LB_TYPE_IQ2_XS, LB_TYPE_IQ2_S, LB_TYPE_IQ3_XXS,
                              LB_TYPE_IQ3_S, LB_TYPE_IQ1_S, LB_TYPE_IQ1_M };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const double rtn = rtn_error(W, H, types[k]);
        for (int ao = 0; ao < 2; ao++) {
            const double g = gptq_error(W, H, types[k], ao, Wq, q);
            printf("# %-12s %s output error: RTN %.5f, GPTQ %.5f (%.2fx)\n", lb_type_name(types[k]),
                   ao ? "act-order" : "         ", rtn, g, rtn / g);
            /* grid types: well below RTN (int2_g32 less so: three levels {-d, 0, d} with d the
             * group's max |w| leave little to compensate with); whole-block types: not worse
             * (a 256-block spanning the row is decided at its first column: that is RTN) */
            /* i-quants (vector grids): each codeword chosen 8 or 4 columns at a time under the
             * block metric, so well below RTN too */
            const double bound = lb_type_vgrid(types[k])            ? 0.75
                                 : !lb_type_grid(types[k])          ? 1.0001
                                 : types[k] == LB_TYPE_INT2_G32     ? 0.95
                                                                    : 0.75;
            assert_true(g < bound * rtn);
            /* the bytes are what W holds */
            const size_t rs = lb_row_size(types[k], N_IN);
            for (int r = 0; r < N_OUT; r++) {
                lb_type_get_traits(types[k])->to_float(chk, q + r * rs, N_IN);
                assert_memory_equal(chk, Wq + r * N_IN, sizeof chk);
            }
        }
    }
}

/* The paper's algorithm, one column at a time, every update applied at once, in double. */
static void reference_gptq(float *W, const double *H, lb_type t, uint8_t *q) {
    static double Hd[N_IN * N_IN], Wd[N_OUT * N_IN];
    const lb_grid_ops    *g  = lb_type_grid(t);
    const lb_type_traits *tr = lb_type_get_traits(t);
    const size_t          rs = lb_row_size(t, N_IN);
    double mean = 0;
    for (int i = 0; i < N_IN; i++) mean += H[i * N_IN + i] / N_IN;
    memcpy(Hd, H, sizeof Hd);
    for (int i = 0; i < N_IN; i++) Hd[i * N_IN + i] += 0.01 * mean;
    /* U = chol(H^-1) upper, by Gauss-Jordan inverse then Cholesky, all naive */
    static double inv[N_IN * N_IN], U[N_IN * N_IN];
    for (int i = 0; i < N_IN; i++)
        for (int j = 0; j < N_IN; j++) inv[i * N_IN + j] = i == j;
    for (int c = 0; c < N_IN; c++) {
        const double p = Hd[c * N_IN + c];
        for (int j = 0; j < N_IN; j++) Hd[c * N_IN + j] /= p, inv[c * N_IN + j] /= p;
        for (int r = 0; r < N_IN; r++) {
            if (r == c) continue;
            const double f = Hd[r * N_IN + c];
            for (int j = 0; j < N_IN; j++) Hd[r * N_IN + j] -= f * Hd[c * N_IN + j], inv[r * N_IN + j] -= f * inv[c * N_IN + j];
        }
    }
    memset(U, 0, sizeof U);
    for (int i = 0; i < N_IN; i++) { /* H^-1 = U^T U */
        double s = inv[i * N_IN + i];
        for (int k = 0; k < i; k++) s -= U[k * N_IN + i] * U[k * N_IN + i];
        U[i * N_IN + i] = sqrt(s);
        for (int j = i + 1; j < N_IN; j++) {
            double v = inv[i * N_IN + j];
            for (int k = 0; k < i; k++) v -= U[k * N_IN + i] * U[k * N_IN + j];
            U[i * N_IN + j] = v / U[i * N_IN + i];
        }
    }
    for (int i = 0; i < N_OUT * N_IN; i++) Wd[i] = W[i];
    const int bs = tr->block_size;
    for (int i = 0; i < N_IN; i++) {
        for (int r = 0; r < N_OUT; r++) {
            uint8_t *qb = q + (size_t)r * rs + (size_t)(i / bs) * tr->type_size;
            if (i % bs == 0) {
                float blk[32];
                for (int j = 0; j < bs; j++) blk[j] = (float)Wd[r * N_IN + i + j];
                lb_quantize_rows(t, qb, blk, 1, bs, NULL);
            }
            float lv[LB_GRID_MAX];
            const int32_t nl = g->levels(qb, i % bs, lv);
            const float   w  = (float)Wd[r * N_IN + i];
            int32_t       best = 0;
            for (int32_t l = 1; l < nl; l++)
                if (fabsf(lv[l] - w) < fabsf(lv[best] - w)) best = l;
            g->set_code(qb, i % bs, best);
            const double e = (Wd[r * N_IN + i] - lv[best]) / U[i * N_IN + i];
            for (int j = i + 1; j < N_IN; j++) Wd[r * N_IN + j] -= e * U[i * N_IN + j];
        }
    }
    for (int r = 0; r < N_OUT; r++) tr->to_float(W + r * N_IN, q + (size_t)r * rs, N_IN);
}

static void test_blocked_matches_reference(void **state) {
    (void)state;
    static float  W[N_OUT * N_IN], A[N_OUT * N_IN], Bm[N_OUT * N_IN];
    static double H[N_IN * N_IN];
    static uint8_t qa[N_OUT * N_IN], qb[N_OUT * N_IN];
    g_rng = 777;
    make_layer(W, H);
    memcpy(A, W, sizeof W);
    reference_gptq(A, H, LB_TYPE_Q4_0, qa);
    const double ea = lb_output_error(W, A, N_OUT, N_IN, H);
    const double eb = gptq_error(W, H, LB_TYPE_Q4_0, false, Bm, qb);
    int differ = 0;
    for (int i = 0; i < N_OUT * N_IN; i++) differ += A[i] != Bm[i];
    printf("# reference %.6f, blocked %.6f, %d of %d values differ (f32 vs f64 rounding ties)\n",
           ea, eb, differ, N_OUT * N_IN);
    assert_true(fabs(ea - eb) <= 0.02 * ea);
    assert_true(differ <= N_OUT * N_IN / 100);
}

/* act-order processes columns out of order; every stored value must stay in its column */
static void test_act_order_keeps_columns(void **state) {
    (void)state;
    static float  W[N_OUT * N_IN], Wq[N_OUT * N_IN];
    static double H[N_IN * N_IN];
    static uint8_t q[N_OUT * N_IN];
    g_rng = 4242;
    make_layer(W, H);
    gptq_error(W, H, LB_TYPE_IQ4_NL, true, Wq, q);
    for (int c = 0; c < N_IN; c++) { /* per column: quantized values track the originals */
        double sxy = 0, sxx = 0, syy = 0;
        for (int r = 0; r < N_OUT; r++) {
            const double x = W[r * N_IN + c], y = Wq[r * N_IN + c];
            sxy += x * y, sxx += x * x, syy += y * y;
        }
        assert_true(sxy / sqrt(sxx * syy + 1e-30) > 0.8);
    }
}

/* Diagonal H: U is diagonal, no rounding error moves to another column, and every block's
 * scales come from the original weights: GPTQ is RTN, byte for byte, for the types that
 * round as their quantizer does, in natural and in act order. */
static void test_diagonal_h_is_rtn(void **state) {
    (void)state;
    static float   W[N_OUT * N_IN], Wq[N_OUT * N_IN];
    static double  H[N_IN * N_IN];
    static uint8_t q[N_OUT * N_IN * 2], r[N_OUT * N_IN * 2];
    g_rng = 99;
    make_layer(W, H);
    for (int i = 0; i < N_IN; i++)
        for (int j = 0; j < N_IN; j++)
            if (i != j) H[i * N_IN + j] = 0;
    const lb_type types[] = { LB_TYPE_INT3_G32, LB_TYPE_UINT2_G32, LB_TYPE_INT8_G128, LB_TYPE_INT4_PC,
                              LB_TYPE_UINT3_PT, LB_TYPE_NF4, LB_TYPE_FP8_E4M3_PC, LB_TYPE_FP8_E5M2_PT };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const size_t bytes = lb_row_size(types[k], N_IN) * N_OUT;
        assert_non_null(lb_type_grid(types[k])->nearest);
        lb_quantize_rows(types[k], r, W, N_OUT, N_IN, NULL);
        for (int ao = 0; ao < 2; ao++) {
            memset(q, 0xa5, bytes);
            gptq_error(W, H, types[k], ao, Wq, q);
            assert_memory_equal(q, r, bytes);
        }
    }
}

/* The f32 target: X' = X + E, E an error correlated with X (what quantized layers before pass
 * on). GPTQ on the refit weights must come closer to the f32 outputs W X than GPTQ on W; with
 * X' = X the refit leaves W as it is and the cross error is the plain one. */
static void test_retarget(void **state) {
    (void)state;
    enum { T = 512 };
    static float  W[N_OUT * N_IN], W2[N_OUT * N_IN], Wq[N_OUT * N_IN], X[T * N_IN], Xq[T * N_IN];
    static double A[N_IN * N_IN], C[N_IN * N_IN], H[N_IN * N_IN];
    static uint8_t q[N_OUT * N_IN];
    lb_error       err = { 0 };
    g_rng              = 4242;
    for (int i = 0; i < N_OUT * N_IN; i++) W[i] = (float)gauss();
    for (int t = 0; t < T; t++)
        for (int j = 0; j < N_IN; j++) {
            X[t * N_IN + j]  = (float)gauss() * (1.0f + (float)(j % 5));
            Xq[t * N_IN + j] = X[t * N_IN + j] * (j % 3 ? 1.0f : 0.8f) + 0.3f * (float)gauss();
        }
    for (int i = 0; i < N_IN; i++)
        for (int j = 0; j < N_IN; j++) {
            double a = 0, c = 0, h = 0;
            for (int t = 0; t < T; t++) {
                a += (double)X[t * N_IN + i] * X[t * N_IN + j];
                c += (double)X[t * N_IN + i] * Xq[t * N_IN + j];
                h += (double)Xq[t * N_IN + i] * Xq[t * N_IN + j];
            }
            A[i * N_IN + j] = a, C[i * N_IN + j] = c, H[i * N_IN + j] = h;
        }
    const lb_gptq_params gp = { .damp = 0.01, .block = 128 };
    memcpy(Wq, W, sizeof W);
    assert_int_equal(lb_gptq_quantize(Wq, N_OUT, N_IN, H, LB_TYPE_Q4_0, &gp, NULL, q, &err), LB_OK);
    const double e_self = lb_output_error_cross(W, Wq, N_OUT, N_IN, A, C, H);
    memcpy(W2, W, sizeof W);
    assert_int_equal(lb_gptq_retarget(W2, N_OUT, N_IN, C, H, 0.01, &err), LB_OK);
    assert_int_equal(lb_gptq_quantize(W2, N_OUT, N_IN, H, LB_TYPE_Q4_0, &gp, NULL, q, &err), LB_OK);
    const double e_f32 = lb_output_error_cross(W, W2, N_OUT, N_IN, A, C, H);
    printf("# error against W X: GPTQ on W %.5f, on the refit W %.5f\n", e_self, e_f32);
    assert_true(e_f32 < 0.7 * e_self);
    /* X' = X: nothing to refit; the cross error is the plain one */
    memcpy(W2, W, sizeof W);
    assert_int_equal(lb_gptq_retarget(W2, N_OUT, N_IN, A, A, 0.01, &err), LB_OK);
    for (int i = 0; i < N_OUT * N_IN; i++) assert_true(fabsf(W2[i] - W[i]) <= 1e-4f * (1 + fabsf(W[i])));
    const double e1 = lb_output_error_cross(W, Wq, N_OUT, N_IN, A, A, A), e2 = lb_output_error(W, Wq, N_OUT, N_IN, A);
    assert_true(fabs(e1 - e2) <= 1e-9 + 1e-6 * e2);
}

/* One factor for every reader of an input (lb_gptq_factor): the refit on it, in act order and
 * with a dead column, solves (H' ) x = C^T w + lambda w as a plain f64 Gaussian elimination
 * does (H': the dead diagonal at 1, lambda = damp * mean(diag), the dead at 1), and so does the
 * refit by the factor's matrix M (lb_gptq_factor_refit_matrix), to f64's rounding; two matrices'
 * GPTQ on one factor write what lb_gptq_quantize writes; a factor of another damping or order
 * is refused, and so is a refit after its GPTQ. */
static void test_factor(void **state) {
    (void)state;
    enum { N = 64, M = 8 };
    static double H[N * N], C[N * N], S[N * (N + 1)];
    static float  W[M * N], Wf[M * N], Wa[M * N], Wb[M * N];
    static uint8_t qa[M * N], qb[M * N];
    lb_error err = { 0 };
    g_rng        = 777;
    for (int i = 0; i < N; i++)
        for (int j = 0; j <= i; j++) {
            double h = 0, c1 = 0, c2 = 0;
            for (int t = 0; t < 3 * N; t++) { /* H = Z^T Z, C = Z^T (Z + noise): correlated */
                const double zi = sin(0.37 * (t + 1) * (i + 1)) * (1 + i % 5), zj = sin(0.37 * (t + 1) * (j + 1)) * (1 + j % 5);
                h += zi * zj, c1 += zi * (zj + 0.1 * cos(t + j)), c2 += zj * (zi + 0.1 * cos(t + i));
            }
            H[i * N + j] = H[j * N + i] = h;
            C[i * N + j] = c1, C[j * N + i] = c2;
        }
    const int dead = 5; /* no signal: its row and column zero */
    for (int i = 0; i < N; i++) H[dead * N + i] = H[i * N + dead] = C[dead * N + i] = C[i * N + dead] = 0;
    for (int i = 0; i < M * N; i++) W[i] = (float)gauss();
    lb_gptq_factor *f = NULL;
    assert_int_equal(lb_gptq_factor_create(&f, H, N, 0.01, true, &err), LB_OK);
    memcpy(Wf, W, sizeof W);
    assert_int_equal(lb_gptq_retarget_f(Wf, M, C, f, &err), LB_OK);
    double mean = 0;
    for (int i = 0; i < N; i++) mean += H[i * N + i] > 0 ? H[i * N + i] : 1;
    const double lambda = 0.01 * mean / N;
    for (int r = 0; r < M; r++) { /* [H' | C^T w + lambda w] by elimination (H' is positive definite) */
        for (int i = 0; i < N; i++) {
            double b = lambda * W[r * N + i];
            for (int j = 0; j < N; j++) {
                S[i * (N + 1) + j] = H[i * N + j] + (i == j ? lambda + (i == dead) : 0);
                b += C[j * N + i] * W[r * N + j];
            }
            S[i * (N + 1) + N] = b;
        }
        for (int k = 0; k < N; k++)
            for (int i = k + 1; i < N; i++) {
                const double g = S[i * (N + 1) + k] / S[k * (N + 1) + k];
                for (int j = k; j <= N; j++) S[i * (N + 1) + j] -= g * S[k * (N + 1) + j];
            }
        for (int i = N - 1; i >= 0; i--) {
            double x = S[i * (N + 1) + N];
            for (int j = i + 1; j < N; j++) x -= S[i * (N + 1) + j] * S[j * (N + 1) + N];
            S[i * (N + 1) + N] = x / S[i * (N + 1) + i];
            assert_true(fabs(Wf[r * N + i] - S[i * (N + 1) + N]) <= 1e-4 * (1 + fabs(S[i * (N + 1) + N])));
        }
    }
    /* the same refit by the factor's matrix M = H'^-1 (C^T + lambda I): W M^T, to f64's rounding */
    memcpy(Wa, W, sizeof W);
    assert_int_equal(lb_gptq_factor_refit_matrix(f, C, &err), LB_OK);
    assert_int_equal(lb_gptq_retarget_f(Wa, M, C, f, &err), LB_OK);
    for (int i = 0; i < M * N; i++) assert_true(fabsf(Wa[i] - Wf[i]) <= 1e-5f * (1 + fabsf(Wf[i])));
    /* two matrices on the one factor, as lb_gptq_quantize alone (Q4_0: a grid; act order on) */
    const lb_gptq_params gp = { .damp = 0.01, .block = 16, .act_order = true };
    const size_t bytes = lb_row_size(LB_TYPE_Q4_0, N) * M;
    for (int k = 0; k < 2; k++) { /* the second on the factor's kept U */
        memcpy(Wa, Wf, sizeof W), memcpy(Wb, Wf, sizeof W);
        assert_int_equal(lb_gptq_quantize_f(Wa, M, f, LB_TYPE_Q4_0, &gp, NULL, qa, &err), LB_OK);
        assert_int_equal(lb_gptq_quantize(Wb, M, N, H, LB_TYPE_Q4_0, &gp, NULL, qb, &err), LB_OK);
        assert_memory_equal(qa, qb, bytes);
        assert_memory_equal(Wa, Wb, sizeof W);
    }
    assert_int_equal(lb_gptq_retarget_f(Wf, M, C, f, &err), LB_ERR_PARAM); /* after GPTQ: L is gone */
    assert_int_equal(lb_gptq_factor_refit_matrix(f, C, &err), LB_ERR_PARAM);
    const lb_gptq_params other = { .damp = 0.05, .block = 16, .act_order = true };
    assert_false(lb_gptq_factor_fits(f, 0.05, true));
    assert_int_equal(lb_gptq_quantize_f(Wa, M, f, LB_TYPE_Q4_0, &other, NULL, qa, &err), LB_ERR_PARAM);
    lb_gptq_factor_free(f);
}

/* the Gram products (gram.c) against f64 sums of the same inputs (rounded to bf16 when the
 * bf16 kernel runs), odd sizes, two column tiles, beta and w; the bits the same on 1 and 2
 * threads */
static float bf16_value(float x) {
    const uint32_t b = (uint32_t)lb_f32_to_bf16(x) << 16;
    float          v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void test_gram(void **state) {
    (void)state;
    enum { N = 300, T = 37 };
    static float X[T * N], Y[T * N], S[N * N], S0[N * N], S2[N * N];
    g_rng = 99;
    for (int i = 0; i < T * N; i++) X[i] = (float)gauss(), Y[i] = (float)gauss() * 3.0f;
    for (int bf = 0; bf < 2; bf++) {
        const bool rounded = bf && lb_gram_bf16_available();
        for (int upper = 0; upper < 2; upper++) {
            const float w = upper ? 0.5f : 1.0f, beta = 1.0f;
            for (int i = 0; i < N * N; i++) S0[i] = (float)(i % 7) - 3.0f;
            for (int th = 1; th <= 2; th++) {
                lb_threads_set(th);
                float *out = th == 1 ? S : S2;
                memcpy(out, S0, sizeof S0);
                if (upper) lb_gram_upper(N, T, w, X, beta, out, bf);
                else lb_gram_cross(N, T, X, Y, beta, out, bf);
            }
            lb_threads_set(0);
            for (int i = 0; i < N; i++)
                for (int j = upper ? i : 0; j < N; j++) {
                    double ref = 0, mag = 0;
                    for (int t = 0; t < T; t++) {
                        const float *B = upper ? X : Y;
                        const double a = rounded ? bf16_value(X[t * N + i]) : X[t * N + i];
                        const double b = rounded ? bf16_value(B[t * N + j]) : B[t * N + j];
                        ref += a * b, mag += fabs(a * b);
                    }
                    ref = w * ref + beta * S0[i * N + j];
                    assert_true(fabs(S[i * N + j] - ref) <= 1e-5 * (mag + 4));
                    assert_true(S[i * N + j] == S2[i * N + j]); /* the thread count changes nothing */
                }
            /* into an f64 sum: the f32 product's bits, added */
            static double D[N * N];
            for (int i = 0; i < N * N; i++) D[i] = 0.25 * (i % 5);
            if (upper) lb_gram_upper(N, T, w, X, 0.0f, S, bf), lb_gram_upper_add(N, T, w, X, D, bf);
            else lb_gram_cross(N, T, X, Y, 0.0f, S, bf), lb_gram_cross_add(N, T, X, Y, D, bf);
            for (int i = 0; i < N; i++)
                for (int j = upper ? i : 0; j < N; j++) assert_true(D[i * N + j] == 0.25 * ((i * N + j) % 5) + S[i * N + j]);
        }
    }
}

/* the outputs' squares (lb_gram_out_sq_add) against the f64 r^T (X^T X) r of the same rows
 * (X rounded to bf16 when the bf16 kernel runs), three row tiles and a ragged one; added into
 * e; the bits the same on 1 and 2 threads */
static void test_gram_out_sq(void **state) {
    (void)state;
    enum { N = 130, T = 29, M = 3 * 256 + 5 };
    static float X[T * N], R[M * N];
    static double e1[M], e2[M];
    g_rng = 7;
    for (int i = 0; i < T * N; i++) X[i] = (float)gauss();
    for (int i = 0; i < M * N; i++) R[i] = (float)gauss() * 0.1f;
    for (int bf = 0; bf < 2; bf++) {
        const bool rounded = bf && lb_gram_bf16_available();
        for (int th = 1; th <= 2; th++) {
            double *e = th == 1 ? e1 : e2;
            for (int r = 0; r < M; r++) e[r] = r % 3;
            lb_threads_set(th);
            assert_true(lb_gram_out_sq_add(N, T, X, R, M, e, bf));
        }
        lb_threads_set(0);
        for (int r = 0; r < M; r++) {
            double ref = 0, mag = 0;
            for (int t = 0; t < T; t++) {
                double y = 0, ya = 0;
                for (int j = 0; j < N; j++) {
                    const double x = rounded ? bf16_value(X[t * N + j]) : X[t * N + j];
                    y += x * R[r * N + j], ya += fabs(x * R[r * N + j]);
                }
                ref += y * y, mag += ya * ya;
            }
            assert_true(fabs(e1[r] - (r % 3) - ref) <= 1e-5 * mag);
            assert_true(e1[r] == e2[r]); /* the thread count changes nothing */
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gptq_beats_rtn),
        cmocka_unit_test(test_diagonal_h_is_rtn),
        cmocka_unit_test(test_blocked_matches_reference),
        cmocka_unit_test(test_act_order_keeps_columns),
        cmocka_unit_test(test_retarget),
        cmocka_unit_test(test_factor),
        cmocka_unit_test(test_gram),
        cmocka_unit_test(test_gram_out_sq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
