/* Thread count for OpenMP regions and for OpenBLAS, set in one place. */
#include <omp.h>

#include <cblas.h>

#include "lowbit/core.h"

static int g_threads;

void lb_threads_set(int n) {
    if (n <= 0) n = omp_get_num_procs();
    g_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(1); /* lowbit splits the work itself, with OpenMP */
}

int lb_threads_get(void) {
    if (g_threads <= 0) lb_threads_set(0);
    return g_threads;
}
