/* Training end to end on tiny shapes (the ops themselves: test_train_ops.c):
 *   - the training forward equals the inference forward (lb_forward) on the same weights;
 *   - the whole model's gradient agrees with finite differences of its loss;
 *   - the loss falls on a learnable stream; the schedule and AdamW behave as specified;
 *   - a run resumed from a checkpoint ends bit-identical to an uninterrupted run;
 *   - the token cache round-trips and refuses bad files (truncated, foreign, out-of-range). */
#include <math.h>

#include "test_util.h"
#include "model/model_internal.h"
#include "train/loop.h"
#include "train/ops.h"
#include "train/optim.h"
#include "train/tmodel.h"

static lb_llama_config tiny_cfg(void) {
    return (lb_llama_config){ .n_embd = 32, .n_ff = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                              .head_dim = 8, .n_vocab = 512, .n_ctx_train = 16, .norm_eps = 1e-5f,
                              .rope_theta = 10000.0f };
}

static lb_vocab *vocab512(void) {
    char      p[4096];
    lb_vocab *v;
    lb_error  err = { 0 };
    assert_int_equal(lb_vocab_load_any(&v, repo_path("models/stories260K/tok512.bin", p, sizeof p), &err), LB_OK);
    return v;
}

/* a stream with structure to learn: counting runs modulo a small alphabet */
static lb_tokens stream(int64_t n, int32_t period) {
    lb_tokens t = { .ids = malloc((size_t)n * sizeof(int32_t)), .n = n };
    for (int64_t i = 0; i < n; i++) t.ids[i] = 10 + (int32_t)((i * 7 + i / period) % 50);
    return t;
}

/* The families the training model runs: each arch's tensors and forward (Mistral: llama with a
 * window on every layer; Mixtral and Qwen3-MoE: routed experts). Gemma's soft-capping is set
 * low enough to bend these scores. */
static const char *const k_families[] = { "llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "mixtral",
                                          "qwen3moe" };
#define N_FAMILIES ((int)(sizeof k_families / sizeof k_families[0]))

static const lb_arch *family(int f, lb_llama_config *c) {
    const bool     mistral = !strcmp(k_families[f], "mistral");
    const lb_arch *a       = lb_arch_by_name(mistral ? "llama" : k_families[f]);
    *c                     = tiny_cfg();
    assert_non_null(a);
    if (a->moe) /* mixtures of experts: 4 experts, 2 a token (Qwen3-MoE's of their own width) */
        c->n_expert = 4, c->n_expert_used = 2, c->n_ff_exp = a->ops.moe_ff_exp ? 48 : 0;
    if (mistral) c->n_swa = 5;
    if (a->ops.swa_pattern > 0) { /* Gemma: windows of 5 in sequences of 12-16; 3 layers */
        c->n_layers = 3, c->n_swa = 5;
        lb_arch_config_defaults(a, c);
        c->attn_softcap  = a->ops.attn_softcap > 0 ? 2.0f : 0.0f;
        c->final_softcap = 4.0f;
        c->swa_pattern   = 2;     /* layer 1 global */
        c->attn_scale    = 0.3f;  /* query_pre_attn_scalar of its own */
    }
    return a;
}

/* every parameter set off its init: matrices 5x, norms and biases varied */
static void perturb(lb_tmodel *tm) {
    for (int32_t sl = 0; sl < tm->n_slots; sl++)
        for (int64_t i = 0; i < tm->slots[sl].rows * tm->slots[sl].cols; i++)
            tm->w[tm->slots[sl].off + i] = tm->slots[sl].matrix ? 5.0f * tm->w[tm->slots[sl].off + i]
                                                                : 0.5f + 0.1f * (float)(i % 11);
}

