/* Output files and directories, written so that OUT is only ever a complete file of ours.
 *
 * OUT is written under a temporary name beside it, ".BASE.lowbit-PID-RANDOM.tmp", created with
 * O_CREAT | O_EXCL | O_NOFOLLOW (a symlink or a file already there is never followed or
 * reused) and mode 0666 less the umask; when complete it is flushed to disk, renamed over OUT
 * and the directory is flushed. OUT itself must be absent, a regular file, or (for a directory
 * output) a directory: a device node, a FIFO or a socket is refused, before and after the work.
 *
 * While a temp exists its path sits in a table that lb_out_cleanup_signal_safe() reads from a
 * signal handler: it removes every temp (and a temp directory's files) with async-signal-safe
 * calls only. A temp left by SIGKILL names a PID that is gone; the next run writing the same
 * OUT removes it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fail.h"
#include "lowbit/core.h"

#define SLOTS    64
#define BASE_MAX 180 /* of OUT's base name kept in the temp's name (NAME_MAX is 255) */

enum { SLOT_FREE, SLOT_FILE, SLOT_DIR };

static char            g_path[SLOTS][PATH_MAX];
static atomic_int      g_kind[SLOTS];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static int slot_take(const char *path, int kind) {
    if (strlen(path) >= PATH_MAX) return -1;
    pthread_mutex_lock(&g_mu);
    int s = -1;
    for (int i = 0; i < SLOTS && s < 0; i++)
        if (atomic_load(&g_kind[i]) == SLOT_FREE) s = i;
    if (s >= 0) {
        strcpy(g_path[s], path);
        atomic_store(&g_kind[s], kind); /* the path is complete before a handler can see it */
    }
    pthread_mutex_unlock(&g_mu);
    return s;
}

static void slot_free(int s) {
    if (s >= 0) atomic_store(&g_kind[s], SLOT_FREE);
}

struct dirent64_raw { /* the kernel's linux_dirent64 */
    unsigned long long ino;
    long long          off;
    unsigned short     reclen;
    unsigned char      type;
    char               name[];
};

/* Remove a directory holding files only (lowbit's temp directories), async-signal-safe. */
static void remove_flat_dir(const char *path) {
    const int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        char buf[4096] __attribute__((aligned(8)));
        long n;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
            for (long off = 0; off < n;) {
                const struct dirent64_raw *e = (const void *)(buf + off);
                if (strcmp(e->name, ".") && strcmp(e->name, "..")) unlinkat(fd, e->name, 0);
                off += e->reclen;
            }
        close(fd);
    }
    rmdir(path);
}

void lb_out_cleanup_signal_safe(void) {
    for (int i = 0; i < SLOTS; i++) {
        const int kind = atomic_load(&g_kind[i]);
        if (kind == SLOT_FILE) unlink(g_path[i]);
        else if (kind == SLOT_DIR) remove_flat_dir(g_path[i]);
    }
}

/* OUT's directory and base name, as written (no canonicalization) */
static void split(const char *path, char *dir, size_t cap, const char **base) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, cap, ".");
        *base = path;
    } else if (slash == path) {
        snprintf(dir, cap, "/");
        *base = slash + 1;
    } else {
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
        *base = slash + 1;
    }
}

lb_status lb_out_check(const char *path, bool is_dir, lb_error *err) {
    LB_RETURN_IF(!path || !*path, err, LB_ERR_PARAM, "empty output path");
    const char *base;
    char        dir[PATH_MAX];
    LB_RETURN_IF(strlen(path) >= PATH_MAX - 64, err, LB_ERR_PARAM, "%s: path too long", path);
    split(path, dir, sizeof dir, &base);
    LB_RETURN_IF(!*base || !strcmp(base, ".") || !strcmp(base, ".."), err, LB_ERR_PARAM,
                 "%s: cannot create: not a file name", path);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (is_dir) LB_RETURN_IF(!S_ISDIR(sb.st_mode), err, LB_ERR_IO, "%s: exists and is not a directory", path);
        else LB_RETURN_IF(!S_ISREG(sb.st_mode), err, LB_ERR_IO,
                          "%s: exists and is not a regular file; lowbit only replaces regular files", path);
    }
    LB_RETURN_IF(stat(dir, &sb) != 0, err, LB_ERR_IO, "%s: cannot create: %s: %s", path, dir, strerror(errno));
    LB_RETURN_IF(!S_ISDIR(sb.st_mode), err, LB_ERR_IO, "%s: cannot create: %s is not a directory", path, dir);
    LB_RETURN_IF(access(dir, W_OK | X_OK) != 0, err, LB_ERR_IO, "%s: cannot create: %s: %s", path, dir,
                 strerror(errno));
    return LB_OK;
}

/* the temp names' common start for OUT: ".BASE.lowbit-" */
static void temp_prefix(const char *base, char *out, size_t cap) {
    snprintf(out, cap, ".%.*s.lowbit-", BASE_MAX, base);
}

/* Remove temps of OUT whose process is gone (a SIGKILLed run), if they are ours. */
static void remove_stale(const char *dir, const char *base) {
    char prefix[BASE_MAX + 16];
    temp_prefix(base, prefix, sizeof prefix);
    const size_t pl = strlen(prefix);
    DIR         *d  = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, pl) != 0) continue;
        char      *end;
        const long pid = strtol(e->d_name + pl, &end, 10);
        if (pid <= 0 || *end != '-' || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to know */
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
        struct stat sb;
        if (lstat(p, &sb) != 0 || sb.st_uid != geteuid()) continue;
        if (S_ISREG(sb.st_mode)) unlink(p);
        else if (S_ISDIR(sb.st_mode)) remove_flat_dir(p);
    }
    closedir(d);
}

