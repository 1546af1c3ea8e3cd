/* lowbit eval MODEL --text FILE: perplexity as llama-perplexity computes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_eval(int argc, char **argv) {
    lb_args     a;
    const char *opt, *tok = NULL, *text_path = NULL, *logits_path = NULL;
    int64_t     n_ctx = 128, chunks = 0, threads = 0;
    bool        json = false;
    lb_args_init(&a, "eval", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) return lb_print_help("eval");
        else if (!strcmp(opt, "--text") || !strcmp(opt, "-f")) text_path = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--ctx") || !strcmp(opt, "-c")) lb_args_int(&a, 4, 1 << 20, &n_ctx);
        else if (!strcmp(opt, "--chunks")) lb_args_int(&a, 1, 1 << 30, &chunks);
        else if (!strcmp(opt, "--save-logits")) logits_path = lb_args_value(&a);
        else if (!strcmp(opt, "--json")) json = true;
        else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) lb_args_int(&a, 0, 1024, &threads);
        else return lb_usage_error("eval", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional != 1) return lb_usage_error("eval", "expected one MODEL");
    if (!text_path) return lb_usage_error("eval", "--text FILE is required");
    lb_threads_set((int)threads);

    lb_error      err  = { 0 };
    lb_model     *m    = NULL;
    lb_context   *ctx  = NULL;
    char         *text = NULL;
    int32_t      *ids  = NULL;
    size_t        len, n_ids;
    lb_ppl_result r;
    int           rc = LB_EXIT_ERROR;
    if (lb_model_load(&m, a.positional[0], tok, &err)) goto done;
    if (lb_read_file(text_path, &text, &len, &err)) goto done;
    const double t0 = lb_time_sec();
    if (lb_tokenize(m->vocab, text, len, lb_vocab_add_bos(m->vocab), false, &ids, &n_ids, &err))
        goto done;
    const double t_tok = lb_time_sec() - t0;
    if (lb_context_create(&ctx, m, (int32_t)n_ctx, (int32_t)n_ctx, &err)) goto done;
    const lb_ppl_params p = { .n_ctx = (int32_t)n_ctx, .max_chunks = (int32_t)chunks,
                              .logits_path = logits_path, .progress = !json };
    if (lb_eval_perplexity(ctx, m->vocab, ids, n_ids, &p, &r, &err)) goto done;
    if (json) {
        printf("{\"model\": \"%s\", \"text\": \"%s\", \"ppl\": %.6f, \"ppl_stderr\": %.6f, "
               "\"nll\": %.6f, \"tokens_scored\": %lld, \"chunks\": %d, \"ctx\": %d, "
               "\"text_tokens\": %zu, \"tokens_per_sec\": %.1f, \"seconds\": %.3f, "
               "\"threads\": %d}\n",
               a.positional[0], text_path, r.ppl, r.ppl_stderr, r.nll_mean,
               (long long)r.tokens_scored, r.chunks, r.n_ctx, n_ids, r.tokens_per_sec, r.seconds,
               lb_threads_get());
    } else {
        printf("model:      %s\ntext:       %s (%zu tokens, tokenized in %.3fs)\n"
               "chunks:     %d of %d tokens, %lld tokens scored\n"
               "perplexity: %.4f +/- %.5f\n"
               "speed:      %.1f tokens/s (prompt processing, %d threads)\n",
               a.positional[0], text_path, n_ids, t_tok, r.chunks, r.n_ctx,
               (long long)r.tokens_scored, r.ppl, r.ppl_stderr, r.tokens_per_sec,
               lb_threads_get());
    }
    rc = LB_EXIT_OK;
done:
    if (rc != LB_EXIT_OK) lb_runtime_error(&err);
    free(ids);
    free(text);
    lb_context_free(ctx);
    lb_model_free(m);
    return rc;
}
