/* The block engine: quantization streams by block. The output's header is written first (the
 * plan knows every tensor's size), then for each block in order, before the layers the token
 * embedding, then layer 0 .. n_layers-1, then the head (output norm and output):
 *   - its weights are read from the model (mapped, any type) into f32 working memory, when a
 *     method of the chain changes weights (gptq, awq);
 *   - each block method of the chain runs on it (imatrix, awq, gptq; c->layer says which block);
 *   - each of its tensors not yet stored is stored by its format's quantizer (the plan's type,
 *     importance and range) and written at its offset in the output;
 *   - the calibration windows' residual streams advance through it: `sq` through the model as
 *     stored (the f32 block holding what the file holds, or with --calib-matmul q8 its stored
 *     matrices themselves, by the quantized kernels: lb_engine_stored), `sr` through the
 *     unquantized model (unless GPTQ's last cross pass advanced it; with --calib-matmul q8 by
 *     the fast kernels too, as llama.cpp runs that model);
 *   - then its stored bytes and f32 copies are freed (unload_block).
 * Memory holds one block's f32 weights, its statistics (a Hessian per input, only while that
 * input is worked on), the streams and the forward pass's buffers: it does not grow with the
 * number of layers. Two views of the model serve the forward passes: `work` (the quantized
 * model: its current block f32) and `ref` (the unquantized one: its current block f32 when a
 * transform such as AWQ's scales ran on it before GPTQ); both are the model's tensors elsewhere.
 * The token embedding is stored before the layers when the quantized stream starts from it
 * (what the file holds), else with the head (a tied embedding is the head's input too: its
 * importance comes from the head's statistics). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dist.h"
#include "core/fail.h"
#include "resume.h"

typedef struct {
    lb_method_ctx        *c;
    const lb_method_info *chain[8];
    int                   n_chain;
    int                   last;        /* index of the last block method, or -1 */
    bool                  need_q, need_r, ref_copy;
    bool                  keep_att; /* GPTQ's passes keep a layer's attention outputs (the budget) */
    bool                  keep_mid; /* and the quantized stream its down projections' inputs */
    int32_t               ie;          /* the token embedding's index, or -1 */
    bool                  embd_first;  /* stored before the layers */
    lb_model              work, ref;   /* shallow views of c->model (own layer arrays) */
    float               **f32_work;    /* [n] f32 copies of the block's tensors, or NULL */
    float               **f32_ref;
    lb_tensor            *embd_view;   /* work's embedding as stored, while sq is created */
    lb_model_writer      *out;
    const char           *spill;       /* the calibration streams' directory when spilled */
} engine;

/* the block tensor i belongs to: its layer; the embedding: -1; the other globals: the head */
static int32_t block_of(const engine *e, int32_t i) {
    const lb_named_tensor *t = &e->c->tensors[i];
    if (t->layer >= 0) return t->layer;
    return t->role == LB_ROLE_TOKEN_EMBD ? -1 : e->c->model->cfg.n_layers;
}

static bool in_block(const engine *e, int32_t i, int32_t b) {
    if (i == e->ie && !e->embd_first) return b == e->c->model->cfg.n_layers;
    return block_of(e, i) == b;
}

static void view_init(lb_model *v, const lb_model *m, lb_layer *layers) {
    *v        = *m;
    v->layers = layers;
    memcpy(layers, m->layers, (size_t)m->cfg.n_layers * sizeof *layers);
}

static lb_tensor *view_tensor(lb_model *v, const lb_named_tensor *nt) {
    return lb_model_tensor(v, nt->layer, nt->role);
}

/* tensor i of view v (work or ref) to an f32 copy of `from`, kept in copies[i] */
static lb_status load_f32(lb_model *v, float **copies, int32_t i, const lb_tensor *from,
                          const lb_named_tensor *nt, lb_error *err) {
    const int64_t n = from->ne[0], nr = lb_tensor_nelements(from) / n;
    float        *d = malloc((size_t)(n * nr) * sizeof *d);
    LB_RETURN_IF(!d, err, LB_ERR_NOMEM, "out of memory loading %s (%.1f MB)", nt->name,
                 (double)(n * nr) * 4e-6);
    for (int64_t r = 0; r < nr; r++) lb_tensor_get_row_f32(from, r, d + r * n);
    lb_tensor *t = view_tensor(v, nt);
    *t           = *from;
    t->type      = LB_TYPE_F32;
    t->data      = d;
    copies[i] = d;
    return LB_OK;
}

