/* Storage types, driven by the traits table: round-trip error per bit width, determinism,
 * the reference dot product against dequantize-then-dot, and golden files written by
 * llama.cpp's llama-quantize: our round-to-nearest of the same f32 tensors must give the
 * same bytes for the 32-block types and the k-quants (Q2_K .. Q6_K). */
#include <dirent.h>
#include <math.h>

#include "formats/formats.h"
#include "test_util.h"

/* ggml's test-quantize-fns data: deterministic, varied */
static void fill(float *x, int64_t n, float offset) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.1f + 2 * cosf((float)i + offset);
}

/* Round-trip RMSE bound of lowbit's own types, which spend their bits differently from the
 * GGUF types (scales, non-uniform levels), by their levels on this data (|x| <= 2.1, range
 * 4.0): INTn by its level spacing d, uniform rounding error d / sqrt(12) plus 25% (measured:
 * 0.9 to 1.0 of the estimate); the others above their measured values (in the comments).
 * 0 for a GGUF type. */
static double own_max_rmse(lb_type t) {
    lb_intn_desc d;
    if (lb_intn_desc_of(t, &d)) {
        const double step = d.affine ? 4.0 / ((1 << d.bits) - 1) : 2.1 / ((1 << (d.bits - 1)) - 1);
        return 1.25 * step / sqrt(12.0);
    }
    switch (t) {
    case LB_TYPE_NF4:         return 0.16; /* 0.137: the levels fit normal data, this is not */
    case LB_TYPE_FP8_E4M3_PC:
    case LB_TYPE_FP8_E4M3_PT: return 0.045; /* 0.036: 3 mantissa bits */
    case LB_TYPE_FP8_E5M2_PC:
    case LB_TYPE_FP8_E5M2_PT: return 0.08; /* 0.066: 2 mantissa bits */
    case LB_TYPE_TERNARY:     return 0.55; /* 0.467 */
    case LB_TYPE_KM3:         return 0.16; /* 0.138: 8 levels fitted to each row */
    case LB_TYPE_KM4:         return 0.085; /* 0.0755 */
    default:                  return 0;
    }
}

/* round-trip RMSE bound, by bits per weight (ggml uses 0.002 for 8-bit data, looser below) */
static double max_rmse(const lb_type_traits *tr) {
    const double own = own_max_rmse(lb_type_from_name(tr->name));
    if (own > 0) return own;
    if (!tr->is_quantized) return tr->bits_per_weight >= 16 ? 0.01 : 0.05;
    /* q3_K: 3-bit levels plus 0.44 bpw of scales; ggml's own quantize_row_q3_K_ref (whose
     * bytes ours equal) gives 0.1598 / 0.1604 / 0.1608 here at n = 256 / 512 / 4352, just
     * above the 3.4-bpw bound of 0.16: the one k-quant that needs its own bound */
    if (tr == lb_type_get_traits(LB_TYPE_Q3_K)) return 0.17;
    /* the i-quants below 4 bits are made for importance-weighted use: without it (x^2 weights,
     * ggml's bytes where ggml has a fallback, test_iq) they miss the bpw bounds here; bound
     * them at 1.1x what they give (n = 256) */
    if (tr->internal && (strcmp(tr->name, "x2_0") == 0 || strcmp(tr->name, "x2_k") == 0))
        return 0.6; /* ternary's levels (xlayout.c) */
    if (tr->internal && strcmp(tr->name, "x2_1") == 0) return 0.37; /* 0.343: minmax, 4 levels */
    if (tr->internal && strcmp(tr->name, "xnf4") == 0) return 0.16; /* NF4's levels, as nf4 */
    switch (lb_type_from_name(tr->name)) {
    case LB_TYPE_IQ2_S:  return 0.37;  /* 0.338 */
    case LB_TYPE_IQ3_XXS: return 0.31; /* 0.275 */
    case LB_TYPE_IQ3_S:  return 0.22;  /* 0.196 */
    case LB_TYPE_IQ1_S:  return 0.9;   /* 0.835 */
    case LB_TYPE_IQ1_M:  return 0.9;   /* 0.800 */
    default: break;
    }
    if (tr->bits_per_weight >= 8) return 0.01;
    if (tr->bits_per_weight >= 5.5) return 0.04;
    if (tr->bits_per_weight >= 4.5) return 0.08;
    if (tr->bits_per_weight >= 3.4) return 0.16;
    if (tr->bits_per_weight >= 2.5) return 0.32;
    return 0.6;
}