static void forward_matches_inference(void **state) {
    (void)state;
    lb_vocab *v = vocab512();
    for (int f = 0; f < N_FAMILIES; f++) {
        lb_llama_config c;
        const lb_arch  *a = family(f, &c);
        lb_tmodel       tm;
        lb_error        err = { 0 };
        assert_int_equal(lb_tmodel_init_random(&tm, a, &c, false, 3, &err), LB_OK);
        perturb(&tm);
        assert_int_equal(lb_tmodel_set_batch(&tm, 2, 16, &err), LB_OK);
        lb_tokens s = stream(40, 5);
        int32_t   toks[32];
        memcpy(toks, s.ids, 16 * sizeof *toks);
        memcpy(toks + 16, s.ids + 20, 16 * sizeof *toks);
        lb_tmodel_forward(&tm, toks);
        lb_model *m;
        assert_int_equal(lb_tmodel_as_model(&tm, v, "t", &m, &err), LB_OK);
        assert_int_equal(lb_model_validate(m, "t", &err), LB_OK);
        lb_context *ctx;
        assert_int_equal(lb_context_create(&ctx, m, 16, 16, &err), LB_OK);
        double worst = 0;
        for (int b = 0; b < 2; b++) {
            const float *lg;
            lb_context_reset(ctx);
            assert_int_equal(lb_forward(ctx, toks + 16 * b, 16, &lg, &err), LB_OK);
            double se = 0, ss = 0;
            for (int64_t i = 0; i < 16 * 512; i++) {
                const double d = (double)lg[i] - tm.logits[(int64_t)b * 16 * 512 + i];
                se += d * d, ss += (double)lg[i] * lg[i];
            }
            worst = fmax(worst, sqrt(se / ss));
        }
        printf("# %s: training forward against lb_forward: %.2e\n", k_families[f], worst);
        assert_true(worst < 1e-5);
        lb_context_free(ctx);
        lb_model_free(m);
        lb_tokens_free(&s);
        lb_tmodel_free(&tm);
    }
    lb_vocab_free(v);
}

/* what the step's gradient minimizes: the cross-entropy and the experts' balance loss */
static double loss_of(lb_tmodel *tm, const int32_t *toks, const int32_t *tgt) {
    int64_t c;
    const double ce = lb_tmodel_loss(tm, toks, tgt, &c);
    return ce + lb_tmodel_balance_loss(tm);
}

/* d(sum of losses)/dθ at 2 parameters of every slot, against central differences: Llama tied
 * and untied, then each family */
/* a mixture of experts' choices of every layer (the last forward's), to tell whether a finite
 * difference moved a token to another expert */
static int32_t *save_routes(const lb_tmodel *tm) {
    const size_t n = (size_t)tm->B * (size_t)tm->T * (size_t)tm->cfg.n_expert_used;
    int32_t     *r = malloc((size_t)tm->cfg.n_layers * n * sizeof *r);
    assert_non_null(r);
    for (int32_t l = 0; l < tm->cfg.n_layers; l++) memcpy(r + (size_t)l * n, tm->acts[l].moe.sel, n * sizeof *r);
    return r;
}

static bool same_routes(const lb_tmodel *tm, const int32_t *r) {
    const size_t n = (size_t)tm->B * (size_t)tm->T * (size_t)tm->cfg.n_expert_used;
    for (int32_t l = 0; r && l < tm->cfg.n_layers; l++)
        if (memcmp(r + (size_t)l * n, tm->acts[l].moe.sel, n * sizeof *r)) return false;
    return true;
}

