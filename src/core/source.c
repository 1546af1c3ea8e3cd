/* Read-only byte sources: a file mapped whole (read-only mmap) or borrowed memory.
 * Parsers read through lb_source and check every offset against size themselves.
 * Inputs are opened without blocking (a FIFO would hang the open) and must be regular files.
 * Each mapping is listed in a table a SIGBUS handler can read (lb_source_name_at): a file
 * that shrinks while mapped faults on the missing pages. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fail.h"
#include "lowbit/core.h"

#define MAP_SLOTS 64

typedef struct {
    atomic_uintptr_t start; /* 0: free */
    size_t           size;
    const char      *name;
} map_slot;

static map_slot        g_maps[MAP_SLOTS];
static pthread_mutex_t g_maps_mu = PTHREAD_MUTEX_INITIALIZER;

static void map_register(const lb_source *src) {
    pthread_mutex_lock(&g_maps_mu);
    for (int i = 0; i < MAP_SLOTS; i++)
        if (atomic_load(&g_maps[i].start) == 0) {
            g_maps[i].size = src->size;
            g_maps[i].name = src->name;
            atomic_store(&g_maps[i].start, (uintptr_t)src->map);
            break;
        }
    pthread_mutex_unlock(&g_maps_mu);
}

static void map_unregister(const void *map) {
    for (int i = 0; i < MAP_SLOTS; i++)
        if (atomic_load(&g_maps[i].start) == (uintptr_t)map) atomic_store(&g_maps[i].start, 0);
}

const char *lb_source_name_at(const void *addr) {
    const uintptr_t a = (uintptr_t)addr;
    for (int i = 0; i < MAP_SLOTS; i++) {
        const uintptr_t s = atomic_load(&g_maps[i].start);
        if (s && a >= s && a - s < g_maps[i].size) return g_maps[i].name;
    }
    return NULL;
}

/* open path for reading: without blocking, and only a regular file */
static lb_status open_regular(const char *path, int *fd_out, struct stat *sb, lb_error *err) {
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    LB_RETURN_IF(fd < 0, err, LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        close(fd);
        return lb_fail(err, LB_ERR_IO, "%s: not a regular file", path);
    }
    *fd_out = fd;
    return LB_OK;
}

lb_status lb_open_input(const char *path, FILE **out, lb_error *err) {
    int         fd;
    struct stat sb;
    lb_status   st = open_regular(path, &fd, &sb, err);
    if (st) return st;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    *out = fdopen(fd, "rb");
    if (!*out) {
        close(fd);
        return lb_fail(err, LB_ERR_NOMEM, "%s: cannot open: %s", path, strerror(errno));
    }
    return LB_OK;
}

lb_status lb_source_open_file(lb_source *src, const char *path, lb_error *err) {
    memset(src, 0, sizeof *src);
    int         fd;
    struct stat sb;
    lb_status   st = open_regular(path, &fd, &sb, err);
    if (st) return st;
    src->size = (size_t)sb.st_size;
    if (src->size > 0) {
        void *m = mmap(NULL, src->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return lb_fail(err, LB_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
        src->map  = m;
        src->data = m;
    }
    close(fd);
    src->name = strdup(path);
    if (!src->name) {
        lb_source_close(src);
        return lb_fail(err, LB_ERR_NOMEM, "%s: out of memory", path);
    }
    if (src->map) map_register(src);
    return LB_OK;
}

lb_status lb_source_open_memory(lb_source *src, const void *data, size_t size, const char *name,
                                lb_error *err) {
    memset(src, 0, sizeof *src);
    src->data = data;
    src->size = size;
    src->name = strdup(name ? name : "<memory>");
    LB_RETURN_IF(!src->name, err, LB_ERR_NOMEM, "out of memory");
    return LB_OK;
}

void lb_source_close(lb_source *src) {
    if (!src) return;
    if (src->map) {
        map_unregister(src->map);
        munmap(src->map, src->size);
    }
    free(src->name);
    memset(src, 0, sizeof *src);
}

lb_status lb_read_file(const char *path, char **out, size_t *out_size, lb_error *err) {
    lb_source src;
    lb_status st = lb_source_open_file(&src, path, err);
    if (st != LB_OK) return st;
    char *buf = malloc(src.size + 1);
    if (!buf) {
        lb_source_close(&src);
        return lb_fail(err, LB_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, src.size);
    }
    if (src.size) memcpy(buf, src.data, src.size);
    buf[src.size] = '\0';
    *out          = buf;
    if (out_size) *out_size = src.size;
    lb_source_close(&src);
    return LB_OK;
}