/* block b's tensors in f32: ref's when a transform runs before the last method, work's from
 * ref's (as transformed) when the last method changes weights */
static lb_status load_block(engine *e, int32_t b, bool into_ref, lb_error *err) {
    lb_method_ctx *c = e->c;
    for (int32_t i = 0; i < c->n; i++) {
        if (!in_block(e, i, b) || i == e->ie || lb_slot_of(c->tensors[i].role)->flags & LB_SLOT_ROPE) continue;
        const lb_named_tensor *nt = &c->tensors[i];
        lb_status              st = into_ref ? load_f32(&e->ref, e->f32_ref, i, nt->t, nt, err)
                                             : load_f32(&e->work, e->f32_work, i, view_tensor(&e->ref, nt), nt, err);
        if (st) return st;
    }
    return LB_OK;
}

/* free block b's stored bytes (written, and no longer multiplied: the streams advanced) and
 * its f32 copies; the views and the quantized stream's matrices are the model's again */
static void unload_block(engine *e, int32_t b) {
    lb_method_ctx *c = e->c;
    for (int32_t i = 0; i < c->n; i++) {
        if (!in_block(e, i, b)) continue;
        const lb_named_tensor *nt = &c->tensors[i];
        if (c->ctx_q && nt->layer >= 0) lb_context_set_matrix(c->ctx_q, nt->layer, nt->role, NULL);
        free(c->data[i]);
        c->data[i] = NULL;
        if (e->f32_work[i]) *view_tensor(&e->work, nt) = *nt->t;
        if (e->f32_ref[i]) *view_tensor(&e->ref, nt) = *nt->t;
        free(e->f32_work[i]), free(e->f32_ref[i]);
        e->f32_work[i] = e->f32_ref[i] = NULL;
    }
}

lb_tensor *lb_engine_tensor(lb_method_ctx *c, int32_t i) {
    const lb_named_tensor *nt = &c->tensors[i];
    lb_tensor             *w  = c->work ? lb_model_tensor(c->work, nt->layer, nt->role) : NULL;
    if (w && w->type == LB_TYPE_F32 && w->data != nt->t->data) return w;
    lb_tensor *r = lb_model_tensor(c->ref, nt->layer, nt->role);
    return r ? r : (lb_tensor *)nt->t;
}

void lb_engine_target(lb_method_ctx *c, lb_model **m, lb_context **ctx, lb_calib_states **s) {
    *m   = c->last ? c->work : c->ref;
    *ctx = c->last ? c->ctx_q : c->ctx_r;
    *s   = c->last ? c->sq : c->sr;
}

/* c->range, which this rank's rows moved from *before: moved by every rank's rows */
static lb_status range_ranks(lb_method_ctx *c, const lb_range_stats *before, lb_error *err) {
    const int       R   = lb_dist_size();
    lb_range_stats *all = malloc((size_t)R * sizeof *all);
    LB_RETURN_IF(!all, err, LB_ERR_NOMEM, "out of memory");
    const lb_status st  = lb_dist_allgather(&c->range, sizeof c->range, all, err);
    bool            any = before->rows > 0;
    if (st == LB_OK) c->range = *before;
    for (int r = 0; st == LB_OK && r < R; r++) {
        const lb_range_stats *a = &all[r];
        c->range.rows += a->rows - before->rows, c->range.clipped += a->clipped - before->clipped;
        c->range.ratio_sum += a->ratio_sum - before->ratio_sum;
        if (a->rows > before->rows) c->range.ratio_min = any ? fmin(c->range.ratio_min, a->ratio_min) : a->ratio_min;
        any |= a->rows > before->rows;
    }
    free(all);
    return st;
}

/* t stored as type: under MPI each rank converts its share of the rows and every rank gets the
 * whole (the quantized stream runs through it; rank 0 writes it). A whole_tensor type's scale
 * needs every row: each rank converts them all. */
