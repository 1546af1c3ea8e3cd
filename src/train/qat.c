/* Quantization-aware training (lowbit/train.h): QAT, EfficientQAT (Block-AP + E2E-QP) and
 * QAFT, on top of the training loop (loop.h) and fake quantization (fakequant.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "fakequant.h"
#include "loop.h"
#include "lowbit/quant.h"
#include "model/model_internal.h"
#include "ops.h"

lb_qat_params lb_qat_default_params(lb_qat_method m) {
    /* distillation by default: on the testbed at INT2 g32 it leaves a third of cross-entropy
     * training's KL divergence for the same steps (bench/README.md, section 7) */
    lb_qat_params p = { .method = m, .lsq = true, .distill = true, .scale_lr_mult = 1.0f,
                        .opts = lb_train_default_opts(), .bap_windows = 128, .bap_epochs = 2,
                        .bap_lr = 1e-3f };
    p.opts.lr = 1e-3f, p.opts.steps = 200, p.opts.warmup = 10; /* tuned on the testbed at INT2 */
    p.opts.weight_decay = 0.0f, p.opts.min_lr_frac = 0.1f;
    return p;
}

/* Every slot's type: from the recipe's plan for the model, or the input's own types. */
static lb_status slot_types(const lb_model *in, const lb_tmodel *tm, const char *recipe, lb_type *types,
                            uint32_t *file_type, lb_error *err) {
    const int32_t    cap = lb_model_n_tensors(in);
    lb_named_tensor *nt  = calloc((size_t)cap, sizeof *nt);
    lb_tensor_plan  *pl  = calloc((size_t)cap, sizeof *pl);
    lb_status        st  = LB_OK;
    int32_t          n   = 0;
    LB_GOTO_IF(!nt || !pl, err, LB_ERR_NOMEM, "out of memory");
    if (recipe) {
        const lb_recipe *r = lb_recipe_find(recipe);
        LB_GOTO_IF(!r, err, LB_ERR_PARAM, "unknown type or mix '%s'", recipe);
        lb_quant_params qp = { .recipe = r };
        st = lb_quant_plan(in, &qp, nt, pl, cap, &n, err);
        if (st) goto fail;
        *file_type = r->file_type;
    } else {
        n = lb_model_tensors(in, nt, lb_model_n_tensors(in));
        for (int32_t i = 0; i < n; i++) pl[i].type = nt[i].t->type;
        *file_type = 0;
        if (lb_model_gguf(in)) {
            int64_t ft;
            if (lb_gguf_get_int(lb_model_gguf(in), "general.file_type", &ft, NULL) == LB_OK) *file_type = (uint32_t)ft;
        }
    }
    for (int32_t s = 0; s < tm->n_slots; s++) types[s] = LB_TYPE_F32;
    for (int32_t i = 0; i < n; i++)
        for (int32_t s = 0; s < tm->n_slots; s++)
            if (!strcmp(tm->slots[s].name, nt[i].name)) types[s] = pl[i].type;
fail:
    free(nt);
    free(pl);
    return st;
}

/* ---- EfficientQAT's Block-AP ---- */

/* The layer-l groups of the model (its slots) and of fq (its step sizes). */
static int32_t layer_groups(const lb_tmodel *tm, const lb_fakequant *fq, int32_t l, lb_param_group *g,
                            float lr_mult_w, float lr_mult_s) {
    int32_t n = 0;
    for (int k = 0; k < LB_TL_COUNT; k++) {
        const lb_tslot *s = &tm->slots[LB_TSLOT(l, k)];
        if (!s->rows) continue; /* a slot Llama does not have */
        g[n] = (lb_param_group){ .p = tm->w + s->off, .g = tm->g + s->off, .n = s->rows * s->cols,
                                 .ne0 = s->cols, .lr_mult = lr_mult_w };
        snprintf(g[n].name, sizeof g[n].name, "%s", s->name);
        n++;
    }
    for (int32_t i = 0; i < fq->n_groups; i++) {
        const char *name = fq->groups[i].name + 6; /* after "qat.s." / "qat.m." */
        char        pre[32];
        snprintf(pre, sizeof pre, "blk.%d.", l);
        if (!strncmp(name, pre, strlen(pre))) {
            g[n]         = fq->groups[i];
            g[n].lr_mult = lr_mult_s;
            n++;
        }
    }
    return n;
}

