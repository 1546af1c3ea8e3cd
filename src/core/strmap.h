/* A map from strings to indices, for duplicate checks and lookups over many names (GGUF keys
 * and tensors): open addressing on FNV-1a, the strings borrowed (they must outlive the map). */
#ifndef LB_CORE_STRMAP_H
#define LB_CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct lb_strmap {
    const char **key;
    size_t      *len;
    int64_t     *val;
    size_t       cap, n; /* cap: a power of two, at most half full */
} lb_strmap;

/* Put s[0..n) -> val unless present: returns -1 when added, the present value when there
 * already, -2 when out of memory. val must be >= 0. */
int64_t lb_strmap_put(lb_strmap *m, const char *s, size_t n, int64_t val);
/* The value of s[0..n), -1 when absent. */
int64_t lb_strmap_get(const lb_strmap *m, const char *s, size_t n);
void    lb_strmap_free(lb_strmap *m);

#endif
