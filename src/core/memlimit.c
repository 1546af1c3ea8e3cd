/* How much memory this process may use: the machine's physical memory, or less when a memory
 * cgroup (v2 memory.max, v1 memory.limit_in_bytes) that holds the process says so. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lowbit/core.h"

/* the number in a file, or 0 (absent, "max", unreadable) */
static size_t read_limit(const char *path) {
    FILE              *f = fopen(path, "r");
    unsigned long long v = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu", &v) != 1) v = 0;
    fclose(f);
    return (size_t)v;
}

size_t lb_memory_limit(void) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t     limit = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
    FILE      *f     = fopen("/proc/self/cgroup", "r");
    char       line[1024];
    while (f && fgets(line, sizeof line, f)) { /* "0::/path" (v2) or "N:memory:/path" (v1) */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        c2[strcspn(c2, "\n")] = 0;
        const bool v2 = c2 == c1 + 1, v1 = !strncmp(c1 + 1, "memory", 6) && c1 + 7 == c2;
        if (!v1 && !v2) continue;
        char   path[1200];
        size_t l = 0;
        if (v2) {
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", c2 + 1);
            if (!(l = read_limit(path))) {
                snprintf(path, sizeof path, "/sys/fs/cgroup/unified%s/memory.max", c2 + 1);
                l = read_limit(path);
            }
        } else {
            snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", c2 + 1);
            l = read_limit(path);
        }
        if (l > 0 && (limit == 0 || l < limit)) limit = l;
    }
    if (f) fclose(f);
    return limit;
}
