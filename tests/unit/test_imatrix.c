/* Importance matrices: llama.cpp's file format read and written; quantizing with one gives
 * llama-quantize --imatrix's bytes for every importance-aware type (hashes recorded in
 * tests/golden/llama-quantize-imatrix.txt); our calibration statistics round-trip. */
#include <math.h>

#include "test_util.h"


static void test_matches_llama_quantize_imatrix(void **state) {
    (void)state;
    char mp[512], ip[512], list[512], out[256];
    SKIP_UNLESS(shared_path("golden/synth256-f32.gguf", mp, sizeof mp));
    SKIP_UNLESS(shared_path("golden/synth256.imatrix.gguf", ip, sizeof ip));
    lb_model   *m;
    lb_imatrix *im;
    lb_error    err = { 0 };
    assert_int_equal(lb_model_load(&m, mp, NULL, &err), LB_OK);
    assert_int_equal(lb_imatrix_load(&im, ip, &err), LB_OK);
    assert_int_equal(lb_imatrix_count(im), 14);
    FILE *f = fopen(repo_path("tests/golden/llama-quantize-imatrix.txt", list, sizeof list), "r");
    assert_non_null(f);
    char     line[256], cur[16] = "";
    lb_gguf *g       = NULL;
    int      checked = 0, differ = 0;
    tmp_path("imx.gguf", out, sizeof out);
    while (fgets(line, sizeof line, f)) {
        char               type[16], name[96];
        unsigned long long want;
        if (line[0] == '#' || sscanf(line, "%15s %95s %llx", type, name, &want) != 3) continue;
        if (strcmp(type, cur) != 0) {
            lb_gguf_close(g);
            const lb_quant_params p = { .recipe = lb_recipe_find(type), .pure = true, .imatrix = im };
            assert_non_null(p.recipe);
            assert_int_equal(lb_quantize_model(m, out, &p, NULL, NULL, 0, NULL, &err), LB_OK);
            assert_int_equal(lb_gguf_open(&g, out, &err), LB_OK);
            snprintf(cur, sizeof cur, "%s", type);
        }
        const int64_t i = lb_gguf_find_tensor(g, name);
        assert_true(i >= 0);
        const uint64_t got = fnv1a(g->tensors[i].data, g->tensors[i].nbytes);
        if (got != want) {
            printf("# %s %s differs from llama-quantize --imatrix\n", type, name);
            differ++;
        }
        checked++;
    }
    fclose(f);
    lb_gguf_close(g);
    remove(out);
    printf("# %d tensors quantized with llama.cpp's importance matrix: %d differ from llama-quantize\n",
           checked, differ);
    assert_true(checked >= 150);
    assert_int_equal(differ, 0);
    lb_imatrix_free(im);
    lb_model_free(m);
}

static void test_save_load_round_trip(void **state) {
    (void)state;
    char        mp[512], tp[512], out[256];
    lb_model   *m;
    lb_context *ctx;
    lb_calib   *cal;
    lb_imatrix *im;
    lb_error    err = { 0 };
    char       *text;
    size_t      len;
    int32_t    *win, n_win;
    assert_int_equal(lb_model_load(&m, repo_path("models/stories260K/stories260K.bin", mp, sizeof mp), NULL, &err), LB_OK);
    assert_int_equal(lb_read_file(repo_path("data/tinystories-valid-70.txt", tp, sizeof tp), &text, &len, &err), LB_OK);
    const lb_calib_params cp = { .n_samples = 4, .n_ctx = 64, .seed = 7 };
    assert_int_equal(lb_calib_windows(m->vocab, text, len, &cp, &win, &n_win, &err), LB_OK);
    assert_int_equal(n_win, 4);
    assert_int_equal(lb_context_create(&ctx, m, 64, 64, &err), LB_OK);
    assert_int_equal(lb_calib_create(&cal, m, false, &err), LB_OK);
    assert_int_equal(lb_calib_run(cal, ctx, win, n_win, 64, &err), LB_OK);
    tmp_path("stories.imatrix.gguf", out, sizeof out);
    assert_int_equal(lb_imatrix_save(cal, m, out, "tinystories", n_win, 64, &err), LB_OK);
    assert_int_equal(lb_imatrix_load(&im, out, &err), LB_OK);
    assert_int_equal(lb_imatrix_count(im), 7 * 5 + 1); /* every matrix with an input, tied output */
    float a[172], b[172];
    const lb_act_stats *s = lb_calib_get(cal, 3, LB_ROLE_FFN_DOWN);
    assert_int_equal(s->count, 4 * 64);
    assert_true(lb_act_importance(s, a));
    assert_true(lb_imatrix_get(im, "blk.3.ffn_down.weight", 172, b));
    for (int j = 0; j < 172; j++) assert_true(fabsf(a[j] - b[j]) <= 1e-6f * fabsf(a[j]) + 1e-12f);
    assert_false(lb_imatrix_get(im, "blk.3.ffn_down.weight", 171, b)); /* wrong size */
    assert_false(lb_imatrix_get(im, "blk.9.ffn_down.weight", 172, b)); /* absent */
    lb_imatrix_free(im);
    /* a GGUF that is no importance matrix */
    char mg[256];
    tmp_path("model.gguf", mg, sizeof mg);
    assert_int_equal(lb_model_save_gguf(m, mg, LB_TYPE_F32, &err), LB_OK);
    assert_int_equal(lb_imatrix_load(&im, mg, &err), LB_ERR_FORMAT);
    remove(mg);
    remove(out);
    free(win);
    free(text);
    lb_calib_free(cal);
    lb_context_free(ctx);
    lb_model_free(m);
}

