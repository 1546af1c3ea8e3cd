/* W8A8: the activation quantize-dequantize (dynamic per token, static clamped, LLM.int8
 * outlier columns untouched); the lowbit.actq.* metadata round-trips and bad metadata is
 * rejected with a clear status; an LLM.int8 file loads with its f32 outlier columns back in
 * the weights; on stories260K (calibrated on one half of the text, measured on the other)
 * SmoothQuant's W8A8 has a lower KL divergence than naive W8A8. */
#include <math.h>

#include "quant/act_range.h"
#include "test_util.h"

static void test_apply(void **state) {
    (void)state;
    lb_actq *aq;
    lb_error err = { 0 };
    assert_int_equal(lb_actq_create(&aq, 2, LB_ACTQ_DYNAMIC, &err), LB_OK);
    enum { T = 3, N = 40 };
    float x[T * N], y[T * N];
    for (int i = 0; i < T * N; i++) x[i] = (float)sin(0.37 * i) * (float)(1 + i % 7) + (i == 45 ? 50.0f : 0.0f);
    lb_actq_input *ai = lb_actq_at(aq, 1, LB_INPUT_FFN_IN);
    ai->outliers      = malloc(sizeof(int32_t));
    ai->outliers[0]   = 5; /* column 5: x[45] is in it */
    ai->n_outliers    = 1;
    memcpy(y, x, sizeof x);
    lb_actq_apply(aq, 1, LB_ROLE_FFN_UP, y, T, N);
    for (int t = 0; t < T; t++) {
        float amax = 0;
        for (int j = 0; j < N; j++) amax = j == 5 ? amax : fmaxf(amax, fabsf(x[t * N + j]));
        const float d = amax / 127;
        for (int j = 0; j < N; j++) {
            const float v = y[t * N + j];
            if (j == 5) {
                assert_true(v == x[t * N + j]); /* outlier column: f32 */
                continue;
            }
            assert_true(fabsf(v - x[t * N + j]) <= 0.5001f * d);
            assert_true(fabsf(v / d - roundf(v / d)) < 1e-3f);
        }
    }
    memcpy(y, x, sizeof x); /* other inputs, layer -1 and the output head: untouched */
    lb_actq_apply(aq, 0, LB_ROLE_OUTPUT, y, T, N);
    lb_actq_apply(aq, -1, LB_ROLE_ATTN_Q, y, T, N);
    assert_memory_equal(x, y, sizeof x);
    aq->mode                                   = LB_ACTQ_STATIC;
    lb_actq_at(aq, 0, LB_INPUT_ATTN_IN)->range = 2.0f;
    lb_actq_apply(aq, 0, LB_ROLE_ATTN_K, y, T, N);
    for (int i = 0; i < T * N; i++) {
        assert_true(fabsf(y[i]) <= 2.0f);
        if (fabsf(x[i]) < 2.0f) assert_true(fabsf(y[i] - x[i]) <= 0.5001f * 2.0f / 127);
    }
    lb_actq_free(aq);
}

static lb_model *stories(void) {
    char      p[512];
    lb_model *m;
    lb_error  err = { 0 };
    assert_int_equal(lb_model_load(&m, repo_path("models/stories260K/stories260K.bin", p, sizeof p), NULL, &err), LB_OK);
    return m;
}