static void test_round_trip_every_type(void **state) {
    (void)state;
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        const lb_type_traits *tr = lb_type_get_traits((lb_type)t);
        if (!tr) continue;
        const int64_t lens[] = { 256, 512, 4096 + 256 };
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            const int64_t n    = lens[k];
            const size_t  rs   = lb_row_size((lb_type)t, n);
            float        *x    = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
            uint8_t      *q1   = malloc(rs), *q2 = malloc(rs);
            fill(x, n, (float)k);
            assert_int_equal(lb_quantize_rows((lb_type)t, q1, x, 1, n, NULL), rs);
            assert_int_equal(lb_quantize_rows((lb_type)t, q2, x, 1, n, NULL), rs);
            assert_memory_equal(q1, q2, rs); /* deterministic */
            tr->to_float(y, q1, n);
            double se = 0, dot_deq = 0;
            for (int64_t i = 0; i < n; i++) {
                se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
                dot_deq += (double)y[i] * x[i];
            }
            const double rmse = sqrt(se / (double)n);
            if (k == 0) printf("# %-11s %5.2f bpw  rmse %.5f (bound %.3f)\n", tr->name,
                               (double)tr->bits_per_weight, rmse, max_rmse(tr));
            assert_true(rmse < max_rmse(tr));
            /* reference dot product = dequantize, then dot */
            const double dot = lb_vec_dot_ref((lb_type)t, q1, x, n);
            assert_true(fabs(dot - dot_deq) <= 1e-6 * (fabs(dot_deq) + 1));
            free(x);
            free(y);
            free(q1);
            free(q2);
        }
    }
}

static void test_zero_and_constant_blocks(void **state) {
    (void)state;
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        const lb_type_traits *tr = lb_type_get_traits((lb_type)t);
        if (!tr) continue;
        const int64_t n = 256;
        float         x[256], y[256];
        uint8_t       q[256 * 4];
        for (int v = 0; v < 2; v++) {
            /* IQ2_XXS's 256 points have none of eight equal large levels: ggml's search puts a
             * constant block at 0.15 (with any importance); zeros it keeps */
            if (v == 1 && t == LB_TYPE_IQ2_XXS) continue;
            for (int64_t i = 0; i < n; i++) x[i] = v ? 0.5f : 0.0f;
            lb_quantize_rows((lb_type)t, q, x, 1, n, NULL);
            tr->to_float(y, q, n);
            for (int64_t i = 0; i < n; i++) {
                assert_true(isfinite(y[i]));
                assert_true(fabsf(y[i] - x[i]) <= 0.5f * (v ? 0.5f : 0.0f) + 1e-7f);
            }
        }
    }
}

/* Quantize every tensor of a llama-quantize output from its f32 source and compare bytes. */
static int compare_file(const char *qpath, const char *fpath, int *n_checked) {
    lb_gguf *q, *f;
    lb_error err = { 0 };
    assert_int_equal(lb_gguf_open(&q, qpath, &err), LB_OK);
    assert_int_equal(lb_gguf_open(&f, fpath, &err), LB_OK);
    int mismatches = 0;
    for (int64_t i = 0; i < q->n_tensors; i++) {
        const lb_gguf_tensor_info *tq = &q->tensors[i];
        const lb_type              t  = lb_type_from_ggml(tq->ggml_type);
        if (t == LB_TYPE_INVALID || !lb_type_get_traits(t)->is_quantized) continue;
        /* the k-quants' round to nearest (no imatrix) is deterministic too: compare it */
        const bool kquant = t >= LB_TYPE_Q2_K && t <= LB_TYPE_Q6_K;
        if (!kquant && (lb_type_get_traits(t)->block_size != 32 || t == LB_TYPE_IQ4_NL)) continue;
        const int64_t j = lb_gguf_find_tensor(f, tq->name);
        assert_true(j >= 0);
        const lb_gguf_tensor_info *tf = &f->tensors[j];
        assert_int_equal(tf->ggml_type, LB_GGML_F32);
        const int64_t n = tf->ne[0] * tf->ne[1] * tf->ne[2] * tf->ne[3];
        float        *x = malloc((size_t)n * sizeof *x);
        memcpy(x, tf->data, (size_t)n * sizeof *x);
        uint8_t *out = malloc(tq->nbytes);
        assert_int_equal(lb_quantize_rows(t, out, x, n / tf->ne[0], tf->ne[0], NULL), tq->nbytes);
        if (memcmp(out, tq->data, tq->nbytes) != 0) {
            size_t k = 0;
            while (out[k] == ((const uint8_t *)tq->data)[k]) k++;
            printf("# %s %s: differs from llama-quantize at byte %zu\n", qpath, tq->name, k);
            mismatches++;
        }
        (*n_checked)++;
        free(x);
        free(out);
    }
    lb_gguf_close(q);
    lb_gguf_close(f);
    return mismatches;
}

