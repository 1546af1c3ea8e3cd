/* A resumable run's state, beside its output OUT in the directory .OUT.lowbit-state/:
 *   partial.gguf  the output as far as it is written: its header, then each finished block's
 *                 tensors at their offsets (lb_gguf_writer_begin_partial)
 *   state         the checkpoint after the last finished block: the run's fingerprint, the
 *                 next block, the summary's sums so far, AWQ's totals, and the calibration
 *                 windows' residual streams at the next block's input
 * The checkpoint is replaced atomically (state.tmp, fsync, rename) after the partial output is
 * on disk, so it never claims a block the output does not hold; a run killed at any moment
 * resumes from the last checkpoint and writes the same bytes. Success renames partial.gguf to OUT,
 * then removes the state: a run killed between the two left OUT whole, and --resume, finding the
 * last checkpoint past every block and no partial.gguf, removes the state. The fingerprint hashes what
 * decides the bytes: the input's configuration and tensor table with a sample of every
 * tensor's bytes, the options, the calibration windows' tokens, the importance given, the
 * lowbit version and the kernels it chose for this CPU; a state whose fingerprint differs is
 * refused, saying which part differs.
 *
 * The state file (little-endian, as written by this machine):
 *   "LBRS" u32 version (2), u64 fp[4], i32 next block, i32 n_layers,
 *   f64 err_rtn, err_method, seconds_calib, seconds_method, awq_rtn, awq_err, i32 awq_n,
 *   then per stream (quantized, unquantized): u64 floats (0: none), i32 layer, the floats. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dist.h"
#include "core/fail.h"
#include "lowbit/kernels.h"
#include "resume.h"

#define STATE_MAGIC   "LBRS"
#define STATE_VERSION 2u /* 2: the rare-expert rule became the every-token prior */
#define SAMPLE_BYTES  4096 /* of each tensor's start and end, into the input's fingerprint */

static const char *const k_parts[4] = { "the input model", "the options", "the calibration windows",
                                        "the importance matrix, the lowbit version or its kernels" };

/* FNV-1a, 64 bits */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

static uint64_t fnv_str(uint64_t h, const char *s) { return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1); }

static uint64_t input_fp(const lb_method_ctx *c) {
    uint64_t h = fnv(FNV0, &c->model->cfg, sizeof c->model->cfg);
    for (int32_t i = 0; i < c->n; i++) {
        const lb_tensor *t  = c->tensors[i].t;
        const size_t     nb = lb_tensor_nbytes(t), k = nb < SAMPLE_BYTES ? nb : SAMPLE_BYTES;
        h = fnv_str(h, c->tensors[i].name);
        h = fnv(h, &t->type, sizeof t->type);
        h = fnv(h, t->ne, sizeof t->ne);
        h = fnv(h, t->data, k);
        h = fnv(h, (const uint8_t *)t->data + nb - k, k);
    }
    return h;
}

static uint64_t options_fp(const lb_method_ctx *c) {
    const lb_quant_params *p = c->p;
    char                   buf[512];
    uint64_t               h = FNV0;
    snprintf(buf, sizeof buf, "%s|%s|%d|%.17g|%d|%d|%d|%llu|%d|%d|%.17g|%d|%d|%d|%d|%.17g|%.17g|%.17g|%d|%d",
             p->recipe->name, p->method ? p->method : "rtn", (int)p->range.kind, p->range.pct, p->pure,
             p->calib.n_samples, p->calib.n_ctx, (unsigned long long)p->calib.seed, p->calib.sequential, p->calib.exact,
             p->gptq.damp, p->gptq.block, p->gptq.act_order, p->gptq.self_target, p->act.calibrated ? 1 + (int)p->act.range.kind : 0, p->act.range.pct,
             p->smooth_alpha, p->outlier_threshold, p->allow_nonfinite, p->gptq.min_tokens);
    h = fnv_str(h, buf);
    for (int32_t k = 0; k < p->n_overrides; k++) {
        h = fnv_str(h, p->overrides[k].pattern);
        h = fnv(h, &p->overrides[k].type, sizeof p->overrides[k].type);
    }
    for (int32_t i = 0; i < c->n; i++) h = fnv(h, &c->plans[i].type, sizeof c->plans[i].type);
    return h;
}