static void test_round_trip(void **state) {
    (void)state;
    lb_model *m = stories();
    lb_actq  *aq, *back;
    lb_error  err = { 0 };
    char      path[256];
    assert_int_equal(lb_actq_create(&aq, m->cfg.n_layers, LB_ACTQ_STATIC, &err), LB_OK);
    snprintf(aq->calibration, sizeof aq->calibration, "p99.99");
    aq->outlier_threshold = 6.0f;
    for (int64_t i = 0; i < (int64_t)m->cfg.n_layers * LB_INPUT_COUNT; i++) aq->inputs[i].range = 0.5f + 0.25f * (float)i;
    lb_actq_input *ai = lb_actq_at(aq, 2, LB_INPUT_FFN_IN); /* gate and up read it: [172, 2] each */
    ai->n_outliers    = 2;
    ai->outliers      = malloc(2 * sizeof *ai->outliers);
    ai->outliers[0] = 3, ai->outliers[1] = 17;
    for (int k = 0; k < 2; k++) {
        ai->w_outliers[k] = malloc(2 * 172 * sizeof(float));
        for (int i = 0; i < 2 * 172; i++) ai->w_outliers[k][i] = (float)(k * 1000 + i);
    }
    lb_gguf_writer *w = lb_gguf_writer_create();
    assert_int_equal(lb_actq_write(aq, m, w, &err), LB_OK);
    tmp_path("actq.gguf", path, sizeof path);
    assert_int_equal(lb_gguf_writer_write(w, path, &err), LB_OK);
    lb_gguf_writer_free(w);
    lb_gguf *g;
    assert_int_equal(lb_gguf_open(&g, path, &err), LB_OK);
    assert_int_equal(lb_actq_from_gguf(&back, g, &m->cfg, &err), LB_OK);
    assert_non_null(back);
    assert_int_equal(back->mode, LB_ACTQ_STATIC);
    assert_int_equal(back->bits, 8);
    assert_string_equal(back->calibration, "p99.99");
    assert_true(back->outlier_threshold == 6.0f);
    for (int64_t i = 0; i < (int64_t)m->cfg.n_layers * LB_INPUT_COUNT; i++) {
        assert_true(back->inputs[i].range == aq->inputs[i].range);
        const bool has = i == 2 * LB_INPUT_COUNT + LB_INPUT_FFN_IN;
        assert_int_equal(back->inputs[i].n_outliers, has ? 2 : 0);
    }
    assert_int_equal(lb_actq_at(back, 2, LB_INPUT_FFN_IN)->outliers[1], 17);
    const int64_t ti = lb_gguf_find_tensor(g, "blk.2.ffn_up.outlier_cols");
    assert_true(ti >= 0);
    assert_int_equal(g->tensors[ti].ne[0], 2);
    assert_int_equal(g->tensors[ti].ne[1], 172);
    assert_true(((const float *)g->tensors[ti].data)[5] == 1005.0f);
    lb_actq_free(back);
    lb_gguf_close(g);
    /* a file without the keys: no activation quantization */
    w = lb_gguf_writer_create();
    assert_int_equal(lb_gguf_writer_set_str(w, "general.name", "x"), LB_OK);
    assert_int_equal(lb_gguf_writer_write(w, path, &err), LB_OK);
    lb_gguf_writer_free(w);
    assert_int_equal(lb_gguf_open(&g, path, &err), LB_OK);
    assert_int_equal(lb_actq_from_gguf(&back, g, &m->cfg, &err), LB_OK);
    assert_null(back);
    lb_gguf_close(g);
    unlink(path);
    lb_actq_free(aq);
    lb_model_free(m);
}

/* one broken file per case: (keys set, expected status) */
typedef enum { K_MODE_BAD, K_BITS4, K_NO_BITS, K_NO_RANGES, K_RANGES_SHORT, K_RANGE_NEG, K_RANGE_NAN,
               K_RANGES_I32, K_OUTL_ORDER, K_OUTL_RANGE, K_OUTL_STR, K_NO_MODE, K_CASES } bad_case;

static lb_status parse_case(bad_case c, const lb_llama_config *cfg, lb_error *err) {
    char            path[256];
    lb_gguf_writer *w = lb_gguf_writer_create();
    const int32_t   n = cfg->n_layers * LB_INPUT_COUNT;
    float           r[64];
    int32_t         ri[64];
    for (int i = 0; i < n; i++) r[i] = 1.0f, ri[i] = 1;
    if (c == K_RANGE_NEG) r[7] = -1.0f;
    if (c == K_RANGE_NAN) r[3] = NAN;
    if (c != K_NO_MODE) lb_gguf_writer_set_str(w, "lowbit.actq.mode", c == K_MODE_BAD ? "sometimes" : "static");
    if (c != K_NO_BITS) lb_gguf_writer_set_u32(w, "lowbit.actq.bits", c == K_BITS4 ? 4 : 8);
    if (c == K_RANGES_I32) lb_gguf_writer_set_arr(w, "lowbit.actq.ranges", LB_GGUF_I32, ri, (uint64_t)n);
    else if (c != K_NO_RANGES) lb_gguf_writer_set_arr(w, "lowbit.actq.ranges", LB_GGUF_F32, r, (uint64_t)(c == K_RANGES_SHORT ? n - 1 : n));
    const int32_t order[] = { 4, 2 }, range[] = { 1, 64 };
    const char   *strs[]  = { "a" };
    if (c == K_OUTL_ORDER) lb_gguf_writer_set_arr(w, "lowbit.actq.outliers.0.attn_in", LB_GGUF_I32, order, 2);
    if (c == K_OUTL_RANGE) lb_gguf_writer_set_arr(w, "lowbit.actq.outliers.1.ffn_in", LB_GGUF_I32, range, 2);
    if (c == K_OUTL_STR) lb_gguf_writer_set_arr_str(w, "lowbit.actq.outliers.1.ffn_in", strs, 1);
    tmp_path("bad-actq.gguf", path, sizeof path);
    assert_int_equal(lb_gguf_writer_write(w, path, err), LB_OK);
    lb_gguf_writer_free(w);
    lb_gguf  *g;
    lb_actq  *aq = NULL;
    assert_int_equal(lb_gguf_open(&g, path, err), LB_OK);
    const lb_status st = lb_actq_from_gguf(&aq, g, cfg, err);
    assert_null(aq);
    lb_gguf_close(g);
    unlink(path);
    return st;
}

