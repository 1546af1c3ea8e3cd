/* Perplexity over a token sequence, chunked exactly as llama-perplexity does; optionally
 * the KL divergence against a reference model or saved reference logits, and saving the
 * scored logits for later comparisons. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/fail.h"
#include "kld_acc.h"
#include "kld_base.h"
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

/* Reference logits saved by --save-logits, mapped and checked against this run. */
typedef struct {
    lb_source    src;
    const float *rows; /* n_chunks x (n_ctx - 1 - n_ctx/2) x n_vocab */
} ref_file;

/* llama-perplexity's base file, checked against this run: its n_ctx, vocabulary, and tokens
 * (the text's as they are: llama.cpp puts BOS in when it evaluates) */
static lb_status base_open(lb_kld_base *b, const char *path, int32_t n_vocab, int32_t n_ctx, int32_t n_chunks,
                           const int32_t *tokens, lb_error *err) {
    LB_TRY_RET(lb_kld_base_open(b, path, err));
    lb_status st = LB_OK;
    LB_GOTO_IF(b->n_vocab != n_vocab || b->n_ctx != n_ctx, err, LB_ERR_SHAPE, "%s: saved for %d tokens of "
               "vocabulary and a context of %d; this run has %d and %d", path, b->n_vocab, b->n_ctx, n_vocab, n_ctx);
    LB_GOTO_IF(b->n_chunks < n_chunks, err, LB_ERR_SHAPE, "%s: holds %d chunks, this run needs %d", path,
               b->n_chunks, n_chunks);
    LB_GOTO_IF(memcmp(b->tokens, tokens, (size_t)n_chunks * (size_t)n_ctx * sizeof *tokens) != 0, err,
               LB_ERR_CORRUPT, "%s: its tokens differ from this text's: saved from another text or tokenizer?", path);
    return LB_OK;
fail:
    lb_kld_base_close(b);
    return st;
}

static lb_status ref_file_open(ref_file *rf, const char *path, int32_t n_vocab, int32_t n_ctx,
                               int32_t n_chunks, const int32_t *tokens, int32_t bos, lb_error *err) {
    /* bos: the token put first in each chunk, or -1 when the chunks are the text as it is */
    lb_status st = lb_source_open_file(&rf->src, path, err);
    if (st) return st;
    const uint8_t *p = rf->src.data;
    uint32_t       h[4];
    LB_RETURN_IF(rf->src.size < 24 || memcmp(p, LB_LOGITS_MAGIC, 8) != 0, err, LB_ERR_FORMAT,
                 "%s: not a lowbit logits file (eval --save-logits) nor llama-perplexity's base file", path);
    memcpy(h, p + 8, sizeof h);
    LB_RETURN_IF(h[0] != 1, err, LB_ERR_VERSION, "%s: logits file version %u", path, h[0]);
    LB_RETURN_IF(h[1] != (uint32_t)n_vocab || h[2] != (uint32_t)n_ctx, err, LB_ERR_SHAPE,
                 "%s: saved for %u tokens of vocabulary and a context of %u; this run has %d and %d",
                 path, h[1], h[2], n_vocab, n_ctx);
    LB_RETURN_IF(h[3] < (uint32_t)n_chunks, err, LB_ERR_SHAPE,
                 "%s: holds %u chunks, this run needs %d", path, h[3], n_chunks);
    const size_t n_tok = (size_t)h[3] * (size_t)n_ctx;
    const size_t n_rows = (size_t)h[3] * (size_t)(n_ctx - 1 - n_ctx / 2);
    /* h[3], n_ctx and n_vocab are < 2^32 each; the product is checked against the size */
    const double need = 24.0 + 4.0 * (double)n_tok + 4.0 * (double)n_rows * (double)n_vocab;
    LB_RETURN_IF((double)rf->src.size != need, err, LB_ERR_CORRUPT,
                 "%s: %zu bytes, its header says %.0f", path, rf->src.size, need);
    const int32_t *ft = (const int32_t *)(p + 24);
    for (int32_t c = 0; c < n_chunks; c++)
        for (int32_t j = 0; j < n_ctx; j++) {
            const int32_t want = j == 0 && bos >= 0 ? bos : tokens[(size_t)c * (size_t)n_ctx + (size_t)j];
            int32_t       got;
            memcpy(&got, ft + (size_t)c * (size_t)n_ctx + (size_t)j, 4);
            LB_RETURN_IF(got != want, err, LB_ERR_CORRUPT,
                         "%s: token %d of chunk %d differs from this text's (%d, not %d): "
                         "saved from another text or tokenizer?", path, j, c, got, want);
        }
    rf->rows = (const float *)(p + 24 + 4 * n_tok);
    return LB_OK;
}