static uint64_t extra_fp(const lb_method_ctx *c) {
    uint64_t h = fnv_str(FNV0, LB_VERSION);
    h          = fnv_str(h, lb_kernels_name()); /* another kernel set may round differently */
    for (int32_t i = 0; i < c->n; i++)
        if (c->importance[i]) {
            h = fnv(h, &i, sizeof i);
            h = fnv(h, c->importance[i], (size_t)(c->tensors[i].t->ne[0] * c->tensors[i].t->ne[2]) * sizeof(float));
        }
    return h;
}

lb_status lb_resume_init(lb_resume *r, const char *out_path, const lb_method_ctx *c, lb_error *err) {
    memset(r, 0, sizeof *r);
    const char *slash = strrchr(out_path, '/');
    const int   dl    = slash ? (int)(slash - out_path) : 0;
    const char *base  = slash ? slash + 1 : out_path;
    const int   n     = snprintf(r->dir, sizeof r->dir, "%.*s%s.%s.lowbit-state", dl, out_path, slash ? "/" : "", base);
    LB_RETURN_IF(n < 0 || (size_t)n + 16 >= sizeof r->dir, err, LB_ERR_PARAM, "%s: the path is too long", out_path);
    snprintf(r->partial, sizeof r->partial, "%s/partial.gguf", r->dir);
    snprintf(r->state, sizeof r->state, "%s/state", r->dir);
    r->fp[0] = input_fp(c);
    r->fp[1] = options_fp(c);
    r->fp[2] = fnv(FNV0, c->windows, (size_t)c->n_windows * (size_t)c->p->calib.n_ctx * sizeof *c->windows);
    r->fp[3] = extra_fp(c);
    return LB_OK;
}

bool lb_resume_exists(const lb_resume *r) {
    struct stat sb;
    return lstat(r->state, &sb) == 0;
}

bool lb_resume_committed(const lb_resume *r, const char *out_path) {
    struct stat sb, so, ss; /* OUT was the partial file, last written (truncated) after the last checkpoint */
    return lstat(r->partial, &sb) != 0 && errno == ENOENT && stat(out_path, &so) == 0 && S_ISREG(so.st_mode) &&
           stat(r->state, &ss) == 0 &&
           (so.st_mtim.tv_sec > ss.st_mtim.tv_sec ||
            (so.st_mtim.tv_sec == ss.st_mtim.tv_sec && so.st_mtim.tv_nsec >= ss.st_mtim.tv_nsec));
}

static bool put(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }
static bool get(FILE *f, void *p, size_t n) { return n == 0 || fread(p, 1, n, f) == n; }

/* the calibration windows' floats (n_ctx * n_embd each), and how many */
static size_t window_floats(const lb_method_ctx *c) {
    return (size_t)c->p->calib.n_ctx * (size_t)c->model->cfg.n_embd;
}

