/* Cholesky factorization and triangular inverse whose bytes do not depend on the thread count
 * (chol.c): n x n, row-major, f64, OpenMP over tiles. */
#ifndef LB_QUANT_CHOL_H
#define LB_QUANT_CHOL_H

#include <stdint.h>

/* A's lower triangle into L, A = L L^T (the strict upper triangle left as it was); 0, or the
 * 1-based column where A is not positive definite. */
int  lb_chol_lower(double *A, int64_t n);
/* U = J L^-1 J in f32 (J the reversal), upper triangular (its strict lower triangle zero), L
 * lower: the upper Cholesky factor of A^-1 when J A J = L L^T. */
void lb_tri_inverse_lower_rev(const double *L, int64_t n, float *U);

#endif
