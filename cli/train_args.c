/* The options `lowbit train` and `lowbit qat` share (train_args.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_args.h"

void lb_train_cli_init(lb_train_cli *c, const char *cmd, lb_train_opts defaults) {
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->o   = defaults;
}

static int add_file(lb_train_cli *c, char **list, int32_t *n, const char *path) {
    if (*n >= LB_TRAIN_MAX_FILES) return lb_usage_error(c->cmd, "more than %d text files", LB_TRAIN_MAX_FILES);
    if (!(list[*n] = strdup(path))) return LB_EXIT_ERROR;
    (*n)++;
    return LB_EXIT_OK;
}

/* one path per line; relative paths are taken from the list's directory */
static int add_list(lb_train_cli *c, char **list, int32_t *n, const char *path) {
    FILE    *f = NULL;
    lb_error err;
    if (lb_open_input(path, &f, &err)) return lb_usage_error(c->cmd, "%s", err.msg);
    char        line[2048], full[4200];
    const char *slash = strrchr(path, '/');
    const int   dir   = slash ? (int)(slash - path) : 1;
    int         rc    = LB_EXIT_OK;
    while (rc == LB_EXIT_OK && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        snprintf(full, sizeof full, "%.*s/%s", dir, slash ? path : ".", line);
        rc = add_file(c, list, n, line[0] == '/' ? line : full);
    }
    fclose(f);
    return rc;
}

void lb_train_cli_json(const char *cmd, const char *out, const lb_train_result *r, double seconds) {
    lb_jout j;
    lb_jout_begin(&j, stdout);
    lb_jout_str(&j, "command", cmd);
    lb_jout_str(&j, "output", out);
    lb_jout_int(&j, "steps", (long long)r->steps_done);
    lb_jout_int(&j, "tokens", (long long)r->tokens_seen);
    lb_jout_num(&j, "seconds", 3, seconds);
    lb_jout_num(&j, "tokens_per_sec", 1, r->tokens_per_sec);
    lb_jout_num(&j, "train_loss", 6, r->train_loss);
    lb_jout_num(&j, "valid_loss", 6, r->valid_loss); /* NaN (none): null */
    lb_jout_num(&j, "valid_ppl", 4, exp(r->valid_loss));
    lb_jout_end(&j);
}

bool lb_train_cli_option(lb_train_cli *c, lb_args *a, const char *opt) {
    lb_train_opts *o = &c->o;
    const char    *v;
    int64_t        iv;
    double         fv;
#define FILES(flag, fn, list, n)                                                                   \
    if (!strcmp(opt, flag)) {                                                                      \
        if ((v = lb_args_value(a))) c->rc = fn(c, c->list, &c->n, v);                              \
        return true;                                                                               \
    }
    FILES("--text", add_file, train_files, n_train)
    FILES("--text-list", add_list, train_files, n_train)
    FILES("--valid", add_file, valid_files, n_valid)
    FILES("--valid-list", add_list, valid_files, n_valid)
#undef FILES
#define STR(flag, field)                                                                           \
    if (!strcmp(opt, flag)) return (field = lb_args_value(a)), true;
    STR("--cache", c->cache)
    STR("--valid-cache", c->valid_cache)
    STR("--log", c->log_path)
    STR("--ckpt", o->ckpt_path)
    STR("--resume", o->resume_path)
#undef STR
#define INT(flag, lo, hi, field)                                                                   \
    if (!strcmp(opt, flag)) {                                                                      \
        if (lb_args_int(a, lo, hi, &iv)) field = iv;                                               \
        return true;                                                                               \
    }
    INT("--steps", 0, INT64_MAX / 4, o->steps)
    INT("--warmup", 0, INT64_MAX / 4, o->warmup)
    INT("--stop-at", 0, INT64_MAX / 4, o->stop_at)
    INT("--eval-every", 0, INT64_MAX / 4, o->eval_every)
    INT("--ckpt-every", 0, INT64_MAX / 4, o->ckpt_every)
    INT("--log-every", 1, INT64_MAX / 4, o->log_every)
    INT("--seed", 0, INT64_MAX, o->seed)
    INT("--batch", 1, 4096, o->batch)
    INT("--ctx", 2, 1 << 16, o->ctx)
    INT("--accum", 1, 4096, o->accum)
    INT("--eval-windows", 1, 1 << 20, o->eval_windows)
    INT("-t", 0, 1024, c->threads)
    INT("--threads", 0, 1024, c->threads)
#undef INT
#define FLT(flag, lo, hi, field)                                                                   \
    if (!strcmp(opt, flag)) {                                                                      \
        if (lb_args_float(a, lo, hi, &fv)) field = fv;                                             \
        return true;                                                                               \
    }
    FLT("--min-lr", 0, 1, o->min_lr_frac)
    FLT("--wd", 0, 10, o->weight_decay)
    FLT("--clip", 0, 1e6, o->clip)
    FLT("--time-limit", 0, 1e9, o->max_seconds)
    if (!strcmp(opt, "--lr")) {
        if (lb_args_float_pos(a, 10, &fv)) o->lr = fv;
        return true;
    }
    if (!strcmp(opt, "--json")) return (c->json = true);
#undef FLT
    return false;
}

lb_status lb_train_cli_load(lb_train_cli *c, const lb_vocab *v, lb_tokens *train, lb_tokens *valid,
                            FILE **log, lb_error *err) {
    *log = NULL;
    if (c->log_path && !(*log = fopen(c->log_path, c->o.resume_path ? "a" : "w")))
        return lb_fail(err, LB_ERR_IO, "cannot write %s: %s", c->log_path, strerror(errno));
    c->o.log        = *log;
    const double t0 = lb_time_sec();
    lb_status    st = lb_tokens_load_or_build(train, v, (const char *const *)c->train_files, c->n_train,
                                              c->cache, err);
    if (!st && c->n_valid)
        st = lb_tokens_load_or_build(valid, v, (const char *const *)c->valid_files, c->n_valid,
                                     c->valid_cache, err);
    if (!st)
        fprintf(stderr, "%s: %lld training tokens from %d files, %lld validation tokens (%.1f s)\n",
                c->cmd, (long long)train->n, c->n_train, (long long)valid->n, lb_time_sec() - t0);
    return st;
}

void lb_train_cli_free(lb_train_cli *c) {
    for (int32_t i = 0; i < c->n_train; i++) free(c->train_files[i]);
    for (int32_t i = 0; i < c->n_valid; i++) free(c->valid_files[i]);
    c->n_train = c->n_valid = 0;
}

static bool g_step_open; /* a step line drawn without its newline (terminal) */

void lb_train_cli_report(void *user, const char *line, bool step) {
    (void)user;
    const bool tty = isatty(STDERR_FILENO);
    if (tty) fputs("\r\033[K", stderr);
    fputs(line, stderr);
    g_step_open = tty && step;
    if (!g_step_open) fputc('\n', stderr);
}

void lb_train_cli_report_end(void) {
    if (g_step_open) fputc('\n', stderr);
    g_step_open = false;
}
