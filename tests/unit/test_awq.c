/* AWQ: folding scales into the model leaves the unquantized model's logits unchanged (every
 * foldable input of stories260K, and o-after-v on a model without grouped-query attention);
 * on a layer whose inputs have outlier channels the scale search and the clip search bring
 * the output error well below RTN's; the method runs on a model (the same bytes twice), chains
 * before GPTQ, and is refused after it. */
#include <math.h>

#include "model/model_internal.h"
#include "quant/awq.h"
#include "quant/fold.h"
#include "test_util.h"

static uint64_t g_rng = 99;
static double   uniform(void) { return test_uniform(&g_rng); }
static double   gauss(void) { return test_gauss(&g_rng); }

static const int32_t k_toks[] = { 1, 403, 407, 261, 378, 281, 354, 297, 266, 322, 295, 402, 31, 13, 7, 40 };
#define N_TOKS ((int32_t)(sizeof k_toks / sizeof k_toks[0]))

static float *logits(const lb_model *m, int32_t vocab_mod) {
    lb_context  *c;
    const float *lg;
    lb_error     err = { 0 };
    int32_t      toks[N_TOKS];
    for (int32_t i = 0; i < N_TOKS; i++) toks[i] = k_toks[i] % vocab_mod;
    assert_int_equal(lb_context_create(&c, m, N_TOKS, N_TOKS, &err), LB_OK);
    assert_int_equal(lb_forward(c, toks, N_TOKS, &lg, &err), LB_OK);
    const size_t n   = (size_t)N_TOKS * (size_t)m->cfg.n_vocab;
    float       *out = malloc(n * sizeof *out);
    memcpy(out, lg, n * sizeof *out);
    lb_context_free(c);
    return out;
}


/* fold random scales in [1/4, 4] into every input that allows it; returns how many */
static int fold_random(lb_model *w) {
    int   folded = 0;
    float s[1024];
    for (int32_t l = 0; l < w->cfg.n_layers; l++)
        for (int in = 0; in < LB_INPUT_COUNT; in++) {
            if (lb_fold_blocker(w, (lb_block_input)in)) continue;
            const int64_t n = in == LB_INPUT_FFN_MID ? w->cfg.n_ff
                              : in == LB_INPUT_ATTN_OUT ? (int64_t)w->cfg.n_heads * w->cfg.head_dim
                                                        : w->cfg.n_embd;
            for (int64_t j = 0; j < n; j++) s[j] = (float)pow(4.0, 2 * uniform() - 1);
            lb_fold_scales(w, l, (lb_block_input)in, s);
            folded++;
        }
    return folded;
}

/* fold random scales into a working copy of m: n_inputs folded, the same logits */
static void check_fold(lb_model *m, int n_inputs, const char *what) {
    lb_model *w;
    lb_error  err = { 0 };
    assert_int_equal(lb_model_clone_f32(m, &w, &err), LB_OK);
    float *a = logits(m, m->cfg.n_vocab);
    assert_int_equal(fold_random(w), n_inputs);
    float       *b = logits(w, m->cfg.n_vocab);
    const double d = test_rel_rms(b, a, (size_t)N_TOKS * (size_t)m->cfg.n_vocab);
    printf("# %s, %d inputs folded with scales in [1/4, 4]: logits differ by %.2e (relative)\n", what, n_inputs, d);
    assert_true(d < 1e-5);
    /* and the weights did change */
    assert_true(((const float *)w->layers[0].attn_norm.data)[0] != ((const float *)m->layers[0].attn_norm.data)[0]);
    free(a);
    free(b);
    lb_model_free(w);
    lb_model_free(m);
}

static void test_fold_keeps_logits_stories(void **state) {
    (void)state;
    char      p[512];
    lb_model *m;
    lb_error  err = { 0 };
    assert_int_equal(lb_model_load(&m, repo_path("models/stories260K/stories260K.bin", p, sizeof p), NULL, &err), LB_OK);
    assert_non_null(lb_fold_blocker(m, LB_INPUT_ATTN_OUT)); /* 8 query heads, 4 KV heads */
    check_fold(m, 3 * m->cfg.n_layers, "stories260K (GQA: o not folded)");
}

