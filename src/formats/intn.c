/* INTn: n-bit integer levels (n = 2, 3, 4, 5, 6, 8) with a scale per group of g values, per
 * row or per tensor: one codec for every variant, driven by an lb_intn_desc; the variants
 * (enum values, functions, table rows) are generated from LB_INTN_TYPES (lowbit/tensor.h).
 *   symmetric ("intN"): q in -(2^(n-1)-1) .. 2^(n-1)-1, x = q * d, d = max|x| / (2^(n-1)-1),
 *                       q stored as n-bit two's complement;
 *   affine ("uintN"):   q in 0 .. 2^n-1, x = q * d + m, m = min x, d = (max - min) / (2^n-1).
 * q is x / d (or (x - m) / d) rounded to nearest (half away from zero) with d and m as
 * stored, then clamped to the levels. The values are bit-packed little-endian, no padding:
 * value i holds bits [i*n, i*n + n) of the packed bytes, least significant bit first.
 * Layouts and bits per weight (C = values per row):
 *   group g ("_g32" .. "_g256"): blocks { f16 d; [f16 m;] u8 q[g*n/8] }: n + 16/g bpw
 *                                (affine n + 32/g)
 *   per row ("_pc"):    { f32 d; [f32 m;] u8 q[ceil(C*n/8)] }: n + 32/C bpw (affine n + 64/C)
 *   per tensor ("_pt"): as per row, with the d [and m] of the whole tensor in every row (rows
 *                       stay independent for reading); the quantizer sees all rows at once.
 * With an importance vector (imatrix) the quantizer searches the scale [and minimum] that
 * minimize the importance-weighted error instead of taking the minmax range.
 * Grid access (grid_intn.h): a block's (or row's) levels with its d and m as stored, code
 * k = q - qmin, rounded as the quantizer rounds. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "formats.h"
#include "grid_intn.h"
#include "lowbit/core.h"

static int32_t qmax_of(const lb_intn_desc *d) {
    return d->affine ? (1 << d->bits) - 1 : (1 << (d->bits - 1)) - 1;
}

/* bytes of the scale [and minimum]: f16 in a block, f32 at the start of a row */
static size_t header_bytes(const lb_intn_desc *d, bool row) {
    return (size_t)(d->affine ? 2 : 1) * (row ? 4 : 2);
}

static size_t packed_bytes(const lb_intn_desc *d, int64_t n) {
    return (size_t)((n * d->bits + 7) / 8);
}

static size_t intn_row_size(const lb_intn_desc *d, int64_t n) {
    if (n < 1 || n > INT64_MAX / 16) return 0;
    if (d->group > 0)
        return n % d->group ? 0
                            : (size_t)(n / d->group) *
                                  (header_bytes(d, false) + packed_bytes(d, d->group));
    return header_bytes(d, true) + packed_bytes(d, n);
}

/* scale and minimum of n values (the minimum is 0 for symmetric types) */
static void range_of(const lb_intn_desc *d, const float *x, int64_t n, float *scale,
                     float *min) {
    const float qmax = (float)qmax_of(d);
    if (d->affine) {
        float lo = FLT_MAX, hi = -FLT_MAX;
        for (int64_t i = 0; i < n; i++) {
            lo = fminf(lo, x[i]);
            hi = fmaxf(hi, x[i]);
        }
        *scale = (hi - lo) / qmax;
        *min   = lo;
    } else {
        float amax = 0.0f;
        for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
        *scale = amax / qmax;
        *min   = 0.0f;
    }
}

static int32_t qmin_of(const lb_intn_desc *d) { return d->affine ? 0 : -qmax_of(d); }

/* the reciprocal of a scale the quantizer multiplies by */
static float inverse_of(float scale) { return scale != 0.0f ? 1.0f / scale : 0.0f; }

/* the level q of x: (x - min) * id rounded half away from zero, clamped (NaN: qmin) */
static int32_t round_level(float x, float min, float id, int32_t qmin, int32_t qmax) {
    const float v = roundf((x - min) * id);
    return v >= (float)qmax ? qmax : v > (float)qmin ? (int32_t)v : qmin;
}

