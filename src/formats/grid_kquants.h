/* The grid functions of the super-block types (grid_kquants.c) that grid.c's table points
 * to: per type, levels(block, j, levels) and set_code(block, j, k) as in lb_grid_ops,
 * j = 0..255 within the super-block. Internal to src/formats. */
#ifndef LB_FORMATS_GRID_KQUANTS_H
#define LB_FORMATS_GRID_KQUANTS_H

#include <stdint.h>

#define LB_GRID_KQ_DECLARE(X)                                                                      \
    int32_t lb_grid_##X##_levels(const void *block, int32_t j, float *levels);                     \
    void    lb_grid_##X##_set(void *block, int32_t j, int32_t k)

LB_GRID_KQ_DECLARE(q2_k);
LB_GRID_KQ_DECLARE(q3_k);
LB_GRID_KQ_DECLARE(q4_k);
LB_GRID_KQ_DECLARE(q5_k);
LB_GRID_KQ_DECLARE(q6_k);
LB_GRID_KQ_DECLARE(iq4_xs);
/* the affine ones' scans (lb_grid_ops.scan: the nearest level's code, a few levels seen) */
int32_t lb_grid_q3_k_scan(const void *block, int32_t j, float x, float *level);
int32_t lb_grid_q4_k_scan(const void *block, int32_t j, float x, float *level);
int32_t lb_grid_q5_k_scan(const void *block, int32_t j, float x, float *level);
int32_t lb_grid_q6_k_scan(const void *block, int32_t j, float x, float *level);

#undef LB_GRID_KQ_DECLARE

#endif