/* a random model in which every query head has its own KV head: o's scales fold into v */
static lb_model *synth_model(bool bias) {
    lb_model *m = lb_model_alloc();
    const int32_t E = 32, F = 48, V = 40, L = 2, H = 4;
    m->cfg = (lb_llama_config){ .n_embd = E, .n_ff = F, .n_layers = L, .n_heads = H, .n_kv_heads = H,
                                .head_dim = E / H, .n_vocab = V, .n_ctx_train = 64, .norm_eps = 1e-5f,
                                .rope_theta = 10000.0f };
    m->priv->vocab_borrowed = true;
    m->arch           = lb_arch_find("llama", 5);
    m->layers         = calloc((size_t)L, sizeof *m->layers);
#define MAKE(t, a, b, scale, offset)                                                               \
    do {                                                                                           \
        float *d = malloc((size_t)((a) * (b)) * sizeof *d);                                        \
        for (int64_t i = 0; i < (int64_t)(a) * (b); i++) d[i] = (float)((offset) + (scale) * gauss()); \
        (t) = (lb_tensor){ .type = LB_TYPE_F32, .n_dims = 2, .ne = { a, b, 1, 1 }, .data = d };   \
        assert_int_equal(lb_model_own(m, d), LB_OK);                                               \
    } while (0)
    MAKE(m->tok_embd, E, V, 1.0, 0.0);
    MAKE(m->output_norm, E, 1, 0.1, 1.0);
    m->output      = m->tok_embd;
    m->tied_output = true;
    for (int32_t l = 0; l < L; l++) {
        lb_layer *ly = &m->layers[l];
        MAKE(ly->attn_norm, E, 1, 0.2, 1.0);
        MAKE(ly->wq, E, E, 0.3, 0.0);
        MAKE(ly->wk, E, E, 0.3, 0.0);
        MAKE(ly->wv, E, E, 0.3, 0.0);
        MAKE(ly->wo, E, E, 0.3, 0.0);
        MAKE(ly->ffn_norm, E, 1, 0.2, 1.0);
        MAKE(ly->ffn_gate, E, F, 0.3, 0.0);
        MAKE(ly->ffn_up, E, F, 0.3, 0.0);
        MAKE(ly->ffn_down, F, E, 0.3, 0.0);
        if (bias) { /* Qwen2's attention biases: v's is folded with v's rows */
            MAKE(ly->bq, E, 1, 0.5, 0.0);
            MAKE(ly->bk, E, 1, 0.5, 0.0);
            MAKE(ly->bv, E, 1, 0.5, 0.0);
        }
    }
#undef MAKE
    return m;
}

static void test_fold_keeps_logits_o_after_v(void **state) {
    (void)state;
    for (int bias = 0; bias < 2; bias++) {
        lb_model *m   = synth_model(bias);
        lb_error  err = { 0 };
        assert_int_equal(lb_model_validate(m, "synthetic", &err), LB_OK);
        assert_null(lb_fold_blocker(m, LB_INPUT_ATTN_OUT));
        check_fold(m, 4 * m->cfg.n_layers, bias ? "a model without GQA, with q/k/v biases (o after v too)"
                                                : "a model without GQA (o after v too)");
    }
}

/* W ~ N(0, 1); X: channel scales vary 10x, and a few channels carry 30x outliers */
#define N_IN  256
#define N_OUT 64
#define N_TOK 1024
static void outlier_layer(float *W, float *H, float *mean_abs) {
    static float X[N_TOK * N_IN];
    float        scale[N_IN];
    for (int j = 0; j < N_IN; j++) scale[j] = (float)(0.3 + uniform()) * (j % 37 == 5 ? 30.0f : 1.0f);
    for (int i = 0; i < N_OUT * N_IN; i++) W[i] = (float)gauss();
    for (int t = 0; t < N_TOK; t++)
        for (int j = 0; j < N_IN; j++) X[t * N_IN + j] = (float)gauss() * scale[j];
    for (int i = 0; i < N_IN; i++) {
        double ma = 0;
        for (int t = 0; t < N_TOK; t++) ma += fabsf(X[t * N_IN + i]);
        mean_abs[i] = (float)(ma / N_TOK);
        for (int j = 0; j < N_IN; j++) {
            double s = 0;
            for (int t = 0; t < N_TOK; t++) s += (double)X[t * N_IN + i] * X[t * N_IN + j];
            H[i * N_IN + j] = (float)(s / N_TOK);
        }
    }
}

static void test_awq_beats_rtn_on_outlier_channels(void **state) {
    (void)state;
    static float W[N_OUT * N_IN], H[N_IN * N_IN], Hs[N_IN * N_IN], Ws[N_OUT * N_IN], Wf[N_OUT * N_IN];
    float        mean_abs[N_IN], s[N_IN];
    lb_error     err = { 0 };
    g_rng            = 2024;
    outlier_layer(W, H, mean_abs);
    const lb_type types[] = { LB_TYPE_Q4_0, LB_TYPE_Q4_1, LB_TYPE_IQ4_NL, LB_TYPE_INT3_G32, LB_TYPE_INT2_G32 };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const lb_awq_linear lin = { W, N_OUT, types[k], NULL };
        float               alpha;
        double              e_best, e_rtn, ref, ratio;
        assert_int_equal(lb_awq_search_scales(&lin, 1, N_IN, mean_abs, H, s, &alpha, &e_best, &e_rtn, &err), LB_OK);
        const double rtn = lb_awq_error(W, NULL, N_OUT, N_IN, types[k], NULL, NULL, H, &ref);
        assert_true(fabs(rtn - e_rtn) <= 1e-6 * rtn); /* alpha 0 is RTN */
        /* fold as the method does, then clip in the scaled domain */
        for (int r = 0; r < N_OUT; r++)
            for (int j = 0; j < N_IN; j++) Wf[r * N_IN + j] = Ws[r * N_IN + j] = W[r * N_IN + j] * s[j];
        for (int i = 0; i < N_IN; i++)
            for (int j = 0; j < N_IN; j++) Hs[i * N_IN + j] = H[i * N_IN + j] / (s[i] * s[j]);
        assert_int_equal(lb_awq_clip(Ws, N_OUT, N_IN, types[k], NULL, Hs, &ratio, &err), LB_OK);
        const double clipped = lb_awq_error(Wf, Ws, N_OUT, N_IN, types[k], NULL, NULL, Hs, NULL);
        printf("# %-9s output error (relative): RTN %.5f, AWQ scales %.5f (alpha %.2f), + clip %.5f "
               "(mean ratio %.3f): %.2fx\n", lb_type_name(types[k]), rtn / ref, e_best / ref,
               (double)alpha, clipped / ref, ratio, rtn / clipped);
        assert_true(alpha > 0);
        assert_true(e_best < 0.8 * rtn);
        assert_true(clipped <= e_best * 1.02);
    }
}

