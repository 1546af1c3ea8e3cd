/* Calibration: windows of real text run through the model, with statistics of every
 * linear layer's input accumulated on the way (forward hooks):
 *   per channel j: sum x_j^2 (the importance matrix llama.cpp's imatrix holds, as a mean),
 *   sum |x_j|, max |x_j|; optionally the Hessian H = sum x x^T (GPTQ's, up to 2/N).
 * Inputs are identified by (layer, input role): LB_ROLE_ATTN_Q (shared by q, k, v),
 * LB_ROLE_ATTN_OUTPUT, LB_ROLE_FFN_GATE (shared by gate, up), LB_ROLE_FFN_DOWN, and
 * LB_ROLE_OUTPUT (layer -1); a mixture of experts' experts each by (layer, expert role, expert),
 * from the tokens routed to it. */
#ifndef LOWBIT_CALIB_H
#define LOWBIT_CALIB_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_calib_params {
    int32_t  n_samples;  /* windows; <= 0: as many as the text holds (sequential) */
    int32_t  n_ctx;      /* tokens per window, BOS first when the vocabulary adds one */
    uint64_t seed;       /* random window starts; ignored when sequential */
    bool     sequential; /* consecutive non-overlapping windows from the start */
    bool     exact;      /* the block engine's streams in f32 throughout; false: the quantized
                            stream's stored matrices multiplied by the quantized kernels (8-bit
                            activations, as llama.cpp runs the file; --calib-matmul q8), the
                            unquantized one's by the fast kernels (BF16 on bf16 activations
                            where the CPU has AVX512_BF16, as llama.cpp runs that model), and
                            the Hessians (GPTQ's, AWQ's) from bf16-rounded activations there */
} lb_calib_params;

/* Tokenize text and cut it into windows: *out holds *n_windows x n_ctx tokens (malloc'd). */
lb_status lb_calib_windows(const lb_vocab *v, const char *text, size_t len,
                           const lb_calib_params *p, int32_t **out, int32_t *n_windows,
                           lb_error *err);

typedef struct lb_act_stats {
    int32_t        layer;
    lb_tensor_role role;
    int32_t        expert;  /* a mixture of experts' expert (its tokens only), or -1 */
    int32_t        n;       /* channels (the linear's in_features) */
    int64_t        count;   /* tokens seen */
    double         prior;   /* an expert's: tokens' weight added by lb_calib_run_states_prior */
    double        *sum_x2;  /* [n] */
    double        *sum_abs; /* [n] */
    float         *max_abs; /* [n] */
    double        *H;       /* [n, n] sum x x^T, or NULL when not collected */
} lb_act_stats;

typedef struct lb_calib lb_calib;

/* Statistics for every input of m; hessians: also collect H (n^2 doubles per input cleared
 * with lb_calib_clear). */
lb_status lb_calib_create(lb_calib **out, const lb_model *m, bool hessians, lb_error *err);
void      lb_calib_free(lb_calib *c); /* accepts NULL */

/* Accumulate only this input (layer, role), or everything with layer = LB_CALIB_ALL. */
#define LB_CALIB_ALL (-2)
void lb_calib_select(lb_calib *c, int32_t layer, lb_tensor_role role);
/* The Hessians and cross terms from activations rounded to bf16, summed in f32 by AVX512_BF16's
 * vdpbf16ps where the CPU has it (about twice sgemm's rate; elsewhere nothing changes); the
 * default, false: f32 products. */
void lb_calib_set_bf16(lb_calib *c, bool bf16);
/* An expert's role (LB_ROLE_FFN_GATE_EXPS, _UP_EXPS, _DOWN_EXPS) of a mixture of experts:
 * experts [e0, e1) only (lb_calib_select: all of them); clearing allocates their Hessians. */
void lb_calib_select_experts(lb_calib *c, int32_t layer, lb_tensor_role role, int32_t e0, int32_t e1);
/* Forget what was accumulated for (layer, role) (or everything with LB_CALIB_ALL). With
 * hessians, a Hessian is allocated here (n^2 doubles) when the input has none:
 * only inputs cleared collect one. LB_ERR_NOMEM when it cannot be. */
lb_status lb_calib_clear(lb_calib *c, int32_t layer, lb_tensor_role role, lb_error *err);
/* Free the Hessian of (layer, role) (its other statistics stay). */
void      lb_calib_release(lb_calib *c, int32_t layer, lb_tensor_role role);

/* Run the windows through ctx's model (ctx must hold n_ctx positions in one batch),
 * accumulating the selected statistics. With a layer limit set on ctx, forward passes stop
 * early. */
lb_status lb_calib_run(lb_calib *c, lb_context *ctx, const int32_t *windows, int32_t n_windows,
                       int32_t n_ctx, lb_error *err);

