/* The elementwise kernels with an exponential (src/kernels/vecf.h), every ISA's table:
 *   - exp within 2 ulp of double exp over [-104, 89], 0 below the normal range's edge, +inf
 *     above FLT_MAX, NaN for NaN, exact at 0;
 *   - silu_mul within 4 ulp of g / (1 + exp(-g)) * u in double, from -100 to 100;
 *   - each SIMD table gives the reference table's bits element by element at lengths 1..70
 *     and 1001 (the loops have no contraction), softmax within 1e-6 of its values (the order
 *     of the sum differs), summing to 1;
 *   - softmax against double on wide rows. */
#include <float.h>
#include <math.h>

#include "kernels/vecf.h"
#include "test_util.h"

static double ulps(float got, double want) { /* error in units of the last place of want */
    const double u = ldexp(1.0, ilogb(fabs(want) > FLT_MIN ? want : FLT_MIN) - 23);
    return fabs((double)got - want) / u;
}

static void test_exp_accuracy(void **state) {
    (void)state;
    enum { N = 200001 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    assert_non_null(x), assert_non_null(y);
    for (int i = 0; i < N; i++) x[i] = -104.0f + 193.0f * (float)i / (float)(N - 1);
    for (int isa = 0; isa < LB_ISA_COUNT; isa++) {
        const lb_vecf *v = lb_vecf_get_isa((lb_isa)isa);
        if (!v) continue;
        v->exp(y, x, N);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            const double want = exp((double)x[i]);
            if (want < FLT_MIN) { /* below the normal range: 0 or a denormal near want */
                assert_true(y[i] >= 0.0f && (double)y[i] <= want * 1.01 + 1e-45);
                continue;
            }
            if (want > FLT_MAX) {
                assert_true(isinf(y[i]) && y[i] > 0);
                continue;
            }
            const double e = ulps(y[i], want);
            if (e > worst) worst = e;
        }
        printf("# %s: exp within %.2f ulp over [-104, 89]\n", lb_isa_name((lb_isa)isa), worst);
        assert_true(worst <= 2.0);
        const float sp[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.0f, 88.72f, -87.0f };
        float       sy[8];
        v->exp(sy, sp, 8);
        assert_true(sy[0] == 1.0f && sy[1] == 1.0f);
        assert_true(isinf(sy[2]) && sy[3] == 0.0f && isnan(sy[4]));
        assert_true(ulps(sy[5], exp(88.0)) <= 2.0 && ulps(sy[6], exp((double)88.72f)) <= 2.0);
        assert_true(ulps(sy[7], exp(-87.0)) <= 2.0);
    }
    free(x), free(y);
}

static void test_silu_accuracy(void **state) {
    (void)state;
    enum { N = 20001 };
    float *g = malloc(N * sizeof *g), *u = malloc(N * sizeof *u), *g0 = malloc(N * sizeof *g0);
    assert_non_null(g), assert_non_null(u), assert_non_null(g0);
    for (int i = 0; i < N; i++) {
        g0[i] = -100.0f + 200.0f * (float)i / (float)(N - 1);
        u[i]  = 0.5f + (float)(i % 7) * 0.25f;
    }
    for (int isa = 0; isa < LB_ISA_COUNT; isa++) {
        const lb_vecf *v = lb_vecf_get_isa((lb_isa)isa);
        if (!v) continue;
        memcpy(g, g0, N * sizeof *g);
        v->silu_mul(g, u, N);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            const double x = g0[i], want = x / (1.0 + exp(-x)) * u[i];
            if (fabs(want) < 1e-30) {
                assert_true(fabs((double)g[i]) < 1e-30);
                continue;
            }
            const double e = ulps(g[i], want);
            if (e > worst) worst = e;
        }
        printf("# %s: silu_mul within %.2f ulp over [-100, 100]\n", lb_isa_name((lb_isa)isa), worst);
        assert_true(worst <= 4.0);
    }
    free(g), free(u), free(g0);
}

static void test_simd_equals_ref(void **state) {
    (void)state;
    const lb_vecf *ref = lb_vecf_get_isa(LB_ISA_REF);
    assert_non_null(ref);
    float   x[1001], a[1001], b[1001], u[1001];
    uint64_t rng = 42;
    for (int i = 0; i < 1001; i++) {
        x[i] = (float)(test_gauss(&rng) * 6.0);
        u[i] = (float)test_gauss(&rng);
    }
    int tried = 0;
    for (int isa = 1; isa < LB_ISA_COUNT; isa++) {
        const lb_vecf *v = lb_vecf_get_isa((lb_isa)isa);
        if (!v) continue;
        tried++;
        for (int n = 1; n <= 1001; n = n < 70 ? n + 1 : 1001) {
            ref->exp(a, x, n), v->exp(b, x, n);
            assert_memory_equal(a, b, (size_t)n * sizeof *a);
            memcpy(a, x, (size_t)n * sizeof *a), memcpy(b, x, (size_t)n * sizeof *b);
            ref->silu_mul(a, u, n), v->silu_mul(b, u, n);
            assert_memory_equal(a, b, (size_t)n * sizeof *a);
            memcpy(a, x, (size_t)n * sizeof *a), memcpy(b, x, (size_t)n * sizeof *b);
            ref->softmax(a, n), v->softmax(b, n);
            double sa = 0, sb = 0;
            for (int i = 0; i < n; i++) {
                assert_true(fabsf(a[i] - b[i]) <= 1e-6f * a[i]);
                sa += a[i], sb += b[i];
            }
            assert_true(fabs(sa - 1.0) < 1e-5 && fabs(sb - 1.0) < 1e-5);
            if (n == 1001) break;
        }
        printf("# %s: the reference's bits at lengths 1..70 and 1001\n", lb_isa_name((lb_isa)isa));
    }
    if (!tried) printf("# no SIMD table on this CPU: the reference alone\n");
}

static void test_softmax(void **state) {
    (void)state;
    enum { N = 777 };
    float    x[N], y[N];
    uint64_t rng = 7;
    for (int i = 0; i < N; i++) x[i] = (float)(test_gauss(&rng) * 20.0) - 1000.0f;
    x[100] = -INFINITY; /* a masked score */
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < N; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < N; i++) sum += exp((double)x[i] - mx);
    for (int isa = 0; isa < LB_ISA_COUNT; isa++) {
        const lb_vecf *v = lb_vecf_get_isa((lb_isa)isa);
        if (!v) continue;
        memcpy(y, x, sizeof y);
        v->softmax(y, N);
        assert_true(y[100] == 0.0f);
        for (int i = 0; i < N; i++) {
            const double want = exp((double)x[i] - mx) / sum;
            assert_true(fabs((double)y[i] - want) <= 1e-6 * want + 1e-30);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_accuracy),
        cmocka_unit_test(test_silu_accuracy),
        cmocka_unit_test(test_simd_equals_ref),
        cmocka_unit_test(test_softmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
