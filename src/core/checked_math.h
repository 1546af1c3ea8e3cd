/* Overflow-checked size arithmetic for every size read from a file (stb-style).
 * Each returns false on overflow and leaves *out unspecified. */
#ifndef LB_CORE_CHECKED_MATH_H
#define LB_CORE_CHECKED_MATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool lb_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool lb_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool lb_mul_i64(int64_t a, int64_t b, int64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
/* Round x up to a multiple of align (a power of two). */
static inline bool lb_align_size(size_t x, size_t align, size_t *out) {
    size_t t;
    if (!lb_add_size(x, align - 1, &t)) return false;
    *out = t & ~(align - 1);
    return true;
}

#endif