/* With importance (llama.cpp's imatrix idea): the scale [and minimum] minimizing
 * sum_i w_i (x_i - q_i d - m)^2, w_i = imp_i * sqrt(sigma^2 + x_i^2) (sigma^2 = mean x^2, as
 * ggml weighs its imatrix quants). Candidates: the levels from the minmax range with the
 * top level moved by -0.9 .. +0.9 steps, each refit by weighted least squares (d alone, or d
 * and m); the minmax range itself is kept unless a candidate does better. imp is indexed
 * i % period (a per-tensor range spans many rows of one importance vector). */
#define LB_INTN_STEPS 9

static float weight_of(const float *x, const float *imp, int64_t i, int64_t period, float sigma2) {
    return imp[i % period] * sqrtf(sigma2 + x[i] * x[i]);
}

static double weighted_error(const lb_intn_desc *d, const float *x, int64_t n, const float *imp,
                             int64_t period, float sigma2, float scale, float min) {
    const int32_t qmax = qmax_of(d), qmin = qmin_of(d);
    const float   id   = inverse_of(scale);
    double        e    = 0;
    for (int64_t i = 0; i < n; i++) {
        const float r = x[i] - ((float)round_level(x[i], min, id, qmin, qmax) * scale + min);
        e += (double)weight_of(x, imp, i, period, sigma2) * r * r;
    }
    return e;
}

static void weighted_range(const lb_intn_desc *d, const float *x, int64_t n, const float *imp,
                           int64_t period, float *scale, float *min) {
    range_of(d, x, n, scale, min);
    if (!(*scale > 0)) return;
    const int32_t qmax = qmax_of(d), qmin = qmin_of(d);
    const float   span = *scale * (float)qmax; /* amax (symmetric) or max - min (affine) */
    double        sigma2 = 0;
    for (int64_t i = 0; i < n; i++) sigma2 += (double)x[i] * x[i];
    sigma2 /= (double)n;
    double best = weighted_error(d, x, n, imp, period, (float)sigma2, *scale, *min);
    for (int is = -LB_INTN_STEPS; is <= LB_INTN_STEPS; is++) {
        const float id = ((float)qmax + 0.1f * (float)is) / span, m0 = *min;
        double      swl = 0, swll = 0, sw = 0, swx = 0, swlx = 0;
        for (int64_t i = 0; i < n; i++) { /* levels at this scale, then the least-squares fit */
            const float  w = weight_of(x, imp, i, period, (float)sigma2);
            const double l = round_level(x[i], m0, id, qmin, qmax);
            sw += w, swl += w * l, swll += w * l * l, swx += (double)w * x[i], swlx += w * l * x[i];
        }
        double ds, ms = 0;
        if (d->affine) {
            const double det = sw * swll - swl * swl;
            if (!(det > 0)) continue;
            ds = (sw * swlx - swl * swx) / det;
            ms = (swll * swx - swl * swlx) / det;
        } else {
            if (!(swll > 0)) continue;
            ds = swlx / swll;
        }
        if (!(ds > 0)) continue;
        const double e = weighted_error(d, x, n, imp, period, (float)sigma2, (float)ds, (float)ms);
        if (e < best) best = e, *scale = (float)ds, *min = (float)ms;
    }
}

/* pack n values of x as levels of (scale, min) */
static void encode(const lb_intn_desc *d, uint8_t *q, const float *x, int64_t n, float scale,
                   float min) {
    const int32_t  qmax = qmax_of(d), qmin = qmin_of(d);
    const float    id   = inverse_of(scale);
    const uint32_t mask = (1u << d->bits) - 1;
    uint32_t       acc  = 0;
    int            nb   = 0;
    for (int64_t i = 0; i < n; i++) {
        const int32_t k = round_level(x[i], min, id, qmin, qmax);
        acc |= ((uint32_t)k & mask) << nb;
        for (nb += d->bits; nb >= 8; nb -= 8, acc >>= 8) *q++ = (uint8_t)acc;
    }
    if (nb > 0) *q = (uint8_t)acc;
}

static void decode(const lb_intn_desc *d, float *y, const uint8_t *q, int64_t n, float scale,
                   float min) {
    lb_intn_reader r = { .q = q };
    for (int64_t i = 0; i < n; i++) y[i] = (float)lb_intn_next(d, &r) * scale + min;
}

/* one row; ts: the tensor's {scale, min} for per-tensor types, else NULL; imp: the row's
 * importance or NULL */