lb_status lb_resume_save(const lb_resume *r, const lb_method_ctx *c, int32_t next_block, lb_error *err) {
    const int R = lb_dist_size(), me = lb_dist_rank();
    char      tmp[PATH_MAX + 8];
    FILE     *f   = NULL;
    int       e   = 0;
    lb_status st  = LB_OK;
    snprintf(tmp, sizeof tmp, "%s.tmp", r->state);
    if (me == 0) {
        if (mkdir(r->dir, 0777) != 0 && errno != EEXIST) e = errno;
        const int fd = e ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
        f            = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) e = e ? e : errno;
        if (!f && fd >= 0) close(fd);
    }
    const uint32_t          version = STATE_VERSION;
    const int32_t           L       = c->model->cfg.n_layers;
    const lb_quant_summary *s       = c->summary;
    const double sums[6] = { s->err_rtn, s->err_method, s->seconds_calib, s->seconds_method, c->awq_rtn, c->awq_err };
    bool ok = f && put(f, STATE_MAGIC, 4) && put(f, &version, 4) && put(f, r->fp, sizeof r->fp) &&
              put(f, &next_block, 4) && put(f, &L, 4) && put(f, sums, sizeof sums) && put(f, &c->awq_n, 4);
    /* the streams in window order: under MPI rank 0 takes each window from the rank holding it
     * (window w: rank w mod R, its w / R-th), so the state is one process's */
    const size_t     wn         = window_floats(c);
    lb_calib_states *streams[2] = { c->sq, c->sr };
    float           *buf        = me == 0 && R > 1 ? malloc(wn * sizeof *buf) : NULL;
    /* every rank sends and receives the same windows whatever failed locally (none waits on
     * another): rank 0 only stops writing; a rank whose MPI call fails ends the job */
    st = lb_dist_agree(me == 0 && R > 1 && !buf ? lb_fail(err, LB_ERR_NOMEM, "out of memory") : LB_OK, err);
    for (int k = 0; k < 2 && st == LB_OK; k++) {
        size_t         n     = 0;
        float         *x     = streams[k] ? lb_calib_states_values(streams[k], &n) : NULL;
        const uint64_t n64   = x ? (uint64_t)c->n_windows * wn : 0;
        const int32_t  layer = streams[k] ? lb_calib_states_layer(streams[k]) : 0;
        ok = ok && put(f, &n64, 8) && put(f, &layer, 4);
        for (int32_t w = 0; x && w < c->n_windows && st == LB_OK; w++) {
            const int owner = w % R;
            float    *mine  = x + (size_t)(w / R) * wn;
            if (owner == me && me == 0) ok = ok && put(f, mine, wn * sizeof *mine);
            else if (owner == me) st = lb_dist_send(mine, wn * sizeof *mine, 0, err);
            else if (me == 0) {
                st = lb_dist_recv(buf, wn * sizeof *buf, owner, err);
                ok = ok && st == LB_OK && put(f, buf, wn * sizeof *buf);
            }
        }
    }
    free(buf);
    ok = ok && st == LB_OK; /* a window missing: the last good checkpoint stays */
    if (f) {
        ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
        ok = fclose(f) == 0 && ok;
        if (!ok || rename(tmp, r->state) != 0) {
            e = e ? e : errno;
            unlink(tmp);
        }
    }
    if (me == 0 && st == LB_OK && (!ok || e)) {
        st = lb_fail(err, LB_ERR_IO, "%s: cannot write the checkpoint: %s", r->state, strerror(e ? e : EIO));
    } else if (me == 0 && st == LB_OK) {
        lb_fsync_parent(r->state);
    }
    return lb_dist_agree(st, err);
}

/* open the state and check its magic, version and fingerprint */
static lb_status open_state(const lb_resume *r, FILE **out, lb_error *err) {
    FILE *f;
    LB_TRY_RET(lb_open_input(r->state, &f, err));
    char      magic[4];
    uint32_t  version = 0;
    uint64_t  fp[4];
    lb_status st = LB_OK;
    LB_GOTO_IF(!get(f, magic, 4) || memcmp(magic, STATE_MAGIC, 4) || !get(f, &version, 4), err, LB_ERR_FORMAT,
               "%s: not a lowbit run state", r->state);
    LB_GOTO_IF(version != STATE_VERSION, err, LB_ERR_VERSION, "%s: state version %u, this lowbit writes %u",
               r->state, version, STATE_VERSION);
    LB_GOTO_IF(!get(f, fp, sizeof fp), err, LB_ERR_TRUNCATED, "%s: truncated", r->state);
    for (int k = 0; k < 4; k++)
        LB_GOTO_IF(fp[k] != r->fp[k], err, LB_ERR_PARAM, "%s: the state is of another run (%s differ); remove "
                   "it to start over", r->dir, k_parts[k]);
    *out = f;
    return LB_OK;
fail:
    fclose(f);
    return st;
}

lb_status lb_resume_check(const lb_resume *r, lb_error *err) {
    FILE *f;
    LB_TRY_RET(open_state(r, &f, err));
    fclose(f);
    return LB_OK;
}

/* what the state's head holds besides the streams (rank 0 reads it, every rank gets it) */
typedef struct {
    int32_t next, n_layers, awq_n;
    double  sums[6];
} state_head;

