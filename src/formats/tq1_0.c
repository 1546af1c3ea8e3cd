/* TQ1_0: ternary super-blocks of 256 values, x = t * d with t in {-1, 0, 1} and d = max |x|
 * (f16), 1.6875 bpw. Trits are packed 5 per byte as a base-3 fraction of 256: byte =
 * ceil(v * 256 / 243), v the 5-digit base-3 number of t + 1 (first value most significant),
 * so digit k comes back as ((uint8_t)(byte * 3^k) * 3) >> 8. qs packs values 0..159 (32 bytes,
 * byte m holds m, m + 32, ...) then 160..239 (16 bytes); qh the last 16, 4 per byte. */
#include <math.h>

#include "formats.h"
#include "lowbit/core.h"

/* the runs of a block: bytes in the run and trits per byte; value m + k * bytes of the run
 * goes to byte m, digit k */
static const struct {
    int nbytes, ntrits;
} k_runs[] = { { 32, 5 }, { 16, 5 }, { 4, 4 } };

enum { N_RUNS = sizeof k_runs / sizeof k_runs[0] };

static float block_absmax(const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < QK_K; j++)
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
    return amax;
}

/* Pack one run of values x (scaled by id) into out; returns the values consumed. */
static int pack_run(uint8_t *out, const float *x, int nbytes, int ntrits, float id) {
    for (int m = 0; m < nbytes; m++) {
        unsigned v = 0;
        for (int k = 0; k < 5; k++) /* missing digits (qh holds 4) are zeros at the end */
            v = 3 * v + (k < ntrits ? (unsigned)(lroundf(x[m + k * nbytes] * id) + 1) : 0u);
        out[m] = (uint8_t)((v * 256 + 242) / 243); /* ceiling of v * 256 / 243 */
    }
    return nbytes * ntrits;
}

static int unpack_run(float *y, const uint8_t *in, int nbytes, int ntrits, float d) {
    static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
    for (int k = 0; k < ntrits; k++)
        for (int m = 0; m < nbytes; m++) {
            const uint8_t q = (uint8_t)(in[m] * pow3[k]); /* digit k to the top, mod 256 */
            const int     t = (q * 3) >> 8;
            *y++            = (float)(t - 1) * d;
        }
    return nbytes * ntrits;
}

void lb_quantize_row_tq1_0_ref(void *dst, const float *x, int64_t n) {
    lb_block_tq1_0 *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d  = block_absmax(x);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d         = lb_f32_to_f16(d);
        uint8_t *out   = y[i].qs;
        for (int r = 0; r < N_RUNS; r++) {
            if (r == N_RUNS - 1) out = y[i].qh;
            x += pack_run(out, x, k_runs[r].nbytes, k_runs[r].ntrits, id);
            out += k_runs[r].nbytes;
        }
    }
}

void lb_dequantize_row_tq1_0(float *y, const void *src, int64_t n) {
    const lb_block_tq1_0 *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float    d  = lb_f16_to_f32(b[i].d);
        const uint8_t *in = b[i].qs;
        for (int r = 0; r < N_RUNS; r++) {
            if (r == N_RUNS - 1) in = b[i].qh;
            y += unpack_run(y, in, k_runs[r].nbytes, k_runs[r].ntrits, d);
            in += k_runs[r].nbytes;
        }
    }
}
