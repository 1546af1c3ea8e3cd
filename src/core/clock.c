/* Monotonic time for the library's timings (core.h). */
#include <time.h>

#include "lowbit/core.h"

double lb_time_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
