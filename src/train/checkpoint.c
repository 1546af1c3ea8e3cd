/* Training checkpoints as GGUF (loop.h): a model file (llama.* keys, tokenizer, f32 tensors)
 * that also holds every trained group, the Adam moments and the loop's position. */
#include <stdio.h>
#include <string.h>

#include "core/fail.h"
#include "loop.h"
#include "lowbit/gguf.h"
#include "model/model_internal.h"

#define GGML_F32 0

static lb_status add_f32(lb_gguf_writer *w, const char *prefix, const lb_param_group *g,
                         const float *data, lb_error *err) {
    char name[96];
    snprintf(name, sizeof name, "%s%s", prefix, g->name);
    const int64_t ne[2] = { g->ne0, g->n / g->ne0 };
    return lb_gguf_writer_add_tensor(w, name, GGML_F32, ne[1] > 1 ? 2 : 1, ne, data,
                                     (size_t)g->n * sizeof(float), err);
}

lb_status lb_train_ckpt_save(const char *path, const lb_train_job *job, const lb_adamw *opt,
                             const lb_train_state *s, lb_error *err) {
    lb_model       *m = NULL;
    lb_gguf_writer *w = lb_gguf_writer_create();
    LB_RETURN_IF(!w, err, LB_ERR_NOMEM, "out of memory");
    lb_status st = lb_tmodel_as_model(job->tm, job->vocab, "lowbit-train", &m, err);
    if (!st) st = lb_model_write_meta(w, m, 0);
    if (!st) st = lb_gguf_writer_set_u64(w, "lowbit.train.step", (uint64_t)s->step);
    if (!st) st = lb_gguf_writer_set_u64(w, "lowbit.train.tokens", (uint64_t)s->tokens);
    if (!st) st = lb_gguf_writer_set_u64(w, "lowbit.train.rng", s->rng);
    if (!st) st = lb_gguf_writer_set_u64(w, "lowbit.train.adam_t", (uint64_t)opt->t);
    if (st && err && !err->code) lb_fail(err, st, "%s: cannot build the checkpoint's metadata", path);
    for (int32_t i = 0; !st && i < opt->n_groups; i++) {
        const lb_param_group *g = &opt->groups[i];
        if (g->n == 0) continue;
        st = add_f32(w, "", g, g->p, err);
        if (!st) st = add_f32(w, "adam.m.", g, opt->m + opt->off[i], err);
        if (!st) st = add_f32(w, "adam.v.", g, opt->v + opt->off[i], err);
    }
    if (!st) st = lb_gguf_writer_write(w, path, err);
    lb_gguf_writer_free(w);
    lb_model_free(m);
    return st;
}

static lb_status read_f32(const lb_gguf *g, const char *path, const char *prefix,
                          const lb_param_group *pg, float *dst, lb_error *err) {
    char name[96];
    snprintf(name, sizeof name, "%s%s", prefix, pg->name);
    const int64_t i = lb_gguf_find_tensor(g, name);
    LB_RETURN_IF(i < 0, err, LB_ERR_NOT_FOUND, "%s: checkpoint has no tensor '%s'", path, name);
    const lb_gguf_tensor_info *t = &g->tensors[i];
    LB_RETURN_IF(t->ggml_type != GGML_F32 || t->nbytes != (size_t)pg->n * sizeof(float), err,
                 LB_ERR_SHAPE, "%s: tensor '%s' is not %lld f32 values", path, name, (long long)pg->n);
    memcpy(dst, t->data, t->nbytes);
    return LB_OK;
}

/* a u64 key as written (the generator's state uses all 64 bits) */
static lb_status get_u64(const lb_gguf *g, const char *path, const char *key, uint64_t *out,
                         lb_error *err) {
    const int64_t i = lb_gguf_find_key(g, key);
    LB_RETURN_IF(i < 0, err, LB_ERR_NOT_FOUND, "%s: not a lowbit training checkpoint (no %s)", path, key);
    LB_RETURN_IF(g->kv[i].type != LB_GGUF_U64, err, LB_ERR_CORRUPT, "%s: key '%s' should be a u64, "
                 "it is %s", path, key, lb_gguf_vtype_name(g->kv[i].type));
    *out = g->kv[i].v.u64;
    return LB_OK;
}

lb_status lb_train_ckpt_load(const char *path, lb_adamw *opt, lb_train_state *s, lb_error *err) {
    lb_gguf  *g;
    lb_status st = lb_gguf_open(&g, path, err);
    if (st) return st;
    uint64_t step = 0, tokens = 0, rng = 0, t = 0;
    st = get_u64(g, path, "lowbit.train.step", &step, err);
    if (!st) st = get_u64(g, path, "lowbit.train.tokens", &tokens, err);
    if (!st) st = get_u64(g, path, "lowbit.train.rng", &rng, err);
    if (!st) st = get_u64(g, path, "lowbit.train.adam_t", &t, err);
    for (int32_t i = 0; !st && i < opt->n_groups; i++) {
        const lb_param_group *pg = &opt->groups[i];
        if (pg->n == 0) continue;
        st = read_f32(g, path, "", pg, pg->p, err);
        if (!st) st = read_f32(g, path, "adam.m.", pg, opt->m + opt->off[i], err);
        if (!st) st = read_f32(g, path, "adam.v.", pg, opt->v + opt->off[i], err);
    }
    lb_gguf_close(g);
    if (st) return st;
    LB_RETURN_IF(step > (uint64_t)INT64_MAX / 2 || t > (uint64_t)INT64_MAX / 2, err, LB_ERR_CORRUPT,
                 "%s: absurd training state", path);
    s->step   = (int64_t)step;
    s->tokens = (int64_t)tokens;
    s->rng    = rng;
    opt->t    = (int64_t)t;
    return LB_OK;
}
