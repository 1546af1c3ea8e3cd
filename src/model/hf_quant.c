/* Hugging Face quantized checkpoints: GPTQ and AWQ's packed linear layers to GGUF blocks,
 * and lowbit's symmetric blocks back to GPTQ. Written from the formats as AutoGPTQ,
 * GPTQModel and AutoAWQ lay them out (their QuantLinear pack/unpack code):
 *
 * GPTQ, a layer of n_out rows (outputs) of n_in inputs, b bits, f = 32 / b values per int32:
 *   qweight int32 [n_in / f, n_out]   input i of output j in word [i / f][j], bits b*(i % f)
 *   qzeros  int32 [G, n_out / f]      zero of group g, output j in word [g][j / f], bits b*(j % f);
 *                                     v1 ("gptq") stores zero - 1, v2 ("gptq_v2") the zero
 *   scales  f16   [G, n_out]
 *   g_idx   int32 [n_in]              the group of input i (act-order permutes it); i / group
 *                                     when absent
 *   w[j][i] = scales[g][j] * (q - zero), g = g_idx[i]; G = ceil(n_in / group), 1 per row.
 * AWQ GEMM (4 bits): qweight int32 [n_in, n_out / 8], qzeros int32 [G, n_out / 8], scales
 *   [G, n_out]; the 8 outputs of a word are packed in the order 0 2 4 6 1 3 5 7 (nibble p
 *   holds output 8k + order[p]); zeros as they are; g = i / group.
 * Both are little-endian int32 words; a 32-input GGUF block maps onto one group when its
 * inputs share one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "formats/formats.h"
#include "hf_quant.h"

lb_status lb_hfq_parse(const cJSON *qc, lb_hfq *q, const char *f, lb_error *err) {
    const char *m = lb_json_str(qc, "quant_method");
    memset(q, 0, sizeof *q);
    LB_RETURN_IF(!m, err, LB_ERR_CORRUPT, "%s: quantization_config has no quant_method", f);
    q->method = !strcmp(m, "gptq") ? LB_HFQ_GPTQ : !strcmp(m, "awq") ? LB_HFQ_AWQ : LB_HFQ_NONE;
    LB_RETURN_IF(!q->method, err, LB_ERR_UNSUPPORTED,
                 "%s: quant_method '%.32s' is not supported (gptq, awq)", f, m);
    const cJSON *bits = lb_json_get(qc, "bits") ? lb_json_get(qc, "bits") : lb_json_get(qc, "w_bit");
    const cJSON *grp  = lb_json_get(qc, "group_size") ? lb_json_get(qc, "group_size") : lb_json_get(qc, "q_group_size");
    int64_t      b = 0, g = 0;
    LB_RETURN_IF(!bits || !lb_json_int(bits, 1, 64, &b), err, LB_ERR_CORRUPT, "%s: quantization_config: bad or "
                 "missing bits", f);
    LB_RETURN_IF(!grp || !lb_json_int(grp, -1, INT32_MAX, &g) || g == 0, err, LB_ERR_CORRUPT,
                 "%s: quantization_config: bad or missing group_size", f);
    q->bits  = (int32_t)b;
    q->group = (int32_t)g;
    if (q->method == LB_HFQ_AWQ) {
        const char *v = lb_json_str(qc, "version");
        LB_RETURN_IF(v && strcasecmp(v, "gemm") != 0, err, LB_ERR_UNSUPPORTED,
                     "%s: AWQ version '%.16s' is not supported (gemm)", f, v);
        LB_RETURN_IF(cJSON_IsFalse(lb_json_get(qc, "zero_point")), err, LB_ERR_UNSUPPORTED,
                     "%s: AWQ without zero points is not supported", f);
        LB_RETURN_IF(b != 4, err, LB_ERR_UNSUPPORTED, "%s: AWQ with %lld bits is not supported (4)", f, (long long)b);
        return LB_OK;
    }
    const char *fmt = lb_json_str(qc, "checkpoint_format") ? lb_json_str(qc, "checkpoint_format") : lb_json_str(qc, "format");
    LB_RETURN_IF(fmt && strcmp(fmt, "gptq") && strcmp(fmt, "gptq_v2"), err, LB_ERR_UNSUPPORTED,
                 "%s: GPTQ checkpoint_format '%.16s' is not supported (gptq, gptq_v2)", f, fmt);
    LB_RETURN_IF(b != 4 && b != 8, err, LB_ERR_UNSUPPORTED, "%s: GPTQ with %lld bits is not supported (4, 8)", f,
                 (long long)b);
    q->v2       = fmt && !strcmp(fmt, "gptq_v2");
    q->sym      = !cJSON_IsFalse(lb_json_get(qc, "sym"));
    q->desc_act = cJSON_IsTrue(lb_json_get(qc, "desc_act"));
    return LB_OK;
}

/* ---- reading the packed layout ---- */
typedef struct unpacker {
    const lb_hfq  *q;
    const uint8_t *qw, *qz, *sc, *gi;
    lb_st_dtype    sc_type;
    int64_t        n_out, n_in, n_groups;
} unpacker;