static lb_status block_ap(lb_tmodel *tm, lb_tmodel *teacher, lb_fakequant *fq, const lb_qat_params *p,
                          const lb_tokens *train, lb_error *err) {
    const int32_t B = p->opts.batch, T = p->opts.ctx, E = tm->cfg.n_embd;
    const int32_t W = (p->bap_windows + B - 1) / B * B; /* whole micro-batches */
    const size_t  NE = (size_t)W * (size_t)T * (size_t)E, MB = (size_t)B * (size_t)T * (size_t)E;
    float        *xq = malloc(NE * sizeof *xq), *xf = malloc(NE * sizeof *xf), *yf = malloc(NE * sizeof *yf);
    float        *out = malloc(MB * sizeof *out);
    int32_t      *tok = malloc((size_t)W * (size_t)T * sizeof *tok);
    lb_param_group g[LB_TL_COUNT + 32];
    lb_status      st = LB_OK;
    LB_GOTO_IF(!xq || !xf || !yf || !out || !tok, err, LB_ERR_NOMEM,
               "out of memory for Block-AP's %d windows of %d tokens", W, T);
    uint64_t rng = p->opts.seed * 0x9E3779B97F4A7C15ull + 3;
    for (int32_t w = 0; w < W; w++) { /* calibration windows */
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        const int64_t off = (int64_t)((rng >> 11) % (uint64_t)(train->n - T));
        memcpy(tok + (size_t)w * T, train->ids + off, (size_t)T * sizeof *tok);
    }
    for (int32_t w = 0; w < W; w += B) {
        lb_tmodel_embed(teacher, teacher->w + teacher->slots[LB_TS_TOK_EMBD].off, tok + (size_t)w * T,
                        (int64_t)B * T, xf + (size_t)w * T * E);
    }
    memcpy(xq, xf, NE * sizeof *xq); /* the embedding stays unquantized in the block phase */
    const int64_t steps_per_epoch = W / B;
    for (int32_t l = 0; l < tm->cfg.n_layers; l++) {
        /* the f32 block's outputs on the f32 inputs: the targets */
        for (int32_t w = 0; w < W; w += B)
            lb_tmodel_block_forward(teacher, l, xf + (size_t)w * T * E, yf + (size_t)w * T * E);
        const int32_t ng = layer_groups(tm, fq, l, g, 1.0f, p->scale_lr_mult);
        lb_adamw      opt;
        if ((st = lb_adamw_init(&opt, g, ng, err))) goto fail;
        fq->only_layer = l;
        const int64_t steps = steps_per_epoch * p->bap_epochs;
        double        first = 0, last = 0;
        for (int64_t s = 0; s < steps; s++) {
            const int32_t w = (int32_t)((s * 7 % steps_per_epoch)) * B; /* a fixed shuffle */
            lb_adamw_zero_grad(&opt);
            lb_fq_refresh(fq);
            lb_tmodel_block_forward(tm, l, xq + (size_t)w * T * E, out);
            const float *y   = yf + (size_t)w * T * E;
            double       mse = 0;
            for (size_t i = 0; i < MB; i++) {
                const float d = out[i] - y[i];
                mse += (double)d * d;
                out[i] = 2.0f * d / (float)MB;
            }
            mse /= (double)MB;
            if (s == 0) first = mse;
            last = mse;
            lb_tmodel_block_backward(tm, l, out);
            lb_fq_backward(fq);
            const float lr = lb_lr_at(s, steps, steps / 10, p->bap_lr, 0.1f);
            lb_adamw_step(&opt, lr, 0.0f, 0.9f, 0.95f, 1e-8f, 1.0f);
            lb_fq_after_update(fq);
        }
        lb_adamw_free(&opt);
        /* the next block's inputs: this quantized block's outputs */
        lb_fq_refresh(fq);
        for (int32_t w = 0; w < W; w += B)
            lb_tmodel_block_forward(tm, l, xq + (size_t)w * T * E, xq + (size_t)w * T * E);
        float *t = xf;
        xf = yf, yf = t;
        lb_train_report(&p->opts, false, "efficientqat: Block-AP layer %d: %lld steps, block output MSE %.3e -> %.3e",
                        l, (long long)steps, first, last);
    }
    fq->only_layer = -1;
fail:
    free(xq), free(xf), free(yf), free(out), free(tok);
    return st;
}

/* ---- the whole run ---- */

static lb_status write_output(const lb_model *in, lb_tmodel *tm, lb_fakequant *fq, const lb_type *types,
                              uint32_t file_type, const char *path, lb_error *err) {
    lb_model        *m   = NULL;
    lb_named_tensor *nt  = NULL;
    lb_type         *ty  = NULL;
    void           **dat = NULL;
    int32_t          cap = 0;
    lb_status        st  = lb_tmodel_as_model(tm, in->vocab, in->name, &m, err);
    if (st) goto fail;
    lb_model_keep_meta_of(m, in); /* the input's keys, as quantize keeps them */
    cap = lb_model_n_tensors(m);
    nt = calloc((size_t)cap, sizeof *nt), ty = calloc((size_t)cap, sizeof *ty), dat = calloc((size_t)cap, sizeof *dat);
    LB_GOTO_IF(!nt || !ty || !dat, err, LB_ERR_NOMEM, "out of memory");
    fq->only_layer  = -1;
    const int32_t n = lb_model_tensors(m, nt, lb_model_n_tensors(m));
    for (int32_t i = 0; i < n; i++) {
        int32_t slot = -1;
        for (int32_t s = 0; s < tm->n_slots; s++)
            if (!strcmp(tm->slots[s].name, nt[i].name)) slot = s;
        LB_GOTO_IF(slot < 0, err, LB_ERR_NOT_FOUND, "no parameters for %s", nt[i].name);
        ty[i] = types[slot];
        for (int32_t k = 0; k < fq->n; k++)
            if (fq->t[k].slot == slot) {
                size_t nb;
                if ((st = lb_fq_store(fq, k, &dat[i], &nb, err))) goto fail;
            }
    }
    const lb_write_plan plan = { .types = ty, .data = (const void *const *)dat, .file_type = file_type };
    st = lb_model_write_gguf(m, path, &plan, err);
fail:
    if (dat)
        for (int32_t i = 0; i < cap; i++) free(dat[i]);
    free(dat), free(ty), free(nt);
    lb_model_free(m);
    return st;
}