static void quantize_row(const lb_intn_desc *d, uint8_t *y, const float *x, int64_t n,
                         const float *ts, const float *imp) {
    if (d->group > 0) {
        const size_t hb = header_bytes(d, false), bb = hb + packed_bytes(d, d->group);
        for (int64_t b = 0; b < n / d->group; b++, x += d->group, y += bb) {
            float s, m;
            if (imp) weighted_range(d, x, d->group, imp + b * d->group, d->group, &s, &m);
            else range_of(d, x, d->group, &s, &m);
            const uint16_t sh = lb_f16_sat(s), mh = lb_f16_sat(m);
            memcpy(y, &sh, 2);
            if (d->affine) memcpy(y + 2, &mh, 2);
            encode(d, y + hb, x, d->group, lb_f16_to_f32(sh), d->affine ? lb_f16_to_f32(mh) : 0.0f);
        }
        return;
    }
    float sm[2];
    if (ts) memcpy(sm, ts, sizeof sm);
    else if (imp) weighted_range(d, x, n, imp, n, &sm[0], &sm[1]);
    else range_of(d, x, n, &sm[0], &sm[1]);
    memcpy(y, sm, header_bytes(d, true));
    encode(d, y + header_bytes(d, true), x, n, sm[0], sm[1]);
}

static size_t intn_quantize(const lb_intn_desc *d, void *dst, const float *src, int64_t nrow,
                            int64_t n, const float *imp) {
    float        ts[2];
    const size_t rs = intn_row_size(d, n);
    if (d->group < 0) {
        if (imp) weighted_range(d, src, nrow * n, imp, n, &ts[0], &ts[1]);
        else range_of(d, src, nrow * n, &ts[0], &ts[1]);
    }
    for (int64_t r = 0; r < nrow; r++)
        quantize_row(d, (uint8_t *)dst + (size_t)r * rs, src + r * n, n, d->group < 0 ? ts : NULL, imp);
    return (size_t)nrow * rs;
}

static void intn_dequantize(const lb_intn_desc *d, float *y, const void *src, int64_t n) {
    const uint8_t *q = src;
    if (d->group > 0) {
        const size_t hb = header_bytes(d, false), bb = hb + packed_bytes(d, d->group);
        for (int64_t b = 0; b < n / d->group; b++, y += d->group, q += bb) {
            uint16_t sh, mh = 0;
            memcpy(&sh, q, 2);
            if (d->affine) memcpy(&mh, q + 2, 2);
            decode(d, y, q + hb, d->group, lb_f16_to_f32(sh), d->affine ? lb_f16_to_f32(mh) : 0.0f);
        }
        return;
    }
    float sm[2] = { 0.0f, 0.0f };
    memcpy(sm, q, header_bytes(d, true));
    decode(d, y, q + header_bytes(d, true), n, sm[0], sm[1]);
}

