/* Fake quantization with learned step sizes (fakequant.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "fakequant.h"
#include "formats/formats.h"
#include "formats/grid.h"
#include "lowbit/core.h"

/* The uniform-grid description of t, or false (then the generic path applies). */
static bool lsq_desc(lb_type t, int64_t cols, lb_fq_tensor *d) {
    d->affine = false, d->f32_header = false;
    switch (t) {
    case LB_TYPE_Q8_0: d->group = 32, d->qmin = -127, d->qmax = 127; break;
    case LB_TYPE_Q4_0: d->group = 32, d->qmin = -8, d->qmax = 7; break;
    case LB_TYPE_Q5_0: d->group = 32, d->qmin = -16, d->qmax = 15; break;
    case LB_TYPE_Q4_1: d->group = 32, d->qmin = 0, d->qmax = 15, d->affine = true; break;
    case LB_TYPE_Q5_1: d->group = 32, d->qmin = 0, d->qmax = 31, d->affine = true; break;
    default: {
        lb_intn_desc id;
        if (!lb_intn_desc_of(t, &id) || id.group < 0) return false;
        d->group      = id.group > 0 ? id.group : (int32_t)cols;
        d->f32_header = id.group == 0;
        d->affine     = id.affine;
        d->qmax       = id.affine ? (1 << id.bits) - 1 : (1 << (id.bits - 1)) - 1;
        d->qmin       = id.affine ? 0 : -d->qmax;
    }
    }
    return lb_type_grid(t) != NULL && cols % d->group == 0;
}

/* s and m as the file stores them */
static float stored(const lb_fq_tensor *t, float x) {
    return t->f32_header ? x : lb_f16_to_f32(lb_f32_to_f16(x));
}

/* The format's round-to-nearest choice of s (and m) for one group of n values. */
static void fit_group(const lb_fq_tensor *t, const float *w, int64_t n, float *s, float *m) {
    float lo = w[0], hi = w[0], amax = 0.0f, smax = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        lo = fminf(lo, w[j]), hi = fmaxf(hi, w[j]);
        if (fabsf(w[j]) > amax) amax = fabsf(w[j]), smax = w[j];
    }
    float sc;
    if (t->affine) {
        sc = (hi - lo) / (float)t->qmax;
        *m = lo;
    } else if (t->qmin == -t->qmax) {
        sc = amax / (float)t->qmax; /* Q8_0, INTn: d = max|x| / qmax */
    } else {
        sc = smax / (float)t->qmin; /* Q4_0, Q5_0: d = max / -8 (-16), the sign of the extreme */
    }
    *s = sc != 0.0f && isfinite(sc) ? sc : 1e-8f;
}

void lb_fq_reset_scales(lb_fakequant *fq, int32_t layer) {
    for (int32_t i = 0; i < fq->n; i++) {
        lb_fq_tensor *t = &fq->t[i];
        if (!t->lsq) continue;
        const int32_t l = t->slot >= LB_TS_GLOBAL ? (t->slot - LB_TS_GLOBAL) / LB_TL_COUNT : -1;
        if (layer >= 0 && l != layer) continue;
        const float  *w  = fq->tm->w + fq->tm->slots[t->slot].off;
        const int64_t ng = t->rows * t->cols / t->group;
#pragma omp parallel for if (ng > 64)
        for (int64_t k = 0; k < ng; k++) {
            float mm = 0.0f;
            fit_group(t, w + k * t->group, t->group, &t->s[k], &mm);
            if (t->m) t->m[k] = mm;
        }
    }
}

void lb_fq_free(lb_fakequant *fq) {
    for (int32_t i = 0; i < fq->n; i++) {
        lb_fq_tensor *t = &fq->t[i];
        free(t->s), free(t->m), free(t->gs), free(t->gm), free(t->codes), free(t->wq), free(t->buf);
    }
    free(fq->t);
    free(fq->groups);
    memset(fq, 0, sizeof *fq);
}

