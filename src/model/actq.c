/* Activation quantization (W8A8, include/lowbit/actq.h): the descriptor's lifetime, the
 * quantize-dequantize the forward pass applies at each block input, its GGUF metadata
 * (written by the quantizer, parsed and checked here), and on load the LLM.int8 outlier
 * columns put back into the weights (those weights become owned f32 copies: the simulation
 * computes in f32 anyway; the int8 weights as stored stay beside them for the integer
 * products of fast contexts, which take int8 rows from lb_actq_quantize_i8). Every value read
 * from a file is checked before use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "kernels/qdot.h"
#include "lowbit/actq.h"
#include "model_internal.h"

/* the block input a role reads, from the slot table's input column */
int lb_block_input_of(lb_tensor_role role) {
    const lb_slot *s = lb_slot_of(role);
    for (int in = 0; s && (s->flags & LB_SLOT_GLOBAL) == 0 && in < LB_INPUT_COUNT; in++)
        if (s->input == lb_block_input_role((lb_block_input)in)) return in;
    return -1;
}

lb_tensor_role lb_block_input_role(lb_block_input in) {
    static const lb_tensor_role r[LB_INPUT_COUNT] = { LB_ROLE_ATTN_Q, LB_ROLE_ATTN_OUTPUT,
                                                      LB_ROLE_FFN_GATE, LB_ROLE_FFN_DOWN };
    return r[in];
}

const char *lb_block_input_name(lb_block_input in) {
    static const char *const n[LB_INPUT_COUNT] = { "attn_in", "attn_out", "ffn_in", "ffn_mid" };
    return n[in];
}

/* the layer slots that read it, in file order (q, k, v; gate, up), from the slot table */
int lb_block_input_readers(const lb_model *m, int32_t l, lb_block_input in, lb_tensor_role roles[3]) {
    int            ns, n = 0;
    const lb_slot *slots = lb_slots(&ns);
    for (int i = 0; i < ns && n < 3; i++)
        if (!(slots[i].flags & LB_SLOT_GLOBAL) && slots[i].input == lb_block_input_role(in) &&
            (!m->arch || lb_layer_use(m->arch, &m->cfg, l, slots[i].role) != LB_USE_NONE))
            roles[n++] = slots[i].role;
    return n;
}

const char *lb_role_stem(lb_tensor_role role) {
    switch (role) {
    case LB_ROLE_ATTN_Q:      return "attn_q";
    case LB_ROLE_ATTN_K:      return "attn_k";
    case LB_ROLE_ATTN_V:      return "attn_v";
    case LB_ROLE_ATTN_OUTPUT: return "attn_output";
    case LB_ROLE_FFN_GATE:    return "ffn_gate";
    case LB_ROLE_FFN_UP:      return "ffn_up";
    case LB_ROLE_FFN_DOWN:    return "ffn_down";
    default:                  return NULL;
    }
}