static void gradient_matches_finite_differences(void **state) {
    (void)state;
    for (int run = 0; run < N_FAMILIES + 1; run++) {
        const int       tied = run == 1, f = run == 0 ? 0 : run - 1;
        lb_llama_config c;
        const lb_arch  *a = family(f, &c);
        lb_tmodel       tm;
        lb_error        err = { 0 };
        assert_int_equal(lb_tmodel_init_random(&tm, a, &c, tied, 11, &err), LB_OK);
        perturb(&tm);
        tm.moe_aux = a->moe ? 0.5f : 0.0f; /* the load-balancing loss's gradient too */
        assert_int_equal(lb_tmodel_set_batch(&tm, 2, 12, &err), LB_OK);
        lb_tokens s = stream(64, 3);
        int32_t   toks[24], tgt[24];
        for (int i = 0; i < 24; i++) toks[i] = s.ids[i], tgt[i] = i % 5 == 4 ? -1 : s.ids[i + 1];
        memset(tm.g, 0, (size_t)tm.n_params * sizeof *tm.g);
        int64_t count;
        lb_tmodel_step(&tm, toks, tgt, NULL, 1.0f, &count);
        int32_t *routes = a->moe ? save_routes(&tm) : NULL;
        uint64_t rng = 5;
        int      checked = 0, skipped = 0;
        double   worst   = 0, se = 0, ss = 0;
        for (int32_t sl = 0; sl < tm.n_slots; sl++) {
            const lb_tslot *t = &tm.slots[sl];
            for (int k = 0; k < 2 && t->rows * t->cols > 0; k++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                const int64_t j = t->off + (int64_t)((rng >> 33) % (uint64_t)(t->rows * t->cols));
                /* a mixture of experts' loss sums more f32 terms: a larger step keeps their
                 * rounding small against the difference (steps that reroute are skipped) */
                const float   w0 = tm.w[j], h = (a->moe ? 4e-2f : 1e-2f) * fmaxf(fabsf(w0), 0.05f);
                tm.w[j]          = w0 + h;
                const double lp  = loss_of(&tm, toks, tgt);
                const bool   rp  = same_routes(&tm, routes);
                tm.w[j]          = w0 - h;
                const double lm  = loss_of(&tm, toks, tgt);
                const bool   rm  = same_routes(&tm, routes);
                tm.w[j]          = w0;
                if (!rp || !rm) { /* an expert chosen otherwise: the loss jumps, no derivative there */
                    skipped++;
                    continue;
                }
                const double num = (lp - lm) / (2.0 * h), ana = tm.g[j];
                const double e   = fabs(num - ana) / fmax(fabs(num) + fabs(ana), 5e-2);
                worst            = fmax(worst, e);
                se += (num - ana) * (num - ana), ss += ana * ana;
                if (e > 2e-2) printf("# slot %s: numeric %.6g analytic %.6g\n", t->name, num, ana);
                checked++;
            }
        }
        printf("# gradient check (%s%s): %d parameters (%d skipped: routing changed), worst relative error %.2e, "
               "norm-relative %.2e\n", k_families[f], tied ? ", tied" : "", checked, skipped, worst, sqrt(se / ss));
        assert_true(skipped <= checked / 2);
        free(routes);
        assert_true(worst < 3e-2);
        assert_true(sqrt(se / ss) < 5e-3);
        lb_tokens_free(&s);
        lb_tmodel_free(&tm);
    }
}

static void loss_falls(void **state) {
    (void)state;
    lb_llama_config c = tiny_cfg();
    lb_vocab       *v = vocab512();
    lb_tokens       s = stream(4000, 4), val = stream(600, 4);
    lb_train_opts   o = lb_train_default_opts();
    o.batch = 4, o.ctx = 16, o.steps = 60, o.lr = 1e-2f, o.warmup = 5, o.eval_windows = 8;
    lb_tmodel tm;
    lb_error  err = { 0 };
    assert_int_equal(lb_tmodel_init_random(&tm, NULL, &c, false, 1, &err), LB_OK);
    assert_int_equal(lb_tmodel_set_batch(&tm, 4, 16, &err), LB_OK);
    const double before = lb_train_validate(&tm, NULL, &val, 8);
    lb_train_job    job = { .tm = &tm, .train = &s, .valid = &val, .vocab = v, .label = "test" };
    lb_train_result r;
    assert_int_equal(lb_train_loop(&job, &o, &r, &err), LB_OK);
    printf("# validation loss %.3f -> %.3f in %lld steps\n", before, r.valid_loss, (long long)r.steps_done);
    assert_true(fabs(before - log(512.0)) < 0.5); /* starts near uniform */
    assert_true(r.valid_loss < 0.5 * before);
    assert_int_equal(r.steps_done, 60);
    assert_int_equal(r.tokens_seen, 60 * 4 * 16);
    lb_tmodel_free(&tm);
    lb_tokens_free(&s);
    lb_tokens_free(&val);
    lb_vocab_free(v);
}

