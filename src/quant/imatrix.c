/* Importance matrices in llama.cpp's GGUF format (what llama-imatrix writes and
 * llama-quantize --imatrix reads), so a user can bring one or take ours to llama.cpp. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/arch.h"
#include "lowbit/calib.h"

struct lb_imatrix {
    lb_gguf *g;
    char   **names;   /* --include-weights / --exclude-weights: substrings of tensor names */
    int32_t  n_names;
    bool     include; /* only the entries naming one (else: all but those) */
};

lb_status lb_imatrix_load(lb_imatrix **out, const char *path, lb_error *err) {
    *out          = NULL;
    lb_imatrix *im = calloc(1, sizeof *im);
    LB_RETURN_IF(!im, err, LB_ERR_NOMEM, "out of memory");
    lb_status st = lb_gguf_open(&im->g, path, err);
    if (st) {
        free(im);
        return st;
    }
    lb_gguf_str type;
    if (lb_gguf_get_str(im->g, "general.type", &type, NULL) != LB_OK || type.n != 7 ||
        memcmp(type.p, "imatrix", 7) != 0) {
        lb_imatrix_free(im);
        return lb_fail(err, LB_ERR_FORMAT, "%s: not an importance matrix (general.type is not "
                       "\"imatrix\"; legacy .dat files are not read)", path);
    }
    for (int64_t i = 0; i < im->g->n_tensors; i++) {
        const lb_gguf_tensor_info *t = &im->g->tensors[i];
        if (t->ggml_type != LB_GGML_F32) { /* the message names the tensor: free after it */
            st = lb_fail(err, LB_ERR_CORRUPT, "%s: tensor '%s' is not f32", path, t->name);
            lb_imatrix_free(im);
            return st;
        }
    }
    *out = im;
    return LB_OK;
}

void lb_imatrix_free(lb_imatrix *im) {
    if (!im) return;
    for (int32_t i = 0; i < im->n_names; i++) free(im->names[i]);
    free(im->names);
    lb_gguf_close(im->g);
    free(im);
}

lb_status lb_imatrix_filter(lb_imatrix *im, const char *const *names, int32_t n, bool include, lb_error *err) {
    char **v = calloc((size_t)(n > 0 ? n : 1), sizeof *v);
    LB_RETURN_IF(!v, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++)
        if (!(v[i] = strdup(names[i]))) {
            for (int32_t k = 0; k < i; k++) free(v[k]);
            free(v);
            return lb_fail(err, LB_ERR_NOMEM, "out of memory");
        }
    for (int32_t i = 0; i < im->n_names; i++) free(im->names[i]);
    free(im->names);
    im->names = v, im->n_names = n, im->include = include;
    return LB_OK;
}

/* the filter lets name's entry through */
static bool passes(const lb_imatrix *im, const char *name) {
    bool named = false;
    for (int32_t i = 0; i < im->n_names && !named; i++) named = strstr(name, im->names[i]) != NULL;
    return im->n_names == 0 || named == im->include;
}

int32_t lb_imatrix_count(const lb_imatrix *im) {
    int32_t n = 0;
    for (int64_t i = 0; i < im->g->n_tensors; i++) {
        const char  *nm = im->g->tensors[i].name;
        const size_t l  = strlen(nm);
        n += l > 8 && strcmp(nm + l - 8, ".in_sum2") == 0;
    }
    return n;
}

bool lb_imatrix_get(const lb_imatrix *im, const char *name, int64_t n, float *out) {
    return lb_imatrix_get_matrices(im, name, n, 1, out);
}

