/* Read-only byte sources: a file mapped whole (read-only mmap) or borrowed memory.
 * Parsers read through lb_source and check every offset against size themselves. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fail.h"
#include "lowbit/core.h"

lb_status lb_source_open_file(lb_source *src, const char *path, lb_error *err) {
    memset(src, 0, sizeof *src);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    LB_RETURN_IF(fd < 0, err, LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lb_fail(err, LB_ERR_IO, "%s: not a regular file", path);
    }
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
    if (src->map) munmap(src->map, src->size);
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
