/* For fuzz targets whose parser takes a path: the input as an unnamed file (a memfd, read
 * through /proc/self/fd/N), or as files in a private directory made on first use and
 * removed at exit. Header-only: each target includes it once. */
#ifndef LB_FUZZ_FILE_H
#define LB_FUZZ_FILE_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The input in a memfd; its path in path[64]. Returns the fd (close it) or -1. */
static inline int fuzz_memfd(const uint8_t *data, size_t size, char path[64]) {
    const int fd = memfd_create("lowbit-fuzz", 0);
    if (fd < 0) return -1;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return -1;
    }
    snprintf(path, 64, "%s%d", "/proc/self/fd/", fd);
    return fd;
}

static char fuzz_dir_path[256];

static inline void fuzz_dir_remove(void) {
    DIR *d = opendir(fuzz_dir_path);
    for (struct dirent *e; d && (e = readdir(d));) {
        char p[600];
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(fuzz_dir_path);
}

/* A private directory under $TMPDIR (or /tmp), the same for the whole run; NULL on failure. */
static inline const char *fuzz_dir(void) {
    if (fuzz_dir_path[0]) return fuzz_dir_path;
    const char *t = getenv("TMPDIR");
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/lowbit-fuzz-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(fuzz_dir_path)) {
        fuzz_dir_path[0] = 0;
        return NULL;
    }
    atexit(fuzz_dir_remove);
    return fuzz_dir_path;
}

/* Write n bytes as dir/name (replacing it); false on failure. */
static inline bool fuzz_put(const char *dir, const char *name, const void *p, size_t n) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    const bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

#endif