/* The clip search counts the terms between a row's blocks: with inputs of a large common mean
 * (H = m m^T + I) the blocks' errors add up through m, and a block-by-block search that
 * ignores that raised rows' errors at int2. Every row's error must not rise. */
static void test_awq_clip_never_raises_a_row_error(void **state) {
    (void)state;
    enum { R = 8, C = 128 };
    static float W[R * C], Wc[R * C], H[C * C];
    float        m[C];
    lb_error     err = { 0 };
    g_rng            = 77;
    for (int j = 0; j < C; j++) m[j] = (float)(2.0 + 0.5 * gauss());
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) H[i * C + j] = m[i] * m[j] + (i == j ? 1.0f : 0.0f);
    for (int k = 0; k < R * C; k++) Wc[k] = W[k] = (float)(0.02 * gauss());
    const lb_type types[] = { LB_TYPE_Q4_0, LB_TYPE_INT3_G32, LB_TYPE_INT2_G32 };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        double ratio, before = 0, after = 0;
        memcpy(Wc, W, sizeof W);
        assert_int_equal(lb_awq_clip(Wc, R, C, types[k], NULL, H, &ratio, &err), LB_OK);
        for (int r = 0; r < R; r++) {
            const double e0 = lb_awq_error(W + r * C, NULL, 1, C, types[k], NULL, NULL, H, NULL);
            const double e1 = lb_awq_error(W + r * C, Wc + r * C, 1, C, types[k], NULL, NULL, H, NULL);
            assert_true(e1 <= e0 * (1 + 1e-5));
            before += e0, after += e1;
        }
        printf("# %-9s rows' output error: unclipped %.5g, clipped %.5g (mean ratio %.3f)\n",
               lb_type_name(types[k]), before, after, ratio);
    }
}

static void test_method_on_model(void **state) {
    (void)state;
    char      p[512], out[256];
    lb_model *m;
    lb_error  err = { 0 };
    assert_int_equal(lb_model_load(&m, repo_path("models/stories260K/stories260K.bin", p, sizeof p), NULL, &err), LB_OK);
    lb_quant_params qp = { .recipe = lb_recipe_find("q4_0"), .method = "awq+gptq",
                           .calib_text = repo_path("data/tinystories-valid-70.txt", p, sizeof p),
                           .calib = { .n_samples = 4, .n_ctx = 32, .seed = 1 },
                           .gptq = { .damp = 0.01, .block = 128 } };
    lb_quant_summary s;
    tmp_path("awq.gguf", out, sizeof out);
    assert_int_equal(lb_quantize_model(m, out, &qp, NULL, NULL, 0, &s, &err), LB_OK);
    assert_true(s.err_method > 0 && s.err_method < s.err_rtn); /* GPTQ's, on the AWQ model */
    lb_model *q;
    assert_int_equal(lb_model_load(&q, out, NULL, &err), LB_OK);
    lb_model_free(q);
    /* deterministic: the same bytes twice */
    char   out2[256], *a, *b;
    size_t na, nb;
    qp.method = "awq";
    assert_int_equal(lb_quantize_model(m, out, &qp, NULL, NULL, 0, &s, &err), LB_OK);
    assert_int_equal(lb_quantize_model(m, tmp_path("awq2.gguf", out2, sizeof out2), &qp, NULL, NULL, 0, &s, &err), LB_OK);
    assert_int_equal(lb_read_file(out, &a, &na, &err), LB_OK);
    assert_int_equal(lb_read_file(out2, &b, &nb, &err), LB_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
    unlink(out);
    unlink(out2);
    qp.method = "gptq+awq";
    assert_int_equal(lb_quantize_model(m, out, &qp, NULL, NULL, 0, &s, &err), LB_ERR_PARAM);
    printf("# %s\n", err.msg);
    assert_true(access(out, F_OK) != 0);
    lb_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_keeps_logits_stories),
        cmocka_unit_test(test_fold_keeps_logits_o_after_v),
        cmocka_unit_test(test_awq_beats_rtn_on_outlier_channels),
        cmocka_unit_test(test_awq_clip_never_raises_a_row_error),
        cmocka_unit_test(test_method_on_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
