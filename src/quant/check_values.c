/* Bad weights are refused, not quantized (lb_tensor_find_bad says why): NaN and Inf in any
 * tensor, and values past the f16 range in a tensor stored in any type but f32. */
#include <math.h>
#include <stdio.h>

#include "core/fail.h"
#include "lowbit/quant.h"

lb_status lb_quant_check_values(const lb_named_tensor *nt, const lb_tensor_plan *plans, int32_t n,
                                lb_error *err) {
    for (int32_t i = 0; i < n; i++) {
        const lb_tensor *t = nt[i].t;
        float            v = 0;
        const int64_t    at = lb_tensor_find_bad(t, plans[i].type == LB_TYPE_F32 ? INFINITY : 65504.0f, &v);
        if (at < 0) continue;
        char what[48];
        if (isfinite(v)) snprintf(what, sizeof what, "%g (past the f16 range of its scales)", (double)v);
        else snprintf(what, sizeof what, "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return lb_fail(err, LB_ERR_NUMERIC,
                       "tensor '%s' holds %s at row %lld, column %lld; refusing to quantize it "
                       "(--allow-nonfinite to go on)",
                       nt[i].name, what, (long long)(at / t->ne[0]), (long long)(at % t->ne[0]));
    }
    return LB_OK;
}
