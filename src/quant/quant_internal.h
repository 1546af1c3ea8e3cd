/* Shared by the quantization methods (src/quant/method_*.c) and their driver (quantize.c).
 * A method chooses values: it may fill data[i] with tensor i already stored in its planned
 * type (the writer then uses those bytes), importance[i] with per-column importance for the
 * format's quantizer, or replace `model` by a transformed copy (AWQ's folded scales) that
 * later methods and the writer use instead. Methods chain: "awq+gptq". */
#ifndef LB_QUANT_INTERNAL_H
#define LB_QUANT_INTERNAL_H

#include "clip.h"
#include "lowbit/quant.h"

typedef struct lb_method_ctx {
    const lb_model        *model;      /* what is quantized and written (a whole-model method
                                        * may replace it by a transformed copy) */
    lb_model              *owned;      /* a copy a method made; freed by the driver */
    const lb_quant_params *p;
    lb_named_tensor       *tensors;    /* of `model`, in file order */
    const lb_tensor_plan  *plans;
    int32_t                n;
    void                 **data;       /* [n] stored bytes, or NULL */
    float                **importance; /* [n] per-column importance, or NULL */
    int32_t               *windows;    /* calibration windows (loaded on first use) */
    int32_t                n_windows;
    lb_quant_summary      *summary;
    lb_actq               *actq;       /* W8A8: activation quantization, written with the file */
    /* ---- the block engine (engine.c), for the block methods ---- */
    int32_t                layer;      /* the block: 0 .. n_layers-1, or n_layers: the head */
    bool                   last;       /* the running method is the chain's last block method */
    bool                   stored_later; /* a later method of the chain stores the weights (GPTQ) */
    lb_model              *work;       /* the model as stored so far, its block in f32 (when a
                                        * method changes weights); NULL when none does */
    lb_model              *ref;        /* the unquantized model as earlier methods changed it */
    lb_context            *ctx_q, *ctx_r; /* on work and on ref */
    lb_tensor             *stored;     /* [n] the block's stored matrices as ctx_q multiplies them
                                        * (lb_engine_stored), while the block runs */
    lb_calib_states       *sq, *sr;    /* each window at the block's input, through work / ref
                                        * (NULL when no method needs it) */
    lb_calib              *cal;        /* per-input statistics, without Hessians */
    lb_calib              *cal_h;      /* with Hessians (allocated per input, lb_calib_clear) */
    double                 block_rtn, block_method; /* the block's summed output errors */
    double                 awq_rtn, awq_err;        /* AWQ's totals over the blocks */
    int32_t                awq_n;
    lb_range_stats         range;      /* the block's clipping (--range), for its report */
} lb_method_ctx;

/* One row of the table of methods (methods.c). A method runs on the whole model before the
 * blocks (whole: W8A8's transforms) or on one block at a time (block: c->layer), in chain
 * order within each block. */
typedef struct lb_method_info {
    const char *name;
    lb_status (*whole)(lb_method_ctx *c, lb_error *err);
    lb_status (*block)(lb_method_ctx *c, lb_error *err);
    bool        calib;    /* needs calibration text */
    bool        w8a8;     /* only with the w8a8 recipe */
    bool        weights;  /* changes the block's weights (they are loaded in f32 for it) */
    /* its options, into the output's metadata (may be NULL) */
    lb_status (*meta)(lb_gguf_writer *w, const lb_quant_params *p);
} lb_method_info;

/* The method of that name (len bytes of name: one of a '+'-joined list), or NULL. */
const lb_method_info *lb_method_lookup(const char *name, size_t len);

/* recipe.c: llama.cpp's tensor_requires_imatrix: nt (not token_embd or output) stored as t
 * in a file of recipe r is refused without importance (the i-quants below 4 bits but IQ3_S,
 * and Q2_K in Q2_K_S files) */
bool lb_recipe_requires_importance(const lb_recipe *r, const lb_named_tensor *nt, lb_type t);

