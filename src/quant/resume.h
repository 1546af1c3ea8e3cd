/* A resumable run's state beside its output (resume.c): where it lives, its fingerprint, the
 * checkpoint written after each block and read back by --resume. */
#ifndef LB_QUANT_RESUME_H
#define LB_QUANT_RESUME_H

#include <limits.h>

#include "quant_internal.h"

typedef struct lb_resume {
    char     dir[PATH_MAX - 32]; /* .OUT.lowbit-state beside OUT */
    char     partial[PATH_MAX];  /* dir/partial.gguf: the output being written */
    char     state[PATH_MAX];    /* dir/state: the last checkpoint */
    uint64_t fp[4];              /* input, options, calibration windows, importance + version */
} lb_resume;

/* The state's paths for OUT and the fingerprint of c's run (its windows and importance ready). */
lb_status lb_resume_init(lb_resume *r, const char *out_path, const lb_method_ctx *c, lb_error *err);
bool      lb_resume_exists(const lb_resume *r);
/* The state there is this run's (magic, version, fingerprint), else why not. */
lb_status lb_resume_check(const lb_resume *r, lb_error *err);
/* The checkpoint: next_block is the first block not done; c's streams, summary sums, AWQ totals. */
lb_status lb_resume_save(const lb_resume *r, const lb_method_ctx *c, int32_t next_block, lb_error *err);
/* Read it back into c (its streams allocated for this run): refused, with the reason, when the
 * fingerprint or the sizes differ. */
lb_status lb_resume_load(const lb_resume *r, lb_method_ctx *c, int32_t *next_block, lb_error *err);
/* The run of this state had finished: its output renamed into place (partial.gguf gone, OUT
 * there, written after the state's last checkpoint), stopped before its state was removed. --resume then only removes the state, once
 * lb_resume_load has shown that every block was done. */
bool      lb_resume_committed(const lb_resume *r, const char *out_path);
/* After success: the state and its directory go. */
void      lb_resume_remove(const lb_resume *r);

#endif
