/* Finding bad values in a tensor before they are stored: a NaN would be dropped by a block's
 * max, and an Inf or a value past the f16 range makes a block's f16 scale (or an f16 value)
 * infinite, so the file would evaluate to NaN. One pass, rows across the threads. */
#include <float.h>
#include <math.h>

#include "lowbit/core.h"
#include "lowbit/tensor.h"

static float value_at(const lb_tensor *t, int64_t i) {
    switch (t->type) {
    case LB_TYPE_F32:  return ((const float *)t->data)[i];
    case LB_TYPE_F16:  return lb_f16_to_f32(((const uint16_t *)t->data)[i]);
    case LB_TYPE_BF16: return lb_bf16_to_f32(((const uint16_t *)t->data)[i]);
    default:           return 0;
    }
}

int64_t lb_tensor_find_bad(const lb_tensor *t, float limit, float *bad) {
    if (t->type != LB_TYPE_F32 && t->type != LB_TYPE_F16 && t->type != LB_TYPE_BF16) return -1;
    if (!(limit <= FLT_MAX)) limit = FLT_MAX; /* Inf is bad whatever the limit */
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
    for (int64_t j = 0; bad_row < nr && j < n; j++) {
        const float v = value_at(t, bad_row * n + j);
        if (!(fabsf(v) <= limit)) {
            if (bad) *bad = v;
            return bad_row * n + j;
        }
    }
    return -1;
}
