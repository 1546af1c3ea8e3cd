/* Quantization-aware training (fakequant.h, qat.c):
 *   - what the forward pass sees is exactly what the written file holds, for learned-step
 *     types (Q4_0, Q4_1, Q5_0, Q8_0, INTn groups and per row) and the generic path (Q2_K, IQ4_NL,
 *     ternary, NF4), after the steps have moved away from their RTN start;
 *   - step sizes start at the format's own RTN choice (the fake-quantized weights then equal
 *     the format's dequantized RTN, but for values on a rounding boundary);
 *   - the straight-through rule: clipped values pass no gradient, their step gets g q;
 *   - QAT, EfficientQAT and QAFT runs lower a tiny model's 2-bit validation loss and write a
 *     file lowbit loads. */
#include <math.h>

#include "test_util.h"
#include "train/fakequant.h"
#include "train/loop.h"
#include "train/tmodel.h"

static lb_llama_config cfg256(void) {
    return (lb_llama_config){ .n_embd = 256, .n_ff = 256, .n_layers = 1, .n_heads = 4,
                              .n_kv_heads = 2, .head_dim = 64, .n_vocab = 512, .n_ctx_train = 32,
                              .norm_eps = 1e-5f, .rope_theta = 10000.0f };
}

static const lb_type k_types[] = { LB_TYPE_Q4_0, LB_TYPE_Q4_1, LB_TYPE_Q5_0, LB_TYPE_Q8_0,
                                   LB_TYPE_INT3_G32, LB_TYPE_UINT2_G64, LB_TYPE_INT4_PC,
                                   LB_TYPE_Q2_K, LB_TYPE_IQ4_NL, LB_TYPE_TERNARY, LB_TYPE_NF4,
                                   LB_TYPE_Q5_1 };

static void assign_types(const lb_tmodel *tm, lb_type *types, int shift) {
    int k = shift;
    for (int32_t s = 0; s < tm->n_slots; s++)
        types[s] = tm->slots[s].matrix ? k_types[k++ % (int)(sizeof k_types / sizeof k_types[0])]
                                       : LB_TYPE_F32;
}

static void store_equals_forward(void **state) {
    (void)state;
    for (int shift = 0; shift < 12; shift += 5) {
        lb_llama_config c = cfg256();
        lb_tmodel       tm;
        lb_fakequant    fq;
        lb_error        err = { 0 };
        lb_type         types[64];
        assert_int_equal(lb_tmodel_init_random(&tm, NULL, &c, false, 5 + (uint64_t)shift, &err), LB_OK);
        assign_types(&tm, types, shift);
        assert_int_equal(lb_fq_init(&fq, &tm, types, true, 1.0f, &err), LB_OK);
        assert_int_equal(fq.n, 9); /* embedding, output and 7 matrices */
        lb_fq_refresh(&fq);
        /* at the start: the format's own RTN (for the learned-step types) */
        for (int32_t i = 0; i < fq.n; i++) {
            const lb_fq_tensor *t = &fq.t[i];
            if (!t->lsq) continue;
            const size_t rb  = lb_row_size(t->type, t->cols);
            uint8_t     *q   = malloc(rb * (size_t)t->rows);
            float       *row = malloc((size_t)t->cols * sizeof *row);
            lb_quantize_rows(t->type, q, tm.w + tm.slots[t->slot].off, t->rows, t->cols, NULL);
            int64_t diff = 0;
            for (int64_t r = 0; r < t->rows; r++) {
                lb_type_get_traits(t->type)->to_float(row, q + (size_t)r * rb, t->cols);
                for (int64_t j = 0; j < t->cols; j++) diff += row[j] != t->wq[r * t->cols + j];
            }
            if (diff) printf("# %s: %lld values differ from RTN\n", lb_type_name(t->type), (long long)diff);
            /* ggml codes with its f32 d and min, lowbit with the f16 ones the file holds: values
             * on a rounding boundary may land one level apart */
            assert_true(diff <= t->rows * t->cols / 100);
            free(q), free(row);
        }
        /* move steps, minima and weights, then compare the file's bytes with the forward */
        for (int32_t i = 0; i < fq.n_groups; i++)
            for (int64_t k = 0; k < fq.groups[i].n; k++) fq.groups[i].p[k] *= 0.8f + 0.03f * (float)(k % 13);
        for (int64_t i = 0; i < tm.n_params; i++) tm.w[i] += 0.001f * (float)((i * 7919) % 17 - 8);
        lb_fq_refresh(&fq);
        for (int32_t i = 0; i < fq.n; i++) {
            const lb_fq_tensor *t = &fq.t[i];
            void               *bytes;
            size_t              nb;
            assert_int_equal(lb_fq_store(&fq, i, &bytes, &nb, &err), LB_OK);
            const size_t rb  = lb_row_size(t->type, t->cols);
            float       *row = malloc((size_t)t->cols * sizeof *row);
            assert_int_equal(nb, rb * (size_t)t->rows);
            for (int64_t r = 0; r < t->rows; r++) {
                lb_type_get_traits(t->type)->to_float(row, (uint8_t *)bytes + (size_t)r * rb, t->cols);
                for (int64_t j = 0; j < t->cols; j++) /* equal values (a zero may carry a sign) */
                    if (row[j] != t->wq[r * t->cols + j])
                        fail_msg("%s row %lld col %lld: file %g, forward %g", lb_type_name(t->type),
                                 (long long)r, (long long)j, (double)row[j], (double)t->wq[r * t->cols + j]);
            }
            free(row), free(bytes);
        }
        lb_fq_free(&fq);
        lb_tmodel_free(&tm);
    }
}

