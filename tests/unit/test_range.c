/* Range estimation (lowbit/range.h, src/quant/clip.c): the four estimators on Laplacian
 * samples with a few far outliers, where the best clip is known by brute force: MSE and KL
 * must clip, minmax must not, the percentile must be the sample's. As activations (a
 * histogram, the int8 grid) and as a weight row (the row's values, the format's quantizer). */
#include "test_util.h"

#include "quant/clip.h"

static uint64_t rng_state;
static double   uniform(void) { /* xorshift64*, in (0, 1) */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return ((double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) / 9007199254740992.0;
}

/* n Laplacian values (scale 1), then k outliers at +-(40 .. 60) */
static float *laplacian(int64_t n, int64_t k, uint64_t seed) {
    float *x  = malloc((size_t)(n + k) * sizeof *x);
    rng_state = seed;
    for (int64_t i = 0; i < n; i++) x[i] = (float)(-log(uniform()) * (uniform() < 0.5 ? -1 : 1));
    for (int64_t i = 0; i < k; i++) x[n + i] = (float)((40.0 + 20.0 * (double)i / (double)(k > 1 ? k - 1 : 1)) * (i % 2 ? -1 : 1));
    return x;
}

static float max_abs(const float *x, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

static int cmp_abs(const void *a, const void *b) {
    const float x = fabsf(*(const float *)a), y = fabsf(*(const float *)b);
    return x < y ? -1 : x > y;
}

/* exact squared error of the samples on the symmetric grid of `levels` magnitudes at clip c */
static double grid_error(const float *x, int64_t n, int32_t levels, double c) {
    const double d = c / (levels - 1);
    double       e = 0;
    for (int64_t i = 0; i < n; i++) {
        const double v = fabs((double)x[i]), q = fmin(nearbyint(v / d), levels - 1) * d;
        e += (v - q) * (v - q);
    }
    return e;
}

static void test_activations(void **state) {
    (void)state;
    const int64_t n = 400000, k = 6, nt = n + k;
    const int32_t nb = 2048;
    float        *x  = laplacian(n, k, 42);
    const float   mx = max_abs(x, nt);
    double       *h  = calloc(2 * (size_t)nb, sizeof *h);
    lb_clip_hist_add(h, h + nb, nb, mx, x, nt, NULL);
    const lb_clip_sample s = { .nb = nb, .amax = mx, .count = h, .mass = h + nb, .levels = 128 };
    lb_range r;
    /* the best clip, by brute force on the samples themselves */
    double best = INFINITY, cbest = mx;
    for (int i = 1; i <= 600; i++) {
        const double c = mx * i / 600.0, e = grid_error(x, nt, 128, c);
        if (e < best) best = e, cbest = c;
    }
    assert_int_equal(lb_range_parse("minmax", &r), LB_OK);
    assert_true(lb_clip_choose(&r, &s) == mx);
    assert_int_equal(lb_range_parse("mse", &r), LB_OK);
    const float cm = lb_clip_choose(&r, &s);
    const double em = grid_error(x, nt, 128, cm), emax = grid_error(x, nt, 128, mx);
    assert_int_equal(lb_range_parse("kl", &r), LB_OK);
    const float ck = lb_clip_choose(&r, &s);
    assert_int_equal(lb_range_parse("kl-count", &r), LB_OK);
    const float ckc = lb_clip_choose(&r, &s);
    assert_int_equal(lb_range_parse("p99.9", &r), LB_OK);
    const float cp = lb_clip_choose(&r, &s);
    qsort(x, (size_t)nt, sizeof *x, cmp_abs);
    const float p999 = fabsf(x[(int64_t)(0.999 * (double)(nt - 1))]), p99 = fabsf(x[(int64_t)(0.99 * (double)(nt - 1))]);
    printf("# activations: max %.2f; best clip %.2f (error %.1f, minmax %.1f); mse %.2f (%.1f); "
           "kl %.2f; kl-count %.2f; p99.9 %.3f (samples %.3f)\n",
           (double)mx, cbest, best, emax, (double)cm, em, (double)ck, (double)ckc, (double)cp, (double)p999);
    assert_true(cm < 0.9f * mx && em < 1.02 * best && em < 0.7 * emax); /* clips, near the best */
    assert_true(ck < 0.8f * mx && ck > p99);  /* the outliers clipped, the bulk kept */
    assert_true(ckc < 0.8f * mx && ckc > p99);
    assert_true(fabsf(cp - p999) < 2 * mx / nb);
    free(h);
    free(x);
}

static double row_error(const float *x, int64_t n, lb_type t, float c) {
    float  *y = malloc((size_t)n * sizeof *y), *d = malloc((size_t)n * sizeof *d);
    void   *q = malloc(lb_row_size(t, n));
    double  e = 0;
    for (int64_t i = 0; i < n; i++) y[i] = fminf(fmaxf(x[i], -c), c);
    lb_quantize_rows(t, q, y, 1, n, NULL);
    lb_type_get_traits(t)->to_float(d, q, n);
    for (int64_t i = 0; i < n; i++) e += ((double)d[i] - x[i]) * ((double)d[i] - x[i]);
    free(y), free(d), free(q);
    return e;
}

static void test_weight_row(void **state) {
    (void)state;
    const int64_t n = 4096;
    const lb_type t = lb_type_from_name("int4_pc");
    float        *x = laplacian(n - 2, 2, 7);
    const float   mx = max_abs(x, n);
    lb_range      r;
    double        best = INFINITY, cbest = mx;
    for (int i = 1; i <= 400; i++) {
        const double e = row_error(x, n, t, (float)(mx * i / 400.0));
        if (e < best) best = e, cbest = mx * i / 400.0;
    }
    const double emax = row_error(x, n, t, mx);
    assert_int_equal(lb_range_parse("minmax", &r), LB_OK);
    assert_true(isinf(lb_range_clip_row(x, n, t, &r, NULL)));
    assert_int_equal(lb_range_parse("mse", &r), LB_OK);
    const float cm = lb_range_clip_row(x, n, t, &r, NULL);
    assert_int_equal(lb_range_parse("kl", &r), LB_OK);
    const float ck = lb_range_clip_row(x, n, t, &r, NULL);
    assert_int_equal(lb_range_parse("p99", &r), LB_OK);
    const float cp = lb_range_clip_row(x, n, t, &r, NULL);
    const double em = row_error(x, n, t, cm), ek = row_error(x, n, t, ck);
    printf("# int4_pc row: max %.2f; best clip %.2f (error %.1f, minmax %.1f); mse %.2f (%.1f); "
           "kl %.2f (%.1f); p99 %.2f\n", (double)mx, cbest, best, emax, (double)cm, em, (double)ck, ek, (double)cp);
    assert_true(cm < 0.5f * mx && em < 1.02 * best && em < 0.7 * emax);
    assert_true(ck < 0.5f * mx && ek < 0.7 * emax);
    qsort(x, (size_t)n, sizeof *x, cmp_abs);
    assert_true(cp >= fabsf(x[(int64_t)(0.99 * (n - 1))]) && cp <= fabsf(x[(int64_t)(0.99 * (n - 1)) + 1]));
    /* a row without outliers: int4's grid is coarse, so MSE still clips the Laplacian's tail,
     * and never does worse than no clipping */
    float *y = laplacian(n, 0, 9);
    assert_int_equal(lb_range_parse("mse", &r), LB_OK);
    const float cy = lb_range_clip_row(y, n, t, &r, NULL);
    assert_true(isinf(cy) || row_error(y, n, t, cy) <= row_error(y, n, t, max_abs(y, n)));
    free(y);
    free(x);
}

static void test_parse(void **state) {
    (void)state;
    const char *good[] = { "minmax", "mse", "kl", "kl-count", "p99.9", "p100", "p50" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        lb_range r;
        char     buf[32];
        assert_int_equal(lb_range_parse(good[i], &r), LB_OK);
        assert_string_equal(lb_range_name(&r, buf, sizeof buf), good[i]);
    }
    const char *bad[] = { "", "p", "p0", "p101", "p-1", "p99x", "max", "KL", "kl-", "mse " };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lb_range r;
        assert_int_equal(lb_range_parse(bad[i], &r), LB_ERR_PARAM);
    }
    lb_act_calib a;
    char         buf[32];
    assert_int_equal(lb_act_calib_parse("dynamic", &a), LB_OK);
    assert_false(a.calibrated);
    assert_string_equal(lb_act_calib_name(&a, buf, sizeof buf), "dynamic");
    assert_int_equal(lb_act_calib_parse("mse", &a), LB_OK);
    assert_true(a.calibrated && a.range.kind == LB_RANGE_MSE);
    assert_int_equal(lb_act_calib_parse("p99.99", &a), LB_OK);
    assert_string_equal(lb_act_calib_name(&a, buf, sizeof buf), "p99.99");
    assert_int_equal(lb_act_calib_parse("max", &a), LB_ERR_PARAM);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_weight_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
