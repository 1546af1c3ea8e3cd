/* The training loop (loop.h): seeded random windows, gradient accumulation, clipping,
 * AdamW with warmup + cosine, validation, checkpoints, a progress line, resumption. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fail.h"
#include "fakequant.h"
#include "loop.h"

void lb_train_report(const lb_train_opts *o, bool step, const char *fmt, ...) {
    if (!o->report) return;
    char    line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->report(o->report_user, line, step);
}

lb_train_opts lb_train_default_opts(void) {
    return (lb_train_opts){ .batch = 8, .ctx = 256, .accum = 1, .steps = 1000, .lr = 1e-3f,
                            .min_lr_frac = 0.1f, .weight_decay = 0.1f, .clip = 1.0f,
                            .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .warmup = 100,
                            .seed = 1, .eval_every = 0, .eval_windows = 64, .ckpt_every = 0,
                            .log_every = 10, .moe_aux = 0.01f };
}

static uint64_t next_rng(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* B windows of T+1 tokens at random offsets: inputs tokens[b*T + t], targets shifted by one. */
static void sample_batch(const lb_tokens *d, int32_t B, int32_t T, uint64_t *rng, int32_t *tokens,
                         int32_t *targets) {
    const uint64_t span = (uint64_t)(d->n - T); /* offsets 0 .. n-T-1 */
    for (int32_t b = 0; b < B; b++) {
        const int64_t off = (int64_t)(next_rng(rng) % span);
        memcpy(tokens + (size_t)b * (size_t)T, d->ids + off, (size_t)T * sizeof *tokens);
        memcpy(targets + (size_t)b * (size_t)T, d->ids + off + 1, (size_t)T * sizeof *targets);
    }
}

double lb_train_validate(lb_tmodel *tm, const lb_train_hooks *h, const lb_tokens *v, int32_t windows) {
    const int32_t B = tm->B, T = tm->T;
    if (!v || v->n < (int64_t)T + 1 || windows <= 0) return NAN;
    const int64_t avail = (v->n - 1) / T;
    if (windows > avail) windows = (int32_t)avail;
    int32_t *tok = malloc((size_t)B * (size_t)T * 2 * sizeof *tok);
    if (!tok) return NAN;
    int32_t *tgt = tok + (size_t)B * (size_t)T;
    if (h && h->before_forward) h->before_forward(h->user);
    double  sum   = 0.0;
    int64_t count = 0;
    for (int32_t w0 = 0; w0 < windows; w0 += B) {
        for (int32_t b = 0; b < B; b++) {
            const int32_t w = w0 + b < windows ? w0 + b : windows - 1; /* pad: not counted */
            memcpy(tok + (size_t)b * T, v->ids + (int64_t)w * T, (size_t)T * sizeof *tok);
            for (int32_t t = 0; t < T; t++)
                tgt[(size_t)b * T + t] = w0 + b < windows ? v->ids[(int64_t)w * T + t + 1] : -1;
        }
        int64_t c;
        sum += lb_tmodel_loss(tm, tok, tgt, &c);
        count += c;
    }
    free(tok);
    return count ? sum / (double)count : NAN;
}