/* one INT2 group by hand: levels -1, 0, 1 times s */
static void straight_through_rule(void **state) {
    (void)state;
    lb_llama_config c = cfg256();
    lb_tmodel       tm;
    lb_fakequant    fq;
    lb_error        err = { 0 };
    lb_type         types[64];
    assert_int_equal(lb_tmodel_init_random(&tm, NULL, &c, false, 1, &err), LB_OK);
    for (int32_t s = 0; s < tm.n_slots; s++) types[s] = s == LB_TSLOT(0, LB_TL_WQ) ? LB_TYPE_INT2_G32 : LB_TYPE_F32;
    assert_int_equal(lb_fq_init(&fq, &tm, types, true, 1.0f, &err), LB_OK);
    assert_int_equal(fq.n, 1);
    lb_fq_tensor *t = &fq.t[0];
    float        *w = tm.w + tm.slots[t->slot].off, *g = tm.g + tm.slots[t->slot].off;
    t->s[0]         = 0.5f; /* exact in f16 */
    for (int j = 0; j < 32; j++) w[j] = -1.0f + (float)j * (2.0f / 31.0f); /* -1 .. 1 */
    lb_fq_refresh(&fq);
    memset(tm.g, 0, (size_t)tm.n_params * sizeof *tm.g);
    for (int j = 0; j < 32; j++) g[j] = 1.0f;
    t->gs[0] = 0.0f;
    lb_fq_backward(&fq);
    double want = 0;
    for (int j = 0; j < 32; j++) {
        const float v = w[j] / 0.5f, q = fminf(fmaxf(roundf(v), -1.0f), 1.0f);
        assert_float_equal(t->wq[j], 0.5f * q, 0);
        const bool inside = roundf(v) >= -1.0f && roundf(v) <= 1.0f;
        assert_float_equal(g[j], inside ? 1.0f : 0.0f, 0);
        want += inside ? q - v : q;
    }
    assert_float_equal(t->gs[0], want, 1e-5);
    lb_fq_free(&fq);
    lb_tmodel_free(&tm);
}

static lb_tokens stream(int64_t n) {
    lb_tokens t = { .ids = malloc((size_t)n * sizeof(int32_t)), .n = n };
    for (int64_t i = 0; i < n; i++) t.ids[i] = 10 + (int32_t)((i * 7 + i / 3) % 50);
    return t;
}

/* the validation loss of a written file (int2_g32 weights, as trained) */
static double file_loss(const char *path, const lb_tokens *val) {
    lb_model *qm;
    lb_error  err = { 0 };
    assert_int_equal(lb_model_load(&qm, path, NULL, &err), LB_OK);
    assert_int_equal(qm->layers[0].wq.type, LB_TYPE_INT2_G32);
    lb_tmodel tm;
    assert_int_equal(lb_tmodel_init_from(&tm, qm, &err), LB_OK);
    assert_int_equal(lb_tmodel_set_batch(&tm, 4, 32, &err), LB_OK);
    const double loss = lb_train_validate(&tm, NULL, val, 8);
    lb_tmodel_free(&tm);
    lb_model_free(qm);
    return loss;
}

static void methods_lower_the_loss(void **state) {
    (void)state;
    char      p[4096], out[512], f32[512];
    lb_vocab *v;
    lb_error  err = { 0 };
    assert_int_equal(lb_vocab_load_any(&v, repo_path("models/stories260K/tok512.bin", p, sizeof p), &err), LB_OK);
    /* a small model trained on the stream first: its 2-bit version has something to lose */
    lb_llama_config c = cfg256();
    c.n_embd = 64, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16, c.n_ff = 128;
    lb_tokens     s = stream(6000), val = stream(1200);
    lb_train_opts o = lb_train_default_opts();
    o.batch = 4, o.ctx = 32, o.steps = 40, o.lr = 1e-2f, o.warmup = 4;
    lb_train_result r;
    tmp_path("qat-f32.gguf", f32, sizeof f32);
    assert_int_equal(lb_train_from_scratch(&c, false, v, &s, NULL, &o, f32, LB_TYPE_F32, &r, &err), LB_OK);
    lb_model *m;
    assert_int_equal(lb_model_load(&m, f32, NULL, &err), LB_OK);
    tmp_path("qat-out.gguf", out, sizeof out);
    const lb_qat_method methods[] = { LB_QAT_QAT, LB_QAT_EFFICIENT, LB_QAT_QAFT };
    for (int k = 0; k < 3; k++) {
        lb_qat_params q = lb_qat_default_params(methods[k]);
        q.type = "int2_g32", q.teacher = m, q.bap_windows = 8, q.bap_lr = 1e-3f;
        q.opts.batch = 4, q.opts.ctx = 32, q.opts.steps = 30, q.opts.lr = 2e-3f, q.opts.eval_windows = 8;
        /* the start: RTN at 2 bits (no steps) */
        lb_qat_params q0 = q;
        q0.opts.steps = 0, q0.bap_epochs = 0;
        assert_int_equal(lb_qat_run(m, &q0, &s, &val, out, &r, &err), LB_OK);
        const double rtn = file_loss(out, &val);
        assert_int_equal(lb_qat_run(m, &q, &s, &val, out, &r, &err), LB_OK);
        const double trained = file_loss(out, &val);
        printf("# method %d: valid loss %.4f at RTN, %.4f trained (%.4f in training)\n", k, rtn,
               trained, r.valid_loss);
        assert_float_equal(trained, r.valid_loss, 1e-4); /* the file is the trained model */
        assert_true(trained < rtn);
    }
    remove(out);
    remove(f32);
    lb_model_free(m);
    lb_tokens_free(&s);
    lb_tokens_free(&val);
    lb_vocab_free(v);
}

int main(void) {
    lb_threads_set(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(store_equals_forward),
        cmocka_unit_test(straight_through_rule),
        cmocka_unit_test(methods_lower_the_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
