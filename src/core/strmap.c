/* String -> index map in linear time (strmap.h). */
#include "strmap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static size_t find(const lb_strmap *m, const char *s, size_t n) {
    size_t j = (size_t)fnv1a(s, n) & (m->cap - 1);
    while (m->key[j] && !(m->len[j] == n && memcmp(m->key[j], s, n) == 0)) j = (j + 1) & (m->cap - 1);
    return j;
}

static bool grow(lb_strmap *m) {
    lb_strmap g = { .cap = m->cap ? m->cap * 2 : 64 };
    g.key       = calloc(g.cap, sizeof *g.key);
    g.len       = calloc(g.cap, sizeof *g.len);
    g.val       = calloc(g.cap, sizeof *g.val);
    if (!g.key || !g.len || !g.val) {
        lb_strmap_free(&g);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->key[i]) {
            const size_t j = find(&g, m->key[i], m->len[i]);
            g.key[j] = m->key[i], g.len[j] = m->len[i], g.val[j] = m->val[i];
        }
    g.n = m->n;
    lb_strmap_free(m);
    *m = g;
    return true;
}

int64_t lb_strmap_put(lb_strmap *m, const char *s, size_t n, int64_t val) {
    if (2 * (m->n + 1) > m->cap && !grow(m)) return -2;
    const size_t j = find(m, s, n);
    if (m->key[j]) return m->val[j];
    m->key[j] = s, m->len[j] = n, m->val[j] = val;
    m->n++;
    return -1;
}

int64_t lb_strmap_get(const lb_strmap *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    const size_t j = find(m, s, n);
    return m->key[j] ? m->val[j] : -1;
}

void lb_strmap_free(lb_strmap *m) {
    free(m->key);
    free(m->len);
    free(m->val);
    memset(m, 0, sizeof *m);
}