static lb_status convert_split(lb_method_ctx *c, const lb_tensor *t, lb_type type, const float *importance, void **out,
                               size_t *nbytes, lb_error *err) {
    const int     R = lb_dist_size();
    const int64_t nrow = lb_tensor_nelements(t) / t->ne[0];
    if (R == 1 || lb_type_get_traits(type)->whole_tensor)
        return lb_tensor_convert(t, type, importance, lb_method_prepare_rows, c, out, nbytes, err);
    const size_t rs   = lb_row_size(type, t->ne[0]);
    uint8_t     *part = NULL, *all = malloc(rs * (size_t)nrow);
    size_t       np;
    int64_t      lo, hi;
    lb_status    st   = LB_OK;
    LB_GOTO_IF(!all, err, LB_ERR_NOMEM, "out of memory");
    lb_dist_share_rows(nrow, 1, lb_dist_rank(), &lo, &hi);
    const lb_range_stats before = c->range; /* --range's report: what every rank's rows added */
    LB_TRY(lb_dist_agree(lb_tensor_convert_rows(t, type, importance, lb_method_prepare_rows, c, lo, hi, (void **)&part,
                                                &np, err),
                         err));
    memcpy(all + (size_t)lo * rs, part, np);
    LB_TRY(lb_dist_gather_rows(all, nrow, rs, 1, err));
    LB_TRY(range_ranks(c, &before, err));
    *out    = all;
    *nbytes = rs * (size_t)nrow;
    all     = NULL;
fail:
    free(part);
    free(all);
    return st;
}

lb_status lb_engine_store(lb_method_ctx *c, int32_t i, lb_error *err) {
    if (c->data[i]) return LB_OK;
    lb_tensor    *t    = lb_engine_tensor(c, i);
    const lb_type type = c->plans[i].type;
    size_t        nb;
    LB_RETURN_IF(lb_type_get_traits(type)->needs_importance && !c->importance[i], err, LB_ERR_PARAM,
                 "%s: %s needs importance and the importance matrix has no entry for this tensor "
                 "(give it another type, e.g. --token-embedding-type q8_0 or --tensor-type)",
                 c->tensors[i].name, lb_type_name(type));
    LB_TRY_RET(convert_split(c, t, type, c->importance[i], &c->data[i], &nb, err));
    if (c->p->range.kind != LB_RANGE_MINMAX && lb_type_get_traits(type)->is_quantized)
        lb_range_stats_errors(&c->range, t, type, c->data[i], c->importance[i]);
    /* the block in f32 takes what the file holds: later inputs are computed through it */
    if (c->work && t == lb_model_tensor(c->work, c->tensors[i].layer, c->tensors[i].role) && type != LB_TYPE_F32) {
        const size_t  rs = lb_row_size(type, t->ne[0]);
        const int64_t nr = lb_tensor_nelements(t) / t->ne[0];
        for (int64_t r = 0; r < nr; r++)
            lb_type_get_traits(type)->to_float((float *)t->data + r * t->ne[0], (const uint8_t *)c->data[i] + (size_t)r * rs,
                                               t->ne[0]);
        lb_engine_stored(c, i);
    }
    return LB_OK;
}

void lb_engine_stored(lb_method_ctx *c, int32_t i) {
    const lb_named_tensor *nt = &c->tensors[i];
    if (c->p->calib.exact || !c->ctx_q || !c->work || c->actq || nt->layer < 0 || !c->data[i] ||
        !lb_type_get_traits(c->plans[i].type)->is_quantized)
        return;
    const lb_tensor *w = lb_model_tensor(c->work, nt->layer, nt->role);
    if (!w || w->type != LB_TYPE_F32 || w->data == nt->t->data) return; /* not the block's f32 copy */
    c->stored[i]      = *w;
    c->stored[i].type = c->plans[i].type;
    c->stored[i].data = c->data[i];
    lb_context_set_matrix(c->ctx_q, nt->layer, nt->role, &c->stored[i]);
}

/* block b's name in reports: token_embd (-1), blk.N, output (n_layers) */
static const char *block_name(const lb_method_ctx *c, int32_t b, char *buf, size_t cap) {
    if (b < 0) return "token_embd";
    if (b >= c->model->cfg.n_layers) return "output";
    snprintf(buf, cap, "blk.%d", b);
    return buf;
}

/* what --range did to block b's weights: rows clipped, clip / max |w|, and the error against
 * the rows stored unclipped (importance-weighted: a diagonal estimate of the output error) */