/* one scored position as its chunk's rank measured it: log p(tok), and against the reference */
typedef struct {
    double     lp;
    lb_kld_rec k;
} scored;

/* what a chunk's rank needs: the chunk's tokens, where its reference comes from */
typedef struct {
    lb_context        *ctx;
    const lb_kld_ref  *ref;
    const ref_file    *rf;
    const lb_kld_base *base;
    const int32_t     *tokens;
    int32_t            n_ctx, n_vocab, bos, first, n_scored, blen;
    bool               cmp;
    int32_t           *chunk; /* [n_ctx] */
} chunk_job;

/* chunk c through the model (and the reference model): its scored positions into out, and the
 * rows of their logits into rows when the run saves them */
static lb_status score_chunk(const chunk_job *J, int32_t c, scored *out, float *rows, lb_error *err) {
    const int32_t n_ctx = J->n_ctx, n_vocab = J->n_vocab, first = J->first, n_scored = J->n_scored;
    int32_t      *chunk = J->chunk;
    memcpy(chunk, J->tokens + (size_t)c * (size_t)n_ctx, (size_t)n_ctx * sizeof *chunk);
    if (J->bos >= 0) chunk[0] = J->bos;
    const float *logits, *ref_logits = NULL;
    if (J->ref && J->ref->ctx) { /* the reference first: its logits are copied out below */
        lb_context_reset(J->ref->ctx);
        LB_TRY_RET(lb_forward(J->ref->ctx, chunk, n_ctx, &ref_logits, err));
        ref_logits += (size_t)first * (size_t)n_vocab;
    } else if (J->rf->rows) {
        ref_logits = J->rf->rows + (size_t)c * (size_t)n_scored * (size_t)n_vocab;
    }
    lb_context_reset(J->ctx);
    LB_TRY_RET(lb_forward(J->ctx, chunk, n_ctx, &logits, err));
    for (int32_t j = first; j < n_ctx - 1; j++) {
        const float *row = logits + (size_t)j * (size_t)n_vocab;
        scored      *o   = &out[j - first];
        o->lp            = log_prob(row, n_vocab, chunk[j + 1]);
        if (J->base->rows)
            o->k = lb_kld_measure_base(J->base->rows + ((size_t)c * (size_t)n_scored + (size_t)(j - first)) * (size_t)J->blen,
                                       row, n_vocab, chunk[j + 1]);
        else if (J->cmp)
            o->k = lb_kld_measure(ref_logits + (size_t)(j - first) * (size_t)n_vocab, row, n_vocab, chunk[j + 1]);
        if (rows) memcpy(rows + (size_t)(j - first) * (size_t)n_vocab, row, (size_t)n_vocab * sizeof *row);
    }
    return LB_OK;
}

/* Under MPI the chunks go round the ranks: step s runs chunk s * R + r on rank r; rank 0
 * gathers each step's scored positions (and logits rows, when saved) and takes them in chunk
 * order, so the sums, percentiles and files are those of one process; the results go to
 * every rank. */