lb_status lb_actq_create(lb_actq **out, int32_t n_layers, lb_actq_mode mode, lb_error *err) {
    *out = NULL;
    LB_RETURN_IF(n_layers <= 0 || n_layers > 1024, err, LB_ERR_PARAM, "actq: %d layers", n_layers);
    lb_actq *aq = calloc(1, sizeof *aq);
    if (aq) aq->inputs = calloc((size_t)n_layers * LB_INPUT_COUNT, sizeof *aq->inputs);
    if (!aq || !aq->inputs) {
        free(aq);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    aq->mode     = mode;
    aq->bits     = 8;
    aq->n_layers = n_layers;
    snprintf(aq->calibration, sizeof aq->calibration, "%s", mode == LB_ACTQ_DYNAMIC ? "dynamic" : "minmax");
    *out = aq;
    return LB_OK;
}

void lb_actq_free(lb_actq *aq) {
    if (!aq) return;
    for (int64_t i = 0; i < (int64_t)aq->n_layers * LB_INPUT_COUNT; i++) {
        free(aq->inputs[i].outliers);
        for (int k = 0; k < 3; k++) free(aq->inputs[i].w_outliers[k]);
    }
    free(aq->inputs);
    free(aq);
}

/* the range of one row: dynamic, its max |x| outside the outlier columns; static, the
 * calibrated one. d = range / qmax; not > 0 (an all-zero row): the row stays as it is */
static float row_range(const float *r, int32_t n, const lb_actq_input *in, bool dynamic) {
    if (!dynamic) return in->range;
    float amax = 0.0f;
    for (int32_t j = 0, o = 0; j < n; j++) {
        if (o < in->n_outliers && in->outliers[o] == j) {
            o++;
            continue;
        }
        amax = fmaxf(amax, fabsf(r[j]));
    }
    return amax;
}

/* one row: values other than the outlier columns onto d * {-qmax .. qmax} */
static void qdq_row(float *r, int32_t n, const lb_actq_input *in, bool dynamic, float qmax) {
    const float amax = row_range(r, n, in, dynamic);
    if (!(amax > 0.0f)) return;
    const float d = amax / qmax, id = 1.0f / d;
    for (int32_t j = 0, o = 0; j < n; j++) {
        if (o < in->n_outliers && in->outliers[o] == j) {
            o++;
            continue;
        }
        const float q = roundf(r[j] * id);
        r[j]          = fminf(fmaxf(q, -qmax), qmax) * d;
    }
}

void lb_actq_apply(const lb_actq *aq, int32_t layer, lb_tensor_role role, float *x, int32_t T,
                   int32_t n) {
    const int in = lb_block_input_of(role);
    if (!aq || in < 0 || layer < 0 || layer >= aq->n_layers) return;
    const lb_actq_input *ai      = lb_actq_at(aq, layer, (lb_block_input)in);
    const float          qmax    = (float)((1 << (aq->bits - 1)) - 1);
    const bool           dynamic = aq->mode == LB_ACTQ_DYNAMIC;
#pragma omp parallel for if ((int64_t)T * n >= (1 << 16))
    for (int32_t t = 0; t < T; t++) qdq_row(x + (size_t)t * (size_t)n, n, ai, dynamic, qmax);
}

/* The same levels as int8 (the kernel's quantizer rounds as roundf and clamps as qdq_row),
 * the scale in front: x̂ = d q is what qdq_row leaves. */
void lb_actq_quantize_i8(const lb_actq *aq, int32_t layer, lb_tensor_role role, const float *x,
                         int32_t T, int32_t n, void *dst, size_t stride) {
    const lb_actq_input    *ai      = lb_actq_at(aq, layer, (lb_block_input)lb_block_input_of(role));
    const bool              dynamic = aq->mode == LB_ACTQ_DYNAMIC;
    const float             qmax    = 127.0f; /* bits = 8: lb_actq_from_gguf checks it */
    const lb_quantize_i8_fn quant   = lb_quantize_i8_get();
#pragma omp parallel for if ((int64_t)T * n >= (1 << 16))
    for (int32_t t = 0; t < T; t++) {
        const float *r    = x + (size_t)t * (size_t)n;
        uint8_t     *row  = (uint8_t *)dst + (size_t)t * stride;
        int8_t      *q    = (int8_t *)(row + 4);
        const float  amax = row_range(r, n, ai, dynamic);
        float        d    = 0.0f;
        if (amax > 0.0f) {
            d = amax / qmax;
            quant(q, r, n, 1.0f / d);
            for (int32_t o = 0; o < ai->n_outliers; o++) q[ai->outliers[o]] = 0;
        } else {
            memset(q, 0, (size_t)n);
        }
        memcpy(row, &d, 4);
    }
}

/* ---- GGUF ---- */

static void outlier_key(char *buf, size_t cap, int32_t layer, lb_block_input in) {
    snprintf(buf, cap, "lowbit.actq.outliers.%d.%s", layer, lb_block_input_name(in));
}

lb_tensor *lb_layer_tensor(lb_layer *L, lb_tensor_role role) {
    return (int)role >= LB_ROLE_LAYER_FIRST && (int)role < LB_ROLE_LAYER_END ? &L->slot[(int)role - LB_ROLE_LAYER_FIRST] : NULL;
}

lb_status lb_actq_write(const lb_actq *aq, const lb_model *m, lb_gguf_writer *w, lb_error *err) {
    const int32_t L  = aq->n_layers;
    lb_status     st = lb_gguf_writer_set_u32(w, "lowbit.actq.bits", (uint32_t)aq->bits);
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.actq.mode", aq->mode == LB_ACTQ_STATIC ? "static" : "dynamic");
    if (!st) st = lb_gguf_writer_set_str(w, "lowbit.actq.calibration", aq->calibration);
    if (!st && aq->mode == LB_ACTQ_STATIC) {
        float *r = malloc((size_t)L * LB_INPUT_COUNT * sizeof *r);
        if (!r) return lb_fail(err, LB_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < (int64_t)L * LB_INPUT_COUNT; i++) r[i] = aq->inputs[i].range;
        st = lb_gguf_writer_set_arr(w, "lowbit.actq.ranges", LB_GGUF_F32, r, (uint64_t)L * LB_INPUT_COUNT);
        free(r);
    }
    bool any = false;
    for (int32_t l = 0; !st && l < L; l++)
        for (int in = 0; !st && in < LB_INPUT_COUNT; in++) {
            const lb_actq_input *ai = lb_actq_at(aq, l, (lb_block_input)in);
            if (ai->n_outliers == 0) continue;
            any = true;
            char key[96];
            outlier_key(key, sizeof key, l, (lb_block_input)in);
            st = lb_gguf_writer_set_arr(w, key, LB_GGUF_I32, ai->outliers, (uint64_t)ai->n_outliers);
            lb_tensor_role roles[3];
            const int      nr = lb_block_input_readers(m, l, (lb_block_input)in, roles);
            for (int k = 0; !st && k < nr; k++) {
                char          name[64];
                const int64_t ne[2] = { ai->n_outliers, lb_layer_tensor(&m->layers[l], roles[k])->ne[1] };
                LB_RETURN_IF(!ai->w_outliers[k], err, LB_ERR_PARAM, "actq: outlier columns of "
                             "blk.%d.%s are missing", l, lb_role_stem(roles[k]));
                snprintf(name, sizeof name, "blk.%d.%s.outlier_cols", l, lb_role_stem(roles[k]));
                st = lb_gguf_writer_add_tensor(w, name, LB_GGML_F32, 2, ne, ai->w_outliers[k],
                                               (size_t)(ne[0] * ne[1]) * sizeof(float), err);
                if (st) return st;
            }
        }
    if (!st && any) st = lb_gguf_writer_set_f32(w, "lowbit.actq.outlier_threshold", aq->outlier_threshold);
    LB_RETURN_IF(st, err, st, "cannot add the activation quantization to the metadata");
    return LB_OK;
}

static lb_status parse_outliers(lb_actq *aq, const lb_gguf *g, const lb_llama_config *c,
                                lb_error *err) {
    const int32_t dims[LB_INPUT_COUNT] = { c->n_embd, c->n_heads * (c->head_dim_v > 0 ? c->head_dim_v : c->head_dim), c->n_embd, c->n_ff };
    const char   *fn = g->src.name;
    for (int32_t l = 0; l < aq->n_layers; l++)
        for (int in = 0; in < LB_INPUT_COUNT; in++) {
            char              key[96];
            const lb_gguf_kv *kv;
            outlier_key(key, sizeof key, l, (lb_block_input)in);
            lb_status st = lb_gguf_get_arr(g, key, &kv, err);
            if (st == LB_ERR_NOT_FOUND) continue;
            if (st) return st;
            LB_RETURN_IF(kv->arr_type != LB_GGUF_I32 && kv->arr_type != LB_GGUF_U32 &&
                             kv->arr_type != LB_GGUF_I64 && kv->arr_type != LB_GGUF_U64,
                         err, LB_ERR_CORRUPT, "%s: %s must be an integer array", fn, key);
            LB_RETURN_IF(kv->arr_n == 0 || kv->arr_n > (uint64_t)dims[in], err, LB_ERR_CORRUPT,
                         "%s: %s lists %llu columns of an input of %d", fn, key,
                         (unsigned long long)kv->arr_n, dims[in]);
            lb_actq_input *ai = lb_actq_at(aq, l, (lb_block_input)in);
            ai->outliers      = malloc((size_t)kv->arr_n * sizeof *ai->outliers);
            LB_RETURN_IF(!ai->outliers, err, LB_ERR_NOMEM, "out of memory");
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                const int64_t v = lb_gguf_arr_int(kv, i);
                LB_RETURN_IF(v < 0 || v >= dims[in] || (i > 0 && v <= ai->outliers[i - 1]), err,
                             LB_ERR_CORRUPT, "%s: %s[%llu] = %lld: columns must be increasing "
                             "and below %d", fn, key, (unsigned long long)i, (long long)v, dims[in]);
                ai->outliers[i] = (int32_t)v;
                ai->n_outliers  = (int32_t)i + 1;
            }
        }
    return LB_OK;
}

