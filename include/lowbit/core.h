/* lowbit core services: half-precision conversion, CPU features, threads, timing,
 * a progress bar, and a bounds-checked read-only file source (mmap or memory). */
#ifndef LOWBIT_CORE_H
#define LOWBIT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version ("0.1.0"), as built: a program may run against another build of
 * liblowbit.so than the headers it was compiled with (version.h: LOWBIT_VERSION_STRING). */
const char *lb_version(void);

/* ---- f16 / bf16 (IEEE binary16 and bfloat16, round to nearest even) ---- */
float    lb_f16_to_f32(uint16_t h);
uint16_t lb_f32_to_f16(float f);
float    lb_bf16_to_f32(uint16_t h);
uint16_t lb_f32_to_bf16(float f);

/* ---- CPU features, detected once at run time ---- */
typedef struct lb_cpu_features {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16;
} lb_cpu_features;
const lb_cpu_features *lb_cpu_get_features(void);
/* "avx2 fma avx512f ..." for logs. */
const char *lb_cpu_features_str(void);

/* ---- threads (OpenMP underneath; also sets the BLAS thread count) ---- */
void lb_threads_set(int n); /* n <= 0: all cores */
int  lb_threads_get(void);

/* ---- time ---- */
double lb_time_sec(void); /* monotonic seconds */
size_t lb_peak_rss(void);  /* peak resident set of this process, bytes (0 when unknown) */
/* Bytes this process may use: physical memory, or a smaller limit of the memory cgroup that
 * holds it (0 when unknown). */
size_t lb_memory_limit(void);

/* ---- progress: the library reports, it never draws ----
 * Long jobs call this as they advance: done 0 at the start, then done of total units (chunks,
 * tensors, values), total at the end. what names the job ("perplexity", "write"). The CLI
 * draws a bar from it on a terminal (cli/progress.c). */
typedef void (*lb_progress_fn)(void *user, const char *what, int64_t done, int64_t total);

/* ---- read-only byte source: a whole file mmapped, or a caller's memory ---- */
typedef struct lb_source {
    const uint8_t *data;
    size_t         size;
    char          *name; /* file name, for error messages */
    void          *map;  /* non-NULL when data is an mmap we own */
} lb_source;

lb_status lb_source_open_file(lb_source *src, const char *path, lb_error *err);
/* Borrow memory (not copied; must outlive the source). */
lb_status lb_source_open_memory(lb_source *src, const void *data, size_t size, const char *name,
                                lb_error *err);
void      lb_source_close(lb_source *src);

/* Read an entire file into a malloc'd, NUL-terminated buffer. */
lb_status lb_read_file(const char *path, char **out, size_t *out_size, lb_error *err);

/* Open an input for reading without blocking on a FIFO: a regular file, else an error naming
 * it. (lb_source_open_file and lb_read_file check the same way.) */
lb_status lb_open_input(const char *path, FILE **out, lb_error *err);

/* The name of the mapped input file holding addr, NULL when none does; async-signal-safe (for
 * a SIGBUS handler: a mapped file that shrank while being read). */
const char *lb_source_name_at(const void *addr);

/* ---- output files (outfile.c) ----
 * lb_out_open makes a unique temp beside OUT (created exclusively, never through a symlink,
 * mode 0666 less the umask); write to o->f; lb_out_commit flushes it to disk and renames it
 * over OUT; lb_out_abort removes it. OUT may be absent or a regular file; a device, FIFO or
 * socket there is refused. lb_out_open_dir does the same for a directory OUT (absent or an
 * empty directory): fill the directory o->tmp, then commit. */
typedef struct lb_out {
    FILE *f;    /* the temp file (NULL for a directory) */
    char *tmp;  /* the temp's path */
    char *path; /* OUT */
    int   slot; /* its entry in the signal-cleanup table */
    bool  dir;
} lb_out;

/* Before any work: OUT can be made (its directory exists and is writable) and is no special
 * file (is_dir: OUT is absent or a directory). */
lb_status lb_out_check(const char *path, bool is_dir, lb_error *err);
lb_status lb_out_open(lb_out *o, const char *path, lb_error *err);
lb_status lb_out_open_dir(lb_out *o, const char *path, lb_error *err);
lb_status lb_out_commit(lb_out *o, lb_error *err);
void      lb_out_abort(lb_out *o);
/* Flush the directory holding path to disk (after a rename into it); best effort. */
void      lb_fsync_parent(const char *path);
/* Remove every temp still open; async-signal-safe (for SIGINT/SIGTERM handlers). */
void      lb_out_cleanup_signal_safe(void);

/* A request to stop (interrupt.c): lb_interrupt(sig) is async-signal-safe (for a SIGINT or
 * SIGTERM handler); long jobs that can stop cleanly (the block engine: after the block it is on,
 * its state kept) poll lb_interrupted(), which returns the signal (0: none). */
void lb_interrupt(int sig);
int  lb_interrupted(void);

/* ---- the processes of one run (dist.c) ----
 * One process, or MPI's ranks when lowbit is built with -DLOWBIT_MPI=ON and started by mpirun
 * (or another MPI launcher): eval splits its chunks, calibrate and the calibrated quantize
 * methods their windows, quantize its rows, and the figures and bytes are those of one process.
 * A program calls lb_dist_init once, first (it starts MPI when a launcher started the program);
 * lb_dist_finalize when it ends well, lb_dist_abort(code) when it fails, so no rank waits on one
 * that left. Without MPI, or not launched by one, there is one rank: 0 of 1. */
lb_status lb_dist_init(int *argc, char ***argv, lb_error *err);
void      lb_dist_finalize(void);
void      lb_dist_abort(int code);
int       lb_dist_rank(void);
int       lb_dist_size(void);
bool      lb_dist_built(void); /* whether this build can run under MPI */
/* Every rank learns whether any failed (every rank calls it at the same point): a rank that
 * failed gets its own st back; when one did elsewhere, the others fail too, naming the lowest
 * such rank; LB_OK when none did. */
lb_status lb_dist_agree(lb_status st, lb_error *err);
/* The payload this rank has sent to the others so far, bytes (what the collectives carry, once
 * per receiving rank, whatever algorithm MPI runs them with); 0 on one rank. */
uint64_t  lb_dist_bytes_sent(void);

#ifdef __cplusplus
}
#endif
#endif
