/* Rotary rows between the two orders a file may store (rotary.h). */
#include <string.h>

#include "rotary.h"

void lb_rotary_rows(void *dst, const void *src, int64_t rows, size_t row_bytes, int64_t head_rows,
                    bool to_pairs) {
    const uint8_t *s = src;
    uint8_t       *d = dst;
    const int64_t  half = head_rows / 2;
    for (int64_t h0 = 0; h0 + head_rows <= rows; h0 += head_rows)
        for (int64_t side = 0; side < 2; side++)
            for (int64_t j = 0; j < half; j++) {
                const int64_t pair = h0 + 2 * j + side, split = h0 + side * half + j;
                memcpy(d + (size_t)(to_pairs ? pair : split) * row_bytes,
                       s + (size_t)(to_pairs ? split : pair) * row_bytes, row_bytes);
            }
}

int64_t lb_rotary_head_rows(const lb_model *m, const lb_slot *s) {
    /* DeepSeek's HF q keeps its rotary part in pairs (its RoPE de-interleaves them first) */
    return s->rotary == LB_DIM_1 || (m->arch && m->arch->ops.mla) ? 0 : m->cfg.head_dim;
}
