/* The compute kernels chosen at run time: SIMD versions of the quantized dot products are
 * picked once from the CPU's features (lb_cpu_get_features); LB_FORCE_REF=1 in the
 * environment forces the scalar reference, LB_MAX_ISA=NAME caps the choice at that tier. */
#ifndef LOWBIT_KERNELS_H
#define LOWBIT_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/* "avx512vnni", "avx2" or "scalar". */
const char *lb_kernels_name(void);

#ifdef __cplusplus
}
#endif
#endif