static uint32_t word(const uint8_t *p, int64_t k) {
    return (uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8 | (uint32_t)p[4 * k + 2] << 16 | (uint32_t)p[4 * k + 3] << 24;
}

static const int awq_pos[8] = { 0, 4, 1, 5, 2, 6, 3, 7 }; /* output 8k + c sits in nibble awq_pos[c] */

static int32_t get_q(const unpacker *u, int64_t j, int64_t i) {
    const int32_t b = u->q->bits, f = 32 / b, mask = (1 << b) - 1;
    if (u->q->method == LB_HFQ_AWQ) return (int32_t)(word(u->qw, i * (u->n_out / 8) + j / 8) >> (4 * awq_pos[j % 8])) & mask;
    return (int32_t)(word(u->qw, (i / f) * u->n_out + j) >> (b * (i % f))) & mask;
}

static int32_t get_zero(const unpacker *u, int64_t g, int64_t j) {
    const int32_t b = u->q->bits, f = 32 / b, mask = (1 << b) - 1;
    if (u->q->method == LB_HFQ_AWQ) return (int32_t)(word(u->qz, g * (u->n_out / 8) + j / 8) >> (4 * awq_pos[j % 8])) & mask;
    const int32_t z = (int32_t)(word(u->qz, g * (u->n_out / f) + j / f) >> (b * (j % f))) & mask;
    return u->q->v2 ? z : z + 1; /* v1: as AutoGPTQ's kernels read it (zero 2^b possible) */
}

static float get_scale(const unpacker *u, int64_t g, int64_t j) {
    const int64_t k = g * u->n_out + j;
    if (u->sc_type == LB_ST_F32) {
        float x;
        memcpy(&x, u->sc + 4 * k, 4);
        return x;
    }
    const uint16_t h = (uint16_t)(u->sc[2 * k] | u->sc[2 * k + 1] << 8);
    if (u->sc_type == LB_ST_F16) return lb_f16_to_f32(h);
    const uint32_t x = (uint32_t)h << 16; /* bf16 */
    float          v;
    memcpy(&v, &x, 4);
    return v;
}

static int64_t get_group(const unpacker *u, int64_t i) {
    if (u->gi) return (int64_t)(int32_t)word(u->gi, i);
    return u->q->group > 0 ? i / u->q->group : 0;
}

static lb_status check_shape(const lb_st_tensor *t, const char *what, const char *name, lb_st_dtype d1,
                             lb_st_dtype d2, int32_t nd, int64_t s0, int64_t s1, lb_error *err) {
    LB_RETURN_IF(!t, err, LB_ERR_NOT_FOUND, "tensor '%s.%s' is missing", name, what);
    LB_RETURN_IF(t->dtype != d1 && t->dtype != d2, err, LB_ERR_UNSUPPORTED, "tensor '%s.%s' is %s, expected %s",
                 name, what, lb_st_dtype_name(t->dtype), lb_st_dtype_name(d1));
    LB_RETURN_IF(t->n_dims != nd || t->shape[0] != s0 || (nd > 1 && t->shape[1] != s1), err, LB_ERR_SHAPE,
                 "tensor '%s.%s' has %d dims [%lld, %lld], expected [%lld, %lld]", name, what, t->n_dims,
                 (long long)t->shape[0], (long long)(t->n_dims > 1 ? t->shape[1] : 0), (long long)s0,
                 (long long)(nd > 1 ? s1 : 0));
    return LB_OK;
}

static lb_status open_unpacker(unpacker *u, const lb_hfq *q, const lb_hfq_linear *L, int64_t n_out, int64_t n_in,
                               lb_error *err) {
    const int32_t f = 32 / q->bits;
    const bool    awq = q->method == LB_HFQ_AWQ;
    *u = (unpacker){ .q = q, .n_out = n_out, .n_in = n_in, .n_groups = q->group > 0 ? (n_in + q->group - 1) / q->group : 1 };
    LB_RETURN_IF(n_out % (awq ? 8 : f) || (!awq && n_in % f), err, LB_ERR_SHAPE, "tensor '%s': [%lld, %lld] does "
                 "not pack into %d-bit words", L->name, (long long)n_out, (long long)n_in, q->bits);
    lb_status st = awq ? check_shape(L->qweight, "qweight", L->name, LB_ST_I32, LB_ST_U32, 2, n_in, n_out / 8, err)
                       : check_shape(L->qweight, "qweight", L->name, LB_ST_I32, LB_ST_U32, 2, n_in / f, n_out, err);
    if (!st) st = check_shape(L->qzeros, "qzeros", L->name, LB_ST_I32, LB_ST_U32, 2, u->n_groups, n_out / (awq ? 8 : f), err);
    if (!st && L->scales && L->scales->dtype == LB_ST_F32) /* f16 as the formats write them; bf16, f32 read too */
        st = check_shape(L->scales, "scales", L->name, LB_ST_F32, LB_ST_F32, 2, u->n_groups, n_out, err);
    else if (!st) st = check_shape(L->scales, "scales", L->name, LB_ST_F16, LB_ST_BF16, 2, u->n_groups, n_out, err);
    if (!st && L->g_idx && !awq) st = check_shape(L->g_idx, "g_idx", L->name, LB_ST_I32, LB_ST_I32, 1, n_in, 0, err);
    if (st) return st;
    u->qw      = L->qweight->data;
    u->qz      = L->qzeros->data;
    u->sc      = L->scales->data;
    u->sc_type = L->scales->dtype;
    u->gi      = L->g_idx && !awq ? L->g_idx->data : NULL;
    for (int64_t i = 0; u->gi && i < n_in; i++) {
        const int64_t g = get_group(u, i);
        LB_RETURN_IF(g < 0 || g >= u->n_groups, err, LB_ERR_CORRUPT, "tensor '%s.g_idx': input %lld is in group "
                     "%lld of %lld", L->name, (long long)i, (long long)g, (long long)u->n_groups);
    }
    return LB_OK;
}

/* ---- into GGUF blocks ---- */
lb_status lb_hfq_import(const lb_hfq *q, const lb_hfq_linear *L, int64_t n_out, int64_t n_in, lb_type *type,
                        void **out, double *rel_err, bool *exact, lb_error *err) {
    unpacker  u;
    lb_status st = open_unpacker(&u, q, L, n_out, n_in, err);
    if (st) return st;
    LB_RETURN_IF(n_in % 32, err, LB_ERR_SHAPE, "tensor '%s': rows of %lld inputs do not split into GGUF's "
                 "32-value blocks", L->name, (long long)n_in);
    const int32_t mid = 1 << (q->bits - 1);
    bool          all_mid = true, f16_scales = u.sc_type == LB_ST_F16;
    for (int64_t g = 0; g < u.n_groups && all_mid; g++)
        for (int64_t j = 0; j < n_out && all_mid; j++) all_mid = get_zero(&u, g, j) == mid;
    const lb_type t  = q->bits == 8 ? LB_TYPE_Q8_0 : all_mid ? LB_TYPE_Q4_0 : LB_TYPE_Q4_1;
    const int64_t nb = n_in / 32;
    int64_t      *bg = malloc((size_t)nb * sizeof *bg); /* each block's group, -1: several */
    const size_t  rs = lb_row_size(t, n_in), bs = rs / (size_t)nb;
    uint8_t      *o  = malloc((size_t)n_out * rs);
    float        *w  = malloc((size_t)n_in * 2 * sizeof *w);
    LB_GOTO_IF(!bg || !o || !w, err, LB_ERR_NOMEM, "out of memory");
    bool split = false;
    for (int64_t b = 0; b < nb; b++) {
        bg[b] = get_group(&u, b * 32);
        for (int64_t i = b * 32 + 1; i < b * 32 + 32 && bg[b] >= 0; i++)
            if (get_group(&u, i) != bg[b]) bg[b] = -1;
        split |= bg[b] < 0;
    }
    double se = 0, sw = 0;
    for (int64_t j = 0; j < n_out; j++) {
        uint8_t *row = o + (size_t)j * rs;
        for (int64_t i = 0; i < n_in; i++) { /* the checkpoint's own values */
            const int64_t g = get_group(&u, i);
            w[i]            = get_scale(&u, g, j) * (float)(get_q(&u, j, i) - get_zero(&u, g, j));
        }
        for (int64_t b = 0; b < nb; b++) {
            uint8_t      *blk = row + (size_t)b * bs;
            const int64_t g   = bg[b];
            const int32_t z   = g >= 0 ? get_zero(&u, g, j) : 0;
            const bool    direct = g >= 0 && f16_scales && (t != LB_TYPE_Q8_0 || z == 128);
            if (!direct) { /* quantized again from the values */
                lb_quantize_rows(t, blk, w + b * 32, 1, 32, NULL);
                continue;
            }
            const float    s  = get_scale(&u, g, j);
            const uint16_t d  = lb_f32_to_f16(s);
            int32_t        qv[32];
            for (int k = 0; k < 32; k++) qv[k] = get_q(&u, j, b * 32 + k);
            memcpy(blk, &d, 2);
            if (t == LB_TYPE_Q8_0) {
                for (int k = 0; k < 32; k++) blk[2 + k] = (uint8_t)(int8_t)(qv[k] - 128);
                continue;
            }
            uint8_t *qs = blk + 2;
            if (t == LB_TYPE_Q4_1) {
                const uint16_t m = lb_f32_to_f16(-s * (float)z);
                memcpy(blk + 2, &m, 2);
                qs = blk + 4;
            }
            for (int k = 0; k < 16; k++) qs[k] = (uint8_t)(qv[k] | qv[k + 16] << 4);
        }
        lb_type_get_traits(t)->to_float(w + n_in, row, n_in);
        for (int64_t i = 0; i < n_in; i++) {
            const double e = (double)w[n_in + i] - w[i];
            se += e * e;
            sw += (double)w[i] * w[i];
        }
    }
    *type    = t;
    *out     = o;
    o        = NULL;
    *rel_err = sw > 0 ? sqrt(se / sw) : sqrt(se);
    *exact   = !split && f16_scales && (q->bits == 4 || all_mid);
fail:
    free(bg);
    free(o);
    free(w);
    return st;
}

/* ---- out of GGUF blocks ---- */
bool lb_hfq_export_spec(lb_type t, int32_t *bits, int32_t *group) {
    lb_intn_desc d;
    if (t == LB_TYPE_Q4_0 || t == LB_TYPE_Q8_0) {
        *bits  = t == LB_TYPE_Q4_0 ? 4 : 8;
        *group = 32;
        return true;
    }
    if (!lb_intn_desc_of(t, &d) || d.affine || d.group <= 0 || (d.bits != 4 && d.bits != 8)) return false;
    *bits  = d.bits;
    *group = d.group;
    return true;
}

static void put_word(uint8_t *p, int64_t k, uint32_t v) {
    for (int s = 0; s < 4; s++) p[4 * k + s] = (uint8_t)(v >> (8 * s));
}

lb_status lb_hfq_export(lb_type t, const void *const *rows, int64_t n_out, int64_t n_in, lb_st_write_tensor parts[4],
                        void *owned[4], lb_error *err) {
    int32_t bits, group;
    LB_RETURN_IF(!lb_hfq_export_spec(t, &bits, &group), err, LB_ERR_UNSUPPORTED, "%s has no GPTQ layout",
                 lb_type_name(t));
    const int32_t f = 32 / bits, zero = 1 << (bits - 1);
    LB_RETURN_IF(n_out % f || n_in % group, err, LB_ERR_SHAPE, "[%lld, %lld] does not pack into GPTQ's %d-bit "
                 "words and groups of %d", (long long)n_out, (long long)n_in, bits, group);
    const int64_t ng = n_in / group;
    const size_t  bs = lb_row_size(t, group); /* bytes of one block: f16 d first */
    uint8_t      *qw = calloc((size_t)(n_in / f * n_out), 4), *qz = calloc((size_t)(ng * n_out / f), 4);
    uint8_t      *sc = malloc((size_t)(ng * n_out) * 2), *gi = malloc((size_t)n_in * 4);
    float        *w  = malloc((size_t)n_in * sizeof *w);
    lb_status     st = LB_OK;
    LB_GOTO_IF(!qw || !qz || !sc || !gi || !w, err, LB_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n_in; i++) put_word(gi, i, (uint32_t)(i / group));
    for (int64_t g = 0; g < ng; g++)
        for (int64_t j = 0; j < n_out; j += f) {
            uint32_t v = 0;
            for (int k = 0; k < f; k++) v |= (uint32_t)(zero - 1) << (bits * k); /* v1: zero - 1 */
            put_word(qz, g * (n_out / f) + j / f, v);
        }
    for (int64_t j = 0; j < n_out; j++) {
        const uint8_t *row = rows[j];
        lb_type_get_traits(t)->to_float(w, row, n_in);
        for (int64_t g = 0; g < ng; g++) {
            uint16_t d;
            memcpy(&d, row + (size_t)g * bs, 2);
            memcpy(sc + 2 * (g * n_out + j), &d, 2);
            const float s = lb_f16_to_f32(d);
            for (int64_t i = g * group; i < (g + 1) * group; i++) { /* w = s * (code - zero), exactly */
                const int32_t c = s != 0.0f ? (int32_t)lrintf(w[i] / s) + zero : zero;
                LB_GOTO_IF(c < 0 || c >= 2 * zero || (s != 0.0f && (float)(c - zero) * s != w[i]), err,
                           LB_ERR_NUMERIC, "row %lld, input %lld: %g is not on its block's %d-bit grid",
                           (long long)j, (long long)i, (double)w[i], bits);
                const int64_t k = (i / f) * n_out + j;
                put_word(qw, k, word(qw, k) | (uint32_t)c << (bits * (i % f)));
            }
        }
    }
    static const char *const what[4] = { "qweight", "qzeros", "scales", "g_idx" };
    const lb_st_dtype        dt[4]   = { LB_ST_I32, LB_ST_I32, LB_ST_F16, LB_ST_I32 };
    const int64_t            sh[4][2] = { { n_in / f, n_out }, { ng, n_out / f }, { ng, n_out }, { n_in, 0 } };
    void                    *buf[4]  = { qw, qz, sc, gi };
    for (int k = 0; k < 4; k++) {
        parts[k] = (lb_st_write_tensor){ .name = what[k], .dtype = dt[k], .n_dims = k == 3 ? 1 : 2,
                                         .shape = { sh[k][0], sh[k][1] }, .data = buf[k],
                                         .nbytes = (size_t)(sh[k][0] * (k == 3 ? 1 : sh[k][1])) * lb_st_dtype_size(dt[k]) };
        owned[k] = buf[k];
    }
    qw = qz = sc = gi = NULL;
fail:
    free(qw);
    free(qz);
    free(sc);
    free(gi);
    free(w);
    return st;
}