static void schedule_and_adamw(void **state) {
    (void)state;
    assert_float_equal(lb_lr_at(0, 100, 10, 1.0f, 0.1f), 0.1f, 1e-6);
    assert_float_equal(lb_lr_at(9, 100, 10, 1.0f, 0.1f), 1.0f, 1e-6);
    assert_float_equal(lb_lr_at(10, 100, 10, 1.0f, 0.1f), 1.0f, 1e-6);
    assert_float_equal(lb_lr_at(55, 100, 10, 1.0f, 0.1f), 0.55f, 1e-6); /* halfway: the mean */
    assert_float_equal(lb_lr_at(100, 100, 10, 1.0f, 0.1f), 0.1f, 1e-6);
    /* AdamW's first step moves every parameter by lr (sign of g) plus the decay */
    float          p[3] = { 1.0f, -2.0f, 0.5f }, g[3] = { 0.3f, -5.0f, 0.0f };
    lb_param_group gr   = { .p = p, .g = g, .n = 3, .ne0 = 3, .decay = true, .lr_mult = 1.0f };
    lb_adamw       o;
    lb_error       err = { 0 };
    assert_int_equal(lb_adamw_init(&o, &gr, 1, &err), LB_OK);
    assert_float_equal(lb_adamw_grad_norm(&o), sqrt(0.09 + 25.0), 1e-5);
    lb_adamw_step(&o, 0.1f, 0.5f, 0.9f, 0.95f, 1e-8f, 1.0f);
    assert_float_equal(p[0], 1.0f - 0.1f * (1.0f + 0.5f), 1e-5);
    assert_float_equal(p[1], -2.0f - 0.1f * (-1.0f - 1.0f), 1e-5);
    assert_float_equal(p[2], 0.5f - 0.1f * 0.25f, 1e-5);
    lb_adamw_free(&o);
}

