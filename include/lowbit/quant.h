/* Quantization: recipes (which type each tensor gets) and the model-level driver.
 * A recipe is a target as llama-quantize names it: a plain type ("q4_0", "q8_0", "f16") or
 * a named mix ("q4_k_m", "q3_k_s", ...) in which llama.cpp's rules give attention V,
 * FFN down, the output and the embedding their own types. Norms stay f32; a tensor whose
 * row length the block size does not divide falls back to a type that fits. */
#ifndef LOWBIT_QUANT_H
#define LOWBIT_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "actq.h"
#include "model.h"
#include "range.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_recipe {
    const char *name;      /* "q4_k_m" */
    lb_type     base;      /* the type most tensors get */
    uint32_t    file_type; /* llama.cpp's general.file_type (llama_ftype) */
    bool        mix;       /* llama.cpp's per-role rules apply */
} lb_recipe;

/* NULL when unknown. Case-insensitive; "q4_k" means q4_k_m, as in llama-quantize. */
const lb_recipe *lb_recipe_find(const char *name);
/* The names, for --help: a NULL-terminated list. */
const char *const *lb_recipe_names(void);

/* A manual override: tensors whose name matches the (POSIX extended) regex get type. */
typedef struct lb_type_override {
    const char *pattern;
    lb_type     type;
} lb_type_override;

/* ---- GPTQ (Frantar et al. 2023) ---- */
typedef struct lb_gptq_params {
    double  damp;      /* lambda = damp * mean(diag H); 0: 0.01, or 0.05 for the i-quants'
                          lattices (measured best on the testbed: 0.01 0.0593, 0.05 0.0554,
                          0.1 0.0580, 0.2 0.0577 KLD at pure IQ2_XXS) */
    int32_t block;     /* lazy-batch block of columns; default 128 */
    bool    act_order; /* columns by decreasing diag H (types with a grid only) */
    /* The target of each layer (method gptq). Default: the unquantized model's outputs, from
     * the quantized model's inputs (asymmetric calibration, as GPTQv2 / GPTAQ: the weights
     * are first refit by lb_gptq_retarget, then GPTQ compensates towards them). self_target:
     * the layer's own outputs on the quantized inputs, as the GPTQ paper. */
    bool    self_target;
    /* A mixture of experts: an expert whose calibration saw fewer tokens than this (0: the
     * default, 1; < 0: the rule off) gets its statistics topped up to this many tokens'
     * weight with every calibration token passed through it (gptq_experts.c). Experts aim at
     * their own outputs (self_target): the unquantized model routes tokens to them otherwise. */
    int32_t min_tokens;
#define LB_GPTQ_MIN_WIDTH INT32_MAX /* min_tokens: each expert's input width (a full-rank Hessian) */
    /* each block's weights (a row's, for row-scaled types) are clipped by this estimator
     * before the format fixes the block's scales (AutoGPTQ's mse option); minmax: none */
    lb_range range;
} lb_gptq_params;

/* Quantize W [n_out, n_in] (row-major, f32) to type t with GPTQ, given the Hessian
 * H [n_in, n_in] (any positive scale) of its input. A block's scales are fixed by the
 * format's own quantizer from the current (error-compensated) weights when GPTQ reaches
 * the block's first column; its columns are then rounded onto that grid one by one, each
 * rounding error spread over the columns not yet quantized (Cholesky form of H^-1).
 * Types without per-position grid access quantize each block at once at its first column.
 * Writes n_out rows of type t to q; W receives the dequantized result. importance (n_in,
 * may be NULL) is passed to the format's quantizer when it fixes a block. */
/* Its matrix products take rows in groups of LB_GPTQ_ROWS from the first (as lb_gptq_retarget
 * does): a row's result is the same in any call whose rows start at a multiple of it (MPI's
 * shares of a matrix's rows are). */
#define LB_GPTQ_ROWS 256
/* The damping p asks for, or type t's default (0.01; 0.05 for the i-quants' lattices). */
double    lb_gptq_damp(const lb_gptq_params *p, lb_type t);
lb_status lb_gptq_quantize(float *W, int64_t n_out, int64_t n_in, const double *H, lb_type t,
                           const lb_gptq_params *p, const float *importance, void *q,
                           lb_error *err);