static void test_rtn_matches_llama_quantize(void **state) {
    (void)state;
    char dir[512];
    SKIP_UNLESS(shared_path("golden", dir, sizeof dir));
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int            checked = 0, mismatches = 0;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strstr(n, ".gguf") == NULL || strstr(n, "-f32") || strstr(n, "imatrix")) continue;
        char qpath[1024], fpath[1024];
        snprintf(qpath, sizeof qpath, "%s/%s", dir, n);
        snprintf(fpath, sizeof fpath, "%s/%.*s-f32.gguf", dir, (int)(strchr(n, '-') - n), n);
        mismatches += compare_file(qpath, fpath, &checked);
    }
    closedir(d);
    printf("# %d tensors requantized, %d differ from llama-quantize\n", checked, mismatches);
    assert_true(checked >= 40);
    assert_int_equal(mismatches, 0);
}

/* ---- IQ4_NL, IQ4_XS, TQ1_0, TQ2_0: llama-quantize --pure outputs without an imatrix ---- */

static const char *const k_iq_tq_golden[] = { "synth256-IQ4_NL.gguf", "synth256-IQ4_XS.gguf",
                                              "synth256-TQ1_0.gguf", "synth256-TQ2_0.gguf",
                                              "stories260K-IQ4_NL.gguf" };

static bool is_iq_tq(lb_type t) {
    return t == LB_TYPE_IQ4_NL || t == LB_TYPE_IQ4_XS || t == LB_TYPE_TQ1_0 || t == LB_TYPE_TQ2_0;
}

/* Sum of squared differences between x and the rows of q (type t) dequantized. */
static double iq_tq_sse(lb_type t, const void *q, const float *x, int64_t nrow, int64_t ne0) {
    float *y = malloc((size_t)ne0 * sizeof *y);
    double se = 0;
    for (int64_t r = 0; r < nrow; r++) {
        lb_type_get_traits(t)->to_float(y, (const uint8_t *)q + (size_t)r * lb_row_size(t, ne0),
                                        ne0);
        for (int64_t j = 0; j < ne0; j++) {
            const double e = (double)y[j] - x[r * ne0 + j];
            se += e * e;
        }
    }
    free(y);
    return se;
}

/* Call fn on every tensor of one of our types in golden file `name`, with its f32 source. */
typedef void (*iq_tq_fn)(const char *file, const lb_gguf_tensor_info *tq, lb_type t,
                         const float *x, int64_t nrow, int64_t ne0, double *stats);

static void for_each_iq_tq_tensor(const char *dir, const char *name, iq_tq_fn fn, double *stats) {
    char qpath[1024], fpath[1024];
    snprintf(qpath, sizeof qpath, "%s/%s", dir, name);
    snprintf(fpath, sizeof fpath, "%s/%.*s-f32.gguf", dir, (int)(strchr(name, '-') - name), name);
    lb_gguf *q, *f;
    lb_error err = { 0 };
    assert_int_equal(lb_gguf_open(&q, qpath, &err), LB_OK);
    assert_int_equal(lb_gguf_open(&f, fpath, &err), LB_OK);
    for (int64_t i = 0; i < q->n_tensors; i++) {
        const lb_gguf_tensor_info *tq = &q->tensors[i];
        const lb_type              t  = lb_type_from_ggml(tq->ggml_type);
        if (!is_iq_tq(t)) continue;
        const int64_t j = lb_gguf_find_tensor(f, tq->name);
        assert_true(j >= 0);
        const lb_gguf_tensor_info *tf = &f->tensors[j];
        assert_int_equal(tf->ggml_type, LB_GGML_F32);
        const int64_t ne0 = tf->ne[0], nrow = tf->ne[1] * tf->ne[2] * tf->ne[3];
        assert_int_equal(lb_row_size(t, ne0) * (size_t)nrow, tq->nbytes);
        float *x = malloc((size_t)(nrow * ne0) * sizeof *x);
        memcpy(x, tf->data, (size_t)(nrow * ne0) * sizeof *x);
        fn(name, tq, t, x, nrow, ne0, stats);
        free(x);
    }
    lb_gguf_close(q);
    lb_gguf_close(f);
}

/* stats: [0] tensors checked, [1] byte-identical, [2] not identical and worse than theirs */
static void iq_tq_requantize(const char *file, const lb_gguf_tensor_info *tq, lb_type t,
                             const float *x, int64_t nrow, int64_t ne0, double *stats) {
    uint8_t *out = malloc(tq->nbytes);
    assert_int_equal(lb_quantize_rows(t, out, x, nrow, ne0, NULL), tq->nbytes);
    stats[0]++;
    if (memcmp(out, tq->data, tq->nbytes) == 0) {
        stats[1]++;
    } else { /* not identical: our round-trip error must be no larger than llama-quantize's */
        size_t ndiff = 0;
        for (size_t k = 0; k < tq->nbytes; k++) ndiff += out[k] != ((const uint8_t *)tq->data)[k];
        const double ours = iq_tq_sse(t, out, x, nrow, ne0);
        const double theirs = iq_tq_sse(t, tq->data, x, nrow, ne0);
        printf("# %s %s (%s): %zu of %zu bytes differ; sse ours %.9g, llama-quantize %.9g\n",
               file, tq->name, lb_type_name(t), ndiff, tq->nbytes, ours, theirs);
        if (ours > theirs) stats[2]++;
    }
    free(out);
}