/* A mixture of experts: per-expert statistics from the tokens routed to each (counts that add
 * up to the windows' tokens times the experts used), saved in llama-imatrix's layout ([n, X] sums,
 * [1, X] counts) and read back per expert; an expert without tokens reads as 1s */
static void test_experts(void **state) {
    (void)state;
    char            path[256], out[256];
    lb_error        err = { 0 };
    lb_synth_params p   = { .type = LB_TYPE_F32, .seed = 3, .arch = "qwen3moe" };
    assert_int_equal(lb_synth_shape("tiny", &p.cfg, &err), LB_OK);
    p.cfg.n_layers = 1, p.cfg.n_ff = 256, p.cfg.n_vocab = 300;
    tmp_path("moe-im.gguf", path, sizeof path);
    assert_int_equal(lb_synth_write(path, &p, &err), LB_OK);
    lb_model   *m;
    lb_context *ctx;
    lb_calib   *cal;
    lb_imatrix *im;
    assert_int_equal(lb_model_load(&m, path, NULL, &err), LB_OK);
    int32_t win[2 * 32];
    for (int i = 0; i < 64; i++) win[i] = (int32_t)((i * 37 + 5) % 300);
    assert_int_equal(lb_context_create(&ctx, m, 32, 32, &err), LB_OK);
    assert_int_equal(lb_calib_create(&cal, m, false, &err), LB_OK);
    assert_int_equal(lb_calib_run(cal, ctx, win, 2, 32, &err), LB_OK);
    int64_t total = 0, seen[8];
    for (int e = 0; e < 8; e++) {
        const lb_act_stats *s = lb_calib_get_expert(cal, 0, LB_ROLE_FFN_UP_EXPS, e);
        assert_non_null(s);
        assert_int_equal(s->n, 256);
        assert_ptr_equal(s, lb_calib_get_expert(cal, 0, LB_ROLE_FFN_GATE_EXPS, e)); /* gate and up share it */
        assert_int_equal(lb_calib_get_expert(cal, 0, LB_ROLE_FFN_DOWN_EXPS, e)->count, s->count);
        total += seen[e] = s->count;
    }
    assert_int_equal(total, 2 * 32 * 2); /* every token, twice (two experts each) */
    assert_null(lb_calib_get_expert(cal, 0, LB_ROLE_FFN_UP_EXPS, 8));
    tmp_path("moe.imatrix.gguf", out, sizeof out);
    assert_int_equal(lb_imatrix_save(cal, m, out, "synth", 2, 32, &err), LB_OK);
    assert_int_equal(lb_imatrix_load(&im, out, &err), LB_OK);
    float *v = malloc(256 * 8 * sizeof *v), a[256];
    assert_true(lb_imatrix_get_matrices(im, "blk.0.ffn_up_exps.weight", 256, 8, v));
    assert_false(lb_imatrix_get_matrices(im, "blk.0.ffn_up_exps.weight", 256, 7, v)); /* wrong count */
    assert_false(lb_imatrix_get(im, "blk.0.ffn_up_exps.weight", 256, v));           /* not one matrix */
    for (int e = 0; e < 8; e++) {
        const bool have = lb_act_importance(lb_calib_get_expert(cal, 0, LB_ROLE_FFN_UP_EXPS, e), a);
        assert_int_equal(have, seen[e] > 0);
        for (int j = 0; j < 256; j++)
            assert_true(have ? fabsf(a[j] - v[e * 256 + j]) <= 1e-5f * fabsf(a[j]) + 1e-12f : v[e * 256 + j] == 1.0f);
    }
    free(v);
    lb_imatrix_free(im);
    remove(out), remove(path);
    lb_calib_free(cal);
    lb_context_free(ctx);
    lb_model_free(m);
}

/* a copy of the selected Hessian of (layer 0, role, expert e; e < 0: a shared input) */
static double *hessian_copy(const lb_calib *cal, lb_tensor_role role, int32_t e) {
    const lb_act_stats *s = e < 0 ? lb_calib_get(cal, 0, role) : lb_calib_get_expert(cal, 0, role, e);
    assert_non_null(s);
    assert_non_null(s->H);
    double *h = malloc((size_t)s->n * (size_t)s->n * sizeof *h);
    memcpy(h, s->H, (size_t)s->n * (size_t)s->n * sizeof *h);
    return h;
}

