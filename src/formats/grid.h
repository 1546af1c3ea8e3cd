/* Per-type access to the grid of one block: which values position j of a block can take,
 * given the scales already stored in it, and how to store the choice. For methods that
 * choose each value themselves after the format fixed a block's scales (GPTQ). For the
 * row-scaled types (one scale per row or per tensor at the start of each row) the block is
 * the whole row: j runs over the row. */
#ifndef LB_FORMATS_GRID_H
#define LB_FORMATS_GRID_H

#include <stdbool.h>
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
    /* optional, for a type without `nearest`: the nearest level's code as a scan of the levels
     * finds it (the first of equals), from a few of them (the affine grids: LB_GRID_NEAREST) */
    int32_t (*scan)(const void *block, int32_t j, float x, float *level);
} lb_grid_ops;

/* NULL when the type offers no grid access. */
const lb_grid_ops *lb_type_grid(lb_type t);

/* Vector grids (the i-quants, iq_vgrid.c): a block's values are codewords of `dim` values
 * (a grid point with signs, or IQ1's shifted ternary point) scaled by the block's stored
 * scales. For GPTQ on the lattices, which chooses each group's codeword itself. */
#define LB_VGRID_MAX 1024 /* most candidates offered for one group */
typedef struct lb_vgrid_ops {
    int32_t dim;      /* values per group: 8, or 4 (IQ3) */
    int32_t sub;      /* values per block scale: 16 or 32 */
    int32_t n_scales; /* codes a block scale takes: 16 (IQ2, IQ3) or 8 (IQ1) */
    /* codewords of group g (values g dim .. g dim + dim - 1) near x, the values wanted there,
     * as the block's scales (and the signs already stored, where parity ties groups) allow:
     * their values (dim each) into vals and their codes into codes; returns how many (>= 1).
     * wide: also every sign pattern one flip away where parity forbids x's own */
    int32_t (*candidates)(const void *block, int32_t g, const float *x, bool wide, float *vals,
                          uint32_t *codes);
    void (*set)(void *block, int32_t g, uint32_t code); /* store code at group g */
    int32_t (*get_scale)(const void *block, int32_t s); /* block scale s's code */
    void (*set_scale)(void *block, int32_t s, int32_t code);
} lb_vgrid_ops;

/* NULL when t is not a vector-grid type. */
const lb_vgrid_ops *lb_type_vgrid(lb_type t);

/* The body of a scan function for NL levels LEVEL(k) monotone in k (an affine grid, each
 * level computed by the levels function's own expression): the code lb_grid_round's scan of
 * all levels would take (the nearest, the first of equals) from the few levels around EST,
 * x's fractional code. The distance to x is unimodal in k, so a step left while not farther
 * and right while nearer ends at the scan's answer; a NaN estimate scans them all. Returns the
 * code, its level into *LV. */
#define LB_GRID_NEAREST(NL, LEVEL, EST, X, LV)                                                     \
    do {                                                                                           \
        const float e_ = (EST);                                                                    \
        int32_t     k_ = 0, hi_ = (NL) - 1;                                                        \
        if (e_ == e_) { /* not NaN: the window [floor(e) - 1, floor(e) + 2], clamped */            \
            const float c_ = e_ < 0.0f ? 0.0f : e_ > (float)(NL) ? (float)(NL) : e_;              \
            k_             = (int32_t)c_ - 1 < 0 ? 0 : (int32_t)c_ - 1 > hi_ ? hi_ : (int32_t)c_ - 1; \
            hi_            = k_ + 3 < hi_ ? k_ + 3 : hi_;                                          \
        }                                                                                          \
        float d_ = fabsf(LEVEL(k_) - (X));                                                         \
        for (int32_t i_ = k_ + 1; i_ <= hi_; i_++)                                                 \
            if (fabsf(LEVEL(i_) - (X)) < d_) k_ = i_, d_ = fabsf(LEVEL(i_) - (X));                 \
        while (k_ > 0 && fabsf(LEVEL(k_ - 1) - (X)) <= d_) k_--, d_ = fabsf(LEVEL(k_) - (X));      \
        while (k_ < (NL) - 1 && fabsf(LEVEL(k_ + 1) - (X)) < d_) k_++, d_ = fabsf(LEVEL(k_) - (X)); \
        *(LV) = LEVEL(k_);                                                                         \
        return k_;                                                                                 \
    } while (0)

/* Round x onto position j's grid and store the code: with the type's own rounding when it
 * has one (nearest), else the nearest level (ties to the lower code). Returns the level. */
float lb_grid_round(const lb_grid_ops *g, void *block, int32_t j, float x);

#endif