/* The damped Hessian H [n, n] of one input, factorized once for the matrices that read it:
 * GPTQ's and each refit's (lb_gptq_quantize_f, lb_gptq_retarget_f; the refits first, the
 * factor keeps only GPTQ's part after the first GPTQ). damp as lb_gptq_damp gives it for the
 * type; act_order: columns by decreasing diag H (types with a grid). */
typedef struct lb_gptq_factor lb_gptq_factor;
lb_status lb_gptq_factor_create(lb_gptq_factor **out, const double *H, int64_t n, double damp, bool act_order,
                                lb_error *err);
void      lb_gptq_factor_free(lb_gptq_factor *f);
/* f serves GPTQ to a type of this damping and column order */
bool      lb_gptq_factor_fits(const lb_gptq_factor *f, double damp, bool act_order);
/* lb_gptq_quantize on a factor that fits (p's damping for t, its act order where t has a grid) */
lb_status lb_gptq_quantize_f(float *W, int64_t n_out, lb_gptq_factor *f, lb_type t, const lb_gptq_params *p,
                             const float *importance, void *q, lb_error *err);

/* The f32 target for GPTQ on quantized inputs: with X the unquantized model's input of a
 * layer and X' the quantized model's (same tokens), ||W X - Wq X'||^2 equals
 * ||W' X' - Wq X'||^2 plus a constant, W' = W C H^-1, C = sum X X'^T, H = sum X' X'^T. W [n_out,
 * n_in] becomes W' (ridge: H + lambda I, W C + lambda W, lambda = damp * mean(diag H)). */
lb_status lb_gptq_retarget(float *W, int64_t n_out, int64_t n_in, const double *C, const double *H,
                           double damp, lb_error *err);
/* The same on H's factor (its lambda: H' as lb_gptq_factor_create damps it): 4 n^2 products a
 * row; 2 n^2 (W' = W M^T) after lb_gptq_factor_refit_matrix, which makes M = H'^-1 (C^T +
 * lambda I) once (2 n^3: worth it when the input's readers have more rows than it has columns,
 * as q, k, v or gate, up); the refits after it take M, and their C must be the one it was
 * given. The two agree to f64's rounding, not bit for bit. Without the memory for M the
 * factor is as it was (LB_ERR_NOMEM). */
lb_status lb_gptq_retarget_f(float *W, int64_t n_out, const double *C, const lb_gptq_factor *f, lb_error *err);
lb_status lb_gptq_factor_refit_matrix(lb_gptq_factor *f, const double *C, lb_error *err);

/* ||W X - Wq X'||^2 / ||W X||^2 from A = sum X X^T, C = sum X X'^T, H = sum X' X'^T: the
 * output error against the unquantized model's outputs (X' = X: lb_output_error). */
double lb_output_error_cross(const float *W, const float *Wq, int64_t n_out, int64_t n_in,
                             const double *A, const double *C, const double *H);

/* sum over the rows r of x_r M y_r^T, X and Y [n_out, n], M [n, n] (NAN when out of memory);
 * and X M into out [n_out, n]: the pieces of the output errors for callers that free M early. */
double    lb_quad_sum(const float *X, const float *Y, const double *M, int64_t n_out, int64_t n);
lb_status lb_rows_times(const float *X, const double *M, int64_t n_out, int64_t n, float *out,
                        lb_error *err);

/* Output error of a quantized matrix on the statistics of its input:
 * tr((W - Wq) H (W - Wq)^T) / tr(W H W^T) = ||WX - WqX||^2 / ||WX||^2. */
double lb_output_error(const float *W, const float *Wq, int64_t n_out, int64_t n_in,
                       const double *H);

#include "calib.h"

/* What the engine reports after each block (the token embedding, each layer, the head). */
typedef struct lb_block_report {
    int32_t     done, total;        /* blocks done so far, and in all */
    const char *name;               /* "token_embd", "blk.3", "output" */
    const char *method;             /* the chain, as given ("awq+gptq") */
    double      seconds;            /* this block's */
    double      elapsed, eta;       /* since the start, and the estimate of what remains */
    double      seconds_calib, seconds_method; /* since the start: calibration passes, methods */
    size_t      peak_rss;           /* bytes: the process's peak resident set so far */
    double      err_rtn, err_method; /* the block's summed relative output errors, RTN against
                                      * the method (both 0 when its methods report none) */
} lb_block_report;