static void test_iq_tq_match_llama_quantize(void **state) {
    (void)state;
    char dir[512];
    SKIP_UNLESS(shared_path("golden", dir, sizeof dir));
    double total[3] = { 0 };
    for (size_t k = 0; k < sizeof k_iq_tq_golden / sizeof k_iq_tq_golden[0]; k++) {
        double stats[3] = { 0 };
        for_each_iq_tq_tensor(dir, k_iq_tq_golden[k], iq_tq_requantize, stats);
        printf("# %s: %.0f tensors requantized, %.0f byte-identical\n", k_iq_tq_golden[k],
               stats[0], stats[1]);
        assert_true(stats[0] > 0);
        for (int s = 0; s < 3; s++) total[s] += stats[s];
    }
    assert_true(total[2] == 0);
    assert_true(total[1] == total[0]);
}

/* Relative RMSE of llama-quantize's bytes, dequantized by us, against the f32 source: a wrong
 * bit layout gives about 1 or more. IQ4 gives 0.07-0.12 here (bound 0.15). Ternary types give
 * 0.67-0.85: the synthetic weights are heavy-tailed, so with d = max |x| most values round to 0;
 * decoding all as 0 would give exactly 1 and scrambled trits more, hence the bound 0.95. */
static double iq_tq_rel_bound(lb_type t) {
    return t == LB_TYPE_TQ1_0 || t == LB_TYPE_TQ2_0 ? 0.95 : 0.15;
}

/* stats: [0] tensors checked, [1] largest relative rmse, [2] its bound */
static void iq_tq_dequantize(const char *file, const lb_gguf_tensor_info *tq, lb_type t,
                             const float *x, int64_t nrow, int64_t ne0, double *stats) {
    double sx = 0;
    for (int64_t i = 0; i < nrow * ne0; i++) sx += (double)x[i] * x[i];
    const double rel   = sqrt(iq_tq_sse(t, tq->data, x, nrow, ne0) / sx);
    const double bound = iq_tq_rel_bound(t);
    if (rel >= bound)
        printf("# %s %s (%s): relative rmse %.4f (bound %.2f)\n", file, tq->name,
               lb_type_name(t), rel, bound);
    assert_true(rel < bound);
    stats[0]++;
    if (rel > stats[1]) stats[1] = rel;
    stats[2] = bound;
}

static void test_iq_tq_dequantize_golden(void **state) {
    (void)state;
    char dir[512];
    SKIP_UNLESS(shared_path("golden", dir, sizeof dir));
    for (size_t k = 0; k < sizeof k_iq_tq_golden / sizeof k_iq_tq_golden[0]; k++) {
        double stats[3] = { 0 };
        for_each_iq_tq_tensor(dir, k_iq_tq_golden[k], iq_tq_dequantize, stats);
        printf("# %s: %.0f tensors dequantized, relative rmse at most %.4f (bound %.2f)\n",
               k_iq_tq_golden[k], stats[0], stats[1], stats[2]);
        assert_true(stats[0] > 0);
    }
}

/* The IQ4 importance path: with strongly uneven column importance, the importance-weighted
 * error must beat the unweighted search's, and the importance must change the bytes. */
static void test_iq4_importance(void **state) {
    (void)state;
    const lb_type types[] = { LB_TYPE_IQ4_NL, LB_TYPE_IQ4_XS };
    const int64_t nrow = 16, ne0 = 512;
    float        *x = malloc((size_t)(nrow * ne0) * sizeof *x), *imp = malloc(ne0 * sizeof *imp);
    float        *y = malloc(ne0 * sizeof *y);
    for (int64_t r = 0; r < nrow; r++) fill(x + r * ne0, ne0, (float)r * 0.37f);
    for (int64_t j = 0; j < ne0; j++) imp[j] = j % 5 == 0 ? 40.0f : 0.05f;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const size_t bytes = lb_row_size(types[k], ne0) * (size_t)nrow;
        uint8_t     *qi = malloc(bytes), *qn = malloc(bytes);
        assert_int_equal(lb_quantize_rows(types[k], qi, x, nrow, ne0, imp), bytes);
        assert_int_equal(lb_quantize_rows(types[k], qn, x, nrow, ne0, NULL), bytes);
        assert_true(memcmp(qi, qn, bytes) != 0);
        double wi = 0, wn = 0;
        for (int64_t r = 0; r < nrow; r++)
            for (int pass = 0; pass < 2; pass++) {
                const uint8_t *q = (pass ? qn : qi) + (size_t)r * lb_row_size(types[k], ne0);
                lb_type_get_traits(types[k])->to_float(y, q, ne0);
                for (int64_t j = 0; j < ne0; j++) {
                    const double e = imp[j] * ((double)y[j] - x[r * ne0 + j]) *
                                     ((double)y[j] - x[r * ne0 + j]);
                    *(pass ? &wn : &wi) += e;
                }
            }
        printf("# %s importance-weighted sse: with importance %.5g, without %.5g\n",
               lb_type_name(types[k]), wi, wn);
        assert_true(wi < wn);
        free(qi);
        free(qn);
    }
    free(x);
    free(imp);
    free(y);
}