/* Calibration one layer at a time: every window's residual stream at the input of one layer,
 * kept, so that a pass over layer l runs layer l alone (lb_forward_from) instead of the model
 * from the embedding up. Created at layer 0 (the windows' embeddings in m); advanced through a
 * layer by running it (on ctx's model, whatever it holds then: the quantized layer for the
 * quantized model's states). n_windows * n_ctx * n_embd floats. Under MPI rank r of R keeps
 * windows r, r + R, ... only, and the passes over the states reduce across the ranks. */
typedef struct lb_calib_states lb_calib_states;
lb_status lb_calib_states_create(lb_calib_states **out, const lb_model *m, const int32_t *windows,
                                 int32_t n_windows, int32_t n_ctx, lb_error *err);
/* The same with the values in a file of spill_dir (unlinked at once, mapped shared): the
 * kernel writes them back and drops them under memory pressure, so they do not count against
 * a memory limit the way malloc'd values do. */
lb_status lb_calib_states_create_ex(lb_calib_states **out, const lb_model *m, const int32_t *windows,
                                    int32_t n_windows, int32_t n_ctx, const char *spill_dir, lb_error *err);
void      lb_calib_states_free(lb_calib_states *s); /* accepts NULL */
int32_t   lb_calib_states_layer(const lb_calib_states *s);
/* The values (*n floats) and the layer they are the input of, for a checkpoint: restore the
 * values in place, then their layer. */
float    *lb_calib_states_values(lb_calib_states *s, size_t *n);
void      lb_calib_states_set_layer(lb_calib_states *s, int32_t layer);
/* on: a pass over the states that stops at a layer's attention output keeps each window's
 * (n_windows * n_ctx * q width floats more, where the values are: RAM or their spill file), and
 * the next pass, if it stops at that layer's FFN input, starts from them instead of running the
 * attention again (the same bits: GPTQ's o then gate/up passes, between which only the output
 * projection changes). Any other pass spends them, and so does off; a caller that changes what
 * the attention reads (q, k, v, their norm: AWQ's folds) turns it off first. The memory stays
 * until the states are freed. For models lb_model_att_resumable accepts. */
void      lb_calib_states_keep_att(lb_calib_states *s, bool on);
/* the states hold their layer's attention outputs for the next pass */
bool      lb_calib_states_att_kept(const lb_calib_states *s);
/* The same for the advance: on, a pass over states at a layer's FFN input that stops at its
 * down projection keeps each window's input of it (n_windows * n_ctx * n_ff floats more), and
 * lb_calib_states_advance runs the down projection on them instead of the FFN again (the same
 * bits: GPTQ's down pass, then the advance through the down projection just quantized). Any
 * other pass spends them, and so does off. For models lb_model_mid_resumable accepts. */
void      lb_calib_states_keep_mid(lb_calib_states *s, bool on);
bool      lb_calib_states_mid_kept(const lb_calib_states *s);
/* Run the states' layer on every window (ctx: n_ctx positions in one batch; its layer limit
 * is set here), the states becoming the next layer's input. */
lb_status lb_calib_states_advance(lb_calib_states *s, lb_context *ctx, lb_error *err);
/* Rows [ends[n_groups - 1], n] (n the input's width) in groups, group g rows
 * [ends[g - 1], ends[g]) (ends[-1] = 0); sums[g] = the sum over every window (every rank's)
 * of ||X_ref r||^2 over its rows r: the sum of r^T A r for A = sum X_ref^T X_ref, without A
 * (GPTQ's reports). The same bits for any number of ranks and threads. */
typedef struct lb_calib_ref_rows {
    const float   *rows;
    const int64_t *ends;
    int32_t        n_groups;
    double        *sums;
} lb_calib_ref_rows;
/* lb_calib_run over the states' layer alone (the output head after the last layer). The
 * cross variant is for one selected input (lb_calib_select, not LB_CALIB_ALL) and also
 * accumulates C [n, n] = sum X_ref^T X (zeroed first), X_ref the same input when the same
 * windows run through `ref` from its states rs (at the same layer): the unquantized model,
 * GPTQ's f32 target; and, unless out is NULL, the squares of X_ref's products with out's rows
 * (lb_calib_ref_rows).
 * move: where the streams go meanwhile, for the passes after (the same bits, fewer products):
 * LB_CALIB_STAY nowhere; LB_CALIB_TO_FFN: the selected input is the FFN's (LB_ROLE_FFN_GATE),
 * each window's residual after the attention replaces its states, and later passes and the
 * advance start there; LB_CALIB_REF_NEXT (cross only): the reference runs its whole layer, its
 * states becoming the next layer's input as lb_calib_states_advance would make them (for the
 * layer's last input); LB_CALIB_NEXT (plain only, a pass of every input, LB_CALIB_ALL): the
 * states become the next layer's input in the same pass (imatrix: one pass a layer, not two).
 * A pass that wants an attention input of states moved to the FFN fails. */