static void range_report(lb_method_ctx *c, int32_t b) {
    const lb_range_stats *s = &c->range;
    if (s->rows > 0 && s->norm > 0) {
        char name[32], rb[32];
        lb_method_log(c->p, "%s range %s: %lld of %lld rows clipped, clip/max mean %.3f, min %.3f; %s error "
                      "%.6f, unclipped %.6f", block_name(c, b, name, sizeof name), lb_range_name(&c->p->range, rb, sizeof rb),
                      (long long)s->clipped, (long long)s->rows, s->ratio_sum / (double)s->rows, s->ratio_min,
                      s->weighted ? "output (diagonal)" : "weight", s->err / s->norm, s->err_minmax / s->norm);
    }
    memset(&c->range, 0, sizeof c->range);
}

/* store and write every tensor of block b (the bytes stay until unload_block) */
static lb_status write_block(engine *e, int32_t b, lb_error *err) {
    lb_method_ctx *c = e->c;
    for (int32_t i = 0; i < c->n; i++) {
        if (!in_block(e, i, b)) continue;
        lb_status st = LB_OK;
        if (c->data[i] || c->plans[i].type != lb_engine_tensor(c, i)->type) {
            st = lb_engine_store(c, i, err);
            if (!st && e->out) st = lb_model_writer_put(e->out, i, c->data[i], lb_row_size(c->plans[i].type, c->tensors[i].t->ne[0]) *
                                                                     (size_t)(lb_tensor_nelements(c->tensors[i].t) / c->tensors[i].t->ne[0]), err);
        } else {
            const lb_tensor *t = lb_engine_tensor(c, i);
            st                 = e->out ? lb_model_writer_put(e->out, i, t->data, lb_tensor_nbytes(t), err) : LB_OK;
        }
        if (st) return st;
    }
    range_report(c, b);
    return LB_OK;
}

/* the embedding as stored, before the layers: the quantized stream starts from its rows */
static lb_status embedding_first(engine *e, lb_error *err) {
    lb_method_ctx *c = e->c;
    LB_TRY_RET(lb_engine_store(c, e->ie, err));
    lb_tensor saved = c->work->tok_embd;
    c->work->tok_embd      = *c->tensors[e->ie].t;
    c->work->tok_embd.type = c->plans[e->ie].type;
    c->work->tok_embd.data = c->data[e->ie];
    lb_status st = lb_calib_states_create_ex(&c->sq, c->work, c->windows, c->n_windows, c->p->calib.n_ctx,
                                             e->spill, err);
    c->work->tok_embd = saved;
    if (st) return st;
    const lb_named_tensor *nt = &c->tensors[e->ie];
    lb_method_log(c->p, "%-26s %-6s round to nearest (the embedding, before the layers%s)", nt->name,
                  lb_type_name(c->plans[e->ie].type), c->model->tied_output ? "; tied: it is the output head too" : "");
    st = write_block(e, -1, err);
    unload_block(e, -1);
    return st;
}

static lb_status run_block(engine *e, int32_t b, lb_error *err) {
    lb_method_ctx *c = e->c;
    c->layer         = b;
    if (e->ref_copy) LB_TRY_RET(load_block(e, b, true, err));
    for (int k = 0; k < e->n_chain; k++) {
        const lb_method_info *mi = e->chain[k];
        if (!mi->block || (mi->block == lb_method_imatrix && c->p->imatrix)) continue; /* a file's importance */
        c->last         = k == e->last;
        c->stored_later = false;
        for (int j = k + 1; j < e->n_chain; j++) c->stored_later |= e->chain[j]->block == lb_method_gptq;
        if (c->last && mi->weights) LB_TRY_RET(load_block(e, b, false, err));
        LB_TRY_RET(mi->block(c, err));
    }
    c->last = false;
    LB_TRY_RET(write_block(e, b, err));
    if (b < c->model->cfg.n_layers) { /* the next block's inputs (through what the file holds) */
        const double t0 = lb_time_sec();
        if (c->sq) LB_TRY_RET(lb_calib_states_advance(c->sq, c->ctx_q, err));
        if (c->sr && lb_calib_states_layer(c->sr) == b) /* (GPTQ's last cross pass may have) */
            LB_TRY_RET(lb_calib_states_advance(c->sr, c->ctx_r, err));
        c->summary->seconds_calib += lb_time_sec() - t0;
    }
    unload_block(e, b);
    return LB_OK;
}

/* What stays in RAM: the calibration streams do while they and one block's working set (its
 * f32 weights, a few Hessian-sized matrices of the widest input, the forward passes' buffers)
 * fit the budget; past it they live in a file of dir (the spill). Returns dir or NULL. */