static void test_bad_metadata(void **state) {
    (void)state;
    const lb_llama_config cfg = { .n_embd = 64, .n_ff = 172, .n_layers = 5, .n_heads = 8,
                                  .n_kv_heads = 4, .head_dim = 8, .n_vocab = 512 };
    for (int c = 0; c < K_CASES; c++) {
        lb_error        err = { 0 };
        const lb_status st  = parse_case((bad_case)c, &cfg, &err);
        printf("# case %d: %s: %s\n", c, lb_status_str(st), err.msg);
        assert_int_equal(st, c == K_BITS4 ? LB_ERR_UNSUPPORTED : LB_ERR_CORRUPT);
        assert_true(strstr(err.msg, "bad-actq.gguf") != NULL); /* names the file */
    }
}

/* the text's two halves, split at the blank line after its middle: calibration, evaluation */
static void split_text(char *calib_path, size_t cap, char **eval, size_t *eval_len) {
    char   p[512], *text;
    size_t len;
    lb_error err = { 0 };
    assert_int_equal(lb_read_file(repo_path("data/tinystories-valid-70.txt", p, sizeof p), &text, &len, &err), LB_OK);
    const char *cut = strstr(text + len / 2, "\n\n");
    assert_non_null(cut);
    const size_t head = (size_t)(cut - text) + 1;
    tmp_path("calib.txt", calib_path, cap);
    FILE *f = fopen(calib_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, head, f), head);
    fclose(f);
    *eval_len = len - head - 1;
    *eval     = malloc(*eval_len);
    memcpy(*eval, text + head + 1, *eval_len);
    free(text);
}

static double kld_of(const char *path, const lb_model *ref, const int32_t *toks, size_t n) {
    lb_model     *q;
    lb_context   *cq, *cr;
    lb_error      err = { 0 };
    lb_ppl_result r;
    lb_kld_result k;
    assert_int_equal(lb_model_load(&q, path, NULL, &err), LB_OK);
    assert_non_null(q->actq);
    assert_int_equal(lb_context_create(&cq, q, 128, 128, &err), LB_OK);
    assert_int_equal(lb_context_create(&cr, ref, 128, 128, &err), LB_OK);
    const lb_ppl_params pp  = { .n_ctx = 128, .max_chunks = 40 };
    const lb_kld_ref    rf  = { .ctx = cr };
    assert_int_equal(lb_eval_kld(cq, q->vocab, toks, n, &pp, &rf, &r, &k, &err), LB_OK);
    lb_context_free(cq);
    lb_context_free(cr);
    lb_model_free(q);
    return k.kld_mean;
}

