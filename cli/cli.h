/* The lowbit command line: one file per subcommand, shared option parsing in args.c.
 * Exit codes: 0 success, 1 runtime error (printed as "lowbit: <message>"), 2 usage. */
#ifndef LB_CLI_H
#define LB_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lowbit/lowbit.h"

#define LB_EXIT_OK    0
#define LB_EXIT_ERROR 1
#define LB_EXIT_USAGE 2

typedef struct lb_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
    const char *usage_more; /* printed after usage, may be NULL (a literal's length is limited) */
} lb_command;

/* ---- progress.c: a bar on stderr (a TTY only), from the library's progress reports ---- */
typedef struct lb_progress {
    const char *label;
    int64_t     total;
    int64_t     done;
    double      t_start;
    double      t_last;
    bool        enabled;
    bool        drawn;
} lb_progress;
void lb_progress_begin(lb_progress *p, const char *label, int64_t total);
void lb_progress_update(lb_progress *p, int64_t done);
void lb_progress_end(lb_progress *p);
/* an lb_progress_fn drawing into user (an lb_progress) */
void lb_cli_progress(void *user, const char *what, int64_t done, int64_t total);

/* ---- json_out.c: --json's one-line objects, strings escaped ---- */
typedef struct lb_jout {
    FILE *f;
    int   n; /* keys written */
} lb_jout;
void lb_jout_begin(lb_jout *j, FILE *f);
void lb_jout_str(lb_jout *j, const char *key, const char *v);
/* digits after the point; negative: significant digits (%g); non-finite: null */
void lb_jout_num(lb_jout *j, const char *key, int digits, double v);
void lb_jout_int(lb_jout *j, const char *key, long long v);
void lb_jout_bool(lb_jout *j, const char *key, bool v);
void lb_jout_raw(lb_jout *j, const char *key, const char *json); /* already JSON */
void lb_jout_end(lb_jout *j);                                    /* "}" and a newline */
void lb_json_put_str(FILE *f, const char *s);                     /* a quoted, escaped string */

/* ---- args.c ---- */
/* Parsing state over argv[1..]: options anywhere, positionals collected in order. */
typedef struct lb_args {
    int         argc, i;
    char      **argv;
    const char *cmd;
    const char *positional[8];
    int         n_positional;
    bool        bad;
    bool        rest;      /* after "--": every argument is positional */
    char        name[64];  /* the option being read ("--ctx" of "--ctx=256") */
    const char *inline_v;  /* its "=value", until an option reads it */
} lb_args;

void lb_args_init(lb_args *a, const char *cmd, int argc, char **argv);
/* Next option name (e.g. "--ctx"), or NULL at the end; positionals are collected. */
const char *lb_args_next(lb_args *a);
/* The value of the current option; sets bad and returns NULL when missing. */
const char *lb_args_value(lb_args *a);
bool        lb_args_int(lb_args *a, int64_t lo, int64_t hi, int64_t *out);
/* A finite number in [lo, hi] (lb_args_float_pos: in (0, hi]); NaN, infinities and numbers
 * outside the range are usage errors. */
bool        lb_args_float(lb_args *a, double lo, double hi, double *out);
bool        lb_args_float_pos(lb_args *a, double hi, double *out);
/* A size in bytes: a positive number with an optional K, M, G or T (powers of 1024), then an
 * optional "iB" or "B": 6G, 512M, 2GiB, 1.5T. */
bool        lb_args_size(lb_args *a, size_t *out);
int         lb_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int         lb_runtime_error(const lb_error *err);
/* Text from a file made safe for a terminal: s (n bytes at most, or up to a NUL) with control
 * characters (C0, DEL, C1) written as \xNN, into buf (truncated to cap). Returns buf. Used
 * wherever names or strings from a file are printed, error messages included. */
const char *lb_esc(const char *s, size_t n, char *buf, size_t cap);
/* lb_model_load and lb_vocab_load_any that print the vocabulary's warning (a special token
 * id out of range that was dropped, ...) on stderr, as "lowbit: warning: ..." */
lb_status lb_cli_model_load(lb_model **out, const char *path, const char *tokenizer_path,
                            lb_error *err);