static const char *budget(engine *e, const char *dir) {
    lb_method_ctx         *c = e->c;
    const lb_quant_params *p = c->p;
    const lb_llama_config *g = &c->model->cfg;
    const size_t limit = lb_memory_limit();
    const size_t B     = p->max_memory ? p->max_memory : limit / 4 * 3 / (size_t)lb_dist_node_ranks(); /* a rank's */
    const size_t wide  = (size_t)(g->n_ff > g->n_embd ? g->n_ff : g->n_embd);
    size_t       block = 0, stored = 0; /* layer 0's f32 copy, and its stored bytes */
    for (int32_t i = 0; i < c->n; i++) {
        const lb_tensor *t = c->tensors[i].t;
        if (c->tensors[i].layer != 0) continue;
        block += (size_t)lb_tensor_nelements(t) * sizeof(float);
        stored += lb_row_size(c->plans[i].type, t->ne[0]) * (size_t)(lb_tensor_nelements(t) / t->ne[0]);
    }
    const size_t ctx = (size_t)p->calib.n_ctx * (size_t)(g->n_vocab + 4 * g->n_embd + 3 * g->n_ff) * sizeof(float) +
                       (size_t)g->n_layers * (size_t)p->calib.n_ctx * (size_t)g->n_kv_heads * (size_t)g->head_dim * 8;
    /* the stored bytes live until the advance; with --calib-matmul q8 a packed copy beside them */
    const size_t work = block * (e->ref_copy ? 2 : 1) + stored * (e->need_q && !p->calib.exact ? 2 : 1) +
                        4 * wide * wide * sizeof(double) + 2 * ctx;
    const int    R       = lb_dist_size(); /* a rank holds its share of the windows */
    const size_t width   = (size_t)g->n_embd + (e->keep_att ? (size_t)lb_model_dim(c->model, LB_DIM_QV) : 0); /* + kept attention outputs */
    const size_t mid     = e->keep_mid && e->need_q ? (size_t)g->n_ff : 0; /* + the quantized stream's kept down inputs */
    const size_t streams = (size_t)((c->n_windows + R - 1) / R) * (size_t)p->calib.n_ctx *
                           ((size_t)(e->need_q + e->need_r) * width + mid) * sizeof(float);
    c->summary->memory_budget   = B;
    c->summary->streams_bytes   = streams;
    c->summary->streams_spilled = B > 0 && streams + work > B;
    lb_method_log(p, "memory: calibration streams %.1f MB, a block's working set about %.1f MB, budget %.1f MB%s",
                  (double)streams / 1e6, (double)work / 1e6, (double)B / 1e6,
                  c->summary->streams_spilled ? ": the streams go to a file beside the output" : ": all in RAM");
    e->spill = c->summary->streams_spilled ? dir : NULL;
    return e->spill;
}

/* the block's report to the caller */
static void report(lb_method_ctx *c, int32_t b, int32_t first, double t0, double *tb) {
    const lb_quant_params *p = c->p;
    const int32_t          L = c->model->cfg.n_layers;
    char                   name[32];
    const double           now = lb_time_sec();
    const lb_block_report  r   = {
           .done = b + 2, .total = L + 2, .name = block_name(c, b, name, sizeof name), .method = p->method ? p->method : "rtn",
           .seconds = now - *tb, .elapsed = now - t0, .eta = (now - t0) / (b - first + 1) * (L - b),
           .seconds_calib = c->summary->seconds_calib, .seconds_method = c->summary->seconds_method,
           .peak_rss = lb_peak_rss(), .err_rtn = c->block_rtn, .err_method = c->block_method };
    p->on_block(p->log_user, &r);
    *tb = now;
}