lb_status lb_method_imatrix(lb_method_ctx *c, lb_error *err);     /* block */
lb_status lb_method_gptq(lb_method_ctx *c, lb_error *err);        /* block */
lb_status lb_method_awq(lb_method_ctx *c, lb_error *err);         /* block (method_awq.c) */
lb_status lb_method_smoothquant(lb_method_ctx *c, lb_error *err); /* whole (method_w8a8.c) */
lb_status lb_method_llm_int8(lb_method_ctx *c, lb_error *err);    /* whole (method_w8a8.c) */
/* after the whole-model methods: the w8a8 recipe's activation quantization (ranges calibrated
 * on the model as they left it); nothing for other recipes */
lb_status lb_method_w8a8_acts(lb_method_ctx *c, lb_error *err);    /* method_w8a8.c */
/* then each linear's W8A8 output error (weights, activations, both) on the log */
lb_status lb_w8a8_report(lb_method_ctx *c, lb_error *err);          /* w8a8_report.c */

/* The block engine: every block method of the chain on each block in turn, each block's
 * tensors stored and written as soon as it is done (engine.c). */
lb_status lb_engine_run(lb_method_ctx *c, const lb_write_plan *plan, const char *out_path,
                        lb_error *err);
/* Store tensor i now from the block's current values (its planned type, importance and range),
 * into c->data[i]; when the block is loaded in f32, its values become what the file holds. */
lb_status lb_engine_store(lb_method_ctx *c, int32_t i, lb_error *err);
/* Tensor i was stored (c->data[i]): unless --calib-matmul exact, the quantized stream now
 * multiplies those bytes by the quantized kernels, where its type has one, instead of the
 * block's f32 copy of them (the same values; the activations rounded to 8 bits, as llama.cpp
 * runs the file), until the block ends. */
void       lb_engine_stored(lb_method_ctx *c, int32_t i);
/* The block's current tensor of tensor i: work's (f32) when loaded, else ref's. */
lb_tensor *lb_engine_tensor(lb_method_ctx *c, int32_t i);
/* Where a method that changes weights runs: the last one on work and the quantized stream, an
 * earlier one (a transform GPTQ follows) on ref and the unquantized stream. */
void lb_engine_target(lb_method_ctx *c, lb_model **m, lb_context **ctx, lb_calib_states **s);

/* helpers (quantize.c) */
lb_status lb_method_windows(lb_method_ctx *c, lb_error *err); /* load windows if needed */
/* switch c->model to `m` (owned), re-listing its tensors */
void      lb_method_set_model(lb_method_ctx *c, lb_model *m);
void      lb_method_log(const lb_quant_params *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int32_t   lb_method_find(const lb_named_tensor *ts, int32_t n, int32_t layer, lb_tensor_role role);
void      lb_method_prepare_rows(float *rows, int64_t nr, int64_t n, lb_type t, const float *importance,
                                 void *user); /* the range (--range), user: the lb_method_ctx */

/* A stacked tensor t (a mixture of experts' experts, MLA's k_b and v_b): each slice's importance
 * (mean x^2 of its input: the tokens routed to an expert; 1s for an expert none was), ne[0] *
 * ne[2] values into *out (malloc'd; NULL when no slice saw a token). */
lb_status lb_expert_importance(const lb_calib *cal, const lb_named_tensor *t, float **out, lb_error *err);

/* GPTQ can take a tensor of type t with rows of ncols (method_gptq.c) */
bool      lb_gptq_able(lb_type t, int64_t ncols);
/* GPTQ on the stacked tensors roles[0..nr) of block c->layer, which read one input per slice
 * (gptq_experts.c): a mixture of experts' gate and up, or their down, each expert on the Hessian
 * of the tokens routed to it; MLA's k_b or v_b, each head on its own input */
lb_status lb_gptq_slices(lb_method_ctx *c, const lb_tensor_role *roles, int nr, lb_error *err);

#endif