lb_status lb_resume_load(const lb_resume *r, lb_method_ctx *c, int32_t *next_block, lb_error *err) {
    const int        R = lb_dist_size(), me = lb_dist_rank();
    const int32_t    L = c->model->cfg.n_layers;
    const size_t     wn = window_floats(c);
    lb_calib_states *streams[2] = { c->sq, c->sr };
    FILE            *f  = NULL;
    state_head       h  = { 0 };
    float           *buf = NULL;
    lb_status        st  = me == 0 ? open_state(r, &f, err) : LB_OK;
    if (me == 0 && st == LB_OK && /* the head; each stream's size and layer come before its values */
        (!get(f, &h.next, 4) || !get(f, &h.n_layers, 4) || !get(f, h.sums, sizeof h.sums) || !get(f, &h.awq_n, 4)))
        st = lb_fail(err, LB_ERR_TRUNCATED, "%s: truncated", r->state);
    LB_TRY(lb_dist_agree(st, err));
    LB_TRY(lb_dist_bcast(&h, sizeof h, err));
    LB_GOTO_IF(h.n_layers != L || h.next < 0 || h.next > L + 1, err, LB_ERR_CORRUPT,
               "%s: block %d of %d layers is not a block of this model", r->state, h.next, h.n_layers);
    buf = me == 0 && R > 1 ? malloc(wn * sizeof *buf) : NULL;
    LB_TRY(lb_dist_agree(me == 0 && R > 1 && !buf ? lb_fail(err, LB_ERR_NOMEM, "out of memory") : LB_OK, err));
    for (int k = 0; k < 2; k++) {
        size_t         n     = 0;
        float         *x     = streams[k] ? lb_calib_states_values(streams[k], &n) : NULL;
        const uint64_t want  = x ? (uint64_t)c->n_windows * wn : 0;
        uint64_t       n64   = 0;
        int32_t        layer = 0;
        if (me == 0) {
            st = LB_OK;
            if (!get(f, &n64, 8) || !get(f, &layer, 4)) st = lb_fail(err, LB_ERR_TRUNCATED, "%s: truncated", r->state);
            else if (n64 != want || layer < 0 || layer > L)
                st = lb_fail(err, LB_ERR_CORRUPT, "%s: a stream of %llu values, this run has %llu", r->state,
                             (unsigned long long)n64, (unsigned long long)want);
        }
        LB_TRY(lb_dist_agree(st, err));
        LB_TRY(lb_dist_bcast(&layer, sizeof layer, err));
        bool short_read = false; /* rank 0 sends every window all the same: none waits */
        for (int32_t w = 0; x && w < c->n_windows; w++) {
            const int owner = w % R;
            float    *mine  = x + (size_t)(w / R) * wn;
            if (me == 0) {
                float *to = owner == 0 ? mine : buf;
                if (!get(f, to, wn * sizeof *to)) short_read = true, memset(to, 0, wn * sizeof *to);
                if (owner != 0) LB_TRY(lb_dist_send(to, wn * sizeof *to, owner, err));
            } else if (owner == me) {
                LB_TRY(lb_dist_recv(mine, wn * sizeof *mine, 0, err));
            }
        }
        if (short_read) st = lb_fail(err, LB_ERR_TRUNCATED, "%s: truncated", r->state);
        LB_TRY(lb_dist_agree(st, err));
        if (streams[k]) lb_calib_states_set_layer(streams[k], layer);
    }
    if (me == 0 && fgetc(f) != EOF) st = lb_fail(err, LB_ERR_CORRUPT, "%s: bytes after the end", r->state);
    LB_TRY(lb_dist_agree(st, err));
    c->summary->err_rtn        = h.sums[0];
    c->summary->err_method     = h.sums[1];
    c->summary->seconds_calib  = h.sums[2];
    c->summary->seconds_method = h.sums[3];
    c->awq_rtn = h.sums[4], c->awq_err = h.sums[5];
    c->awq_n    = h.awq_n;
    *next_block = h.next;
fail:
    free(buf);
    if (f) fclose(f);
    return st;
}

void lb_resume_remove(const lb_resume *r) {
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", r->state);
    unlink(r->state);
    unlink(tmp);
    unlink(r->partial);
    rmdir(r->dir);
    lb_fsync_parent(r->dir);
}
