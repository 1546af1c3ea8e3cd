/* The library's version (core.h), from the build (CMake's project version). */
#include "lowbit/core.h"

const char *lb_version(void) { return LB_VERSION; }
