/* Per-type access to the grid of one block: which values position j of a block can take,
 * given the scales already stored in it, and how to store the choice. For methods that
 * choose each value themselves after the format fixed a block's scales (GPTQ). */
#ifndef LB_FORMATS_GRID_H
#define LB_FORMATS_GRID_H

#include <stdint.h>

#include "lowbit/tensor.h"

#define LB_GRID_MAX 256 /* most levels a position can take */

typedef struct lb_grid_ops {
    /* levels[k] = the value code k of position j takes; returns the number of codes */
    int32_t (*levels)(const void *block, int32_t j, float *levels);
    /* store code k at position j */
    void (*set_code)(void *block, int32_t j, int32_t k);
} lb_grid_ops;

/* NULL when the type offers no grid access. */
const lb_grid_ops *lb_type_grid(lb_type t);

#endif