lb_status lb_qat_run(const lb_model *in, const lb_qat_params *p, const lb_tokens *train,
                     const lb_tokens *valid, const char *out_path, lb_train_result *res,
                     lb_error *err) {
    static const char *const names[] = { "qat", "efficientqat", "qaft" };
    lb_tmodel    tm = { 0 }, teacher = { 0 };
    lb_fakequant fq = { 0 };
    lb_type     *types = NULL;
    uint32_t     file_type = 0;
    lb_status    st;
    const bool   need_teacher = p->distill || p->method == LB_QAT_EFFICIENT;
    memset(res, 0, sizeof *res);
    res->valid_loss = NAN;
    LB_RETURN_IF(in->cfg.n_expert > 0, err, LB_ERR_UNSUPPORTED, "%s of a mixture of experts (%s) is not supported "
                 "yet (its experts' fake quantization and Block-AP's expert blocks)", names[p->method], in->arch->name);
    LB_RETURN_IF(p->opts.ctx > in->cfg.n_ctx_train, err, LB_ERR_PARAM,
                 "windows of %d tokens exceed the model's context of %d", p->opts.ctx, in->cfg.n_ctx_train);
    LB_RETURN_IF(!train || train->n < (int64_t)p->opts.ctx + 2, err, LB_ERR_PARAM,
                 "the training text is shorter than one window of %d tokens", p->opts.ctx + 1);
    if ((st = lb_tmodel_init_from(&tm, in, err))) return st;
    types = calloc((size_t)tm.n_slots, sizeof *types);
    LB_GOTO_IF(!types, err, LB_ERR_NOMEM, "out of memory");
    if ((st = slot_types(in, &tm, p->type, types, &file_type, err))) goto fail;
    if (need_teacher) {
        const lb_model *ref = p->teacher ? p->teacher : in;
        LB_GOTO_IF(ref->cfg.n_embd != in->cfg.n_embd || ref->cfg.n_layers != in->cfg.n_layers ||
                       ref->cfg.n_vocab != in->cfg.n_vocab || ref->cfg.n_ff != in->cfg.n_ff,
                   err, LB_ERR_SHAPE, "the teacher's shape differs from the model's");
        if ((st = lb_tmodel_init_from(&teacher, ref, err))) goto fail;
        if ((st = lb_tmodel_set_batch(&teacher, p->opts.batch, p->opts.ctx, err))) goto fail;
    }
    if ((st = lb_fq_init(&fq, &tm, types, p->lsq, p->scale_lr_mult, err))) goto fail;
    if ((st = lb_tmodel_set_batch(&tm, p->opts.batch, p->opts.ctx, err))) goto fail;
    const lb_train_hooks hooks = { .user = &fq, .before_forward = lb_fq_hook_before,
                                   .after_backward = lb_fq_hook_after_backward,
                                   .after_update = lb_fq_hook_after_update,
                                   .teacher = p->distill ? &teacher : NULL };
    if (p->opts.report && valid) {
        const double v0 = lb_train_validate(&tm, &hooks, valid, p->opts.eval_windows);
        lb_train_report(&p->opts, false, "%s: %d tensors fake-quantized (%d with learned steps); start: "
                        "valid loss %.4f (ppl %.3f)", names[p->method], fq.n, fq.n_groups, v0, exp(v0));
    }
    if (p->method == LB_QAT_EFFICIENT) {
        if ((st = block_ap(&tm, &teacher, &fq, p, train, err))) goto fail;
        if ((st = lb_fq_freeze(&fq, err))) goto fail;
        if (p->opts.report && valid) {
            const double v1 = lb_train_validate(&tm, &hooks, valid, p->opts.eval_windows);
            lb_train_report(&p->opts, false, "efficientqat: after Block-AP: valid loss %.4f (ppl %.3f)", v1, exp(v1));
        }
    }
    const lb_train_job job = { .tm = &tm, .extra = fq.groups, .n_extra = fq.n_groups,
                               .freeze_model = p->method == LB_QAT_EFFICIENT, .hooks = &hooks,
                               .train = train, .valid = valid, .vocab = in->vocab,
                               .label = names[p->method] };
    const lb_train_opts o = p->opts;
    if (o.steps > 0 && (st = lb_train_loop(&job, &o, res, err))) goto fail;
    st = write_output(in, &tm, &fq, types, file_type, out_path, err);
fail:
    lb_fq_free(&fq);
    lb_tmodel_free(&teacher);
    lb_tmodel_free(&tm);
    free(types);
    return st;
}
