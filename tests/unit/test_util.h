/* Helpers shared by the unit tests: cmocka includes, paths to test data, skipping. */
#ifndef LB_TEST_UTIL_H
#define LB_TEST_UTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lowbit/lowbit.h"

/* Path of a file under ../shared/data, or NULL (and a message) when it is absent. */
static inline const char *shared_path(const char *rel, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", LB_SHARED_DATA, rel);
    if (access(buf, R_OK) != 0) {
        printf("# skip: %s is absent (../shared is not beside this checkout)\n", buf);
        return NULL;
    }
    return buf;
}

/* FNV-1a 64 of n bytes: the hash the golden lists in tests/golden record */
static inline uint64_t fnv1a(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t       h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Path of a file in the repository. */
static inline const char *repo_path(const char *rel, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", LB_SOURCE_DIR, rel);
    return buf;
}

/* A scratch file name unique to this process. */
static inline const char *tmp_path(const char *name, char *buf, size_t cap) {
    const char *dir = getenv("TMPDIR");
    snprintf(buf, cap, "%s/lowbit-test-%d-%s", dir ? dir : "/tmp", (int)getpid(), name);
    return buf;
}

/* Random numbers for synthetic data: splitmix64 in (0, 1), and N(0, 1) by Box-Muller. */
static inline double test_uniform(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z          = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return ((double)((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0;
}
static inline double test_gauss(uint64_t *state) {
    const double u = test_uniform(state), v = test_uniform(state);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* sqrt(sum (a - ref)^2 / sum ref^2): a's relative RMS error against ref */
static inline double test_rel_rms(const float *a, const float *ref, size_t n) {
    double se = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        se += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
        ss += (double)ref[i] * ref[i];
    }
    return sqrt(se / ss);
}

#define SKIP_UNLESS(p)                                                                             \
    do {                                                                                           \
        if (!(p)) {                                                                                \
            skip();                                                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#endif
