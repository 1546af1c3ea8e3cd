/* A request to stop, set from a signal handler and polled by long jobs at points where they
 * can stop with their state intact. */
#include <signal.h>

#include "lowbit/core.h"

static volatile sig_atomic_t g_signal;

void lb_interrupt(int sig) { g_signal = sig > 0 ? sig : 1; }

int lb_interrupted(void) { return g_signal; }