lb_status lb_engine_run(lb_method_ctx *c, const lb_write_plan *plan, const char *out_path, lb_error *err) {
    const lb_quant_params *p = c->p;
    const lb_model        *m = c->model;
    const int32_t          L = m->cfg.n_layers;
    engine                 e = { .c = c, .last = -1 };
    lb_resume              rs;
    lb_layer              *lw = malloc((size_t)(L ? L : 1) * sizeof *lw), *lr = malloc((size_t)(L ? L : 1) * sizeof *lr);
    lb_status              st = LB_OK;
    e.f32_work                = calloc((size_t)c->n, sizeof *e.f32_work);
    e.f32_ref                 = calloc((size_t)c->n, sizeof *e.f32_ref);
    c->stored                 = calloc((size_t)c->n, sizeof *c->stored);
    LB_GOTO_IF(!lw || !lr || !e.f32_work || !e.f32_ref || !c->stored, err, LB_ERR_NOMEM, "out of memory");
    for (const char *a = p->method ? p->method : "rtn"; *a && e.n_chain < 8;) {
        const size_t len = strcspn(a, "+");
        e.chain[e.n_chain] = lb_method_lookup(a, len);
        if (e.chain[e.n_chain]->block) e.last = e.n_chain;
        e.n_chain++;
        a += len + (a[len] == '+');
    }
    /* which streams and copies the chain needs */
    for (int k = 0; k < e.n_chain; k++) {
        const lb_method_info *mi = e.chain[k];
        if (!mi->block) continue;
        if (mi->block == lb_method_imatrix && !p->imatrix) e.need_r = true;
        if (mi->weights && k == e.last) e.need_q = true;
        if (mi->weights && k != e.last) e.need_r = e.ref_copy = true;
        if (mi->block == lb_method_gptq && !p->gptq.self_target) e.need_r = true;
        if (mi->block == lb_method_gptq) /* (its passes turn them on) */
            e.keep_att = lb_model_att_resumable(m), e.keep_mid = lb_model_mid_resumable(m);
    }
    view_init(&e.work, m, lw);
    view_init(&e.ref, m, lr);
    c->work = e.need_q ? &e.work : NULL;
    c->ref  = &e.ref;
    e.ie    = lb_method_find(c->tensors, c->n, -1, LB_ROLE_TOKEN_EMBD);
    e.embd_first = e.need_q && e.ie >= 0;
    if (e.need_q || e.need_r) {
        LB_TRY(lb_method_windows(c, err));
        LB_TRY(lb_calib_create(&c->cal, m, false, err));
        LB_TRY(lb_calib_create(&c->cal_h, m, true, err));
        lb_calib_set_bf16(c->cal_h, !p->calib.exact); /* rounded as the fast kernels round */
    }
    /* a calibrated run keeps its state beside the output until it succeeds (resume.c) */
    const bool keep = e.need_q || e.need_r;
    lb_write_plan wp   = *plan;
    int32_t       next = -1; /* the first block to run */
    bool          resuming = false, committed = false, made_here = false; /* made_here: another rank's spill directory */
    if (keep) {
        LB_TRY(lb_resume_init(&rs, out_path, c, err));
        int here = lb_dist_rank() == 0 && lb_resume_exists(&rs); /* under MPI: rank 0's (it writes the state) */
        LB_TRY(lb_dist_bcast(&here, sizeof here, err));
        resuming = here;
        LB_GOTO_IF(resuming && !p->resume, err, LB_ERR_PARAM, "%s: an interrupted run's state is beside it (%s): "
                   "add --resume to continue it, or remove it to start over", out_path, rs.dir);
        if (resuming) LB_TRY(lb_dist_agree(lb_dist_rank() == 0 ? lb_resume_check(&rs, err) : LB_OK, err));
        int done = resuming && lb_dist_rank() == 0 && lb_resume_committed(&rs, out_path); /* killed after its rename */
        LB_TRY(lb_dist_bcast(&done, sizeof done, err));
        committed = done;
        LB_GOTO_IF(lb_dist_rank() == 0 && mkdir(rs.dir, 0777) != 0 && errno != EEXIST, err, LB_ERR_IO, "%s: cannot create: %s", rs.dir,
                   strerror(errno));
        const bool split = plan->split_max_bytes || plan->split_max_tensors || plan->keep_split;
        LB_GOTO_IF(resuming && split, err, LB_ERR_UNSUPPORTED, "%s: a split output cannot resume a run", out_path);
        wp.partial = split ? NULL : rs.partial; /* shards: temps, as an uncalibrated run writes */
        wp.resume  = resuming;
    }
    if (lb_dist_rank() == 0 && !committed) LB_TRY(lb_model_writer_open(&e.out, m, out_path, &wp, err));
    const char *spill = keep ? budget(&e, rs.dir) : e.need_q || e.need_r ? budget(&e, NULL) : NULL;
    /* under MPI another rank's host holds the directory only when that rank spills there */
    if (spill && lb_dist_rank() > 0) {
        made_here = mkdir(spill, 0777) == 0;
        LB_GOTO_IF(!made_here && errno != EEXIST, err, LB_ERR_IO, "%s: cannot create: %s", spill, strerror(errno));
    }
    if (e.need_q) { /* fast, unpacked: only the stored matrices take the quantized kernels */
        lb_context_params cq = lb_context_default_params(p->calib.n_ctx, p->calib.n_ctx);
        cq.fast              = !p->calib.exact;
        cq.unpacked          = true;
        LB_TRY(lb_context_create_ex(&c->ctx_q, &e.work, &cq, err));
    }
    if (e.need_r) { /* fast, unpacked: the model's own rows, as llama.cpp multiplies them (BF16 on bf16
                     * activations, vdpbf16ps, where the CPU has AVX512_BF16; F16 and F32 as exact) */
        lb_context_params cr = lb_context_default_params(p->calib.n_ctx, p->calib.n_ctx);
        cr.fast              = !p->calib.exact;
        cr.unpacked          = true;
        LB_TRY(lb_context_create_ex(&c->ctx_r, &e.ref, &cr, err));
        LB_TRY(lb_calib_states_create_ex(&c->sr, &e.ref, c->windows, c->n_windows, p->calib.n_ctx, spill, err));
    }
    if (resuming) { /* the streams as the checkpoint left them */
        if (e.need_q)
            LB_TRY(lb_calib_states_create_ex(&c->sq, &e.work, c->windows, c->n_windows, p->calib.n_ctx, spill, err));
        LB_TRY(lb_resume_load(&rs, c, &next, err));
        LB_GOTO_IF(committed && next <= L, err, LB_ERR_CORRUPT, "%s: missing (the state has %d of %d blocks done)",
                   rs.partial, next + 1, L + 2);
        for (int32_t i = 0; i < c->n; i++) /* the finished blocks' tensors are in the partial output */
            if (e.out && (i == e.ie && !e.embd_first ? L : block_of(&e, i)) < next) lb_model_writer_assume(e.out, i);
    }
    const double t0 = lb_time_sec();
    double       tb = t0;
    for (int32_t b = next; b <= L; b++) {
        c->block_rtn = c->block_method = 0;
        if (b >= 0) LB_TRY(run_block(&e, b, err));
        else if (e.embd_first) LB_TRY(embedding_first(&e, err));
        else { /* nothing there when the embedding goes last */
            LB_TRY(write_block(&e, -1, err));
            unload_block(&e, -1);
        }
        bool stop = false;
        if (keep) { /* the checkpoint: the output's blocks on disk first, then the state */
            LB_TRY(lb_dist_agree(e.out ? lb_model_writer_sync(e.out, err) : LB_OK, err));
            LB_TRY(lb_resume_save(&rs, c, b + 1, err));
            LB_TRY(lb_dist_any(b < L && lb_interrupted(), &stop, err)); /* every rank stops at one block */
        }
        if (p->on_block) report(c, b, next, t0, &tb);
        if (stop) {
            st = lb_fail(err, LB_ERR_INTERRUPTED, "%s: stopped after block %d of %d; the run's state is in %s",
                         out_path, b + 2, L + 2, rs.dir);
            goto fail;
        }
    }
    st    = e.out ? lb_model_writer_commit(e.out, err) : LB_OK;
    e.out = NULL;
    st    = lb_dist_agree(st, err); /* rank 0 wrote it */
    if (!st && keep && lb_dist_rank() == 0) lb_resume_remove(&rs);
    else if (!st && made_here) rmdir(rs.dir); /* another host's, for its spilled streams */
fail:
    for (int32_t b = -1; e.f32_work && e.f32_ref && b <= L; b++) unload_block(&e, b);
    lb_model_writer_free(e.out);
    lb_calib_states_free(c->sq);
    lb_calib_states_free(c->sr);
    lb_context_free(c->ctx_q);
    lb_context_free(c->ctx_r);
    lb_calib_free(c->cal);
    lb_calib_free(c->cal_h);
    c->sq = c->sr = NULL;
    c->ctx_q = c->ctx_r = NULL;
    c->cal = c->cal_h = NULL;
    c->work = c->ref = NULL;
    free(e.f32_work);
    free(e.f32_ref);
    free(c->stored);
    c->stored = NULL;
    free(lw);
    free(lr);
    return st;
}