/* the functions the traits table points to, one set per variant */
#define LB_INTN_DEFINE(U, L, ID, BITS, AFFINE, GROUP)                                             \
    static const lb_intn_desc k_##L = { BITS, AFFINE, GROUP };                                     \
    void lb_quantize_row_##L##_ref(void *dst, const float *src, int64_t n) {                       \
        intn_quantize(&k_##L, dst, src, 1, n, NULL);                                               \
    }                                                                                              \
    void lb_dequantize_row_##L(float *dst, const void *src, int64_t n) {                           \
        intn_dequantize(&k_##L, dst, src, n);                                                      \
    }                                                                                              \
    size_t lb_quantize_##L(void *dst, const float *src, int64_t nrow, int64_t n_per_row,           \
                           const float *importance) {                                              \
        return intn_quantize(&k_##L, dst, src, nrow, n_per_row, importance);                       \
    }                                                                                              \
    size_t lb_row_size_##L(int64_t n) { return intn_row_size(&k_##L, n); }
LB_INTN_TYPES(LB_INTN_DEFINE)
#undef LB_INTN_DEFINE

/* ---- grid access: a group type's block is { d, [m,] q }, a row-scaled type's the row ---- */

/* the scale and minimum stored at the start of a block or row */
static void stored_scale(const lb_intn_desc *d, const uint8_t *b, float *scale, float *min) {
    if (d->group > 0) {
        uint16_t sh, mh = 0;
        memcpy(&sh, b, 2);
        if (d->affine) memcpy(&mh, b + 2, 2);
        *scale = lb_f16_to_f32(sh);
        *min   = d->affine ? lb_f16_to_f32(mh) : 0.0f;
        return;
    }
    float sm[2] = { 0.0f, 0.0f };
    memcpy(sm, b, header_bytes(d, true));
    *scale = sm[0];
    *min   = sm[1];
}

static int32_t grid_levels(const lb_intn_desc *d, const void *block, float *v) {
    float         scale, min;
    const int32_t qmin = qmin_of(d), n = qmax_of(d) - qmin + 1;
    stored_scale(d, block, &scale, &min);
    for (int32_t k = 0; k < n; k++) v[k] = (float)(k + qmin) * scale + min; /* as decode */
    return n;
}

/* the bits of value j: [j*n, j*n + n) of the packed bytes after the header, LSB first */
static void grid_set(const lb_intn_desc *d, void *block, int32_t j, int32_t k) {
    uint8_t       *q   = (uint8_t *)block + header_bytes(d, d->group <= 0);
    const uint32_t c   = (uint32_t)(k + qmin_of(d)) & ((1u << d->bits) - 1);
    int64_t        bit = (int64_t)j * d->bits;
    for (int32_t i = 0; i < d->bits; i++, bit++) {
        uint8_t *p = q + bit / 8;
        *p         = (uint8_t)((*p & ~(1u << (bit % 8))) | ((c >> i) & 1u) << (bit % 8));
    }
}

static int32_t grid_nearest(const lb_intn_desc *d, const void *block, float x, float *level) {
    float         scale, min;
    const int32_t qmin = qmin_of(d);
    stored_scale(d, block, &scale, &min);
    const int32_t q = round_level(x, min, inverse_of(scale), qmin, qmax_of(d));
    *level          = (float)q * scale + min;
    return q - qmin;
}

#define LB_INTN_GRID(U, L, ID, BITS, AFFINE, GROUP)                                               \
    static int32_t grid_levels_##L(const void *b, int32_t j, float *v) {                           \
        (void)j;                                                                                   \
        return grid_levels(&k_##L, b, v);                                                          \
    }                                                                                              \
    static void grid_set_##L(void *b, int32_t j, int32_t k) { grid_set(&k_##L, b, j, k); }         \
    static int32_t grid_nearest_##L(const void *b, int32_t j, float x, float *level) {             \
        (void)j;                                                                                   \
        return grid_nearest(&k_##L, b, x, level);                                                  \
    }
LB_INTN_TYPES(LB_INTN_GRID)
#undef LB_INTN_GRID

static const lb_grid_ops k_intn_grids[LB_TYPE_COUNT] = {
#define LB_INTN_GRID_ENTRY(U, L, ID, BITS, AFFINE, GROUP)                                         \
    [LB_TYPE_##U] = { grid_levels_##L, grid_set_##L, grid_nearest_##L },
    LB_INTN_TYPES(LB_INTN_GRID_ENTRY)
#undef LB_INTN_GRID_ENTRY
};

const lb_grid_ops *lb_intn_grid(lb_type t) {
    if ((int)t < 0 || t >= LB_TYPE_COUNT || !k_intn_grids[t].levels) return NULL;
    return &k_intn_grids[t];
}

static const struct {
    lb_type      type;
    lb_intn_desc desc;
} k_intn[] = {
#define LB_INTN_ENTRY(U, L, ID, BITS, AFFINE, GROUP) { LB_TYPE_##U, { BITS, AFFINE, GROUP } },
    LB_INTN_TYPES(LB_INTN_ENTRY)
#undef LB_INTN_ENTRY
};

bool lb_intn_desc_of(lb_type t, lb_intn_desc *out) {
    for (size_t i = 0; i < sizeof k_intn / sizeof k_intn[0]; i++)
        if (k_intn[i].type == t) {
            *out = k_intn[i].desc;
            return true;
        }
    return false;
}

lb_type lb_intn_type(int32_t bits, bool affine, int32_t group) {
    for (size_t i = 0; i < sizeof k_intn / sizeof k_intn[0]; i++) {
        const lb_intn_desc *d = &k_intn[i].desc;
        if (d->bits == bits && d->affine == affine && d->group == group) return k_intn[i].type;
    }
    return LB_TYPE_INVALID;
}
