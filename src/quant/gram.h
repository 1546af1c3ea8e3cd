/* Gram products of calibration activations, X^T X and X^T Y, whose bits do not depend on the
 * thread count (gram.c): OpenMP over column tiles, each one single-threaded call. Row-major.
 * With bf16 (and a CPU with AVX512_BF16): the products of the activations rounded to bf16
 * (lb_f32_to_bf16), summed in f32 by the BF16 kernel's vdpbf16ps, at about twice sgemm's
 * rate, as the fast kernels round activations; else f32 by sgemm/ssyrk. Each returns false when
 * out of memory (then nothing is written). */
#ifndef LB_QUANT_GRAM_H
#define LB_QUANT_GRAM_H

#include <stdbool.h>
#include <stdint.h>

/* whether the bf16 products run here (else bf16 asks for f32 ones) */
bool lb_gram_bf16_available(void);
/* the upper triangle of S (n x n) = w X^T X + beta S, X [T, n]; the strict lower triangle is
 * left undefined */
bool lb_gram_upper(int32_t n, int32_t T, float w, const float *X, float beta, float *S, bool bf16);
/* S (n x n) = X^T Y + beta S, X and Y [T, n] */
bool lb_gram_cross(int32_t n, int32_t T, const float *X, const float *Y, float beta, float *S, bool bf16);
/* The same products, each f32 result added into an f64 sum S64 (n x n; upper: its upper
 * triangle only) as it leaves its tile: the bits of the product into S and then S64 += S,
 * without S */
bool lb_gram_upper_add(int32_t n, int32_t T, float w, const float *X, double *S64, bool bf16);
bool lb_gram_cross_add(int32_t n, int32_t T, const float *X, const float *Y, double *S64, bool bf16);
/* e[r] += the sum over the tokens t of (X R^T)[t, r]^2, X [T, n], R [m, n] (rows): what
 * r^T (X^T X) r would give, for m rows at m n T products instead of n^2 T / 2; f32 products
 * (with bf16 where those run: of X rounded to bf16, as lb_gram_upper's would be), each row's
 * squares summed in f64 in token order */
bool lb_gram_out_sq_add(int32_t n, int32_t T, const float *X, const float *R, int64_t m, double *e, bool bf16);

#endif