lb_status lb_cli_vocab_load(lb_vocab **out, const char *path, lb_error *err);
void      lb_warn_vocab(const lb_vocab *v);
/* outputs.c: OUT checked before any work (LB_EXIT_OK, or the error printed: LB_EXIT_ERROR);
 * signal handlers that remove temporaries and name a mapped input that shrank */
int  lb_check_output(const char *path, bool is_dir);
/* During a job that stops cleanly (quantize's block engine): the first SIGINT or SIGTERM asks
 * it to stop after its current step (lb_interrupted), a second is fatal. */
void lb_cli_graceful_stop(void);
void lb_cli_install_signals(void);
bool        lb_is_help(const char *opt);
int         lb_print_help(const char *cmd);

/* A context length (option opt) past the model's trained context: a one-line usage error
 * (LB_EXIT_USAGE), or with allow (--allow-long-ctx) a one-line warning and LB_EXIT_OK. */
int lb_check_ctx(const char *cmd, const char *opt, int64_t n_ctx, const lb_model *m, bool allow);

/* The context options of run, eval and bench: --matmul q8|exact, --cache-type-k T,
 * --cache-type-v T. lb_args_ctx_option returns true when it took opt (check a->bad after). */
typedef struct lb_ctx_options {
    bool    fast;           /* --matmul q8 */
    lb_type type_k, type_v; /* f32 unless given */
} lb_ctx_options;
void lb_ctx_options_init(lb_ctx_options *o, bool fast);
bool lb_args_ctx_option(lb_args *a, const char *opt, lb_ctx_options *o);
/* The options' part of a --help text. */
#define LB_CTX_OPTIONS_HELP(DEFAULT_MATMUL)                                                        \
    "  --matmul M           products with quantized weights: q8 (activations quantized to\n"      \
    "                       8-bit blocks, or W8A8 files' int8 rows per token, integer dot\n"      \
    "                       products; BF16 rows on bf16 activations where the CPU has\n"         \
    "                       AVX512_BF16; as llama.cpp; faster) or exact (f32 activations);\n"    \
    "                       default " DEFAULT_MATMUL "\n"                                          \
    "  --cache-type-k T     KV cache storage of keys: f32 (default), f16, q8_0, q4_0\n"           \
    "  --cache-type-v T     the same for values\n"

/* ---- subcommands ---- */
int cmd_info(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

/* quantize --target-bpw (quantize_bpw.c): the allocation as overrides (*n_ov of them in *ov,
 * their patterns in *names: both malloc'd, each name too), the recipe of the type holding the
 * most bytes (general.file_type) into *r; the measured table printed unless quiet (on
 * stdout for a dry run). Returns an exit code. */
typedef struct lb_cli_bpw {
    double            target;
    const char       *types; /* comma list, NULL: the default candidates */
    const char       *calib;
    int32_t           samples, ctx;
    uint64_t          seed;
    const lb_imatrix *imatrix;
    bool              quiet, dry_run, json, proxy;
    bool              lowbit_types; /* --allow-lowbit-types: candidates llama.cpp cannot load too */
} lb_cli_bpw;
int lb_cli_target_bpw(const lb_model *m, const lb_cli_bpw *b, lb_type_override **ov, int32_t *n_ov,
                      char ***names, const lb_recipe **r);
/* --bpw-types' comma list (NULL: the default candidates) into types; false, with a usage
 * message, on a bad name, lowbit's own type without lowbit, or too many */
bool lb_cli_bpw_types(const char *csv, bool lowbit, lb_type *types, int32_t *n);
/* The allocation res (its choice) as one --tensor-type per matrix (*ov, their patterns in
 * *names, all malloc'd), and the recipe of the type holding the most bytes. */
int lb_cli_bpw_plan(const lb_model *m, const lb_bpw_result *res, lb_type_override **ov, int32_t *n_ov,
                    char ***names, const lb_recipe **r);
/* --target-size: the bits per weight that leave a file of m (loaded from path in) at most size
 * bytes, its metadata counted (an estimate from the input GGUF's); <= 0 when none can */
double lb_cli_size_to_bpw(const lb_model *m, const char *in, size_t size);
int cmd_sweep(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_qat(int argc, char **argv);

const lb_command *lb_find_command(const char *name);

#endif