typedef enum lb_calib_move { LB_CALIB_STAY = 0, LB_CALIB_TO_FFN, LB_CALIB_REF_NEXT, LB_CALIB_NEXT } lb_calib_move;
lb_status lb_calib_run_states(lb_calib *c, lb_context *ctx, lb_calib_states *s, lb_calib_move move, lb_error *err);
lb_status lb_calib_run_states_cross(lb_calib *c, lb_context *ctx, lb_calib_states *s, lb_context *ref,
                                    lb_calib_states *rs, double *C, lb_calib_ref_rows *out, lb_calib_move move,
                                    lb_error *err);

/* The rare-expert prior. A router sends few calibration tokens to some experts, and their
 * Hessians are then nearly singular (rank at most their token count). For each selected expert
 * (lb_calib_select_experts: LB_ROLE_FFN_GATE_EXPS or _DOWN_EXPS) that saw fewer than
 * min_tokens tokens (with any prior already added), this adds (min_tokens - count - prior) / N times the statistics every one of the
 * states' N tokens gives that input had the router sent it there (down's input: through the
 * expert's own gate and up, as ctx holds them), so that its statistics weigh min_tokens
 * tokens. `count` stays the tokens seen; `prior` gets the weight added. *n_topped: how many
 * experts. Run it after the routed pass (lb_calib_run_states). */
lb_status lb_calib_run_states_prior(lb_calib *c, lb_context *ctx, const lb_calib_states *s, int64_t min_tokens,
                                    int32_t *n_topped, lb_error *err);

/* The statistics of the input that weight role `role` of `layer` multiplies (q, k, v share
 * one; gate and up share one; output: layer -1). NULL when there is none. */
const lb_act_stats *lb_calib_get(const lb_calib *c, int32_t layer, lb_tensor_role role);
/* The statistics of expert e's input to role (its gate and up share one; its down), from the
 * tokens routed to it (count: how many). NULL for another role or e out of range. */
const lb_act_stats *lb_calib_get_expert(const lb_calib *c, int32_t layer, lb_tensor_role role, int32_t expert);

/* Per-channel importance (mean x^2), n floats into out; false when no tokens were seen. */
bool lb_act_importance(const lb_act_stats *s, float *out);

/* ---- llama.cpp's importance-matrix files (llama-imatrix output, GGUF) ----
 * general.type = "imatrix", imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size, and
 * per weight matrix NAME two f32 tensors: NAME.in_sum2 [n] (sum of x^2 over the tokens
 * seen) and NAME.counts [1] (how many tokens). The importance is in_sum2 / counts. */
typedef struct lb_imatrix lb_imatrix;

lb_status    lb_imatrix_load(lb_imatrix **out, const char *path, lb_error *err);
void         lb_imatrix_free(lb_imatrix *im); /* accepts NULL */
/* llama-quantize's --include-weights / --exclude-weights: only the entries whose tensor name
 * contains one of names (include), or all but those; names are copied. */
lb_status    lb_imatrix_filter(lb_imatrix *im, const char *const *names, int32_t n, bool include,
                               lb_error *err);
/* The importance of tensor `name` (n values, into out); false when absent or not n long. */
bool         lb_imatrix_get(const lb_imatrix *im, const char *name, int64_t n, float *out);
/* The same for n_mat stacked matrices (a mixture of experts' experts: n * n_mat values, each
 * expert's from its own count; one that saw no tokens gets 1s, as in llama-quantize); false
 * when absent, of another shape, or no matrix saw a token. */
bool         lb_imatrix_get_matrices(const lb_imatrix *im, const char *name, int64_t n, int64_t n_mat, float *out);
/* The same for one of m's tensors: its own entry, or for a part of a tensor llama.cpp's files
 * keep fused (phi3's attn_qkv), the fused tensor's. */
bool         lb_imatrix_get_tensor(const lb_imatrix *im, const lb_model *m, const lb_named_tensor *nt, float *out);
int32_t      lb_imatrix_count(const lb_imatrix *im); /* entries */

/* Save the statistics of c (gathered on m) in that format, one entry per weight matrix
 * (q, k and v repeat their shared input's; a mixture of experts' experts one [n, n_expert]
 * entry per stacked tensor, with per-expert counts). Under MPI rank 0 writes it (every rank's
 * statistics are the same sums); the others return LB_OK. */
lb_status lb_imatrix_save(const lb_calib *c, const lb_model *m, const char *path,
                          const char *dataset, int32_t chunks, int32_t chunk_size,
                          lb_error *err);

#ifdef __cplusplus
}
#endif
#endif
