/* Storage types, driven by the traits table: round-trip error per bit width, determinism,
 * the reference dot product against dequantize-then-dot, and golden files written by
 * llama.cpp's llama-quantize: our round-to-nearest of the same f32 tensors must give the
 * same bytes for the 32-block types. */
#include <dirent.h>
#include <math.h>

#include "test_util.h"

/* ggml's test-quantize-fns data: deterministic, varied */
static void fill(float *x, int64_t n, float offset) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.1f + 2 * cosf((float)i + offset);
}

/* round-trip RMSE bound, by bits per weight (ggml uses 0.002 for 8-bit data, looser below) */
static double max_rmse(const lb_type_traits *tr) {
    if (!tr->is_quantized) return tr->bits_per_weight >= 16 ? 0.01 : 0.05;
    if (tr->bits_per_weight >= 8) return 0.01;
    if (tr->bits_per_weight >= 5.5) return 0.04;
    if (tr->bits_per_weight >= 4.5) return 0.08;
    if (tr->bits_per_weight >= 3.4) return 0.16;
    if (tr->bits_per_weight >= 2.5) return 0.32;
    return 0.6;
}

static void test_round_trip_every_type(void **state) {
    (void)state;
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        const lb_type_traits *tr = lb_type_get_traits((lb_type)t);
        if (!tr) continue;
        const int64_t lens[] = { 256, 512, 4096 + 256 };
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            const int64_t n    = lens[k];
            const size_t  rs   = lb_row_size((lb_type)t, n);
            float        *x    = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
            uint8_t      *q1   = malloc(rs), *q2 = malloc(rs);
            fill(x, n, (float)k);
            assert_int_equal(lb_quantize_rows((lb_type)t, q1, x, 1, n, NULL), rs);
            assert_int_equal(lb_quantize_rows((lb_type)t, q2, x, 1, n, NULL), rs);
            assert_memory_equal(q1, q2, rs); /* deterministic */
            tr->to_float(y, q1, n);
            double se = 0, dot_deq = 0;
            for (int64_t i = 0; i < n; i++) {
                se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
                dot_deq += (double)y[i] * x[i];
            }
            const double rmse = sqrt(se / (double)n);
            if (k == 0) printf("# %-7s %5.2f bpw  rmse %.5f (bound %.3f)\n", tr->name,
                               (double)tr->bits_per_weight, rmse, max_rmse(tr));
            assert_true(rmse < max_rmse(tr));
            /* reference dot product = dequantize, then dot */
            const double dot = lb_vec_dot_ref((lb_type)t, q1, x, n);
            assert_true(fabs(dot - dot_deq) <= 1e-6 * (fabs(dot_deq) + 1));
            free(x);
            free(y);
            free(q1);
            free(q2);
        }
    }
}

static void test_zero_and_constant_blocks(void **state) {
    (void)state;
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        const lb_type_traits *tr = lb_type_get_traits((lb_type)t);
        if (!tr) continue;
        const int64_t n = 256;
        float         x[256], y[256];
        uint8_t       q[256 * 4];
        for (int v = 0; v < 2; v++) {
            for (int64_t i = 0; i < n; i++) x[i] = v ? 0.5f : 0.0f;
            lb_quantize_rows((lb_type)t, q, x, 1, n, NULL);
            tr->to_float(y, q, n);
            for (int64_t i = 0; i < n; i++) {
                assert_true(isfinite(y[i]));
                assert_true(fabsf(y[i] - x[i]) <= 0.5f * (v ? 0.5f : 0.0f) + 1e-7f);
            }
        }
    }
}

/* Quantize every tensor of a llama-quantize output from its f32 source and compare bytes. */
static int compare_file(const char *qpath, const char *fpath, int *n_checked) {
    lb_gguf *q, *f;
    lb_error err = { 0 };
    assert_int_equal(lb_gguf_open(&q, qpath, &err), LB_OK);
    assert_int_equal(lb_gguf_open(&f, fpath, &err), LB_OK);
    int mismatches = 0;
    for (int64_t i = 0; i < q->n_tensors; i++) {
        const lb_gguf_tensor_info *tq = &q->tensors[i];
        const lb_type              t  = lb_type_from_ggml(tq->ggml_type);
        if (t == LB_TYPE_INVALID || !lb_type_get_traits(t)->is_quantized) continue;
        if (lb_type_get_traits(t)->block_size != 32 || t == LB_TYPE_IQ4_NL) continue;
        const int64_t j = lb_gguf_find_tensor(f, tq->name);
        assert_true(j >= 0);
        const lb_gguf_tensor_info *tf = &f->tensors[j];
        assert_int_equal(tf->ggml_type, LB_GGML_F32);
        const int64_t n = tf->ne[0] * tf->ne[1] * tf->ne[2] * tf->ne[3];
        float        *x = malloc((size_t)n * sizeof *x);
        memcpy(x, tf->data, (size_t)n * sizeof *x);
        uint8_t *out = malloc(tq->nbytes);
        assert_int_equal(lb_quantize_rows(t, out, x, n / tf->ne[0], tf->ne[0], NULL), tq->nbytes);
        if (memcmp(out, tq->data, tq->nbytes) != 0) {
            size_t k = 0;
            while (out[k] == ((const uint8_t *)tq->data)[k]) k++;
            printf("# %s %s: differs from llama-quantize at byte %zu\n", qpath, tq->name, k);
            mismatches++;
        }
        (*n_checked)++;
        free(x);
        free(out);
    }
    lb_gguf_close(q);
    lb_gguf_close(f);
    return mismatches;
}

static void test_rtn_matches_llama_quantize(void **state) {
    (void)state;
    char dir[512];
    SKIP_UNLESS(shared_path("golden", dir, sizeof dir));
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int            checked = 0, mismatches = 0;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strstr(n, ".gguf") == NULL || strstr(n, "-f32") || strstr(n, "imatrix")) continue;
        char qpath[1024], fpath[1024];
        snprintf(qpath, sizeof qpath, "%s/%s", dir, n);
        snprintf(fpath, sizeof fpath, "%s/%.*s-f32.gguf", dir, (int)(strchr(n, '-') - n), n);
        mismatches += compare_file(qpath, fpath, &checked);
    }
    closedir(d);
    printf("# %d tensors requantized, %d differ from llama-quantize\n", checked, mismatches);
    assert_true(checked >= 40);
    assert_int_equal(mismatches, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_zero_and_constant_blocks),
        cmocka_unit_test(test_rtn_matches_llama_quantize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