lb_status lb_fq_init(lb_fakequant *fq, lb_tmodel *tm, const lb_type *types, bool lsq,
                     float scale_lr_mult, lb_error *err) {
    lb_status st = LB_OK;
    memset(fq, 0, sizeof *fq);
    fq->only_layer = -1;
    fq->tm     = tm;
    fq->t      = calloc((size_t)tm->n_slots, sizeof *fq->t);
    fq->groups = calloc((size_t)tm->n_slots * 2, sizeof *fq->groups);
    LB_RETURN_IF(!fq->t || !fq->groups, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t sl = 0; sl < tm->n_slots; sl++) {
        const lb_tslot       *s  = &tm->slots[sl];
        const lb_type_traits *tr = lb_type_get_traits(types[sl]);
        if (!s->matrix || s->rows == 0 || !tr || !tr->is_quantized) continue;
        lb_fq_tensor *t = &fq->t[fq->n++];
        t->slot = sl, t->type = types[sl], t->rows = s->rows, t->cols = s->cols;
        const size_t row_bytes = lb_row_size(t->type, s->cols);
        LB_GOTO_IF(row_bytes == 0, err, LB_ERR_SHAPE, "%s: rows of %lld values do not fit %s",
                   s->name, (long long)s->cols, tr->name);
        t->lsq = lsq && lsq_desc(t->type, s->cols, t);
        t->wq  = malloc((size_t)(s->rows * s->cols) * sizeof *t->wq);
        LB_GOTO_IF(!t->wq, err, LB_ERR_NOMEM, "out of memory");
        if (!t->lsq) {
            t->buf = malloc(row_bytes * (size_t)s->rows);
            LB_GOTO_IF(!t->buf, err, LB_ERR_NOMEM, "out of memory");
            continue;
        }
        const int64_t ng = s->rows * s->cols / t->group;
        t->s  = calloc((size_t)ng, sizeof *t->s);
        t->gs = calloc((size_t)ng, sizeof *t->gs);
        if (t->affine) {
            t->m  = calloc((size_t)ng, sizeof *t->m);
            t->gm = calloc((size_t)ng, sizeof *t->gm);
        }
        LB_GOTO_IF(!t->s || !t->gs || (t->affine && (!t->m || !t->gm)), err, LB_ERR_NOMEM,
                   "out of memory");
        lb_param_group *g = &fq->groups[fq->n_groups++];
        *g = (lb_param_group){ .p = t->s, .g = t->gs, .n = ng, .ne0 = s->cols / t->group,
                               .lr_mult = scale_lr_mult };
        snprintf(g->name, sizeof g->name, "qat.s.%s", s->name);
        if (t->affine) {
            g  = &fq->groups[fq->n_groups++];
            *g = (lb_param_group){ .p = t->m, .g = t->gm, .n = ng, .ne0 = s->cols / t->group,
                                   .lr_mult = scale_lr_mult };
            snprintf(g->name, sizeof g->name, "qat.m.%s", s->name);
        }
    }
    lb_fq_reset_scales(fq, -1);
    return LB_OK;
fail:
    lb_fq_free(fq);
    return st;
}

static bool skipped(const lb_fakequant *fq, const lb_fq_tensor *t) {
    if (fq->only_layer < 0) return false;
    return t->slot < LB_TS_GLOBAL || (t->slot - LB_TS_GLOBAL) / LB_TL_COUNT != fq->only_layer;
}

/* code of w in group k of t: clamped, and whether it was inside the range */
static inline float code_of(const lb_fq_tensor *t, float w, float sd, float md, float *v, bool *inside) {
    *v      = (w - md) / sd;
    float q = roundf(*v);
    *inside = q >= (float)t->qmin && q <= (float)t->qmax;
    return fminf(fmaxf(q, (float)t->qmin), (float)t->qmax);
}

void lb_fq_refresh(lb_fakequant *fq) {
    lb_tmodel *tm = fq->tm;
    for (int32_t i = 0; i < fq->n; i++) {
        lb_fq_tensor *t = &fq->t[i];
        const float  *w = tm->w + tm->slots[t->slot].off;
        if (skipped(fq, t)) continue;
        if (t->lsq) {
            const int64_t ng = t->rows * t->cols / t->group;
#pragma omp parallel for if (ng > 64)
            for (int64_t k = 0; k < ng; k++) {
                const float sd = stored(t, t->s[k]), md = t->m ? stored(t, t->m[k]) : 0.0f;
                for (int64_t j = k * t->group; j < (k + 1) * t->group; j++) {
                    float v;
                    bool  in;
                    const float q = t->codes ? (float)t->codes[j] : code_of(t, w[j], sd, md, &v, &in);
                    t->wq[j] = sd * q + md;
                }
            }
        } else {
            const lb_type_traits *tr = lb_type_get_traits(t->type);
            const size_t          rb = lb_row_size(t->type, t->cols);
            lb_quantize_rows(t->type, t->buf, w, t->rows, t->cols, NULL);
#pragma omp parallel for if (t->rows > 16)
            for (int64_t r = 0; r < t->rows; r++) tr->to_float(t->wq + r * t->cols, t->buf + (size_t)r * rb, t->cols);
        }
        tm->wf[t->slot] = t->wq;
        if (t->slot == LB_TS_TOK_EMBD && tm->tied) tm->wf[LB_TS_OUTPUT] = t->wq;
    }
}