bool lb_imatrix_get_matrices(const lb_imatrix *im, const char *name, int64_t n, int64_t n_mat, float *out) {
    char k1[160], k2[160];
    if (!passes(im, name) || n_mat < 1) return false;
    snprintf(k1, sizeof k1, "%s.in_sum2", name);
    snprintf(k2, sizeof k2, "%s.counts", name);
    const int64_t a = lb_gguf_find_tensor(im->g, k1), b = lb_gguf_find_tensor(im->g, k2);
    if (a < 0 || b < 0) return false;
    const lb_gguf_tensor_info *s = &im->g->tensors[a], *c = &im->g->tensors[b];
    /* llama-imatrix's: in_sum2 [n, n_mat], counts [1, n_mat] (a mixture of experts: per expert);
     * or, for the stacked matrices of one dense product (MLA's k_b, v_b), in_sum2 [n * n_mat]
     * with one count */
    const bool flat = n_mat > 1 && (uint64_t)s->ne[0] == (uint64_t)n * (uint64_t)n_mat && s->ne[1] == 1 &&
                      s->ne[2] == 1 && c->ne[0] * c->ne[1] == 1;
    if (!flat && ((uint64_t)s->ne[0] != (uint64_t)n || (uint64_t)s->ne[1] != (uint64_t)n_mat || s->ne[2] != 1 ||
                  (uint64_t)(c->ne[0] * c->ne[1]) != (uint64_t)n_mat))
        return false;
    bool any = false;
    for (int64_t e = 0; e < n_mat; e++) { /* a matrix that saw no tokens: 1, as llama-quantize */
        float count;
        memcpy(&count, (const uint8_t *)c->data + 4 * (flat ? 0 : e), sizeof count);
        any |= count > 0;
        for (int64_t j = 0; j < n; j++) {
            float v;
            memcpy(&v, (const uint8_t *)s->data + 4 * (e * n + j), sizeof v);
            out[e * n + j] = count > 0 ? v / count : 1.0f;
        }
    }
    return any;
}

bool lb_imatrix_get_tensor(const lb_imatrix *im, const lb_model *m, const lb_named_tensor *nt, float *out) {
    int             part;
    const lb_fused *fu = lb_arch_fusion(m->arch, nt->role, &part);
    char            fused[96] = "";
    if (fu && fu->gguf) snprintf(fused, sizeof fused, "blk.%d.%s", nt->layer, fu->gguf);
    const int64_t nm = nt->t->ne[2]; /* a mixture of experts' stacked matrices: one vector each */
    return lb_imatrix_get_matrices(im, nt->name, nt->t->ne[0], nm, out) ||
           (fused[0] && lb_imatrix_get_matrices(im, fused, nt->t->ne[0], nm, out));
}

/* A mixture of experts' stacked tensor t: in_sum2 [n, n_expert] and counts [1, n_expert], each
 * expert's from the tokens routed to it (llama-imatrix's layout); none when no expert saw any.
 * MLA's per-head k_b and v_b as llama-imatrix writes a dense product's stacked matrices: in_sum2
 * [n * n_heads], one count (every head sees every token). bufs[0..1] receive the buffers the
 * writer keeps until it writes. */
static lb_status save_experts(lb_gguf_writer *w, const lb_calib *c, const lb_named_tensor *t, float **bufs,
                              lb_error *err) {
    const int64_t n = t->t->ne[0], X = t->t->ne[2];
    bool          any = false;
    for (int64_t e = 0; e < X; e++) {
        const lb_act_stats *s = lb_calib_get_expert(c, t->layer, t->role, (int32_t)e);
        if (!s || s->n != n) return LB_OK;
        any |= s->count > 0;
    }
    if (!any) return LB_OK;
    float *sum = bufs[0] = malloc((size_t)(n * X) * sizeof *sum), *cnt = bufs[1] = malloc((size_t)X * sizeof *cnt);
    LB_RETURN_IF(!sum || !cnt, err, LB_ERR_NOMEM, "out of memory");
    for (int64_t e = 0; e < X; e++) {
        const lb_act_stats *s = lb_calib_get_expert(c, t->layer, t->role, (int32_t)e);
        for (int64_t j = 0; j < n; j++) sum[e * n + j] = (float)s->sum_x2[j];
        cnt[e] = (float)s->count;
    }
    char          nm[96];
    const bool    heads   = (lb_slot_of(t->role)->flags & LB_SLOT_HEADS) != 0;
    const int64_t ne_s[2] = { heads ? n * X : n, heads ? 1 : X }, ne_c[2] = { 1, heads ? 1 : X };
    snprintf(nm, sizeof nm, "%s.in_sum2", t->name);
    lb_status st = lb_gguf_writer_add_tensor(w, nm, LB_GGML_F32, heads ? 1 : 2, ne_s, sum, (size_t)(n * X) * 4, err);
    snprintf(nm, sizeof nm, "%s.counts", t->name);
    return st ? st : lb_gguf_writer_add_tensor(w, nm, LB_GGML_F32, heads ? 1 : 2, ne_c, cnt, (size_t)ne_c[1] * 4, err);
}