/* ---- k-quants: llama-quantize's bytes, dequantized by us, against the f32 source ---- */

/* Relative RMSE (sqrt of sum of squared errors over sum of squares) of every Q*_K tensor of
 * synth256-Q*_K.gguf, decoded with our to_float. A misread layout (bit order, scale packing)
 * decodes to noise, about 1 or more; the bounds sit above the measured values (in the
 * comments) with a margin. */
static void test_kquant_dequantize_golden(void **state) {
    (void)state;
    static const struct {
        const char *file;
        lb_type     t;
        double      bound;
    } k[] = {
        { "synth256-Q2_K.gguf", LB_TYPE_Q2_K, 0.45 },  /* measured at most 0.352 */
        { "synth256-Q3_K.gguf", LB_TYPE_Q3_K, 0.25 },  /* 0.193 */
        { "synth256-Q4_K.gguf", LB_TYPE_Q4_K, 0.13 },  /* 0.098 */
        { "synth256-Q5_K.gguf", LB_TYPE_Q5_K, 0.065 }, /* 0.049 */
        { "synth256-Q6_K.gguf", LB_TYPE_Q6_K, 0.04 },  /* 0.030 */
    };
    char dir[512];
    SKIP_UNLESS(shared_path("golden", dir, sizeof dir));
    for (size_t f = 0; f < sizeof k / sizeof k[0]; f++) {
        char qpath[1024], fpath[1024];
        snprintf(qpath, sizeof qpath, "%s/%s", dir, k[f].file);
        snprintf(fpath, sizeof fpath, "%s/synth256-f32.gguf", dir);
        lb_gguf *q, *src;
        lb_error err = { 0 };
        assert_int_equal(lb_gguf_open(&q, qpath, &err), LB_OK);
        assert_int_equal(lb_gguf_open(&src, fpath, &err), LB_OK);
        int    n_tensors = 0;
        double worst     = 0;
        for (int64_t i = 0; i < q->n_tensors; i++) {
            const lb_gguf_tensor_info *tq = &q->tensors[i];
            if (lb_type_from_ggml(tq->ggml_type) != k[f].t) continue;
            const int64_t j = lb_gguf_find_tensor(src, tq->name);
            assert_true(j >= 0);
            const lb_gguf_tensor_info *tf = &src->tensors[j];
            assert_int_equal(tf->ggml_type, LB_GGML_F32);
            const int64_t n = tf->ne[0] * tf->ne[1] * tf->ne[2] * tf->ne[3];
            assert_int_equal(lb_row_size(k[f].t, n), tq->nbytes);
            float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
            memcpy(x, tf->data, (size_t)n * sizeof *x);
            lb_type_get_traits(k[f].t)->to_float(y, tq->data, n);
            double se = 0, sx = 0;
            for (int64_t e = 0; e < n; e++) {
                se += ((double)y[e] - x[e]) * ((double)y[e] - x[e]);
                sx += (double)x[e] * x[e];
            }
            const double rel = sqrt(se / sx);
            if (rel > worst) worst = rel;
            if (rel >= k[f].bound)
                printf("# %s %s: relative rmse %.4f (bound %.3f)\n", k[f].file, tq->name, rel,
                       k[f].bound);
            assert_true(rel < k[f].bound);
            n_tensors++;
            free(x);
            free(y);
        }
        printf("# %s: %d tensors dequantized, relative rmse at most %.4f (bound %.3f)\n",
               k[f].file, n_tensors, worst, k[f].bound);
        assert_true(n_tensors > 0);
        lb_gguf_close(q);
        lb_gguf_close(src);
    }
}

/* lb_tensor_find_bad: the first NaN, Inf or value past a limit in f32, f16 and bf16 rows,
 * found whichever thread's rows hold it; none in a clean tensor or another type. */