lb_status lb_actq_from_gguf(lb_actq **out, const lb_gguf *g, const lb_llama_config *c,
                            lb_error *err) {
    *out = NULL;
    const char *fn = g->src.name;
    lb_gguf_str mode, cal;
    int64_t     bits;
    lb_status   st = lb_gguf_get_str(g, "lowbit.actq.mode", &mode, err);
    if (st == LB_ERR_NOT_FOUND) {
        char any[32] = "lowbit.actq.";
        for (int64_t i = 0; i < g->n_kv; i++) /* keys without the mode: a broken file */
            LB_RETURN_IF(strncmp(g->kv[i].key, any, strlen(any)) == 0, err, LB_ERR_CORRUPT,
                         "%s: %s is set but lowbit.actq.mode is missing", fn, g->kv[i].key);
        return LB_OK;
    }
    if (st) return st;
    const bool stat = mode.n == 6 && memcmp(mode.p, "static", 6) == 0;
    LB_RETURN_IF(!stat && !(mode.n == 7 && memcmp(mode.p, "dynamic", 7) == 0), err, LB_ERR_CORRUPT,
                 "%s: lowbit.actq.mode is '%.*s', not 'dynamic' or 'static'", fn,
                 (int)(mode.n > 32 ? 32 : mode.n), mode.p);
    st = lb_gguf_get_int(g, "lowbit.actq.bits", &bits, err);
    LB_RETURN_IF(st == LB_ERR_NOT_FOUND, err, LB_ERR_CORRUPT, "%s: lowbit.actq.bits is missing", fn);
    if (st) return st;
    LB_RETURN_IF(bits != 8, err, LB_ERR_UNSUPPORTED, "%s: lowbit.actq.bits = %lld (only 8 is "
                 "supported)", fn, (long long)bits);
    lb_actq *aq;
    if ((st = lb_actq_create(&aq, c->n_layers, stat ? LB_ACTQ_STATIC : LB_ACTQ_DYNAMIC, err))) return st;
    if (lb_gguf_get_str(g, "lowbit.actq.calibration", &cal, NULL) == LB_OK)
        snprintf(aq->calibration, sizeof aq->calibration, "%.*s",
                 (int)(cal.n < sizeof aq->calibration ? cal.n : sizeof aq->calibration - 1), cal.p);
    if (stat) {
        const lb_gguf_kv *kv;
        const uint64_t    want = (uint64_t)c->n_layers * LB_INPUT_COUNT;
        st = lb_gguf_get_arr(g, "lowbit.actq.ranges", &kv, err);
        LB_GOTO_IF(st == LB_ERR_NOT_FOUND, err, LB_ERR_CORRUPT, "%s: static activation "
                   "quantization without lowbit.actq.ranges", fn);
        if (st) goto fail;
        LB_GOTO_IF(kv->arr_type != LB_GGUF_F32 || kv->arr_n != want, err, LB_ERR_CORRUPT,
                   "%s: lowbit.actq.ranges must be %llu f32 values (%d layers x 4 inputs), it has "
                   "%llu of type %s", fn, (unsigned long long)want, c->n_layers,
                   (unsigned long long)kv->arr_n, lb_gguf_vtype_name(kv->arr_type));
        for (uint64_t i = 0; i < want; i++) {
            const double r = lb_gguf_arr_float(kv, i);
            LB_GOTO_IF(!(r > 0) || !isfinite(r) || r > 3e38, err, LB_ERR_CORRUPT,
                       "%s: lowbit.actq.ranges[%llu] = %g: a range must be positive and finite",
                       fn, (unsigned long long)i, r);
            aq->inputs[i].range = (float)r;
        }
    }
    LB_TRY(parse_outliers(aq, g, c, err));
    double thr = 0;
    if (lb_gguf_get_float(g, "lowbit.actq.outlier_threshold", &thr, NULL) == LB_OK) aq->outlier_threshold = (float)thr;
    *out = aq;
    return LB_OK;
fail:
    lb_actq_free(aq);
    return st;
}