lb_status lb_imatrix_save(const lb_calib *c, const lb_model *m, const char *path,
                          const char *dataset, int32_t chunks, int32_t chunk_size,
                          lb_error *err) {
    if (lb_dist_rank() != 0) return LB_OK; /* every rank holds the same sums: rank 0 writes */
    const int32_t    cap  = lb_model_n_tensors(m);
    lb_named_tensor *ts   = malloc((size_t)cap * sizeof *ts);
    float          **bufs = calloc((size_t)(2 * cap), sizeof *bufs);
    lb_gguf_writer  *w    = lb_gguf_writer_create();
    lb_status        st   = LB_OK;
    LB_GOTO_IF(!ts || !bufs || !w, err, LB_ERR_NOMEM, "out of memory");
    const int32_t n = lb_model_tensors(m, ts, lb_model_n_tensors(m));
    st = lb_gguf_writer_set_str(w, "general.type", "imatrix");
    if (!st) st = lb_gguf_writer_set_arr_str(w, "imatrix.datasets", &dataset, 1);
    if (!st) st = lb_gguf_writer_set_u32(w, "imatrix.chunk_count", (uint32_t)chunks);
    if (!st) st = lb_gguf_writer_set_u32(w, "imatrix.chunk_size", (uint32_t)chunk_size);
    LB_GOTO_IF(st, err, st, "%s: cannot build metadata", path);
    for (int32_t i = 0; i < n; i++) {
        if (ts[i].t->ne[1] == 1) continue; /* norms */
        if (lb_slot_of(ts[i].role)->flags & LB_SLOT_STACKED) { /* experts: [n, n_expert] and their counts */
            LB_TRY(save_experts(w, c, &ts[i], &bufs[2 * i], err));
            continue;
        }
        const lb_act_stats *s = lb_calib_get(c, ts[i].layer, ts[i].role);
        if (!s || s->count == 0 || s->n != ts[i].t->ne[0]) continue;
        float *sum = malloc((size_t)s->n * sizeof *sum), *cnt = malloc(sizeof *cnt);
        bufs[2 * i] = sum, bufs[2 * i + 1] = cnt;
        LB_GOTO_IF(!sum || !cnt, err, LB_ERR_NOMEM, "out of memory");
        for (int32_t j = 0; j < s->n; j++) sum[j] = (float)s->sum_x2[j];
        *cnt = (float)s->count;
        char          nm[96];
        const int64_t ne_s[1] = { s->n }, ne_c[1] = { 1 };
        snprintf(nm, sizeof nm, "%s.in_sum2", ts[i].name);
        LB_TRY(lb_gguf_writer_add_tensor(w, nm, LB_GGML_F32, 1, ne_s, sum, (size_t)s->n * 4, err));
        snprintf(nm, sizeof nm, "%s.counts", ts[i].name);
        LB_TRY(lb_gguf_writer_add_tensor(w, nm, LB_GGML_F32, 1, ne_c, cnt, 4, err));
        /* a fused tensor (Phi-3's attn_qkv in llama.cpp's files) reads the same input: its entry
         * too, under its own name, unless a part has that name (phi3's ffn_up) */
        int             part;
        const lb_fused *fu = lb_arch_fusion(m->arch, ts[i].role, &part);
        char            fused[64];
        if (fu && fu->gguf && part == 0) {
            snprintf(fused, sizeof fused, "blk.%d.%s", ts[i].layer, fu->gguf);
            bool taken = false;
            for (int k = 0; k < 3 && fu->parts[k] != LB_ROLE_COUNT; k++)
                taken |= !strcmp(lb_slot_of(fu->parts[k])->gguf, fu->gguf);
            if (!taken) {
                snprintf(nm, sizeof nm, "%s.in_sum2", fused);
                LB_TRY(lb_gguf_writer_add_tensor(w, nm, LB_GGML_F32, 1, ne_s, sum, (size_t)s->n * 4, err));
                snprintf(nm, sizeof nm, "%s.counts", fused);
                LB_TRY(lb_gguf_writer_add_tensor(w, nm, LB_GGML_F32, 1, ne_c, cnt, 4, err));
            }
        }
    }
    LB_TRY(lb_gguf_writer_write(w, path, err));
fail:
    for (int32_t i = 0; bufs && i < 2 * cap; i++) free(bufs[i]);
    free(bufs);
    free(ts);
    lb_gguf_writer_free(w);
    return st;
}