/* Every INTn group type with a transcode target gives the same floats, bit for bit, through
 * that GGUF type (rows with a zero group, a constant group, large minimums, importance-chosen
 * scales); the others have none. Each 6- and 8-bit affine, per-row and per-tensor type: none. */
static void test_transcode(void **state) {
    (void)state;
    int n_targets = 0;
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        lb_intn_desc d;
        if (!lb_intn_desc_of((lb_type)t, &d)) continue;
        const lb_type to = lb_transcode_target((lb_type)t);
        const bool    want = d.group > 0 ? !d.affine || d.bits <= 5 : !d.affine && t != LB_TYPE_INT8_PC;
        assert_int_equal(to != LB_TYPE_INVALID, want);
        if (!want) continue;
        n_targets++;
        const int64_t n = d.group > 0 ? 768 : 771, rows = 4; /* per row: any length */
        float        *x = malloc((size_t)(n * rows) * sizeof *x), *imp = malloc((size_t)n * sizeof *imp);
        float        *y1 = malloc((size_t)n * sizeof *y1), *y2 = malloc((size_t)n * sizeof *y2);
        const size_t  rs = lb_row_size((lb_type)t, n), rt = lb_row_size(to, n);
        uint8_t      *q = malloc(rs * (size_t)rows), *o = malloc(rt);
        fill(x, n * rows, 3.0f);
        for (int64_t i = 0; i < n; i++) imp[i] = 0.5f + (float)(i % 7);
        for (int64_t i = 0; i < 256; i++) x[i] = 0.0f;                /* a zero group */
        for (int64_t i = 256; i < 512; i++) x[n + i] = 1.5f;          /* a constant one */
        for (int64_t i = 0; i < n; i++) x[2 * n + i] += 1000.0f;      /* minimum >> scale */
        lb_quantize_rows((lb_type)t, q, x, rows - 1, n, NULL);
        lb_quantize_rows((lb_type)t, q + rs * (size_t)(rows - 1), x + (rows - 1) * n, 1, n, imp);
        for (int64_t r = 0; r < rows; r++) {
            lb_type_get_traits((lb_type)t)->to_float(y1, q + rs * (size_t)r, n);
            lb_transcode_row((lb_type)t, to, o, q + rs * (size_t)r, n);
            lb_type_get_traits(to)->to_float(y2, o, n);
            if (memcmp(y1, y2, (size_t)n * sizeof *y1) != 0)
                fail_msg("%s -> %s: row %lld differs", lb_type_name((lb_type)t), lb_type_name(to), (long long)r);
        }
        free(x), free(imp), free(y1), free(y2), free(q), free(o);
    }
    /* 2-8 bits, sym and affine, 4 groups, not uint6/uint8; sym per row and per tensor but int8_pc */
    assert_int_equal(n_targets, 2 * 6 * 4 - 2 * 4 + 6 * 2 - 1);
    static const lb_type g256[][2] = { /* groups of 256: a super-block where it generates faster */
        { LB_TYPE_INT2_G256, LB_TYPE_X2_K }, { LB_TYPE_UINT2_G256, LB_TYPE_X2_1 }, { LB_TYPE_INT3_G256, LB_TYPE_Q4_0 },
        { LB_TYPE_UINT3_G256, LB_TYPE_Q4_K }, { LB_TYPE_INT4_G256, LB_TYPE_Q4_0 }, { LB_TYPE_UINT4_G256, LB_TYPE_Q4_1 },
        { LB_TYPE_INT5_G256, LB_TYPE_Q5_K }, { LB_TYPE_UINT5_G256, LB_TYPE_Q5_K }, { LB_TYPE_INT6_G256, LB_TYPE_Q8_0 },
        { LB_TYPE_UINT6_G256, LB_TYPE_INVALID }, { LB_TYPE_INT8_G256, LB_TYPE_Q8_0 },
    };
    for (size_t i = 0; i < sizeof g256 / sizeof g256[0]; i++) assert_int_equal(lb_transcode_target(g256[i][0]), g256[i][1]);
    assert_int_equal(lb_transcode_target(LB_TYPE_Q4_0), LB_TYPE_INVALID);
    assert_int_equal(lb_transcode_target(LB_TYPE_TERNARY), LB_TYPE_INVALID); /* f32 gamma */
    static const lb_type tq[2] = { LB_TYPE_TQ1_0, LB_TYPE_TQ2_0 };
    for (int k = 0; k < 2; k++) { /* ternary blocks: a zero block, then random ones */
        const int64_t n = 1024;
        float        *x = malloc((size_t)n * sizeof *x), *y1 = malloc((size_t)n * sizeof *y1), *y2 = malloc((size_t)n * sizeof *y2);
        uint8_t      *q = malloc(lb_row_size(tq[k], n)), *o = malloc(lb_row_size(LB_TYPE_Q4_0, n));
        fill(x, n, 1.0f);
        for (int64_t i = 0; i < 256; i++) x[i] = 0.0f;
        assert_int_equal(lb_transcode_target(tq[k]), LB_TYPE_X2_K);
        lb_quantize_rows(tq[k], q, x, 1, n, NULL);
        lb_type_get_traits(tq[k])->to_float(y1, q, n);
        static const lb_type to[3] = { LB_TYPE_X2_K, LB_TYPE_X2_0, LB_TYPE_Q4_0 }; /* and the tests' */
        for (int v = 0; v < 3; v++) {
            lb_transcode_row(tq[k], to[v], o, q, n);
            lb_type_get_traits(to[v])->to_float(y2, o, n);
            if (memcmp(y1, y2, (size_t)n * sizeof *y1) != 0)
                fail_msg("%s -> %s differs", lb_type_name(tq[k]), lb_type_name(to[v]));
        }
        free(x), free(y1), free(y2), free(q), free(o);
    }
}