/* The rare-expert prior (lb_calib_run_states_prior): an expert that saw c < min tokens of the
 * N gets (min - c) / N times every token's statistics added. Its gate/up input is the FFN's
 * input for every token (the shared input's Hessian); its down input is checked where every
 * token goes to every expert, so that the prior's rows are the rows the expert saw. */
static void test_expert_prior(void **state) {
    (void)state;
    char     path[256];
    lb_error err = { 0 };
    int32_t  win[2 * 32];
    for (int i = 0; i < 64; i++) win[i] = (int32_t)((i * 37 + 5) % 300);
    for (int all = 0; all < 2; all++) {
        lb_synth_params p = { .type = LB_TYPE_F32, .seed = 3, .arch = "qwen3moe" };
        assert_int_equal(lb_synth_shape("tiny", &p.cfg, &err), LB_OK);
        p.cfg.n_layers = 1, p.cfg.n_ff = 256, p.cfg.n_vocab = 300;
        p.cfg.n_expert = all ? 4 : 8, p.cfg.n_expert_used = all ? 4 : 2, p.cfg.n_ff_exp = 128;
        const int32_t X = p.cfg.n_expert, n = all ? p.cfg.n_ff_exp : p.cfg.n_embd;
        tmp_path("moe-prior.gguf", path, sizeof path);
        assert_int_equal(lb_synth_write(path, &p, &err), LB_OK);
        lb_model        *m;
        lb_context      *ctx;
        lb_calib        *cal;
        lb_calib_states *st;
        assert_int_equal(lb_model_load(&m, path, NULL, &err), LB_OK);
        assert_int_equal(lb_context_create(&ctx, m, 32, 32, &err), LB_OK);
        assert_int_equal(lb_calib_create(&cal, m, true, &err), LB_OK);
        assert_int_equal(lb_calib_states_create(&st, m, win, 2, 32, &err), LB_OK);
        const lb_tensor_role role = all ? LB_ROLE_FFN_DOWN_EXPS : LB_ROLE_FFN_GATE_EXPS;
        double              *every = NULL; /* H of every token's input (gate/up: the FFN's input) */
        if (!all) {
            lb_calib_select(cal, 0, LB_ROLE_FFN_GATE);
            assert_int_equal(lb_calib_clear(cal, 0, LB_ROLE_FFN_GATE, &err), LB_OK);
            assert_int_equal(lb_calib_run_states(cal, ctx, st, LB_CALIB_STAY, &err), LB_OK);
            assert_int_equal(lb_calib_get(cal, 0, LB_ROLE_FFN_GATE)->count, 64);
            every = hessian_copy(cal, LB_ROLE_FFN_GATE, -1);
        }
        lb_calib_select_experts(cal, 0, role, 0, X);
        assert_int_equal(lb_calib_clear(cal, 0, role, &err), LB_OK);
        assert_int_equal(lb_calib_run_states(cal, ctx, st, LB_CALIB_STAY, &err), LB_OK);
        double *h[8];
        int64_t seen[8], most = 0;
        for (int e = 0; e < X; e++) {
            h[e]    = hessian_copy(cal, role, e);
            seen[e] = lb_calib_get_expert(cal, 0, role, e)->count;
            most    = seen[e] > most ? seen[e] : most;
        }
        const int64_t min = all ? 3 * 64 : most; /* gate/up: all but the busiest; down: each, twice over */
        int32_t       topped = -1, expect = 0;
        for (int e = 0; e < X; e++) expect += seen[e] < min;
        assert_true(expect > 0);
        assert_int_equal(lb_calib_run_states_prior(cal, ctx, st, min, &topped, &err), LB_OK);
        assert_int_equal(topped, expect);
        for (int e = 0; e < X; e++) {
            const lb_act_stats *s = lb_calib_get_expert(cal, 0, role, e);
            const double        w = seen[e] < min ? (double)(min - seen[e]) / 64.0 : 0;
            assert_int_equal(s->count, seen[e]); /* the tokens seen stay what they were */
            assert_true(fabs(s->prior - w * 64) < 1e-9);
            const double *prior = all ? h[e] : every;
            double        big   = 0, worst = 0;
            for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
                big   = fmax(big, fabs(h[e][i] + w * prior[i]));
                worst = fmax(worst, fabs(s->H[i] - (h[e][i] + w * prior[i])));
            }
            assert_true(big > 0);
            assert_true(worst <= 1e-5 * big);
            free(h[e]);
        }
        int32_t again = -1; /* topped up already: nothing more */
        assert_int_equal(lb_calib_run_states_prior(cal, ctx, st, min, &again, &err), LB_OK);
        assert_int_equal(again, 0);
        free(every);
        remove(path);
        lb_calib_states_free(st);
        lb_calib_free(cal);
        lb_context_free(ctx);
        lb_model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_llama_quantize_imatrix),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_experts),
        cmocka_unit_test(test_expert_prior),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
