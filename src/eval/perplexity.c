/* Perplexity over a token sequence, chunked exactly as llama-perplexity does, with
 * optional saving of the scored logits (for KL divergence). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/eval.h"

/* log p(tok) under softmax(logits), accumulated in double as llama.cpp does */
static double log_prob(const float *logits, int32_t n, int32_t tok) {
    float mx = logits[0];
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) sum += expf(logits[i] - mx);
    return (double)(logits[tok] - mx) - log(sum);
}

lb_status lb_eval_perplexity(lb_context *ctx, const lb_vocab *vocab, const int32_t *tokens,
                             size_t n_tokens, const lb_ppl_params *p, lb_ppl_result *r,
                             lb_error *err) {
    const int32_t n_ctx = p->n_ctx;
    LB_RETURN_IF(n_ctx < 4, err, LB_ERR_PARAM, "perplexity: context of %d is too short", n_ctx);
    LB_RETURN_IF(n_tokens < 2 * (size_t)n_ctx, err, LB_ERR_PARAM,
                 "perplexity: the text has %zu tokens; a context of %d needs at least %d",
                 n_tokens, n_ctx, 2 * n_ctx);
    int32_t n_chunks = (int32_t)(n_tokens / (size_t)n_ctx);
    if (p->max_chunks > 0 && p->max_chunks < n_chunks) n_chunks = p->max_chunks;
    const int32_t n_vocab = lb_vocab_n_tokens(vocab);
    const int32_t first   = n_ctx / 2;
    int32_t      *chunk   = malloc((size_t)n_ctx * sizeof *chunk);
    FILE         *lf      = NULL;
    char         *tmp     = NULL;
    lb_status     st      = LB_OK;
    LB_GOTO_IF(!chunk, err, LB_ERR_NOMEM, "out of memory");
    if (p->logits_path) {
        tmp = malloc(strlen(p->logits_path) + 5);
        LB_GOTO_IF(!tmp, err, LB_ERR_NOMEM, "out of memory");
        sprintf(tmp, "%s.tmp", p->logits_path);
        lf = fopen(tmp, "wb");
        LB_GOTO_IF(!lf, err, LB_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        const uint32_t hdr[4] = { 1, (uint32_t)n_vocab, (uint32_t)n_ctx, (uint32_t)n_chunks };
        bool           ok     = fwrite(LB_LOGITS_MAGIC, 1, 8, lf) == 8 && fwrite(hdr, 4, 4, lf) == 4;
        for (int32_t c = 0; ok && c < n_chunks; c++) {
            memcpy(chunk, tokens + (size_t)c * (size_t)n_ctx, (size_t)n_ctx * sizeof *chunk);
            chunk[0] = lb_vocab_bos(vocab);
            ok       = fwrite(chunk, sizeof *chunk, (size_t)n_ctx, lf) == (size_t)n_ctx;
        }
        LB_GOTO_IF(!ok, err, LB_ERR_IO, "%s: write failed", tmp);
    }
    lb_progress bar;
    if (p->progress) lb_progress_begin(&bar, "perplexity", n_chunks);
    double       nll = 0, nll2 = 0;
    int64_t      count = 0;
    const double t0    = lb_time_sec();
    for (int32_t c = 0; c < n_chunks; c++) {
        memcpy(chunk, tokens + (size_t)c * (size_t)n_ctx, (size_t)n_ctx * sizeof *chunk);
        chunk[0] = lb_vocab_bos(vocab);
        const float *logits;
        lb_context_reset(ctx);
        LB_TRY(lb_forward(ctx, chunk, n_ctx, &logits, err));
        for (int32_t j = first; j < n_ctx - 1; j++) {
            const float *row = logits + (size_t)j * (size_t)n_vocab;
            const double lp  = log_prob(row, n_vocab, chunk[j + 1]);
            nll -= lp;
            nll2 += lp * lp;
            count++;
            if (lf) LB_GOTO_IF(fwrite(row, sizeof *row, (size_t)n_vocab, lf) != (size_t)n_vocab,
                               err, LB_ERR_IO, "%s: write failed", tmp);
        }
        if (p->progress) lb_progress_update(&bar, c + 1);
    }
    if (p->progress) lb_progress_end(&bar);
    r->seconds          = lb_time_sec() - t0;
    r->chunks           = n_chunks;
    r->n_ctx            = n_ctx;
    r->tokens_scored    = count;
    r->tokens_processed = (int64_t)n_chunks * n_ctx;
    r->tokens_per_sec   = r->seconds > 0 ? (double)r->tokens_processed / r->seconds : 0;
    r->nll_mean         = nll / (double)count;
    r->ppl              = exp(r->nll_mean);
    const double var    = nll2 / (double)count - r->nll_mean * r->nll_mean;
    r->ppl_stderr       = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) * r->ppl : 0;
    if (lf) {
        LB_GOTO_IF(fclose(lf) != 0, err, LB_ERR_IO, "%s: write failed", tmp);
        lf = NULL;
        LB_GOTO_IF(rename(tmp, p->logits_path) != 0, err, LB_ERR_IO, "%s: cannot rename: %s",
                   tmp, strerror(errno));
    }
    free(tmp);
    free(chunk);
    return LB_OK;
fail:
    if (lf) fclose(lf);
    if (tmp) remove(tmp);
    free(tmp);
    free(chunk);
    return st;
}
