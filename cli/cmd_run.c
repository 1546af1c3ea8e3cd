/* lowbit run MODEL: generate text. The prompt is processed as one batch, then one token
 * per step; output is printed as it is produced, statistics go to stderr.
 * Like llama2.c, --steps counts positions (prompt included) and BOS ends generation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cmd_run(int argc, char **argv) {
    lb_args     a;
    const char *opt, *tok = NULL, *prompt = "";
    int64_t     n_gen = -1, steps = 256, seed = 0, threads = 0;
    double      temp = 1.0, top_p = 0.9;
    bool        json = false;
    lb_ctx_options co;
    lb_ctx_options_init(&co, true);
    lb_args_init(&a, "run", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) return lb_print_help("run");
        else if (lb_args_ctx_option(&a, opt, &co)) continue;
        else if (!strcmp(opt, "-p") || !strcmp(opt, "--prompt")) prompt = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "-n")) lb_args_int(&a, 0, 1 << 24, &n_gen);
        else if (!strcmp(opt, "--steps")) lb_args_int(&a, 1, 1 << 24, &steps);
        else if (!strcmp(opt, "--temp")) lb_args_float(&a, 0, 100, &temp);
        else if (!strcmp(opt, "--top-p")) lb_args_float(&a, 0, 1, &top_p);
        else if (!strcmp(opt, "--seed")) lb_args_int(&a, 0, INT64_MAX, &seed);
        else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) lb_args_int(&a, 0, 1024, &threads);
        else if (!strcmp(opt, "--json")) json = true;
        else return lb_usage_error("run", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional != 1) return lb_usage_error("run", "expected one MODEL");
    lb_threads_set((int)threads);

    lb_error    err = { 0 };
    lb_model   *m   = NULL;
    lb_context *ctx = NULL;
    int32_t    *ids = NULL;
    float      *scratch = NULL;
    size_t      n_prompt, text_len = 0;
    char       *text = NULL;
    FILE       *o = stdout; /* --json: the text gathered for its object */
    int         rc = LB_EXIT_ERROR;
    if (json && !(o = open_memstream(&text, &text_len))) {
        lb_fail(&err, LB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (lb_cli_model_load(&m, a.positional[0], tok, &err)) goto done;
    const lb_vocab *v = m->vocab;
    /* BOS first when the vocabulary adds one (llama.cpp's rule); without one, as llama-cli,
     * an empty prompt is an error */
    const bool add_bos = lb_vocab_add_bos(v);
    if (lb_tokenize(v, prompt, strlen(prompt), add_bos, false, &ids, &n_prompt, &err)) goto done;
    if (n_prompt == 0) {
        lb_fail(&err, LB_ERR_PARAM, "the prompt is empty and the vocabulary adds no BOS: give "
                "one with -p");
        goto done;
    }
    /* llama2.c's count: --steps positions, each run through the model, each followed by a
     * sample; so steps - n_prompt + 1 tokens are generated. */
    int64_t n_samples = n_gen >= 0 ? n_gen : steps - (int64_t)n_prompt + 1;
    if ((int64_t)n_prompt > m->cfg.n_ctx_train) {
        lb_fail(&err, LB_ERR_PARAM, "the prompt has %zu tokens, more than the model's context "
                "of %d", n_prompt, m->cfg.n_ctx_train);
        goto done;
    }
    if (n_samples < 0) n_samples = 0;
    if ((int64_t)n_prompt + n_samples - 1 > m->cfg.n_ctx_train)
        n_samples = m->cfg.n_ctx_train - (int64_t)n_prompt + 1;
    const int64_t total = (int64_t)n_prompt + (n_samples > 0 ? n_samples - 1 : 0);
    lb_context_params cp = lb_context_default_params((int32_t)total, (int32_t)n_prompt);
    cp.fast = co.fast, cp.type_k = co.type_k, cp.type_v = co.type_v;
    if (lb_context_create_ex(&ctx, m, &cp, &err)) goto done;
    scratch = malloc(2 * (size_t)m->cfg.n_vocab * sizeof *scratch);
    if (!scratch) {
        lb_fail(&err, LB_ERR_NOMEM, "out of memory");
        goto done;
    }
    lb_sampler s;
    lb_sampler_init(&s, (float)temp, (float)top_p, seed ? (uint64_t)seed : (uint64_t)time(NULL));
    const float *logits;
    const double t0 = lb_time_sec();
    if (lb_forward(ctx, ids, (int32_t)n_prompt, &logits, &err)) goto done;
    const double t_prompt = lb_time_sec() - t0;
    char         piece[256];
    for (size_t i = add_bos ? 1 : 0; i < n_prompt; i++) {
        const size_t pl = lb_token_to_piece(v, i ? ids[i - 1] : -1, ids[i], piece, sizeof piece);
        fwrite(piece, 1, pl, o);
    }
    int32_t      token = ids[n_prompt - 1];
    const float *last  = logits + (n_prompt - 1) * (size_t)m->cfg.n_vocab;
    int64_t      n_out = 0;
    const double t1    = lb_time_sec();
    for (int64_t i = 0; i < n_samples; i++) {
        const int32_t next = lb_sample(&s, last, m->cfg.n_vocab, scratch);
        if (next == lb_vocab_bos(v) || next == lb_vocab_eos(v)) break;
        const size_t pl = lb_token_to_piece(v, token, next, piece, sizeof piece);
        fwrite(piece, 1, pl, o);
        fflush(o);
        n_out++;
        token = next;
        if (i == n_samples - 1) break;
        if (lb_forward(ctx, &token, 1, &last, &err)) goto done;
    }
    if (!json) printf("\n");
    fflush(o);
    const double t_gen = lb_time_sec() - t1;
    fprintf(stderr, "run: prompt %zu tokens in %.3fs (%.1f tok/s), generated %lld tokens in "
            "%.3fs (%.1f tok/s), %d threads\n", n_prompt, t_prompt, (double)n_prompt / t_prompt,
            (long long)n_out, t_gen, t_gen > 0 ? (double)n_out / t_gen : 0.0, lb_threads_get());
    if (json) {
        fclose(o);
        o = stdout;
        lb_jout j;
        lb_jout_begin(&j, stdout);
        lb_jout_str(&j, "model", a.positional[0]);
        lb_jout_str(&j, "text", text);
        lb_jout_int(&j, "prompt_tokens", (long long)n_prompt);
        lb_jout_int(&j, "generated_tokens", (long long)n_out);
        lb_jout_num(&j, "prompt_tok_per_sec", 1, (double)n_prompt / t_prompt);
        lb_jout_num(&j, "gen_tok_per_sec", 1, t_gen > 0 ? (double)n_out / t_gen : 0.0);
        lb_jout_int(&j, "threads", lb_threads_get());
        lb_jout_end(&j);
    }
    rc = LB_EXIT_OK;
done:
    if (rc != LB_EXIT_OK) lb_runtime_error(&err);
    if (o != stdout) fclose(o);
    free(text);
    free(scratch);
    free(ids);
    lb_context_free(ctx);
    lb_model_free(m);
    return rc;
}
