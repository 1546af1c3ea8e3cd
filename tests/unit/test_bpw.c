/* --target-bpw's allocation (lb_bpw_allocate) on the testbed: the file stays at or under the
 * target; more bits measure as less divergence; a larger target predicts less; a target below
 * the smallest candidates is refused; the proxy measure keeps the same rules. */
#include "lowbit/quant.h"
#include "test_util.h"

static void test_allocation(void **state) {
    (void)state;
    char      mp[512], tp[512];
    lb_model *m;
    lb_error  err = { 0 };
    assert_int_equal(lb_model_load(&m, repo_path("models/testbed/testbed-f16.gguf", mp, sizeof mp), NULL, &err), LB_OK);
    const lb_type types[] = { LB_TYPE_Q2_K, LB_TYPE_IQ3_XXS, LB_TYPE_Q6_K };
    lb_bpw_params p = { .types = types, .n_types = 3,
                        .calib_text = repo_path("data/books/alice-in-wonderland.txt", tp, sizeof tp),
                        .calib = { .n_samples = 1, .n_ctx = 48, .seed = 1 } };
    lb_bpw_result r3;
    p.target_bpw = 4.5;
    assert_int_equal(lb_bpw_allocate(m, &p, &r3, &err), LB_OK);
    const double bpw45 = r3.bpw, kld45 = r3.kld_sum;
    assert_int_equal(lb_bpw_choose(&r3, 3.5, &err), LB_OK); /* the same measurements */
    printf("# target 4.5: %.3f bpw, predicted KLD %.5f; target 3.5: %.3f bpw, %.5f (%d measurements)\n",
           bpw45, kld45, r3.bpw, r3.kld_sum, r3.evals);
    assert_true(r3.bpw <= 3.5 && r3.bpw > 3.2);
    assert_true(bpw45 <= 4.5 && bpw45 > 4.2);
    assert_true(kld45 < r3.kld_sum);
    int matrices = 0, more_bits_better = 0;
    for (int32_t i = 0; i < r3.n_tensors; i++) {
        if (r3.choice[i] == LB_TYPE_F32) continue;
        matrices++;
        bool known = false;
        for (int j = 0; j < 3; j++) known |= r3.choice[i] == types[j];
        assert_true(known);
        more_bits_better += r3.sens[i * 3 + 2] < r3.sens[i * 3 + 0]; /* q6_K below q2_K */
    }
    assert_true(matrices >= 40);
    assert_int_equal(more_bits_better, matrices);
    assert_int_equal(lb_bpw_choose(&r3, 1.0, &err), LB_ERR_PARAM); /* below q2_K everywhere */
    printf("# %s\n", err.msg);
    lb_bpw_result_free(&r3);
    /* the proxy: no forward passes, the same size rule; more bits, less error, every matrix */
    p.proxy      = true;
    p.target_bpw = 3.5;
    assert_int_equal(lb_bpw_allocate(m, &p, &r3, &err), LB_OK);
    printf("# proxy, target 3.5: %.3f bpw, weighted error %.4g\n", r3.bpw, r3.kld_sum);
    assert_true(r3.bpw <= 3.5 && r3.bpw > 3.2);
    for (int32_t i = 0; i < r3.n_tensors; i++)
        if (r3.choice[i] != LB_TYPE_F32) assert_true(r3.sens[i * 3 + 2] < r3.sens[i * 3 + 0]);
    lb_bpw_result_free(&r3);
    lb_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_allocation) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