/* Where activations are quantized anyway: NF4 as XNF4 within absmax / 254 (the int8 grid's
 * rounding) plus the f16 scale's 2^-11, lowbit's ternary as X2_0 within gamma's f16 rounding
 * (rows of a zero block, ordinary ones and a large scale), INTn's per-row and per-tensor
 * scales within their f16 rounding. Other types have no such target. */
static void test_transcode_approx(void **state) {
    (void)state;
    const int64_t n = 512;
    float        *x = malloc((size_t)n * sizeof *x), *y1 = malloc((size_t)n * sizeof *y1), *y2 = malloc((size_t)n * sizeof *y2);
    uint8_t      *q = malloc(lb_row_size(LB_TYPE_NF4, n) + lb_row_size(LB_TYPE_TERNARY, n)), *o = malloc(lb_row_size(LB_TYPE_XNF4, n));
    for (int v = 0; v < 3; v++) {
        fill(x, n, (float)v);
        for (int64_t i = 0; i < 64; i++) x[i] = 0.0f;
        if (v == 2)
            for (int64_t i = 0; i < n; i++) x[i] *= 3000.0f;
        assert_int_equal(lb_transcode_approx_target(LB_TYPE_NF4), LB_TYPE_XNF4);
        lb_quantize_rows(LB_TYPE_NF4, q, x, 1, n, NULL);
        lb_type_get_traits(LB_TYPE_NF4)->to_float(y1, q, n);
        lb_transcode_row(LB_TYPE_NF4, LB_TYPE_XNF4, o, q, n);
        lb_type_get_traits(LB_TYPE_XNF4)->to_float(y2, o, n);
        for (int64_t b = 0; b < n / 64; b++) {
            float amax;
            memcpy(&amax, q + (size_t)b * sizeof(lb_block_nf4), 4);
            for (int64_t i = 64 * b; i < 64 * b + 64; i++)
                if (fabsf(y2[i] - y1[i]) > amax / 254.0f + amax * 0x1p-10f)
                    fail_msg("nf4 -> xnf4: value %lld: %g vs %g (absmax %g)", (long long)i, (double)y2[i], (double)y1[i], (double)amax);
        }
        assert_int_equal(lb_transcode_approx_target(LB_TYPE_TERNARY), LB_TYPE_X2_0);
        lb_quantize_rows(LB_TYPE_TERNARY, q, x, 1, n, NULL);
        lb_type_get_traits(LB_TYPE_TERNARY)->to_float(y1, q, n);
        lb_transcode_row(LB_TYPE_TERNARY, LB_TYPE_X2_0, o, q, n);
        lb_type_get_traits(LB_TYPE_X2_0)->to_float(y2, o, n);
        for (int64_t i = 0; i < n; i++)
            if (fabsf(y2[i] - y1[i]) > fabsf(y1[i]) * 0x1p-11f)
                fail_msg("ternary -> x2_0: value %lld: %g vs %g", (long long)i, (double)y2[i], (double)y1[i]);
    }
    /* per-row and per-tensor scales: the block type of their width, f16 scales; affine 6 and 8
     * bits have none */
    int n_rows = 0;
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        lb_intn_desc d;
        if (!lb_intn_desc_of((lb_type)t, &d) || d.group > 0) continue;
        const lb_type to = lb_transcode_approx_target((lb_type)t);
        assert_int_equal(to == LB_TYPE_INVALID, d.affine && d.bits >= 6);
        if (to == LB_TYPE_INVALID) continue;
        n_rows++;
        fill(x, n, 2.0f);
        for (int64_t i = 0; i < n; i++) x[i] += d.affine ? 3.0f : 0.0f;
        uint8_t *r = malloc(lb_row_size((lb_type)t, n)), *b = malloc(lb_row_size(to, n));
        lb_quantize_rows((lb_type)t, r, x, 1, n, NULL);
        lb_type_get_traits((lb_type)t)->to_float(y1, r, n);
        lb_transcode_row((lb_type)t, to, b, r, n);
        lb_type_get_traits(to)->to_float(y2, b, n);
        float sc[2] = { 0, 0 };
        memcpy(sc, r, d.affine ? 8 : 4);
        for (int64_t i = 0; i < n; i++)
            if (fabsf(y2[i] - y1[i]) > (fabsf(y1[i] - sc[1]) + fabsf(sc[1])) * 0x1p-10f)
                fail_msg("%s -> %s: value %lld: %g vs %g", lb_type_name((lb_type)t), lb_type_name(to), (long long)i,
                         (double)y2[i], (double)y1[i]);
        free(r), free(b);
    }
    assert_int_equal(n_rows, 6 * 2 * 2 - 2 * 2);
    assert_int_equal(lb_transcode_approx_target(LB_TYPE_INT8_PC), LB_TYPE_Q8_0); /* but in W8A8 models */
    assert_int_equal(lb_transcode_approx_target(LB_TYPE_INT4_PC), LB_TYPE_Q4_0);
    assert_int_equal(lb_transcode_approx_target(LB_TYPE_UINT2_PT), LB_TYPE_X2_1);
    assert_int_equal(lb_transcode_approx_target(LB_TYPE_Q4_0), LB_TYPE_INVALID);
    assert_int_equal(lb_transcode_approx_target(LB_TYPE_FP8_E4M3_PC), LB_TYPE_INVALID);
    free(x), free(y1), free(y2), free(q), free(o);
}

