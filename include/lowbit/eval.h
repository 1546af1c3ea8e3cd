/* Quality measurement: perplexity as llama.cpp's llama-perplexity computes it.
 * The text is tokenized once (BOS first when the vocabulary adds one); it is cut into chunks
 * of n_ctx tokens, the first token of each chunk replaced by BOS when the vocabulary adds one
 * (else left as it is); each chunk is one batch from an empty cache; only
 * the second half is scored: the logits at positions n_ctx/2 .. n_ctx-2 predict the next
 * token. PPL = exp(mean NLL); its standard error from the NLL's variance. */
#ifndef LOWBIT_EVAL_H
#define LOWBIT_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_ppl_params {
    int32_t     n_ctx;       /* chunk length */
    int32_t     max_chunks;  /* <= 0: all */
    const char *logits_path; /* non-NULL: save the scored positions' logits there */
    const char *base_path;   /* non-NULL: write llama-perplexity's KL-divergence base file there
                              * (--kl-divergence-base: log-probabilities as 16-bit levels) */
    lb_progress_fn progress;      /* may be NULL: called after each chunk */
    void          *progress_user;
} lb_ppl_params;

typedef struct lb_ppl_result {
    double  ppl, ppl_stderr, nll_mean;
    int64_t tokens_scored;
    int32_t chunks, n_ctx;
    int64_t tokens_processed;
    double  seconds;
    double  tokens_per_sec; /* tokens processed (prompt processing) per second */
} lb_ppl_result;

/* ctx must hold n_ctx positions in one batch. tokens: the whole text, as lb_tokenize makes it
 * with add_bos = lb_vocab_add_bos(vocab). */
lb_status lb_eval_perplexity(lb_context *ctx, const lb_vocab *vocab, const int32_t *tokens,
                             size_t n_tokens, const lb_ppl_params *p, lb_ppl_result *r,
                             lb_error *err);

/* KL divergence against a reference, as llama-perplexity --kl-divergence reports it:
 * over the scored positions, KL(p_ref || p), the share of positions whose most likely token
 * is the same, ln(PPL/PPL_ref), and the RMS of the change in the correct token's probability. */
typedef struct lb_kld_result {
    double  kld_mean, kld_stderr, kld_median, kld_p90, kld_p95, kld_p99, kld_max;
    double  top1, top1_stderr;  /* fraction */
    double  ppl_ref, ln_ppl_ratio, ln_ppl_ratio_stderr;
    double  rms_dp;             /* RMS of p(correct) - p_ref(correct) */
    int64_t n;
} lb_kld_result;

/* The reference: a second model (a context over it), or a file: lowbit's (--save-logits) or
 * llama-perplexity's KL-divergence base file (by its magic; evaluated as llama.cpp does). */
typedef struct lb_kld_ref {
    lb_context *ctx;         /* or NULL */
    const char *logits_path; /* or NULL */
} lb_kld_ref;

/* The file at path is a llama-perplexity base file (by its magic; false when unreadable). */
bool      lb_eval_base_is_llama(const char *path);
/* The tokens a llama-perplexity base file was computed on (malloc'd, n_chunks * n_ctx of them,
 * without BOS put in) and its n_ctx: llama-perplexity --kl-divergence evaluates those. */
lb_status lb_eval_base_tokens(const char *path, int32_t **tokens, size_t *n_tokens, int32_t *n_ctx,
                              lb_error *err);

/* Perplexity of ctx's model and its divergence from the reference, chunk by chunk. */
lb_status lb_eval_kld(lb_context *ctx, const lb_vocab *vocab, const int32_t *tokens,
                      size_t n_tokens, const lb_ppl_params *p, const lb_kld_ref *ref,
                      lb_ppl_result *r, lb_kld_result *k, lb_error *err);

/* Saved logits file ("LBLOGITS" v1), for KL divergence against a reference later:
 *   char magic[8] "LBLOGITS", u32 version 1, u32 n_vocab, u32 n_ctx, u32 n_chunks,
 *   i32 tokens[n_chunks * n_ctx] (as evaluated, BOS in place when there is one),
 *   then per chunk, per scored position (n_ctx - 1 - n_ctx/2 of them): f32 logits[n_vocab]. */
#define LB_LOGITS_MAGIC "LBLOGITS"

/* ---- reports (sweep): one row per quantized variant ---- */
typedef struct lb_report_row {
    char    name[32];    /* type or recipe */
    char    method[32];  /* how it was quantized ("rtn", "gptq"); "" when the sweep has one */
    double  bpw;
    size_t  bytes;
    double  ppl, ppl_stderr;
    double  kld_mean, kld_stderr, kld_p99, top1;
    int32_t fallbacks;   /* tensors whose rows did not fit the type (stored in another) */
    bool    external;    /* a reference point a user gave (e.g. llama.cpp's figures): only its
                          * name, method, bpw and KLD are known */
    bool    curve;       /* one of a series (sizes of one method, --target-bpw's): the plot joins
                          * a method's curve rows, and its external ones, by bpw */
} lb_report_row;

typedef struct lb_report {
    const char          *model, *text;
    int32_t              n_ctx, chunks;
    double               ppl_ref;
    size_t               bytes_ref;
    double               bpw_ref;
    const lb_report_row *rows;
    int32_t              n_rows;
} lb_report;

/* report.md: a table (type, method, bpw, size, PPL, dPPL, KLD, p99, top-1, fallbacks),
 * sorted by bpw, the rows on the Pareto front (no other row smaller and better) marked. */
lb_status lb_report_write_md(const lb_report *r, const char *path, lb_error *err);
/* report.svg: KLD against bits per weight, log scale, one labelled point per row. */
lb_status lb_report_write_svg(const lb_report *r, const char *path, lb_error *err);

/* A heat map (sensitivity.svg: each tensor's KL divergence in each candidate type): v[row *
 * n_cols + col] (NAN: no value), coloured on a log scale from its 5th to its 95th percentile;
 * mark[row] (may be NULL; -1: none) outlines one cell per row (the type chosen). */
typedef struct lb_heatmap {
    const char        *title;
    const char        *measure;  /* what v holds, for the legend */
    int32_t            n_rows, n_cols;
    const char *const *row_names, *const *col_names;
    const double      *v;
    const int32_t     *mark;
} lb_heatmap;
lb_status lb_report_write_heatmap(const lb_heatmap *h, const char *path, lb_error *err);

#ifdef __cplusplus
}
#endif
#endif