lb_status lb_eval_kld(lb_context *ctx, const lb_vocab *vocab, const int32_t *tokens,
                      size_t n_tokens, const lb_ppl_params *p, const lb_kld_ref *ref,
                      lb_ppl_result *r, lb_kld_result *k, lb_error *err) {
    const int32_t n_ctx = p->n_ctx;
    LB_RETURN_IF(n_ctx < 4, err, LB_ERR_PARAM, "perplexity: context of %d is too short", n_ctx);
    LB_RETURN_IF(n_tokens < 2 * (size_t)n_ctx, err, LB_ERR_PARAM,
                 "perplexity: the text has %zu tokens; a context of %d needs at least %d",
                 n_tokens, n_ctx, 2 * n_ctx);
    int32_t n_chunks = (int32_t)(n_tokens / (size_t)n_ctx);
    if (p->max_chunks > 0 && p->max_chunks < n_chunks) n_chunks = p->max_chunks;
    const int     R = lb_dist_size(), me = lb_dist_rank();
    const bool    root    = me == 0;
    const int32_t n_vocab = lb_vocab_n_tokens(vocab);
    const int32_t first   = n_ctx / 2, n_scored = n_ctx - 1 - first;
    const bool    cmp     = ref && (ref->ctx || ref->logits_path);
    /* BOS first in each chunk when the vocabulary adds one; else the text's own tokens, as
     * llama-perplexity does (add_bos from the vocabulary) */
    const int32_t bos     = lb_vocab_add_bos(vocab) ? lb_vocab_bos(vocab) : -1;
    int32_t      *chunk   = malloc((size_t)n_ctx * sizeof *chunk);
    FILE         *lf      = NULL;
    lb_out        lout    = { .slot = -1 };
    ref_file      rf      = { 0 };
    lb_kld_base   base    = { 0 };
    lb_out        bout    = { .slot = -1 };
    uint16_t     *brow    = NULL;
    const int32_t blen    = lb_kld_base_row_len(n_vocab);
    const bool    saving  = p->logits_path || p->base_path;
    const size_t  row_n   = (size_t)n_scored * (size_t)n_vocab;
    scored       *mine    = malloc((size_t)n_scored * sizeof *mine);
    scored       *all     = root ? malloc((size_t)R * (size_t)n_scored * sizeof *all) : NULL;
    float        *rows    = saving ? malloc(row_n * sizeof *rows) : NULL;
    float        *all_rows = saving && root ? malloc((size_t)R * row_n * sizeof *all_rows) : NULL;
    lb_kld_acc    acc     = { 0 };
    lb_status     st      = LB_OK;
    LB_GOTO_IF(!chunk || !mine || (root && !all) || (saving && (!rows || (root && !all_rows))), err, LB_ERR_NOMEM,
               "out of memory");
    memset(mine, 0, (size_t)n_scored * sizeof *mine);
    if (cmp && root) LB_GOTO_IF(lb_kld_acc_init(&acc, (int64_t)n_chunks * n_scored), err, LB_ERR_NOMEM, "out of memory");
    if (ref && ref->logits_path && lb_eval_base_is_llama(ref->logits_path))
        LB_TRY(base_open(&base, ref->logits_path, n_vocab, n_ctx, n_chunks, tokens, err));
    else if (ref && ref->logits_path)
        LB_TRY(ref_file_open(&rf, ref->logits_path, n_vocab, n_ctx, n_chunks, tokens, bos, err));
    if (p->base_path && root) { /* llama-perplexity's --kl-divergence-base file */
        LB_TRY(lb_out_open(&bout, p->base_path, err));
        LB_GOTO_IF(!(brow = malloc((size_t)blen * sizeof *brow)), err, LB_ERR_NOMEM, "out of memory");
        LB_GOTO_IF(lb_kld_base_write_header(bout.f, n_ctx, n_vocab, n_chunks, tokens), err, LB_ERR_IO,
                   "%s: write failed", p->base_path);
    }
    if (p->logits_path && root) {
        LB_TRY(lb_out_open(&lout, p->logits_path, err));
        lf = lout.f;
        const uint32_t hdr[4] = { 1, (uint32_t)n_vocab, (uint32_t)n_ctx, (uint32_t)n_chunks };
        bool           ok     = fwrite(LB_LOGITS_MAGIC, 1, 8, lf) == 8 && fwrite(hdr, 4, 4, lf) == 4;
        for (int32_t c = 0; ok && c < n_chunks; c++) {
            memcpy(chunk, tokens + (size_t)c * (size_t)n_ctx, (size_t)n_ctx * sizeof *chunk);
            if (bos >= 0) chunk[0] = bos;
            ok       = fwrite(chunk, sizeof *chunk, (size_t)n_ctx, lf) == (size_t)n_ctx;
        }
        LB_GOTO_IF(!ok, err, LB_ERR_IO, "%s: write failed", p->logits_path);
    }
    const char *what = cmp ? "kld" : "perplexity";
    if (p->progress && root) p->progress(p->progress_user, what, 0, n_chunks);
    const chunk_job J = { ctx, ref, &rf, &base, tokens, n_ctx, n_vocab, bos, first, n_scored, blen, cmp, chunk };
    double          nll = 0, nll2 = 0;
    int64_t         count = 0;
    const double    t0    = lb_time_sec();
    for (int32_t c0 = 0; c0 < n_chunks; c0 += R) {
        LB_TRY(lb_dist_agree(c0 + me < n_chunks ? score_chunk(&J, c0 + me, mine, rows, err) : LB_OK, err));
        LB_TRY(lb_dist_gather(mine, (size_t)n_scored * sizeof *mine, all, err));
        if (saving) LB_TRY(lb_dist_gather(rows, row_n * sizeof *rows, all_rows, err));
        for (int32_t c = c0; root && c < n_chunks && c < c0 + R; c++) {
            const scored *s  = all + (size_t)(c - c0) * (size_t)n_scored;
            const float  *rw = saving ? all_rows + (size_t)(c - c0) * row_n : NULL;
            for (int32_t j = 0; j < n_scored; j++) {
                nll -= s[j].lp;
                nll2 += s[j].lp * s[j].lp;
                count++;
                if (cmp) lb_kld_acc_push(&acc, &s[j].k);
                const float *row = rw ? rw + (size_t)j * (size_t)n_vocab : NULL;
                if (brow) {
                    lb_kld_base_encode(row, n_vocab, brow);
                    LB_GOTO_IF(fwrite(brow, sizeof *brow, (size_t)blen, bout.f) != (size_t)blen, err, LB_ERR_IO,
                               "%s: write failed", p->base_path);
                }
                if (lf) LB_GOTO_IF(fwrite(row, sizeof *row, (size_t)n_vocab, lf) != (size_t)n_vocab,
                                   err, LB_ERR_IO, "%s: write failed", p->logits_path);
            }
            if (p->progress) p->progress(p->progress_user, what, c + 1, n_chunks);
        }
    }
    if (root) {
        r->seconds          = lb_time_sec() - t0;
        r->chunks           = n_chunks;
        r->n_ctx            = n_ctx;
        r->tokens_scored    = count;
        r->tokens_processed = (int64_t)n_chunks * n_ctx * (ref && ref->ctx ? 2 : 1);
        r->tokens_per_sec   = r->seconds > 0 ? (double)r->tokens_processed / r->seconds : 0;
        r->nll_mean         = nll / (double)count;
        r->ppl              = exp(r->nll_mean);
        const double var    = nll2 / (double)count - r->nll_mean * r->nll_mean;
        r->ppl_stderr       = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) * r->ppl : 0;
        if (cmp && k) lb_kld_acc_finish(&acc, k);
        if (lf) st = lb_out_commit(&lout, err);
        if (!st && brow) st = lb_out_commit(&bout, err);
    }
    LB_TRY(lb_dist_agree(st, err)); /* the files written: every rank returns the figures */
    LB_TRY(lb_dist_bcast(r, sizeof *r, err));
    if (cmp && k) LB_TRY(lb_dist_bcast(k, sizeof *k, err));
fail:
    if (st) lb_out_abort(&lout), lb_out_abort(&bout);
    free(brow);
    lb_kld_base_close(&base);
    free(chunk);
    free(mine);
    free(all);
    free(rows);
    free(all_rows);
    lb_kld_acc_free(&acc);
    lb_source_close(&rf.src);
    return st;
}

lb_status lb_eval_perplexity(lb_context *ctx, const lb_vocab *vocab, const int32_t *tokens,
                             size_t n_tokens, const lb_ppl_params *p, lb_ppl_result *r,
                             lb_error *err) {
    return lb_eval_kld(ctx, vocab, tokens, n_tokens, p, NULL, r, NULL, err);
}
