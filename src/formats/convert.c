/* A tensor stored in another type: rows read as f32 (any source type), optionally prepared
 * by a hook (range clipping), then quantized or converted, in parallel chunks of rows. A
 * whole_tensor type's quantizer gets all rows in one call (they are still read and prepared in
 * parallel). Rows are independent, so the bytes do not depend on the thread count. A stacked
 * tensor (ne[2] > 1, a mixture of experts' experts) takes ne[0] importance values per matrix
 * (llama-quantize's per-expert slices); a whole_tensor type none. */
#include <stdlib.h>

#include "core/fail.h"
#include "lowbit/tensor.h"

static void load_rows(float *rows, const lb_tensor *t, int64_t r0, int64_t nr, lb_type type,
                      const float *importance, lb_rows_hook prepare, void *user) {
    const int64_t n = t->ne[0];
    for (int64_t r = 0; r < nr; r++) lb_tensor_get_row_f32(t, r0 + r, rows + r * n);
    if (prepare && lb_type_get_traits(type)->is_quantized) prepare(rows, nr, n, type, importance, user);
}

lb_status lb_tensor_convert(const lb_tensor *t, lb_type type, const float *importance,
                            lb_rows_hook prepare, void *user, void **out, size_t *nbytes,
                            lb_error *err) {
    return lb_tensor_convert_rows(t, type, importance, prepare, user, 0, lb_tensor_nelements(t) / t->ne[0], out,
                                  nbytes, err);
}

lb_status lb_tensor_convert_rows(const lb_tensor *t, lb_type type, const float *importance,
                                 lb_rows_hook prepare, void *user, int64_t first, int64_t last, void **out,
                                 size_t *nbytes, lb_error *err) {
    const int64_t n = t->ne[0], all_rows = lb_tensor_nelements(t) / t->ne[0], nrow = last - first;
    const size_t  rs    = lb_row_size(type, n);
    const bool    whole = lb_type_get_traits(type)->whole_tensor;
    const int64_t chunk = 16;
    const bool    experts = t->ne[2] > 1; /* importance: ne[0] values per matrix */
    LB_RETURN_IF(rs == 0, err, LB_ERR_SHAPE, "rows of %lld do not fit type %s", (long long)n, lb_type_name(type));
    LB_RETURN_IF(first < 0 || last > all_rows || first > last || (whole && nrow != all_rows), err, LB_ERR_PARAM,
                 "rows [%lld, %lld) of %lld: not a range %s converts", (long long)first, (long long)last,
                 (long long)all_rows, lb_type_name(type));
    uint8_t *buf = malloc(rs * (size_t)(nrow ? nrow : 1));
    float   *all = whole ? malloc((size_t)(nrow * n) * sizeof *all) : NULL;
    if (!buf || (whole && !all)) {
        free(buf);
        free(all);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory converting to %s", lb_type_name(type));
    }
    bool oom = false;
#pragma omp parallel
    {
        float *rows = whole ? NULL : malloc((size_t)(chunk * n) * sizeof *rows);
        if (!whole && !rows) {
#pragma omp atomic write
            oom = true;
        }
#pragma omp for schedule(dynamic)
        for (int64_t r0 = first; r0 < last; r0 += chunk)
            for (int64_t a = r0, end = last - r0 < chunk ? last : r0 + chunk; a < end;) {
                /* the rows of one matrix of a stacked tensor (experts) share its importance */
                const int64_t e  = experts ? a / t->ne[1] : 0, b = experts && (e + 1) * t->ne[1] < end ? (e + 1) * t->ne[1] : end;
                const float  *im = importance && !(whole && experts) ? importance + e * n : NULL;
                if (whole) {
                    load_rows(all + a * n, t, a, b - a, type, im, prepare, user);
                } else if (rows) {
                    load_rows(rows, t, a, b - a, type, im, prepare, user);
                    lb_quantize_rows(type, buf + (size_t)(a - first) * rs, rows, b - a, n, im);
                }
                a = b;
            }
        free(rows);
    }
    if (whole) lb_quantize_rows(type, buf, all, nrow, n, experts ? NULL : importance);
    free(all);
    if (oom) {
        free(buf);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory converting to %s", lb_type_name(type));
    }
    *out    = buf;
    *nbytes = rs * (size_t)nrow;
    return LB_OK;
}
