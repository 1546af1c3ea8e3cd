/* Per-type access to the grid of one block: which values position j of a block can take,
 * given the scales already stored in it, and how to store the choice. For methods that
 * choose each value themselves after the format fixed a block's scales (GPTQ). For the
 * row-scaled types (one scale per row or per tensor at the start of each row) the block is
 * the whole row: j runs over the row. */
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
    /* optional (NULL: the nearest of the levels): the code the type's own quantizer gives x
     * at position j with the block's scales as stored, its level into *level */
    int32_t (*nearest)(const void *block, int32_t j, float x, float *level);
} lb_grid_ops;

/* NULL when the type offers no grid access. */
const lb_grid_ops *lb_type_grid(lb_type t);

/* Round x onto position j's grid and store the code: with the type's own rounding when it
 * has one (nearest), else the nearest level (ties to the lower code). Returns the level. */
float lb_grid_round(const lb_grid_ops *g, void *block, int32_t j, float x);

#endif