static void test_find_bad(void **state) {
    (void)state;
    enum { R = 600, C = 40 };
    static float    f[R * C];
    static uint16_t h[R * C], b[R * C];
    for (int i = 0; i < R * C; i++) {
        f[i] = (float)((i * 7919) % 2001 - 1000) / 10.0f;
        h[i] = lb_f32_to_f16(f[i]);
        b[i] = lb_f32_to_bf16(f[i]);
    }
    lb_tensor t32 = { .type = LB_TYPE_F32, .ne = { C, R, 1, 1 }, .data = f };
    lb_tensor t16 = { .type = LB_TYPE_F16, .ne = { C, R, 1, 1 }, .data = h };
    lb_tensor tbf = { .type = LB_TYPE_BF16, .ne = { C, R, 1, 1 }, .data = b };
    float     v;
    assert_int_equal(lb_tensor_find_bad(&t32, INFINITY, &v), -1);
    assert_int_equal(lb_tensor_find_bad(&t16, INFINITY, &v), -1);
    assert_int_equal(lb_tensor_find_bad(&tbf, INFINITY, &v), -1);
    const int at[] = { 0, 39, 40, 12345, R * C - 1 };
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        const int i = at[k];
        f[i] = NAN, h[i] = 0x7E00, b[i] = 0xFF80; /* NaN, NaN, -Inf */
        f[R * C - 1 - i / 2] = INFINITY;           /* a later one (or the same) is not reported */
        assert_int_equal(lb_tensor_find_bad(&t32, INFINITY, &v), i < R * C - 1 - i / 2 ? i : R * C - 1 - i / 2);
        assert_int_equal(lb_tensor_find_bad(&t16, INFINITY, &v), i);
        assert_true(isnan(v));
        assert_int_equal(lb_tensor_find_bad(&tbf, INFINITY, &v), i);
        assert_true(isinf(v) && v < 0);
        f[i] = f[R * C - 1 - i / 2] = 1.0f, h[i] = b[i] = 0;
    }
    /* a limit: the first value past it */
    f[777] = 70000.0f;
    assert_int_equal(lb_tensor_find_bad(&t32, INFINITY, &v), -1);
    assert_int_equal(lb_tensor_find_bad(&t32, 65504.0f, &v), 777);
    assert_true(v == 70000.0f);
    lb_tensor q = { .type = LB_TYPE_Q8_0, .ne = { 32, 1, 1, 1 }, .data = h };
    assert_int_equal(lb_tensor_find_bad(&q, INFINITY, &v), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_zero_and_constant_blocks),
        cmocka_unit_test(test_rtn_matches_llama_quantize),
        cmocka_unit_test(test_kquant_dequantize_golden),
        cmocka_unit_test(test_iq_tq_match_llama_quantize),
        cmocka_unit_test(test_iq_tq_dequantize_golden),
        cmocka_unit_test(test_iq4_importance),
        cmocka_unit_test(test_find_bad),
        cmocka_unit_test(test_transcode),
        cmocka_unit_test(test_transcode_approx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