static void resume_is_exact(void **state) {
    (void)state;
    lb_llama_config c = tiny_cfg();
    lb_vocab       *v = vocab512();
    lb_tokens       s = stream(3000, 3);
    char            ck[512], ck2[512];
    tmp_path("resume.ckpt.gguf", ck, sizeof ck);
    tmp_path("resume2.ckpt.gguf", ck2, sizeof ck2);
    lb_train_opts o = lb_train_default_opts();
    o.batch = 2, o.ctx = 16, o.steps = 12, o.lr = 5e-3f, o.warmup = 3, o.accum = 2;
    lb_error        err = { 0 };
    lb_train_result r;
    lb_tmodel       a, b;
    /* straight through */
    assert_int_equal(lb_tmodel_init_random(&a, NULL, &c, false, 9, &err), LB_OK);
    lb_train_job ja = { .tm = &a, .train = &s, .vocab = v, .label = "a" };
    assert_int_equal(lb_train_loop(&ja, &o, &r, &err), LB_OK);
    /* 5 steps (checkpoint at the stop), then a fresh model resumed from it */
    assert_int_equal(lb_tmodel_init_random(&b, NULL, &c, false, 9, &err), LB_OK);
    lb_train_job  jb = { .tm = &b, .train = &s, .vocab = v, .label = "b" };
    lb_train_opts o1 = o;
    o1.ckpt_path = ck, o1.max_seconds = 1e-9; /* stops after its first step */
    assert_int_equal(lb_train_loop(&jb, &o1, &r, &err), LB_OK);
    assert_int_equal(r.steps_done, 1);
    lb_tmodel_free(&b);
    assert_int_equal(lb_tmodel_init_random(&b, NULL, &c, false, 1234, &err), LB_OK); /* other weights */
    lb_train_opts o2 = o;
    o2.resume_path = ck, o2.ckpt_path = ck2;
    assert_int_equal(lb_train_loop(&jb, &o2, &r, &err), LB_OK);
    assert_int_equal(r.steps_done, 12);
    assert_memory_equal(a.w, b.w, (size_t)a.n_params * sizeof *a.w);
    /* the checkpoint is a model too */
    lb_model *m;
    assert_int_equal(lb_model_load(&m, ck2, NULL, &err), LB_OK);
    assert_int_equal(m->cfg.n_layers, 2);
    lb_model_free(m);
    /* a checkpoint of another shape is refused */
    lb_llama_config c2 = c;
    c2.n_ff            = 96;
    lb_tmodel       d;
    assert_int_equal(lb_tmodel_init_random(&d, NULL, &c2, false, 9, &err), LB_OK);
    lb_train_job jd = { .tm = &d, .train = &s, .vocab = v, .label = "d" };
    o2.ckpt_path    = NULL;
    assert_int_equal(lb_train_loop(&jd, &o2, &r, &err), LB_ERR_SHAPE);
    lb_tmodel_free(&d);
    remove(ck);
    remove(ck2);
    lb_tmodel_free(&a);
    lb_tmodel_free(&b);
    lb_tokens_free(&s);
    lb_vocab_free(v);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void token_cache_bad_input(void **state) {
    (void)state;
    char path[512];
    tmp_path("tokens.cache", path, sizeof path);
    int32_t   ids[5] = { 1, 2, 3, 4, 511 };
    lb_tokens t = { .ids = ids, .n = 5 }, r;
    lb_error  err = { 0 };
    assert_int_equal(lb_tokens_write_cache(&t, path, 42, 512, &err), LB_OK);
    assert_int_equal(lb_tokens_read_cache(&r, path, 42, 512, &err), LB_OK);
    assert_int_equal(r.n, 5);
    assert_memory_equal(r.ids, ids, sizeof ids);
    lb_tokens_free(&r);
    assert_int_equal(lb_tokens_read_cache(&r, path, 43, 512, &err), LB_ERR_NOT_FOUND); /* other key */
    assert_int_equal(lb_tokens_read_cache(&r, path, 42, 300, &err), LB_ERR_NOT_FOUND); /* other vocab */
    char  *buf;
    size_t n;
    assert_int_equal(lb_read_file(path, &buf, &n, &err), LB_OK);
    for (size_t cut = 0; cut < n; cut++) { /* every truncation */
        write_bytes(path, buf, cut);
        assert_int_not_equal(lb_tokens_read_cache(&r, path, 42, 512, &err), LB_OK);
        assert_null(r.ids);
    }
    int64_t huge = INT64_MAX / 2;
    memcpy(buf + 24, &huge, 8);
    write_bytes(path, buf, n);
    assert_int_equal(lb_tokens_read_cache(&r, path, 42, 512, &err), LB_ERR_CORRUPT);
    huge = 5;
    memcpy(buf + 24, &huge, 8);
    const int32_t bad = 512;
    memcpy(buf + n - 4, &bad, 4);
    write_bytes(path, buf, n);
    assert_int_equal(lb_tokens_read_cache(&r, path, 42, 512, &err), LB_ERR_CORRUPT);
    memcpy(buf, "GGUF", 4);
    write_bytes(path, buf, n);
    assert_int_equal(lb_tokens_read_cache(&r, path, 42, 512, &err), LB_ERR_CORRUPT);
    free(buf);
    remove(path);
}

int main(void) {
    lb_threads_set(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forward_matches_inference),
        cmocka_unit_test(gradient_matches_finite_differences),
        cmocka_unit_test(loss_falls),
        cmocka_unit_test(schedule_and_adamw),
        cmocka_unit_test(resume_is_exact),
        cmocka_unit_test(token_cache_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
