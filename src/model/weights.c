/* A model's matrices for the forward pass, packed for the quantized kernels when asked
 * (weights.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fail.h"
#include "formats/formats.h"
#include "kernels/qdot.h"
#include "model_internal.h"
#include "weights.h"

/* The whole pages of [p, p + n) back to the system: a file mapping's come back from the file
 * if touched again, an anonymous buffer's read as zeros (only rows no product reads may go). */
static void give_back(const void *p, size_t n) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Give back the pages of [p, p + n) when they belong to m's mapped file: read-only private
 * pages, which the kernel reloads from the file if they are touched again. */
static void release(const lb_model *m, const void *p, size_t n) {
    if (!m->priv) return;
    const lb_source *s = m->priv->gguf ? &m->priv->gguf->src : &m->priv->src;
    const uint8_t   *b = p;
    for (const lb_gguf *g = m->priv->gguf; g && (b < s->data || b + n > s->data + s->size); g = g->next_shard)
        s = &g->src; /* a split model: the shard holding it */
    if (s->map && b >= s->data && b + n <= s->data + s->size) give_back(p, n);
}


/* the stacked tensors of a layer, one matrix per expert or per head: views of each slice */
static const lb_tensor_role k_stacks[LB_WEIGHTS_STACKS] = { LB_ROLE_FFN_GATE_EXPS, LB_ROLE_FFN_UP_EXPS,
                                                            LB_ROLE_FFN_DOWN_EXPS, LB_ROLE_ATTN_K_B, LB_ROLE_ATTN_V_B };

/* slice e of t (ne[2] matrices of ne[1] rows) as a 2-D tensor */
static lb_tensor slice_view(const lb_tensor *t, int32_t e) {
    lb_tensor v = *t;
    v.ne[2]     = 1;
    v.n_dims    = 2;
    v.data      = (const uint8_t *)t->data + (size_t)e * (size_t)t->ne[1] * lb_row_size(t->type, t->ne[0]);
    return v;
}

/* the index of stack k's slice e of layer l among the views (add the 2-D matrices for mats) */
static size_t slice_at(const lb_weights *w, int32_t l, int k, int32_t e) {
    size_t i = (size_t)l * (size_t)w->per_layer + (size_t)e;
    for (int j = 0; j < k; j++) i += (size_t)w->n_slice[j];
    return i;
}

lb_mat lb_weights_slice(lb_weights *w, const lb_model *m, int32_t l, int k, int32_t e) {
    const size_t i = slice_at(w, l, k, e), at = (size_t)w->n_layers * LB_LAYER_SLOTS + 1 + i;
    const lb_tensor *t = lb_model_tensor_c(m, l, k_stacks[k]);
    if (!w->mats[at].packed && !w->tc_buf[at] && t && t->data) w->views[i] = slice_view(t, e);
    return w->mats[at];
}

