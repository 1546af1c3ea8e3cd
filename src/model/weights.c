/* A model's matrices for the forward pass, packed for the quantized kernels when asked
 * (weights.h). */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fail.h"
#include "model_internal.h"
#include "weights.h"

/* Give back the pages of [p, p + n) when they belong to m's mapped file: read-only private
 * pages, which the kernel reloads from the file if they are touched again. */
static void release(const lb_model *m, const void *p, size_t n) {
    if (!m->priv) return;
    const lb_source *s = m->priv->gguf ? &m->priv->gguf->src : &m->priv->src;
    const uint8_t   *b = p;
    for (const lb_gguf *g = m->priv->gguf; g && (b < s->data || b + n > s->data + s->size); g = g->next_shard)
        s = &g->src; /* a split model: the shard holding it */
    if (!s->map || b < s->data || b + n > s->data + s->size) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)b + page - 1) / page * page, hi = ((uintptr_t)b + n) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

lb_status lb_weights_init(lb_weights *w, const lb_model *m, bool pack, lb_error *err) {
    const int32_t L = m->cfg.n_layers, n = L * LB_LAYER_SLOTS + 1;
    w->n_layers     = L;
    w->buf          = NULL;
    w->packed       = 0;
    w->mats         = calloc((size_t)n, sizeof *w->mats);
    LB_RETURN_IF(!w->mats, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t l = 0; l < L; l++) /* the linear slots: those that read an activation */
        for (int r = LB_ROLE_LAYER_FIRST; r < LB_ROLE_LAYER_END; r++) {
            const lb_tensor *t = lb_model_tensor_c(m, l, (lb_tensor_role)r);
            if (t && t->data && lb_slot_of((lb_tensor_role)r)->input != LB_ROLE_COUNT)
                w->mats[l * LB_LAYER_SLOTS + r - LB_ROLE_LAYER_FIRST].t = t;
        }
    w->mats[n - 1].t = &m->output;
    if (!pack) return LB_OK;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++)
        if (w->mats[i].t) total += (lb_matmul_pack_size(w->mats[i].t) + 63) / 64 * 64;
    if (total == 0) return LB_OK;
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
        if (!(i == n - 1 && m->tied_output)) /* a tied output is the embedding table too */
            release(m, t->data, (size_t)(t->ne[1] / 8 * 8) * lb_row_size(t->type, t->ne[0]));
        w->mats[i].packed = p;
        p += (sz + 63) / 64 * 64;
    }
    w->packed = (size_t)(p - (uint8_t *)w->buf);
    return LB_OK;
}

void lb_weights_free(lb_weights *w) {
    free(w->mats);
    free(w->buf);
    w->mats = NULL;
    w->buf  = NULL;
}