/* Make a unique temp beside path (a file, or a directory when is_dir) and register it. */
static lb_status make_temp(lb_out *o, const char *path, bool is_dir, lb_error *err) {
    const lb_status st = lb_out_check(path, is_dir, err);
    if (st) return st;
    char        dir[PATH_MAX], prefix[BASE_MAX + 16];
    const char *base;
    split(path, dir, sizeof dir, &base);
    remove_stale(dir, base);
    temp_prefix(base, prefix, sizeof prefix);
    const size_t dl = strlen(path) - strlen(base); /* path's directory part, slash included */
    for (int attempt = 0; attempt < 16; attempt++) {
        unsigned char r[6];
        LB_RETURN_IF(getrandom(r, sizeof r, 0) != (ssize_t)sizeof r, err, LB_ERR_IO,
                     "%s: no random bytes for a temporary name: %s", path, strerror(errno));
        char name[PATH_MAX];
        if (snprintf(name, sizeof name, "%.*s%s%ld-%02x%02x%02x%02x%02x%02x.tmp", (int)dl, path, prefix,
                     (long)getpid(), r[0], r[1], r[2], r[3], r[4], r[5]) >= (int)sizeof name)
            return lb_fail(err, LB_ERR_PARAM, "%s: path too long", path);
        /* listed for the signal handlers before it exists: a signal right after the create must
         * find it (the name is ours alone: our PID and 48 random bits) */
        const int slot = slot_take(name, is_dir ? SLOT_DIR : SLOT_FILE);
        LB_RETURN_IF(slot < 0, err, LB_ERR_NOMEM, "%s: more than %d outputs at once", path, SLOTS);
        const int fd = is_dir ? -1 : open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (is_dir ? mkdir(name, 0777) != 0 : fd < 0) {
            const int e = errno;
            slot_free(slot);
            if (e == EEXIST) continue;
            return lb_fail(err, LB_ERR_IO, "%s: cannot create: %s", path, strerror(e));
        }
        o->tmp  = strdup(name);
        o->path = strdup(path);
        o->slot = slot;
        o->dir  = is_dir;
        if (!is_dir) o->f = fdopen(fd, "wb");
        if (!o->tmp || !o->path || (!is_dir && !o->f)) {
            if (!is_dir && !o->f) close(fd);
            if (is_dir) rmdir(name);
            else unlink(name);
            if (o->f) fclose(o->f);
            slot_free(o->slot);
            free(o->tmp);
            free(o->path);
            memset(o, 0, sizeof *o);
            return lb_fail(err, LB_ERR_NOMEM, "%s: out of memory (or more than %d outputs at once)", path, SLOTS);
        }
        return LB_OK;
    }
    return lb_fail(err, LB_ERR_IO, "%s: cannot create a unique temporary name beside it", path);
}

lb_status lb_out_open(lb_out *o, const char *path, lb_error *err) {
    memset(o, 0, sizeof *o);
    o->slot = -1;
    return make_temp(o, path, false, err);
}

lb_status lb_out_open_dir(lb_out *o, const char *path, lb_error *err) {
    memset(o, 0, sizeof *o);
    o->slot = -1;
    return make_temp(o, path, true, err);
}

static bool fsync_path(const char *path, int flags) {
    const int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    if (fd < 0) return false;
    const bool ok = fsync(fd) == 0 || errno == EINVAL || errno == EROFS; /* some files cannot sync */
    close(fd);
    return ok;
}

/* every file of a temp directory to disk, then the directory */
static bool fsync_dir_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool ok = true;
    for (struct dirent *e; ok && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[PATH_MAX];
        ok = snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p && fsync_path(p, O_NOFOLLOW);
    }
    closedir(d);
    return ok && fsync_path(dir, O_DIRECTORY);
}

void lb_fsync_parent(const char *path) {
    char        dir[PATH_MAX];
    const char *base;
    split(path, dir, sizeof dir, &base);
    fsync_path(dir, O_DIRECTORY);
}

lb_status lb_out_commit(lb_out *o, lb_error *err) {
    lb_status st = LB_OK;
    if (o->f) {
        const bool ok = fflush(o->f) == 0 && !ferror(o->f) && fsync(fileno(o->f)) == 0;
        const int  e  = errno;
        const bool closed = fclose(o->f) == 0;
        o->f = NULL;
        LB_GOTO_IF(!ok || !closed, err, LB_ERR_IO, "%s: write failed: %s", o->path, strerror(ok ? errno : e));
    } else if (o->dir) {
        LB_GOTO_IF(!fsync_dir_files(o->tmp), err, LB_ERR_IO, "%s: write failed: %s", o->path, strerror(errno));
    }
    struct stat sb; /* OUT may have been replaced while we worked */
    if (stat(o->path, &sb) == 0)
        LB_GOTO_IF(o->dir ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode), err, LB_ERR_IO,
                   "%s: exists and is not a %s", o->path, o->dir ? "directory" : "regular file");
    LB_GOTO_IF(rename(o->tmp, o->path) != 0, err, LB_ERR_IO, "%s: cannot replace: %s", o->path,
               strerror(errno));
    {
        char        dir[PATH_MAX];
        const char *base;
        split(o->path, dir, sizeof dir, &base);
        fsync_path(dir, O_DIRECTORY); /* best effort: the file is complete either way */
    }
    slot_free(o->slot);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
    o->slot = -1;
    return LB_OK;
fail:
    lb_out_abort(o);
    return st;
}

void lb_out_abort(lb_out *o) {
    if (!o || !o->tmp) return;
    if (o->f) fclose(o->f);
    if (o->dir) remove_flat_dir(o->tmp);
    else unlink(o->tmp);
    slot_free(o->slot);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
    o->slot = -1;
}
