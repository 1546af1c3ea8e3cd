/* The grids of lowbit's INTn types (intn.c) that lb_type_grid (grid.c) hands out: every
 * group, per-row and per-tensor variant, symmetric and affine. Internal to src/formats. */
#ifndef LB_FORMATS_GRID_INTN_H
#define LB_FORMATS_GRID_INTN_H

#include "grid.h"

/* NULL when t is not an INTn type. */
const lb_grid_ops *lb_intn_grid(lb_type t);

#endif
