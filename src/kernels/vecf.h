/* Elementwise f32 functions of the forward pass with an exponential in them (SiLU, softmax),
 * one table per ISA like the dot products (qdot.h): the same C (vecf_body.h) compiled for
 * each, vectorized by the compiler; the plain build of it is the reference. Their exp is
 * Cephes' expf (range reduction by ln 2, a degree-5 polynomial), within 2 ulp of libm's. */
#ifndef LB_KERNELS_VECF_H
#define LB_KERNELS_VECF_H

#include <stdint.h>

#include "qdot.h"

typedef struct lb_vecf {
    /* g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i] */
    void (*silu_mul)(float *g, const float *u, int64_t n);
    /* x = softmax(x): exp(x[i] - max x) / their sum */
    void (*softmax)(float *x, int64_t n);
    /* the exponential alone (tests) */
    void (*exp)(float *y, const float *x, int64_t n);
} lb_vecf;

/* The table of the ISA the dot products use (lb_qdot_isa), or of a given ISA (NULL where the
 * CPU lacks it). */
const lb_vecf *lb_vecf_get(void);
const lb_vecf *lb_vecf_get_isa(lb_isa isa);

void lb_vecf_fill_ref(lb_vecf *v);
void lb_vecf_fill_avx2(lb_vecf *v);
void lb_vecf_fill_avx512(lb_vecf *v);

#endif