static void test_smoothquant_beats_naive(void **state) {
    (void)state;
    lb_model *m = stories();
    char      calib[256], out[256], *eval;
    size_t    eval_len, n;
    int32_t  *toks;
    lb_error  err = { 0 };
    split_text(calib, sizeof calib, &eval, &eval_len);
    assert_int_equal(lb_tokenize(m->vocab, eval, eval_len, true, false, &toks, &n, &err), LB_OK);
    tmp_path("w8a8.gguf", out, sizeof out);
    lb_quant_params qp = { .recipe = lb_recipe_find("w8a8"), .calib_text = calib,
                           .act = { LB_ACT_MINMAX, 0 }, .calib = { .n_samples = 32, .n_ctx = 128, .seed = 7 } };
    assert_non_null(qp.recipe);
    double kld[3];
    const char *methods[] = { "rtn", "smoothquant", "llm-int8" };
    for (int i = 0; i < 3; i++) {
        qp.method = methods[i];
        assert_int_equal(lb_quantize_model(m, out, &qp, NULL, NULL, NULL, &err), LB_OK);
        kld[i] = kld_of(out, m, toks, n);
        printf("# W8A8 static (minmax) %-11s KLD %.6f\n", methods[i], kld[i]);
    }
    assert_true(kld[1] < 0.8 * kld[0]);
    assert_true(kld[2] < kld[0]);
    /* smoothquant on a weight-only type is refused */
    qp.recipe = lb_recipe_find("q4_0");
    qp.method = "smoothquant";
    assert_int_equal(lb_quantize_model(m, out, &qp, NULL, NULL, NULL, &err), LB_ERR_PARAM);
    unlink(out);
    unlink(calib);
    free(toks);
    free(eval);
    lb_model_free(m);
}

/* LLM.int8: the outlier columns come back exactly; the rest is int8 */
static void test_llm_int8_file(void **state) {
    (void)state;
    lb_model *m = stories(), *q;
    char      calib[256], out[256], *eval;
    size_t    eval_len;
    lb_error  err = { 0 };
    split_text(calib, sizeof calib, &eval, &eval_len);
    tmp_path("int8.gguf", out, sizeof out);
    const lb_quant_params qp = { .recipe = lb_recipe_find("w8a8"), .method = "llm-int8", .calib_text = calib,
                                 .outlier_threshold = 4.0, .calib = { .n_samples = 8, .n_ctx = 64, .seed = 7 } };
    assert_int_equal(lb_quantize_model(m, out, &qp, NULL, NULL, NULL, &err), LB_OK);
    assert_int_equal(lb_model_load(&q, out, NULL, &err), LB_OK);
    assert_non_null(q->actq);
    assert_int_equal(q->actq->mode, LB_ACTQ_DYNAMIC);
    int found = 0;
    for (int32_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_actq_input *ai = lb_actq_at(q->actq, l, LB_INPUT_ATTN_IN);
        for (int32_t o = 0; o < ai->n_outliers; o++, found++) {
            const int32_t j = ai->outliers[o];
            assert_int_equal(q->layers[l].wq.type, LB_TYPE_F32);
            for (int64_t r = 0; r < 64; r++) /* the f32 column, exactly */
                assert_true(((const float *)q->layers[l].wq.data)[r * 64 + j] ==
                            ((const float *)m->layers[l].wq.data)[r * 64 + j]);
        }
    }
    printf("# %d attn_in outlier columns restored exactly\n", found);
    assert_true(found > 0);
    lb_model_free(q);
    unlink(out);
    unlink(calib);
    free(eval);
    lb_model_free(m);
}

static void test_act_clips(void **state) {
    (void)state;
    double h[LB_ACT_HIST_BINS] = { 0 };
    for (int i = 0; i < LB_ACT_HIST_BINS; i++) h[i] = i < 400 ? 1000.0 * exp(-i / 80.0) : 0;
    h[LB_ACT_HIST_BINS - 1] = 1; /* one far outlier */
    const float kl = lb_act_kl_clip(h, LB_ACT_HIST_BINS, 1.0f);
    const float pc = lb_act_percentile_clip(h, LB_ACT_HIST_BINS, 1.0f, 99.0);
    printf("# KL clip %.0f, p99 clip %.0f of 2048 bins\n", (double)kl, (double)pc);
    assert_true(kl >= 128 && kl < 1000); /* the outlier is clipped, the bulk kept */
    assert_true(pc > 300 && pc < 420);
    lb_act_calib a;
    assert_int_equal(lb_act_calib_parse("p99.9", &a), LB_OK);
    assert_int_equal(a.kind, LB_ACT_PERCENTILE);
    assert_int_equal(lb_act_calib_parse("kl", &a), LB_OK);
    assert_int_equal(lb_act_calib_parse("p0", &a), LB_ERR_PARAM);
    assert_int_equal(lb_act_calib_parse("p101", &a), LB_ERR_PARAM);
    assert_int_equal(lb_act_calib_parse("max", &a), LB_ERR_PARAM);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_act_clips),
        cmocka_unit_test(test_llm_int8_file),
        cmocka_unit_test(test_smoothquant_beats_naive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