void lb_fq_backward(lb_fakequant *fq) {
    lb_tmodel *tm = fq->tm;
    for (int32_t i = 0; i < fq->n; i++) {
        lb_fq_tensor *t = &fq->t[i];
        if (!t->lsq || skipped(fq, t)) continue; /* generic: straight through */
        const float  *w  = tm->w + tm->slots[t->slot].off;
        float        *g  = tm->g + tm->slots[t->slot].off;
        const int64_t ng = t->rows * t->cols / t->group;
#pragma omp parallel for if (ng > 64)
        for (int64_t k = 0; k < ng; k++) {
            const float sd = stored(t, t->s[k]), md = t->m ? stored(t, t->m[k]) : 0.0f;
            double      gs = 0.0, gm = 0.0;
            for (int64_t j = k * t->group; j < (k + 1) * t->group; j++) {
                if (t->codes) {
                    gs += (double)g[j] * t->codes[j];
                    gm += g[j];
                    continue;
                }
                float       v;
                bool        in;
                const float q = code_of(t, w[j], sd, md, &v, &in);
                if (in) {
                    gs += (double)g[j] * (q - v);
                } else {
                    gs += (double)g[j] * q;
                    gm += g[j];
                    g[j] = 0.0f;
                }
            }
            t->gs[k] += (float)gs;
            if (t->gm) t->gm[k] += (float)gm;
        }
    }
}

void lb_fq_after_update(lb_fakequant *fq) {
    for (int32_t i = 0; i < fq->n; i++) {
        lb_fq_tensor *t = &fq->t[i];
        if (!t->lsq) continue;
        for (int64_t k = 0; k < t->rows * t->cols / t->group; k++)
            if (fabsf(t->s[k]) < 1e-7f) t->s[k] = t->s[k] < 0 ? -1e-7f : 1e-7f;
    }
}

lb_status lb_fq_freeze(lb_fakequant *fq, lb_error *err) {
    for (int32_t i = 0; i < fq->n; i++) {
        lb_fq_tensor *t = &fq->t[i];
        if (!t->lsq || t->codes) continue;
        const int64_t n = t->rows * t->cols;
        t->codes        = malloc((size_t)n * sizeof *t->codes);
        LB_RETURN_IF(!t->codes, err, LB_ERR_NOMEM, "out of memory");
        const float *w = fq->tm->w + fq->tm->slots[t->slot].off;
        for (int64_t k = 0; k < n / t->group; k++) {
            const float sd = stored(t, t->s[k]), md = t->m ? stored(t, t->m[k]) : 0.0f;
            for (int64_t j = k * t->group; j < (k + 1) * t->group; j++) {
                float v;
                bool  in;
                t->codes[j] = (int16_t)code_of(t, w[j], sd, md, &v, &in);
            }
        }
    }
    fq->frozen = true;
    return LB_OK;
}

static void put_header(const lb_fq_tensor *t, uint8_t *block, float s, float m) {
    if (t->f32_header) {
        memcpy(block, &s, 4);
        if (t->affine) memcpy(block + 4, &m, 4);
    } else {
        const uint16_t hs = lb_f32_to_f16(s), hm = lb_f32_to_f16(m);
        memcpy(block, &hs, 2);
        if (t->affine) memcpy(block + 2, &hm, 2);
    }
}

lb_status lb_fq_store(const lb_fakequant *fq, int32_t i, void **out, size_t *nbytes, lb_error *err) {
    const lb_fq_tensor *t  = &fq->t[i];
    const size_t        rb = lb_row_size(t->type, t->cols);
    uint8_t            *o  = calloc((size_t)t->rows, rb);
    LB_RETURN_IF(!o, err, LB_ERR_NOMEM, "out of memory");
    const float *w = fq->tm->w + fq->tm->slots[t->slot].off;
    if (!t->lsq) {
        lb_quantize_rows(t->type, o, w, t->rows, t->cols, NULL);
    } else {
        /* the refreshed image: codes as the forward pass used them */
        lb_fakequant       *mut = (lb_fakequant *)fq;
        const lb_grid_ops  *g   = lb_type_grid(t->type);
        const size_t        bb  = t->f32_header ? rb : lb_row_size(t->type, t->group);
        lb_fq_refresh(mut);
        for (int64_t r = 0; r < t->rows; r++)
            for (int64_t k = 0; k < t->cols / t->group; k++) {
                const int64_t gi    = r * (t->cols / t->group) + k;
                uint8_t      *block = o + (size_t)r * rb + (size_t)k * bb;
                put_header(t, block, t->s[gi], t->m ? t->m[gi] : 0.0f);
                for (int32_t j = 0; j < t->group; j++)
                    lb_grid_round(g, block, j, t->wq[r * t->cols + k * t->group + j]);
            }
    }
    *out    = o;
    *nbytes = (size_t)t->rows * rb;
    return LB_OK;
}

void lb_fq_hook_before(void *fq) { lb_fq_refresh(fq); }
void lb_fq_hook_after_backward(void *fq) { lb_fq_backward(fq); }
void lb_fq_hook_after_update(void *fq) { lb_fq_after_update(fq); }