typedef struct lb_quant_params {
    const lb_recipe        *recipe;
    lb_range                range;
    bool                    pure;         /* every weight matrix gets the base type */
    /* llama-quantize's --output-tensor-type and --token-embedding-type: these two tensors'
     * types, before any other rule (has_*: given); --leave-output-tensor: output.weight is
     * written as it is in the input */
    bool                    has_output_type, has_embd_type, leave_output;
    lb_type                 output_type, embd_type;
    /* tensors the input holds quantized may be quantized again (llama-quantize's
     * --allow-requantize; refused by default: quality suffers) */
    bool                    allow_requantize;
    /* llama-quantize's --override-kv: "KEY=TYPE:VALUE" metadata that wins over every other */
    const char *const      *kv_overrides;
    int32_t                 n_kv_overrides;
    /* split GGUF output (lb_write_plan's): gguf-split's --split-max-size/--split-max-tensors,
     * llama-quantize's --keep-split (a calibrated run is then not resumable) */
    uint64_t                split_max_bytes;
    int32_t                 split_max_tensors;
    bool                    keep_split;
    const lb_type_override *overrides;
    int32_t                 n_overrides;
    /* how values are chosen: "rtn" (round to nearest), "imatrix" (importance-weighted
     * search with per-channel importance from calibration), "gptq" */
    const char             *method;
    const char             *calib_text;   /* calibration text (imatrix, gptq) */
    const lb_imatrix       *imatrix;      /* importance from a file (llama-imatrix's), or NULL */
    lb_calib_params         calib;
    lb_gptq_params          gptq;
    /* W8A8 (recipe "w8a8"): how activation ranges are found (--act; dynamic: per token at
     * run time), SmoothQuant's alpha (0: 0.5), LLM.int8's outlier threshold (0: 6.0) */
    lb_act_calib            act;
    double                  smooth_alpha;
    double                  outlier_threshold;
    /* a calibrated run keeps its state beside the output (.OUT.lowbit-state/) until it
     * succeeds; resume: continue from it (without: a state there is refused) */
    bool                    resume;
    /* bytes the run may hold in memory (0: 3/4 of lb_memory_limit()): the calibration streams
     * spill to a file beside the output when they and a block's working set would pass it */
    size_t                  max_memory;
    /* called after each block, may be NULL (user: log_user) */
    void                  (*on_block)(void *user, const lb_block_report *r);
    /* quantize weights that hold NaN or Inf, or values past the f16 range of the block
     * scales (|w| > 65504), instead of refusing them (lb_quant_check_values) */
    bool                    allow_nonfinite;
    /* per-layer report lines ("blk.3.attn_q q4_0: output error RTN 0.0123 -> GPTQ ..."),
     * may be NULL */
    void                  (*log)(void *user, const char *line);
    void                   *log_user;
} lb_quant_params;

/* What happened to one tensor. */
typedef struct lb_tensor_plan {
    const lb_named_tensor *nt;
    lb_type                wanted;   /* before the shape fallback */
    lb_type                type;     /* what is stored */
    bool                   fallback; /* the row length did not fit `wanted` */
    bool                   overridden;
} lb_tensor_plan;

/* Choose every tensor's type. tensors and plans have room for cap entries (LB_ERR_PARAM when
 * that is fewer than lb_model_n_tensors(m)); the count through *n. */
lb_status lb_quant_plan(const lb_model *m, const lb_quant_params *p, lb_named_tensor *tensors,
                        lb_tensor_plan *plans, int32_t cap, int32_t *n, lb_error *err);

