/* Bad weights are refused, not quantized: a NaN would be dropped by a block's max and an Inf
 * or a value past the f16 range would make the block's f16 scale infinite, so the file would
 * evaluate to NaN. Each f32/f16/bf16 tensor is read once, row by row across the threads. */
#include <math.h>
#include <stdio.h>

#include "core/fail.h"
#include "lowbit/quant.h"

#define F16_MAX 65504.0f

static float value_at(const lb_tensor *t, int64_t i) {
    switch (t->type) {
    case LB_TYPE_F32:  return ((const float *)t->data)[i];
    case LB_TYPE_F16:  return lb_f16_to_f32(((const uint16_t *)t->data)[i]);
    case LB_TYPE_BF16: return lb_bf16_to_f32(((const uint16_t *)t->data)[i]);
    default:           return 0;
    }
}

/* the first bad element's index, or -1 */
static int64_t first_bad(const lb_tensor *t, float limit) {
    const int64_t n = t->ne[0], nr = lb_tensor_nelements(t) / n;
    int64_t       bad_row = nr;
#pragma omp parallel for schedule(dynamic, 64) reduction(min : bad_row) if (nr >= 256)
    for (int64_t r = 0; r < nr; r++) {
        if (r > bad_row) continue;
        for (int64_t j = 0; j < n; j++)
            if (!(fabsf(value_at(t, r * n + j)) <= limit)) { /* NaN compares false */
                bad_row = r;
                break;
            }
    }
    if (bad_row == nr) return -1;
    for (int64_t j = 0; j < n; j++)
        if (!(fabsf(value_at(t, bad_row * n + j)) <= limit)) return bad_row * n + j;
    return -1;
}

lb_status lb_quant_check_values(const lb_named_tensor *nt, const lb_tensor_plan *plans, int32_t n,
                                lb_error *err) {
    for (int32_t i = 0; i < n; i++) {
        const lb_tensor *t = nt[i].t;
        if (t->type != LB_TYPE_F32 && t->type != LB_TYPE_F16 && t->type != LB_TYPE_BF16) continue;
        const bool    scaled = plans[i].type != LB_TYPE_F32;
        const int64_t at     = first_bad(t, scaled ? F16_MAX : INFINITY);
        if (at < 0) continue;
        const float v = value_at(t, at);
        char        what[48];
        if (isfinite(v)) snprintf(what, sizeof what, "%g (past the f16 range of its scales)", (double)v);
        else snprintf(what, sizeof what, "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return lb_fail(err, LB_ERR_NUMERIC,
                       "tensor '%s' holds %s at row %lld, column %lld; refusing to quantize it "
                       "(--allow-nonfinite to go on)",
                       nt[i].name, what, (long long)(at / t->ne[0]), (long long)(at % t->ne[0]));
    }
    return LB_OK;
}
