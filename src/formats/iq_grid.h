/* The i-quants' lattices (ggml's iq2xxs_grid .. iq1s_grid): each grid point is 8 (IQ1, IQ2) or
 * 4 (IQ3) small levels, stored in ggml-common.h as bytes. lowbit keeps each grid once, as the
 * point's level indices packed into a uint16 (2 or 3 bits a position), and expands it on first
 * use into the bytes ggml's tables hold (for dequantization and the kernels) and, for the
 * quantizers, into the search structure ggml's iq2xs_init_impl / iq3xs_init_impl build: a map
 * from every level pattern to its grid point, or to the list of nearest points when the
 * pattern is not on the grid. */
#ifndef LB_FORMATS_IQ_GRID_H
#define LB_FORMATS_IQ_GRID_H

#include <stdint.h>

typedef enum lb_iq_grid_id {
    LB_IQG_IQ2XXS, /* 256 points of 8, levels 8 25 43 */
    LB_IQG_IQ2XS,  /* 512 points of 8, levels 8 25 43 */
    LB_IQG_IQ2S,   /* 1024 points of 8, levels 8 25 43 62 */
    LB_IQG_IQ1S,   /* 2048 points of 8, levels -1 0 1 (IQ1_S and IQ1_M) */
    LB_IQG_IQ3XXS, /* 256 points of 4, levels 4 12 .. 52 62 */
    LB_IQG_IQ3S,   /* 512 points of 4, levels 1 3 .. 15 */
    LB_IQG_COUNT
} lb_iq_grid_id;

#define LB_IQ_NO_PATTERN INT32_MIN

typedef struct lb_iq_grid {
    int32_t n;      /* points */
    int32_t dim;    /* values per point: 8 or 4 */
    int32_t bits;   /* bits per position of a level pattern: 2 or 3 */
    int32_t n_levels;  /* levels a position of the search's patterns takes: 3 or 8 */
    int8_t  level[8];  /* their values (ascending) */
    /* point p's values: values[dim * p .. dim * p + dim) (ggml's grid bytes, so a point of 8
     * reads as one little-endian uint64 of ggml's table) */
    const int8_t *values;
    /* the quantizers' view, set by lb_iq_grid_search only: a position's level l is the odd
     * integer 2l + 1; map[pattern] (pattern = sum l_k << bits * k) is the point with those
     * levels, or -(o + 1): neighbours[o] = count, then that many nearest points (by squared
     * distance in odd-integer units; ties by index), within the nwant nearest distances; or
     * LB_IQ_NO_PATTERN for a pattern with a level past n_levels (never looked up). */
    const int8_t   *odd;   /* dim * n: 2l + 1 per position */
    const int32_t  *map;
    const uint16_t *neighbours;
} lb_iq_grid;

/* The grid with its values (built once, thread-safe). */
const lb_iq_grid *lb_iq_grid_get(lb_iq_grid_id id);
/* The grid with the quantizers' search structure too (built once, thread-safe; IQ1's takes
 * the longest, about a second). */
const lb_iq_grid *lb_iq_grid_search(lb_iq_grid_id id);

/* IQ1's shift: values are d (point + delta), delta = +-1/8 */
#define LB_IQ1_DELTA 0.125f

/* IQ1_M's f16 super-block scale, spread over the top nibbles of its four scale words */
static inline uint16_t lb_iq1m_d(const uint16_t sc[4]) {
    return (uint16_t)((sc[0] >> 12) | (sc[1] >> 8 & 0xf0) | (sc[2] >> 4 & 0xf00) | (sc[3] & 0xf000));
}

/* The sign byte of a 7-bit sign index: bit 7 makes the number of negative values even
 * (ggml's ksigns_iq2xs). */
static inline uint8_t lb_iq_signs(uint32_t idx7) {
    const uint32_t x = idx7 ^ idx7 >> 4; /* the parity of 7 bits is that of these 4 */
    return (uint8_t)(idx7 | (0x6996u >> (x & 15) & 1) << 7);
}

#endif
