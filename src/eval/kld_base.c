/* llama-perplexity's KL-divergence base file (--kl-divergence-base), written and read as
 * llama.cpp does (tools/perplexity/perplexity.cpp):
 *   char magic[8] "_logits_"; u32 n_ctx; i32 n_vocab; i32 n_chunk;
 *   i32 tokens[n_chunk * n_ctx] (the text's, without BOS put in);
 *   then for each chunk, for each scored position (n_ctx - 1 - n_ctx/2 of them) a row of
 *   nv = 2 * ((n_vocab + 1) / 2) + 4 u16: f32 scale, f32 min_log_prob, then n_vocab u16 q with
 *   log p(i) = scale * q(i) + min_log_prob (q = 0: at most min_log_prob; rows cover 16 nats
 *   below the top logit).
 * The arithmetic is llama.cpp's, in the same precision, so that KL divergences computed from
 * the same file agree. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "kld_base.h"
#include "lowbit/eval.h"

int32_t lb_kld_base_row_len(int32_t n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

/* ggml's round to nearest via the float bias trick (perplexity.cpp's nearest_int) */
static int nearest_int(float f) {
    const float v = f + 12582912.f;
    int         i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

void lb_kld_base_encode(const float *logits, int32_t n_vocab, uint16_t *row) {
    float mx = logits[0], mn = logits[0];
    for (int32_t i = 1; i < n_vocab; i++) mx = fmaxf(mx, logits[i]), mn = fminf(mn, logits[i]);
    mn = fmaxf(mn, mx - 16);
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) sum += expf(logits[i] - mx);
    const float lse = (float)log(sum), min_log_prob = mn - mx - lse, scale = (mx - mn) / 65535.f;
    memcpy(row, &scale, 4);
    memcpy(row + 2, &min_log_prob, 4);
    uint16_t *q = row + 4;
    memset(q, 0, (size_t)(lb_kld_base_row_len(n_vocab) - 4) * sizeof *q);
    if (scale != 0) {
        const float inv = 1 / scale;
        for (int32_t i = 0; i < n_vocab; i++) q[i] = logits[i] > mn ? (uint16_t)nearest_int(inv * (logits[i] - mn)) : 0;
    }
}

lb_status lb_kld_base_write_header(FILE *f, int32_t n_ctx, int32_t n_vocab, int32_t n_chunks,
                                   const int32_t *tokens) {
    const uint32_t c  = (uint32_t)n_ctx;
    const int32_t  vc[2] = { n_vocab, n_chunks };
    const size_t   nt = (size_t)n_chunks * (size_t)n_ctx;
    return fwrite(LB_KLD_BASE_MAGIC, 1, 8, f) == 8 && fwrite(&c, 4, 1, f) == 1 && fwrite(vc, 4, 2, f) == 2 &&
                   fwrite(tokens, 4, nt, f) == nt
               ? LB_OK
               : LB_ERR_IO;
}

lb_status lb_kld_base_open(lb_kld_base *b, const char *path, lb_error *err) {
    memset(b, 0, sizeof *b);
    LB_TRY_RET(lb_source_open_file(&b->src, path, err));
    const uint8_t *p = b->src.data;
    lb_status      st = LB_OK;
    LB_GOTO_IF(b->src.size < 20 || memcmp(p, LB_KLD_BASE_MAGIC, 8) != 0, err, LB_ERR_FORMAT,
               "%s: not a llama-perplexity KL-divergence base file", path);
    uint32_t c;
    memcpy(&c, p + 8, 4);
    memcpy(&b->n_vocab, p + 12, 4);
    memcpy(&b->n_chunks, p + 16, 4);
    LB_GOTO_IF(c < 4 || c > (1u << 20) || b->n_vocab < 1 || b->n_chunks < 1, err, LB_ERR_CORRUPT,
               "%s: header says n_ctx %u, n_vocab %d, %d chunks", path, c, b->n_vocab, b->n_chunks);
    b->n_ctx = (int32_t)c;
    /* each factor is < 2^31: the size in double is exact enough to compare */
    const double nt = (double)b->n_chunks * b->n_ctx, rows = (double)b->n_chunks * (b->n_ctx - 1 - b->n_ctx / 2);
    const double need = 20.0 + 4.0 * nt + 2.0 * rows * lb_kld_base_row_len(b->n_vocab);
    LB_GOTO_IF((double)b->src.size != need, err, LB_ERR_CORRUPT, "%s: %zu bytes, its header says %.0f", path,
               b->src.size, need);
    b->tokens = (const int32_t *)(p + 20); /* 4-aligned: the mapping is page-aligned */
    b->rows   = (const uint16_t *)(p + 20 + 4 * (size_t)nt);
    return LB_OK;
fail:
    lb_source_close(&b->src);
    return st;
}

void lb_kld_base_close(lb_kld_base *b) { lb_source_close(&b->src); }

bool lb_eval_base_is_llama(const char *path) {
    char  m[8];
    FILE *f;
    if (lb_open_input(path, &f, NULL)) return false;
    const bool is = fread(m, 1, 8, f) == 8 && memcmp(m, LB_KLD_BASE_MAGIC, 8) == 0;
    fclose(f);
    return is;
}

lb_status lb_eval_base_tokens(const char *path, int32_t **tokens, size_t *n_tokens, int32_t *n_ctx, lb_error *err) {
    lb_kld_base b;
    LB_TRY_RET(lb_kld_base_open(&b, path, err));
    const size_t n = (size_t)b.n_chunks * (size_t)b.n_ctx;
    *tokens        = malloc(n * sizeof **tokens);
    if (*tokens) memcpy(*tokens, b.tokens, n * sizeof **tokens);
    *n_tokens = n, *n_ctx = b.n_ctx;
    lb_kld_base_close(&b);
    LB_RETURN_IF(!*tokens, err, LB_ERR_NOMEM, "out of memory");
    return LB_OK;
}