lb_status lb_weights_init(lb_weights *w, const lb_model *m, bool pack, lb_error *err) {
    lb_status     st = LB_OK;
    const int32_t L = m->cfg.n_layers, X = m->cfg.n_expert, H = m->arch && m->arch->ops.mla ? m->cfg.n_heads : 0;
    w->per_layer    = 0;
    for (int k = 0; k < LB_WEIGHTS_STACKS; k++) w->per_layer += w->n_slice[k] = k < 3 ? X : H;
    const int32_t n = L * LB_LAYER_SLOTS + 1 + L * w->per_layer;
    w->n_layers     = L;
    w->n_mats       = n;
    w->buf          = NULL;
    w->packed       = 0;
    w->mats         = calloc((size_t)n, sizeof *w->mats);
    w->views        = w->per_layer > 0 ? calloc((size_t)L * (size_t)w->per_layer, sizeof *w->views) : NULL;
    LB_GOTO_IF(!w->mats || (w->per_layer > 0 && !w->views), err, LB_ERR_NOMEM, "out of memory");
    for (int32_t l = 0; l < L; l++) /* the matrices of a block: its 2-D slots, the router too */
        for (int r = LB_ROLE_LAYER_FIRST; r < LB_ROLE_LAYER_END; r++) {
            const lb_tensor *t = lb_model_tensor_c(m, l, (lb_tensor_role)r);
            const lb_slot   *s = lb_slot_of((lb_tensor_role)r);
            if (t && t->data && s->ne1 != LB_DIM_1 && s->ne2 == LB_DIM_1)
                w->mats[l * LB_LAYER_SLOTS + r - LB_ROLE_LAYER_FIRST].t = t;
        }
    w->mats[L * LB_LAYER_SLOTS].t = &m->output;
    for (int32_t l = 0; l < L; l++)
        for (int k = 0; k < LB_WEIGHTS_STACKS; k++) {
            const lb_tensor *t = lb_model_tensor_c(m, l, k_stacks[k]);
            for (int32_t e = 0; t && t->data && e < w->n_slice[k]; e++) { /* a dense layer has no experts */
                const size_t i = slice_at(w, l, k, e);
                w->views[i]                          = slice_view(t, e);
                w->mats[L * LB_LAYER_SLOTS + 1 + i].t = &w->views[i];
            }
        }
    w->tc            = calloc((size_t)n, sizeof *w->tc);
    w->tc_buf        = calloc((size_t)n, sizeof *w->tc_buf);
    LB_GOTO_IF(!w->tc || !w->tc_buf, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++) { /* types without kernels as types with them (transcode.c) */
        const lb_tensor *t  = w->mats[i].t;
        lb_type          to = t ? lb_transcode_target(t->type) : LB_TYPE_INVALID;
        const lb_type    ap = pack && t && t->ne[0] % 32 == 0 ? lb_transcode_approx_target(t->type) : LB_TYPE_INVALID;
        /* activations quantized anyway: the faster kernel; W8A8's integer path wants INT8_PC */
        if (ap != LB_TYPE_INVALID && !(m->actq && (to == LB_TYPE_INT8_PC || t->type == LB_TYPE_INT8_PC))) to = ap;
        const bool requant  = to == LB_TYPE_INVALID && pack && t && lb_type_get_traits(t->type)->is_quantized &&
                             !lb_qdot_get(t->type) && t->ne[0] % 32 == 0;
        if (requant) to = LB_TYPE_Q8_0; /* no kernel and no block type with its values: Q8_0's */
        if (to == LB_TYPE_INVALID) continue;
        const int64_t rows = lb_tensor_nelements(t) / t->ne[0];
        const size_t  rs = lb_row_size(to, t->ne[0]), ts = lb_row_size(t->type, t->ne[0]);
        uint8_t      *b  = aligned_alloc(64, ((size_t)rows * rs + 63) / 64 * 64);
        bool          oom = !b;
#pragma omp parallel if (rows >= 256)
        {
            float *x = requant && b ? malloc((size_t)t->ne[0] * sizeof *x) : NULL;
            if (requant && !x) {
#pragma omp atomic write
                oom = true;
            }
#pragma omp for schedule(static)
            for (int64_t r = 0; r < rows; r++) {
                const uint8_t *src = (const uint8_t *)t->data + (size_t)r * ts;
                if (!b || (requant && !x)) continue;
                if (!requant) {
                    lb_transcode_row(t->type, to, b + (size_t)r * rs, src, t->ne[0]);
                } else {
                    lb_type_get_traits(t->type)->to_float(x, src, t->ne[0]);
                    lb_quantize_rows(LB_TYPE_Q8_0, b + (size_t)r * rs, x, 1, t->ne[0], NULL);
                }
            }
            free(x);
        }
        if (oom) free(b);
        LB_GOTO_IF(oom, err, LB_ERR_NOMEM, "out of memory transcoding the weights");
        if (!(i == L * LB_LAYER_SLOTS && m->tied_output)) release(m, t->data, (size_t)rows * ts);
        w->tc[i]      = *t;
        w->tc[i].type = to;
        w->tc[i].data = b;
        w->tc_buf[i]  = b;
        w->mats[i].t  = &w->tc[i];
    }
    if (!pack) goto done;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++)
        if (w->mats[i].t) total += (lb_matmul_pack_size(w->mats[i].t) + 63) / 64 * 64;
    if (total == 0) goto done;
    w->buf = aligned_alloc(64, total);
    if (!w->buf) {
        lb_weights_free(w);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory packing the weights (%zu MiB)", total >> 20);
    }
    uint8_t *p = w->buf;
    for (int32_t i = 0; i < n; i++) {
        const lb_tensor *t  = w->mats[i].t;
        const size_t     sz = t ? lb_matmul_pack_size(t) : 0;
        if (sz == 0) continue;
        lb_matmul_pack(p, t);
        if (w->tc_buf[i]) /* transcoded: those rows are read from the packed copy only */
            give_back(t->data, (size_t)(t->ne[1] / 8 * 8) * lb_row_size(t->type, t->ne[0]));
        else if (!(i == L * LB_LAYER_SLOTS && m->tied_output)) /* a tied output is the embedding table too */
            release(m, t->data, (size_t)(t->ne[1] / 8 * 8) * lb_row_size(t->type, t->ne[0]));
        w->mats[i].packed = p;
        p += (sz + 63) / 64 * 64;
    }
    w->packed = (size_t)(p - (uint8_t *)w->buf);
done:
    w->init    = malloc((size_t)n * sizeof *w->init);
    w->set_buf = calloc((size_t)n, sizeof *w->set_buf);
    LB_GOTO_IF(!w->init || !w->set_buf, err, LB_ERR_NOMEM, "out of memory");
    memcpy(w->init, w->mats, (size_t)n * sizeof *w->init);
    return LB_OK;
fail:
    lb_weights_free(w);
    return st;
}

void lb_weights_free(lb_weights *w) {
    for (int32_t i = 0; w->tc_buf && i < w->n_mats; i++) free(w->tc_buf[i]);
    free(w->tc_buf);
    free(w->tc);
    free(w->mats);
    free(w->init);
    w->init = NULL;
    for (int32_t i = 0; w->set_buf && i < w->n_mats; i++) free(w->set_buf[i]);
    free(w->set_buf);
    w->set_buf = NULL;
    free(w->views);
    w->views  = NULL;
    free(w->buf);
    w->mats   = NULL;
    w->buf    = NULL;
    w->tc     = NULL;
    w->tc_buf = NULL;
}
