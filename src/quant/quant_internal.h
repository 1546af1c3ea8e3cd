/* Shared by the quantization methods (src/quant/method_*.c) and their driver (quantize.c).
 * A method chooses values: it may fill data[i] with tensor i already stored in its planned
 * type (the writer then uses those bytes), importance[i] with per-column importance for the
 * format's quantizer, or replace `model` by a transformed copy (AWQ's folded scales) that
 * later methods and the writer use instead. Methods chain: "awq+gptq". */
#ifndef LB_QUANT_INTERNAL_H
#define LB_QUANT_INTERNAL_H

#include "lowbit/quant.h"

typedef struct lb_method_ctx {
    const lb_model        *model;      /* what is quantized and written (may be replaced) */
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
} lb_method_ctx;

/* One row of the table of methods (methods.c): what a method needs before it runs. */
typedef struct lb_method_info {
    const char *name;
    lb_status (*run)(lb_method_ctx *c, lb_error *err); /* NULL: rtn, the format's quantizer */
    bool        calib; /* needs calibration text */
    bool        w8a8;  /* only with the w8a8 recipe */
} lb_method_info;

/* The method of that name (len bytes of name: one of a '+'-joined list), or NULL. */
const lb_method_info *lb_method_lookup(const char *name, size_t len);

lb_status lb_method_imatrix(lb_method_ctx *c, lb_error *err);
lb_status lb_method_gptq(lb_method_ctx *c, lb_error *err);
lb_status lb_method_awq(lb_method_ctx *c, lb_error *err);          /* method_awq.c */
lb_status lb_method_smoothquant(lb_method_ctx *c, lb_error *err);  /* method_w8a8.c */
lb_status lb_method_llm_int8(lb_method_ctx *c, lb_error *err);     /* method_w8a8.c */
/* after the methods: the w8a8 recipe's activation quantization (ranges calibrated on the
 * model as the methods left it); nothing for other recipes */
lb_status lb_method_w8a8_acts(lb_method_ctx *c, lb_error *err);    /* method_w8a8.c */
/* then each linear's W8A8 output error (weights, activations, both) on the log */
lb_status lb_w8a8_report(lb_method_ctx *c, lb_error *err);          /* w8a8_report.c */

/* helpers (quantize.c) */
lb_status lb_method_windows(lb_method_ctx *c, lb_error *err); /* load windows if needed */
/* quantize the f32 tensor t to type (all rows in one call) and put back what the file will
 * hold, in place; its bytes go to *bytes (NULL: dropped) */
lb_status lb_method_round_trip(const lb_tensor *t, lb_type type, const float *importance, void **bytes,
                               lb_error *err);
/* switch c->model to `m` (owned), re-listing its tensors */
void      lb_method_set_model(lb_method_ctx *c, lb_model *m);
void      lb_method_log(const lb_quant_params *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int32_t   lb_method_find(const lb_named_tensor *ts, int32_t n, int32_t layer, lb_tensor_role role);

#endif
