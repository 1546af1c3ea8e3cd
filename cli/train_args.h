/* Options shared by `lowbit train` and `lowbit qat`: the text files, token caches, the
 * training loop's settings (lowbit/train.h), and loading the tokens. */
#ifndef LB_CLI_TRAIN_ARGS_H
#define LB_CLI_TRAIN_ARGS_H

#include "cli.h"
#include "lowbit/train.h"

#define LB_TRAIN_MAX_FILES 1024

typedef struct lb_train_cli {
    const char   *cmd;
    char         *train_files[LB_TRAIN_MAX_FILES], *valid_files[LB_TRAIN_MAX_FILES];
    int32_t       n_train, n_valid;
    const char   *cache, *valid_cache, *log_path;
    int64_t       threads;
    bool          json; /* --json: the result as one JSON object on stdout */
    lb_train_opts o;
    int           rc; /* LB_EXIT_OK until an option fails */
} lb_train_cli;

void lb_train_cli_init(lb_train_cli *c, const char *cmd, lb_train_opts defaults);
/* Take opt when it is one of the shared options (true); check a->bad and c->rc after. */
bool lb_train_cli_option(lb_train_cli *c, lb_args *a, const char *opt);
/* Open the log, tokenize (or read the caches of) the texts with v. */
lb_status lb_train_cli_load(lb_train_cli *c, const lb_vocab *v, lb_tokens *train, lb_tokens *valid,
                            FILE **log, lb_error *err);
void lb_train_cli_free(lb_train_cli *c);
/* The training loop's report callback (lb_train_opts.report): lines on stderr, the step line
 * redrawn in place on a terminal; lb_train_cli_report_end ends a step line left open. */
void lb_train_cli_report(void *user, const char *line, bool step);
void lb_train_cli_report_end(void);
/* --json's object: what was run and its result (valid_loss null without a validation set). */
void lb_train_cli_json(const char *cmd, const char *out, const lb_train_result *r, double seconds);

/* The shared options' part of a --help text. */
#define LB_TRAIN_OPTIONS_HELP                                                                      \
    "  --text F / --text-list L   training text files (L: one path per line, relative to L)\n"    \
    "  --valid F / --valid-list L validation text (loss and perplexity during training)\n"        \
    "  --cache F / --valid-cache F  token caches (tokenize once)\n"                                \
    "  --steps N --batch B (8) --ctx T (256) --accum A (1)  optimizer steps of A micro-batches\n" \
    "                       of B windows of T tokens\n"                                           \
    "  --lr X --min-lr F (0.1 of lr) --warmup N --wd X --clip X (1.0)  AdamW, warmup + cosine\n"  \
    "  --eval-every N --eval-windows W (64)  validation loss every N steps on W windows\n"        \
    "  --ckpt F [--ckpt-every N]  checkpoint (a GGUF model + optimizer state); --resume F\n"      \
    "  --time-limit S       stop after S seconds (with a checkpoint and the output)\n"            \
    "  --stop-at N          stop after step N of the schedule (resume later with --resume)\n" \
    "  --log F              one JSON line per --log-every steps (10); --seed S; -t N\n"   \
    "  --json               the result as one JSON object on stdout\n"

#endif