/* LLM.int8: put the f32 weight columns of every input with outliers back into its readers */
static lb_status restore_outlier_columns(lb_model *m, lb_actq *aq, lb_error *err) {
    const lb_gguf *g  = m->priv->gguf;
    const char    *fn = g->src.name;
    for (int32_t l = 0; l < aq->n_layers; l++)
        for (int in = 0; in < LB_INPUT_COUNT; in++) {
            lb_actq_input *ai = lb_actq_at(aq, l, (lb_block_input)in);
            if (ai->n_outliers == 0) continue;
            lb_tensor_role roles[3];
            const int      nr = lb_block_input_readers(m, l, (lb_block_input)in, roles);
            for (int k = 0; k < nr; k++) {
                char       name[64];
                lb_tensor *t = lb_layer_tensor(&m->layers[l], roles[k]);
                LB_RETURN_IF(!t || !t->data || !lb_role_stem(roles[k]), err, LB_ERR_CORRUPT, "%s: activation outliers "
                             "listed for blk.%d %s, which has no such matrix", fn, l, lb_block_input_name((lb_block_input)in));
                for (int32_t o = 0; o < ai->n_outliers; o++) /* the columns index the matrix's rows */
                    LB_RETURN_IF(ai->outliers[o] < 0 || ai->outliers[o] >= t->ne[0], err, LB_ERR_CORRUPT, "%s: blk.%d %s: "
                                 "outlier column %d of a matrix %lld wide", fn, l, lb_block_input_name((lb_block_input)in),
                                 ai->outliers[o], (long long)t->ne[0]);
                snprintf(name, sizeof name, "blk.%d.%s.outlier_cols", l, lb_role_stem(roles[k]));
                const int64_t ti = lb_gguf_find_tensor(g, name);
                LB_RETURN_IF(ti < 0, err, LB_ERR_CORRUPT, "%s: activation outliers listed for "
                             "blk.%d %s but tensor '%s' is missing", fn, l,
                             lb_block_input_name((lb_block_input)in), name);
                const lb_gguf_tensor_info *info = &g->tensors[ti];
                LB_RETURN_IF(info->ggml_type != LB_GGML_F32 || info->n_dims != 2 ||
                                 info->ne[0] != ai->n_outliers || info->ne[1] != t->ne[1],
                             err, LB_ERR_CORRUPT, "%s: tensor '%s' must be f32 [%d, %lld]", fn,
                             name, ai->n_outliers, (long long)t->ne[1]);
                const size_t bytes = (size_t)(info->ne[0] * info->ne[1]) * sizeof(float);
                ai->w_outliers[k]  = malloc(bytes);
                LB_RETURN_IF(!ai->w_outliers[k], err, LB_ERR_NOMEM, "out of memory");
                memcpy(ai->w_outliers[k], info->data, bytes);
                const int64_t n = t->ne[0], rows = t->ne[1];
                float        *W = malloc((size_t)(n * rows) * sizeof *W); /* row by row: */
                LB_RETURN_IF(!W, err, LB_ERR_NOMEM, "out of memory"); /* row-scaled types */
                for (int64_t r = 0; r < rows; r++) lb_tensor_get_row_f32(t, r, W + r * n);
                LB_RETURN_IF(lb_model_own(m, W), err, LB_ERR_NOMEM, "out of memory");
                ai->w_int8[k] = *t; /* the stored int8 weight, for integer products */
                t->type       = LB_TYPE_F32;
                t->data       = W;
                for (int64_t r = 0; r < t->ne[1]; r++)
                    for (int32_t o = 0; o < ai->n_outliers; o++)
                        W[r * n + ai->outliers[o]] = ai->w_outliers[k][r * ai->n_outliers + o];
            }
        }
    return LB_OK;
}

lb_status lb_model_load_actq(lb_model *m, lb_error *err) {
    lb_actq  *aq;
    lb_status st = lb_actq_from_gguf(&aq, m->priv->gguf, &m->cfg, err);
    if (st || !aq) return st;
    if (m->arch && (m->arch->moe || m->arch->ops.mla)) { /* the quantizer writes none (quantize.c) */
        lb_actq_free(aq);
        return lb_fail(err, LB_ERR_UNSUPPORTED, "%s: W8A8 activation quantization of a mixture of experts (%s) is "
                       "not supported", m->priv->gguf->src.name, m->arch->name);
    }
    if ((st = restore_outlier_columns(m, aq, err))) {
        lb_actq_free(aq);
        return st;
    }
    m->actq = aq;
    return LB_OK;
}

/* ---- --act ---- */

lb_status lb_act_calib_parse(const char *s, lb_act_calib *out) {
    *out = (lb_act_calib){ .calibrated = strcmp(s, "dynamic") != 0 };
    return out->calibrated ? lb_range_parse(s, &out->range) : LB_OK;
}

const char *lb_act_calib_name(const lb_act_calib *a, char *buf, size_t cap) {
    return a->calibrated ? lb_range_name(&a->range, buf, cap) : "dynamic";
}
