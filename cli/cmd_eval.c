/* lowbit eval MODEL --text FILE [--ref REF | --ref-logits FILE]: perplexity as
 * llama-perplexity computes it; with a reference, the KL divergence report of
 * llama-perplexity --kl-divergence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_json(const char *model, const char *text, const lb_model *m, size_t n_ids,
                       const lb_ppl_result *r, const lb_kld_result *k) {
    const size_t bytes = lb_model_nbytes(m);
    lb_jout      j;
    lb_jout_begin(&j, stdout);
    lb_jout_str(&j, "model", model);
    lb_jout_str(&j, "text", text);
    lb_jout_num(&j, "ppl", 6, r->ppl);
    lb_jout_num(&j, "ppl_stderr", 6, r->ppl_stderr);
    lb_jout_num(&j, "nll", 6, r->nll_mean);
    lb_jout_int(&j, "tokens_scored", r->tokens_scored);
    lb_jout_int(&j, "chunks", r->chunks);
    lb_jout_int(&j, "ctx", r->n_ctx);
    lb_jout_int(&j, "text_tokens", (long long)n_ids);
    lb_jout_int(&j, "bytes", (long long)bytes);
    lb_jout_num(&j, "bpw", 4, 8.0 * (double)bytes / (double)lb_model_nparams(m));
    lb_jout_num(&j, "tokens_per_sec", 1, r->tokens_per_sec);
    lb_jout_num(&j, "seconds", 3, r->seconds);
    lb_jout_int(&j, "threads", lb_threads_get());
    lb_jout_int(&j, "ranks", lb_dist_size());
    lb_jout_int(&j, "mpi_bytes_sent", (long long)lb_dist_bytes_sent());
    if (k) {
        const struct {
            const char *key;
            double      v;
        } f[] = { { "ppl_ref", k->ppl_ref }, { "ln_ppl_ratio", k->ln_ppl_ratio }, { "kld_mean", k->kld_mean },
                  { "kld_stderr", k->kld_stderr }, { "kld_median", k->kld_median }, { "kld_p90", k->kld_p90 },
                  { "kld_p95", k->kld_p95 }, { "kld_p99", k->kld_p99 }, { "kld_max", k->kld_max },
                  { "top1", k->top1 }, { "rms_dp", k->rms_dp } };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) lb_jout_num(&j, f[i].key, 6, f[i].v);
    }
    lb_jout_end(&j);
}

static void print_text(const char *model, const char *text, const lb_model *m, size_t n_ids,
                       double t_tok, const lb_ppl_result *r, const lb_kld_result *k) {
    const size_t bytes = lb_model_nbytes(m);
    printf("model:      %s (%.2f MB, %.3f bits per weight)\n"
           "text:       %s (%zu tokens, tokenized in %.3fs)\n"
           "chunks:     %d of %d tokens, %lld tokens scored\n"
           "perplexity: %.4f +/- %.5f\n",
           model, (double)bytes / 1e6, 8.0 * (double)bytes / (double)lb_model_nparams(m), text,
           n_ids, t_tok, r->chunks, r->n_ctx, (long long)r->tokens_scored, r->ppl, r->ppl_stderr);
    if (k)
        printf("reference:  PPL %.4f; ln(PPL/PPL_ref) %.6f +/- %.6f; PPL ratio %.4f\n"
               "KLD:        mean %.6f +/- %.6f, median %.6f, p90 %.6f, p95 %.6f, p99 %.6f, max %.6f\n"
               "top-1:      %.2f%% +/- %.2f%% the same token\n"
               "RMS dp:     %.3f%%\n",
               k->ppl_ref, k->ln_ppl_ratio, k->ln_ppl_ratio_stderr, r->ppl / k->ppl_ref, k->kld_mean,
               k->kld_stderr, k->kld_median, k->kld_p90, k->kld_p95, k->kld_p99, k->kld_max,
               100 * k->top1, 100 * k->top1_stderr, 100 * k->rms_dp);
    printf("speed:      %.1f tokens/s (prompt processing, %d threads", r->tokens_per_sec, lb_threads_get());
    printf(lb_dist_size() > 1 ? " on each of %d ranks)\n" : ")\n", lb_dist_size());
}

int cmd_eval(int argc, char **argv) {
    lb_args     a;
    const char *opt, *tok = NULL, *text_path = NULL, *logits_path = NULL, *ref_path = NULL,
                     *ref_logits = NULL, *base = NULL;
    int64_t     n_ctx = 128, chunks = 0, threads = 0;
    bool        json = false, long_ctx = false, kld = false, ctx_given = false;
    lb_ctx_options co;
    lb_ctx_options_init(&co, false);
    lb_args_init(&a, "eval", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) return lb_print_help("eval");
        else if (lb_args_ctx_option(&a, opt, &co)) continue;
        else if (!strcmp(opt, "--text") || !strcmp(opt, "-f")) text_path = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--ctx") || !strcmp(opt, "-c")) ctx_given = lb_args_int(&a, 4, 1 << 20, &n_ctx);
        else if (!strcmp(opt, "--kl-divergence-base")) base = lb_args_value(&a);
        else if (!strcmp(opt, "--kl-divergence")) kld = true;
        else if (!strcmp(opt, "--chunks")) lb_args_int(&a, 1, 1 << 30, &chunks);
        else if (!strcmp(opt, "--save-logits")) logits_path = lb_args_value(&a);
        else if (!strcmp(opt, "--ref")) ref_path = lb_args_value(&a);
        else if (!strcmp(opt, "--ref-logits")) ref_logits = lb_args_value(&a);
        else if (!strcmp(opt, "--json")) json = true;
        else if (!strcmp(opt, "--allow-long-ctx")) long_ctx = true;
        else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) lb_args_int(&a, 0, 1024, &threads);
        else return lb_usage_error("eval", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional != 1) return lb_usage_error("eval", "expected one MODEL");
    if (kld && !base) return lb_usage_error("eval", "--kl-divergence reads --kl-divergence-base FILE");
    if (kld && (ref_path || ref_logits)) return lb_usage_error("eval", "--kl-divergence's reference is the base file");
    if (ref_path && ref_logits) return lb_usage_error("eval", "give --ref or --ref-logits, not both");
    /* llama-perplexity's KL divergence: the base file holds its tokens and n_ctx */
    const bool from_base = kld && lb_eval_base_is_llama(base);
    if (!text_path && !from_base) return lb_usage_error("eval", "--text FILE is required");
    if (kld) ref_logits = base;
    if (logits_path && lb_check_output(logits_path, false)) return LB_EXIT_ERROR;
    if (base && !kld && lb_check_output(base, false)) return LB_EXIT_ERROR;
    lb_threads_set((int)threads);

    lb_error      err  = { 0 };
    lb_model     *m    = NULL, *rm = NULL;
    lb_context   *ctx  = NULL, *rctx = NULL;
    char         *text = NULL;
    int32_t      *ids  = NULL;
    size_t        len, n_ids;
    lb_ppl_result r;
    lb_kld_result k;
    lb_progress   bar;
    int           rc = LB_EXIT_ERROR;
    if (lb_cli_model_load(&m, a.positional[0], tok, &err)) goto done;
    if (from_base) {
        int32_t file_ctx;
        if (lb_eval_base_tokens(base, &ids, &n_ids, &file_ctx, &err)) goto done;
        if (ctx_given && n_ctx != file_ctx) {
            rc = lb_usage_error("eval", "%s was computed with a context of %d, not %lld", base, file_ctx, (long long)n_ctx);
            goto quiet;
        }
        n_ctx = file_ctx;
    }
    if ((rc = lb_check_ctx("eval", "--ctx", n_ctx, m, long_ctx)) != LB_EXIT_OK) goto quiet;
    rc = LB_EXIT_ERROR;
    if (ref_path) {
        if (lb_cli_model_load(&rm, ref_path, tok, &err)) goto done;
        if (rm->cfg.n_vocab != m->cfg.n_vocab) {
            lb_fail(&err, LB_ERR_SHAPE, "%s: vocabulary of %d tokens, %s has %d", ref_path,
                    rm->cfg.n_vocab, a.positional[0], m->cfg.n_vocab);
            goto done;
        }
    }
    const double t0 = lb_time_sec();
    if (!from_base && (lb_read_file(text_path, &text, &len, &err) ||
                       lb_tokenize(m->vocab, text, len, lb_vocab_add_bos(m->vocab), false, &ids, &n_ids, &err)))
        goto done;
    const double t_tok = lb_time_sec() - t0;
    if (from_base) text_path = base;
    lb_context_params cp = lb_context_default_params((int32_t)n_ctx, (int32_t)n_ctx);
    cp.fast = co.fast, cp.type_k = co.type_k, cp.type_v = co.type_v;
    if (lb_context_create_ex(&ctx, m, &cp, &err)) goto done;
    if (rm && lb_context_create(&rctx, rm, (int32_t)n_ctx, (int32_t)n_ctx, &err)) goto done;
    const lb_ppl_params p   = { .n_ctx = (int32_t)n_ctx, .max_chunks = (int32_t)chunks,
                                .logits_path = logits_path, .base_path = kld ? NULL : base,
                                .progress = json ? NULL : lb_cli_progress, .progress_user = &bar };
    const lb_kld_ref    ref = { .ctx = rctx, .logits_path = ref_logits };
    const bool          cmp = ref_path || ref_logits;
    if (lb_eval_kld(ctx, m->vocab, ids, n_ids, &p, cmp ? &ref : NULL, &r, cmp ? &k : NULL, &err))
        goto done;
    if (json) print_json(a.positional[0], text_path, m, n_ids, &r, cmp ? &k : NULL);
    else print_text(a.positional[0], text_path, m, n_ids, t_tok, &r, cmp ? &k : NULL);
    rc = LB_EXIT_OK;
done:
    if (rc != LB_EXIT_OK) lb_runtime_error(&err);
quiet:
    free(ids);
    free(text);
    lb_context_free(ctx);
    lb_context_free(rctx);
    lb_model_free(m);
    lb_model_free(rm);
    return rc;
}