typedef struct lb_quant_summary {
    size_t  bytes_in, bytes_out;  /* weights, as loaded and as written */
    int32_t calib_windows, calib_ctx;
    double  err_rtn, err_method;  /* summed relative output errors, RTN vs method, of the
                                   * matrices of the last method that reports them (gptq, awq) */
    double  seconds_calib, seconds_method;
    int64_t n_params;
    double  bpw;                  /* bits per weight of the output, scales included */
    int32_t n_tensors, n_fallback;
    double  seconds;
    size_t  peak_rss;             /* bytes: the process's peak resident set at the end */
    size_t  memory_budget;        /* the budget the run kept to (bytes) */
    size_t  streams_bytes;        /* the calibration streams' size, in RAM or spilled */
    bool    streams_spilled;
} lb_quant_summary;

/* What can be checked without the model, before any work: the method names, calibration
 * text for the methods that need it (and for w8a8's static --act), w8a8 methods with the
 * w8a8 recipe, the overrides' regular expressions and types. LB_ERR_PARAM, one line. */
lb_status lb_quant_check(const lb_quant_params *p, lb_error *err);

/* Every f32/f16/bf16 tensor of the plan holds finite values, and those stored in a type
 * other than f32 stay within the f16 range its scales are stored in; else LB_ERR_NUMERIC
 * naming the tensor, the row and the value. */
lb_status lb_quant_check_values(const lb_named_tensor *nt, const lb_tensor_plan *plans, int32_t n,
                                lb_error *err);

/* Quantize m into a GGUF at out_path. plans and tensors (both NULL, or both with room for cap
 * entries, as lb_quant_plan's) receive each tensor's decision. */
lb_status lb_quantize_model(const lb_model *m, const char *out_path, const lb_quant_params *p,
                            lb_tensor_plan *plans, lb_named_tensor *tensors, int32_t cap,
                            lb_quant_summary *summary, lb_error *err);

/* ---- a target size (--target-bpw): a type per tensor by measured sensitivity ----
 * Each weight matrix is quantized alone to each candidate type (the importance-weighted
 * search, with the importance of imatrix or of the calibration windows), the model run on the
 * calibration windows with only that tensor changed, and the mean KL divergence from the
 * unquantized model's predictions taken as its sensitivity. The types then minimize the sum
 * of the sensitivities with the file at or under target_bpw bits per weight (norms stay f32):
 * a Lagrangian relaxation, then the best upgrades per byte while they fit. The model is held
 * in f32 for it (a testbed-sized model; the streaming engine does not run this yet). */
#define LB_BPW_MAX_TYPES 16
typedef struct lb_bpw_params {
    double            target_bpw;
    const lb_type    *types;     /* candidates (GGUF types), at most LB_BPW_MAX_TYPES */
    int32_t           n_types;
    const char       *calib_text;
    lb_calib_params   calib;     /* n_samples 0: 4; n_ctx 0: 128 */
    const lb_imatrix *imatrix;   /* importance from a file, or NULL: from the windows */
    /* the cheap proxy instead of measured divergence: sum over the matrix of imp_j (w - q)^2,
     * the output error were the inputs uncorrelated (the embedding: imp 1); no forward passes */
    bool              proxy;
} lb_bpw_params;

typedef struct lb_bpw_result {
    int32_t  n_tensors, n_types;       /* tensors: lb_model_tensors' order */
    lb_type  types[LB_BPW_MAX_TYPES];
    double  *sens;                     /* [n_tensors][n_types]; NAN: the type does not fit */
    size_t  *bytes;                    /* [n_tensors][n_types] */
    lb_type *choice;                   /* [n_tensors] (norms: LB_TYPE_F32) */
    double   bpw, kld_sum;             /* of the allocation; the sum of its sensitivities */
    int32_t  evals;                    /* sensitivities measured */
    double   seconds;
    int64_t  params;                   /* the model's weights, all tensors */
    size_t   fixed;                    /* bytes of the tensors that stay f32 (norms) */
} lb_bpw_result;

/* Measure, then choose for p->target_bpw. */
lb_status lb_bpw_allocate(const lb_model *m, const lb_bpw_params *p, lb_bpw_result *r, lb_error *err);
/* Choose again from r's measurements for another target (r->choice, bpw, kld_sum). */
lb_status lb_bpw_choose(lb_bpw_result *r, double target_bpw, lb_error *err);
void      lb_bpw_result_free(lb_bpw_result *r);

#ifdef __cplusplus
}
#endif
#endif
