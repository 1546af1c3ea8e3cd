/* llama-perplexity's KL-divergence base file ("_logits_"): its rows written and the file
 * read back (kld_base.c has the layout). */
#ifndef LB_EVAL_KLD_BASE_H
#define LB_EVAL_KLD_BASE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lowbit/core.h"

#define LB_KLD_BASE_MAGIC "_logits_"

/* u16 per row: two f32 and the vocabulary, padded to an even count */
int32_t lb_kld_base_row_len(int32_t n_vocab);
/* One scored position's row from its logits, as llama-perplexity computes it. */
void    lb_kld_base_encode(const float *logits, int32_t n_vocab, uint16_t *row);
/* The header and the tokens (n_chunks * n_ctx, the text's). */
lb_status lb_kld_base_write_header(FILE *f, int32_t n_ctx, int32_t n_vocab, int32_t n_chunks,
                                   const int32_t *tokens);

typedef struct lb_kld_base {
    lb_source       src;
    int32_t         n_ctx, n_vocab, n_chunks;
    const int32_t  *tokens; /* n_chunks * n_ctx */
    const uint16_t *rows;   /* n_chunks * (n_ctx - 1 - n_ctx/2) rows of lb_kld_base_row_len */
} lb_kld_base;

/* Map a base file and check its header against its size. */
lb_status lb_kld_base_open(lb_kld_base *b, const char *path, lb_error *err);
void      lb_kld_base_close(lb_kld_base *b);


#endif