static void fmt_eta(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

lb_status lb_train_loop(const lb_train_job *job, const lb_train_opts *o, lb_train_result *res,
                        lb_error *err) {
    lb_tmodel    *tm = job->tm;
    const int32_t B = o->batch, T = o->ctx;
    memset(res, 0, sizeof *res);
    res->valid_loss = NAN;
    LB_RETURN_IF(o->accum <= 0 || o->steps < 0 || !(o->lr >= 0), err, LB_ERR_PARAM,
                 "bad training options (accum %d, steps %lld, lr %g)", o->accum,
                 (long long)o->steps, (double)o->lr);
    LB_RETURN_IF(!job->train || job->train->n < (int64_t)T + 2, err, LB_ERR_PARAM,
                 "the training text has %lld tokens, fewer than one window of %d",
                 (long long)(job->train ? job->train->n : 0), T + 1);
    lb_status st = lb_tmodel_set_batch(tm, B, T, err);
    if (!st && job->hooks && job->hooks->teacher) st = lb_tmodel_set_batch(job->hooks->teacher, B, T, err);
    if (st) return st;

    /* parameter groups: the model's slots, then the method's */
    const int32_t   n_groups = tm->n_slots + job->n_extra;
    lb_param_group *groups   = calloc((size_t)n_groups, sizeof *groups);
    int32_t        *tokens   = malloc((size_t)B * (size_t)T * 2 * sizeof *tokens);
    lb_adamw        opt      = { 0 };
    if (!groups || !tokens) {
        free(groups);
        free(tokens);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    int32_t *targets = tokens + (size_t)B * (size_t)T;
    for (int32_t i = 0; i < tm->n_slots; i++) {
        const lb_tslot *s = &tm->slots[i];
        groups[i]         = (lb_param_group){ .p = tm->w + s->off, .g = tm->g + s->off,
                                              .n = s->rows * s->cols, .ne0 = s->cols,
                                              .decay = s->matrix,
                                              .lr_mult = job->freeze_model ? 0.0f : 1.0f };
        snprintf(groups[i].name, sizeof groups[i].name, "%s", s->name);
    }
    for (int32_t i = 0; i < job->n_extra; i++) groups[tm->n_slots + i] = job->extra[i];
    st = lb_adamw_init(&opt, groups, n_groups, err);

    lb_train_state state = { .step = 0, .tokens = 0, .rng = o->seed * 0xD1B54A32D192ED03ull + 7 };
    if (!st && o->resume_path) {
        st = lb_train_ckpt_load(o->resume_path, &opt, &state, err);
        if (!st)
            lb_train_report(o, false, "%s: resumed from %s at step %lld (%lld tokens)", job->label,
                            o->resume_path, (long long)state.step, (long long)state.tokens);
    }
    const lb_train_hooks *h       = job->hooks;
    const double          t_start = lb_time_sec();
    const int64_t         step0   = state.step;
    double                log_loss = 0.0, last_ckpt = t_start;
    int64_t               log_count = 0, log_steps = 0;
    const float           scale     = 1.0f / ((float)B * (float)T * (float)o->accum);
    while (!st && state.step < o->steps) {
        lb_adamw_zero_grad(&opt);
        for (int32_t a = 0; a < o->accum; a++) {
            sample_batch(job->train, B, T, &state.rng, tokens, targets);
            if (h && h->before_forward) h->before_forward(h->user);
            const float *teacher = NULL;
            if (h && h->teacher) {
                lb_tmodel_forward(h->teacher, tokens);
                teacher = h->teacher->logits;
            }
            int64_t c;
            log_loss += lb_tmodel_step(tm, tokens, targets, teacher, scale, &c);
            log_count += c;
        }
        if (h && h->after_backward) h->after_backward(h->user);
        const double gnorm = lb_adamw_grad_norm(&opt);
        const float  clip  = o->clip > 0 && gnorm > o->clip ? (float)(o->clip / gnorm) : 1.0f;
        const float  lr    = lb_lr_at(state.step, o->steps, o->warmup, o->lr, o->min_lr_frac);
        if (isfinite(gnorm)) lb_adamw_step(&opt, lr, o->weight_decay, o->beta1, o->beta2, o->eps, clip);
        if (h && h->after_update) h->after_update(h->user);
        state.step++;
        state.tokens += (int64_t)B * T * o->accum;
        log_steps++;
        const double now  = lb_time_sec(), el = now - t_start;
        const double tps  = (double)(state.step - step0) * B * T * o->accum / (el > 0 ? el : 1e-9);
        const bool   last = state.step == o->steps || state.step == o->stop_at ||
                          (o->max_seconds > 0 && el >= o->max_seconds);
        if (!isfinite(gnorm)) {
            st = lb_fail(err, LB_ERR_NUMERIC, "%s: the gradient is not finite at step %lld (lower "
                         "the learning rate)", job->label, (long long)state.step);
            break;
        }
        if (log_steps >= (o->log_every > 0 ? o->log_every : 1) || last) {
            res->train_loss = log_loss / (double)(log_count ? log_count : 1);
            if (o->log)
                fprintf(o->log, "{\"step\": %lld, \"tokens\": %lld, \"loss\": %.5f, \"lr\": %.3e, "
                        "\"grad_norm\": %.4f, \"tok_per_s\": %.1f, \"seconds\": %.1f}\n",
                        (long long)state.step, (long long)state.tokens, res->train_loss, (double)lr,
                        gnorm, tps, el);
            if (o->report) {
                char eta[32];
                fmt_eta(eta, sizeof eta, (double)(o->steps - state.step) * B * T * o->accum / tps);
                lb_train_report(o, true, "%s: step %lld/%lld  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %s",
                                job->label, (long long)state.step, (long long)o->steps, res->train_loss,
                                (double)lr, gnorm, tps, eta);
            }
            log_loss = 0.0, log_count = 0, log_steps = 0;
        }
        if ((o->eval_every > 0 && state.step % o->eval_every == 0) || last) {
            res->valid_loss = lb_train_validate(tm, h, job->valid, o->eval_windows);
            if (isfinite(res->valid_loss)) {
                lb_train_report(o, false, "%s: step %lld  valid loss %.4f  ppl %.3f", job->label,
                                (long long)state.step, res->valid_loss, exp(res->valid_loss));
                if (o->log)
                    fprintf(o->log, "{\"step\": %lld, \"tokens\": %lld, \"valid_loss\": %.5f}\n",
                            (long long)state.step, (long long)state.tokens, res->valid_loss);
            }
            if (o->log) fflush(o->log);
        }
        if (o->ckpt_path && (last || (o->ckpt_every > 0 && state.step % o->ckpt_every == 0))) {
            st = lb_train_ckpt_save(o->ckpt_path, job, &opt, &state, err);
            last_ckpt = now;
        }
        if (last) break;
    }
    (void)last_ckpt;
    res->steps_done     = state.step;
    res->tokens_seen    = state.tokens;
    res->seconds        = lb_time_sec() - t_start;
    res->tokens_per_sec = (double)(state.step - step0) * B * T * o->accum / (res->seconds > 0 ? res->seconds : 1e-9);
    lb_adamw_free(&opt);
    free(groups);
    free(tokens);
    return st;
}

lb_status lb_train_from_scratch(const lb_llama_config *cfg, bool tied, lb_vocab *vocab,
                                const lb_tokens *train, const lb_tokens *valid,
                                const lb_train_opts *opts, const char *out_path, lb_type out_type,
                                lb_train_result *res, lb_error *err) {
    const int32_t n_vocab = opts->init ? opts->init->cfg.n_vocab : cfg->n_vocab;
    LB_RETURN_IF(n_vocab != lb_vocab_n_tokens(vocab), err, LB_ERR_SHAPE,
                 "the model has %d tokens, its tokenizer %d", n_vocab, lb_vocab_n_tokens(vocab));
    LB_RETURN_IF(opts->ctx > cfg->n_ctx_train, err, LB_ERR_PARAM,
                 "training windows of %d tokens exceed the model's context of %d", opts->ctx,
                 cfg->n_ctx_train);
    if (opts->ternary) { /* written as TQ2_0: the fit is checked before any training */
        const int64_t cols[2] = { cfg->n_embd, cfg->n_ff };
        const char   *what[2] = { "n_embd", "n_ff" };
        for (int k = 0; k < 2; k++)
            LB_RETURN_IF(lb_row_size(LB_TYPE_TQ2_0, cols[k]) == 0, err, LB_ERR_PARAM,
                         "ternary: rows of %lld values (%s) do not fit tq2_0, which stores rows "
                         "in blocks of %d", (long long)cols[k], what[k],
                         lb_type_get_traits(LB_TYPE_TQ2_0)->block_size);
        LB_RETURN_IF(cfg->n_layers > 64, err, LB_ERR_UNSUPPORTED, "ternary: at most 64 layers");
    }
    lb_tmodel    tm;
    lb_fakequant fq    = { 0 };
    lb_type     *types = NULL;
    const lb_arch *arch = opts->arch ? lb_arch_by_name(opts->arch) : NULL;
    LB_RETURN_IF(opts->arch && !arch, err, LB_ERR_PARAM, "train: unknown architecture '%s' (%s)", opts->arch,
                 lb_arch_names());
    LB_RETURN_IF(opts->ternary && ((arch && arch->moe) || opts->init), err, LB_ERR_UNSUPPORTED,
                 "ternary: from scratch only, not for a mixture of experts");
    lb_status st = opts->init ? lb_tmodel_init_from(&tm, opts->init, err)
                              : lb_tmodel_init_random(&tm, arch, cfg, tied, opts->seed, err);
    if (st) return st;
    tm.moe_aux = opts->moe_aux;
    lb_train_hooks hooks = { .user = &fq, .before_forward = lb_fq_hook_before };
    if (opts->ternary) { /* BitNet b1.58: the block matrices ternary, activations int8 */
        types = calloc((size_t)tm.n_slots, sizeof *types);
        LB_GOTO_IF(!types, err, LB_ERR_NOMEM, "out of memory");
        for (int32_t s = 0; s < tm.n_slots; s++)
            types[s] = s >= LB_TS_GLOBAL && tm.slots[s].matrix ? LB_TYPE_TERNARY : LB_TYPE_F32;
        if ((st = lb_fq_init(&fq, &tm, types, false, 1.0f, err))) goto fail;
        tm.act_bits = 8;
    }
    const lb_train_job job = { .tm = &tm, .train = train, .valid = valid, .vocab = vocab,
                               .hooks = opts->ternary ? &hooks : NULL, .label = "train" };
    if ((st = lb_train_loop(&job, opts, res, err))) goto fail;
    lb_model *m = NULL;
    if (opts->ternary) {
        /* the weights the forward pass used, {-g, 0, g} per tensor: TQ2_0 holds them (d = g
         * in f16 in every block) */
        lb_fq_refresh(&fq);
        for (int32_t i = 0; i < fq.n; i++)
            memcpy(tm.w + tm.slots[fq.t[i].slot].off, fq.t[i].wq,
                   (size_t)(fq.t[i].rows * fq.t[i].cols) * sizeof(float));
        for (int32_t s = 0; s < tm.n_slots; s++) types[s] = types[s] == LB_TYPE_TERNARY ? LB_TYPE_TQ2_0 : out_type;
    }
    st = lb_tmodel_as_model(&tm, vocab, "lowbit-testbed", &m, err);
    if (!st && !opts->ternary) st = lb_model_save_gguf(m, out_path, out_type, err);
    if (!st && opts->ternary) {
        lb_named_tensor *nt = malloc((size_t)lb_model_n_tensors(m) * sizeof *nt);
        lb_type         *ty = malloc((size_t)lb_model_n_tensors(m) * sizeof *ty);
        const int32_t    n  = nt && ty ? lb_model_tensors(m, nt, lb_model_n_tensors(m)) : 0;
        if (!nt || !ty) st = lb_fail(err, LB_ERR_NOMEM, "out of memory");
        for (int32_t i = 0; i < n; i++) {
            ty[i] = nt[i].t->ne[1] == 1 ? LB_TYPE_F32 : out_type;
            for (int32_t s = 0; s < tm.n_slots; s++)
                if (!strcmp(tm.slots[s].name, nt[i].name) && types[s] == LB_TYPE_TQ2_0) ty[i] = LB_TYPE_TQ2_0;
        }
        const lb_write_plan plan = { .types = ty, .file_type = 37 /* LLAMA_FTYPE_MOSTLY_TQ2_0 */ };
        if (!st) st = lb_model_write_gguf(m, out_path, &plan, err);
        free(nt);
        free(ty);
    }
    lb_model_free(m);
fail:
    lb_fq_free(&fq);
    free(types);
    lb_tmodel_free(&tm);
    return st;
}
