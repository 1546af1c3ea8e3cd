/* FP8 with a scale: E4M3 ("fn" variant: bias 7, no infinities, max 448, S.1111.111 NaN) and
 * E5M2 (bias 15, IEEE-like: max 57344, infinities and NaNs at exponent 31).
 * Row: { f32 scale; u8 code[C] }: 8 + 32/C bpw. Per channel ("_pc"): scale = max|x| of the
 * row / the format's max; per tensor ("_pt"): of the whole tensor, stored at the start of
 * every row (rows stay independent for reading; the quantizer sees all rows at once).
 * A value is stored as the code of x / scale, so the largest maps to the format's max, and
 * read as decode(code) * scale. Conversion to fp8 saturates (finite overflow and infinities
 * go to ±max, NaN stays NaN), rounds to nearest even and keeps subnormals. */
#include <math.h>
#include <string.h>

#include "formats.h"

typedef struct {
    int     mbits, bias;
    uint8_t max_code;  /* code of the largest finite value */
    float   max;
    float   sub_unit;  /* value of the smallest subnormal: 2^(1 - bias - mbits) */
    bool    has_inf;   /* E5M2: exponent all ones is inf / NaN; E4M3fn: only S.1111.111 is NaN */
} fp8_format;

static const fp8_format k_e4m3 = { 3, 7, 0x7e, 448.0f, 0.001953125f, false };
static const fp8_format k_e5m2 = { 2, 15, 0x7b, 57344.0f, 1.52587890625e-05f, true };

static uint8_t encode(const fp8_format *f, float x) {
    const uint8_t sign = signbit(x) ? 0x80 : 0x00;
    if (isnan(x)) return sign | 0x7f; /* a NaN in both formats */
    const float a = fabsf(x);
    if (a >= f->max) return sign | f->max_code;
    int e;
    frexpf(a, &e); /* a in [2^(e-1), 2^e) */
    const int emin = 1 - f->bias;
    int       E    = e - 1 < emin ? emin : e - 1;
    /* a in units of the spacing 2^(E - mbits) at its exponent (exact: a power-of-two scale) */
    const float q = ldexpf(a, f->mbits - E);
    float       r = floorf(q);
    const float frac = q - r;
    if (frac > 0.5f || (frac == 0.5f && ((uint32_t)r & 1u))) r += 1.0f; /* ties to even */
    uint32_t m = (uint32_t)r, code;
    if (m < (1u << f->mbits)) { /* zero or subnormal (E == emin) */
        code = m;
    } else {
        if (m == 2u << f->mbits) { /* rounded up to the next power of two */
            m >>= 1;
            E++;
        }
        code = (uint32_t)(E + f->bias) << f->mbits | (m - (1u << f->mbits));
    }
    return sign | (uint8_t)(code > f->max_code ? f->max_code : code); /* saturate */
}

static float decode(const fp8_format *f, uint8_t c) {
    const uint32_t emax = (1u << (7 - f->mbits)) - 1;
    const uint32_t e = (c & 0x7fu) >> f->mbits, m = c & ((1u << f->mbits) - 1);
    float          v;
    if (f->has_inf && e == emax) {
        v = m ? NAN : INFINITY;
    } else if (!f->has_inf && (c & 0x7fu) == 0x7fu) {
        v = NAN;
    } else if (e == 0) {
        v = (float)m * f->sub_unit;
    } else { /* normal: assemble the f32 bits */
        const uint32_t bits = ((uint32_t)((int)e - f->bias + 127) << 23) | m << (23 - f->mbits);
        memcpy(&v, &bits, sizeof v);
    }
    return c & 0x80 ? -v : v;
}

uint8_t lb_f32_to_fp8_e4m3(float x) { return encode(&k_e4m3, x); }
float   lb_fp8_e4m3_to_f32(uint8_t c) { return decode(&k_e4m3, c); }
uint8_t lb_f32_to_fp8_e5m2(float x) { return encode(&k_e5m2, x); }
float   lb_fp8_e5m2_to_f32(uint8_t c) { return decode(&k_e5m2, c); }

size_t lb_row_size_fp8(int64_t n) {
    return n < 1 || n > INT64_MAX / 16 ? 0 : sizeof(float) + (size_t)n;
}

static float amax_of(const float *x, int64_t n) {
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    return amax;
}

static void quantize_row(const fp8_format *f, uint8_t *y, const float *x, int64_t n,
                         float scale) {
    memcpy(y, &scale, sizeof scale);
    for (int64_t i = 0; i < n; i++) y[4 + i] = encode(f, scale != 0.0f ? x[i] / scale : 0.0f);
}

static void dequantize_row(const fp8_format *f, float *y, const uint8_t *q, int64_t n) {
    float scale;
    memcpy(&scale, q, sizeof scale);
    for (int64_t i = 0; i < n; i++) y[i] = decode(f, q[4 + i]) * scale;
}

/* per tensor: one scale from every row */
static size_t quantize_tensor(const fp8_format *f, void *dst, const float *src, int64_t nrow,
                              int64_t n) {
    const float  scale = amax_of(src, nrow * n) / f->max;
    const size_t rs    = lb_row_size_fp8(n);
    for (int64_t r = 0; r < nrow; r++)
        quantize_row(f, (uint8_t *)dst + (size_t)r * rs, src + r * n, n, scale);
    return (size_t)nrow * rs;
}

#define LB_FP8_DEFINE(X)                                                                          \
    void lb_quantize_row_fp8_##X##_ref(void *dst, const float *x, int64_t n) {                     \
        quantize_row(&k_##X, dst, x, n, amax_of(x, n) / k_##X.max);                                \
    }                                                                                              \
    void lb_dequantize_row_fp8_##X(float *y, const void *src, int64_t n) {                         \
        dequantize_row(&k_##X, y, src, n);                                                         \
    }                                                                                              \
    size_t lb_quantize_fp8_##X##_pt(void *dst, const float *src, int64_t nrow, int64_t n_per_row,  \
                                    const float *importance) {                                     \
        (void)importance;                                                                          \
        return quantize_tensor(&k_##X, dst, src, nrow, n_per_row);                                 \
    }
LB_FP8_DEFINE(e4m3)
LB_FP8_DEFINE(e5m2)
