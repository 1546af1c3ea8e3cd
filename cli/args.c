/* Shared option parsing and error reporting for the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void lb_args_init(lb_args *a, const char *cmd, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->cmd  = cmd;
    a->argc = argc;
    a->argv = argv;
    a->i    = 0;
}

/* "--opt value", "--opt=value" (getopt_long's forms), "--" ends the options */
const char *lb_args_next(lb_args *a) {
    if (a->inline_v) { /* the last option took no value */
        lb_usage_error(a->cmd, "option %s takes no value (got '%s')", a->name, a->inline_v);
        a->bad = true;
        return NULL;
    }
    while (++a->i < a->argc) {
        const char *s = a->argv[a->i];
        if (!a->rest && !strcmp(s, "--")) {
            a->rest = true;
            continue;
        }
        if (!a->rest && s[0] == '-' && s[1] != '\0') {
            const char *eq = s[1] == '-' ? strchr(s, '=') : NULL;
            if (!eq) return s;
            snprintf(a->name, sizeof a->name, "%.*s", (int)(eq - s), s);
            a->inline_v = eq + 1;
            return a->name;
        }
        if (a->n_positional < 8) a->positional[a->n_positional++] = s;
        else a->bad = true;
    }
    return NULL;
}

/* the option being read, as named (for messages) */
static const char *opt_name(const lb_args *a) { return a->inline_v ? a->name : a->argv[a->i]; }

const char *lb_args_value(lb_args *a) {
    if (a->inline_v) {
        const char *v = a->inline_v;
        a->inline_v   = NULL;
        return v;
    }
    if (a->i + 1 >= a->argc) {
        lb_usage_error(a->cmd, "option %s needs a value", a->argv[a->i]);
        a->bad = true;
        return NULL;
    }
    return a->argv[++a->i];
}

bool lb_args_int(lb_args *a, int64_t lo, int64_t hi, int64_t *out) {
    char opt[64];
    snprintf(opt, sizeof opt, "%s", opt_name(a));
    const char *v   = lb_args_value(a);
    if (!v) return false;
    char *end;
    errno            = 0;
    const long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        lb_usage_error(a->cmd, "option %s wants an integer in [%lld, %lld], got '%s'", opt,
                       (long long)lo, (long long)hi, v);
        a->bad = true;
        return false;
    }
    *out = x;
    return true;
}

static bool args_float(lb_args *a, double lo, bool open_lo, double hi, double *out) {
    char opt[64];
    snprintf(opt, sizeof opt, "%s", opt_name(a));
    const char *v   = lb_args_value(a);
    if (!v) return false;
    char *end;
    errno          = 0;
    const double x = strtod(v, &end);
    /* NaN fails both comparisons; errno catches overflow to infinity */
    if (errno || *end || end == v || !isfinite(x) || !(open_lo ? x > lo : x >= lo) || !(x <= hi)) {
        lb_usage_error(a->cmd, "option %s wants a number in %c%g, %g], got '%s'", opt,
                       open_lo ? '(' : '[', lo, hi, v);
        a->bad = true;
        return false;
    }
    *out = x;
    return true;
}

bool lb_args_float(lb_args *a, double lo, double hi, double *out) {
    return args_float(a, lo, false, hi, out);
}

bool lb_args_float_pos(lb_args *a, double hi, double *out) {
    return args_float(a, 0, true, hi, out);
}

int lb_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "lowbit %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'lowbit %s --help')\n", cmd);
    return LB_EXIT_USAGE;
}

int lb_runtime_error(const lb_error *err) {
    char msg[4 * sizeof err->msg], who[48] = "";
    if (lb_dist_size() > 1) snprintf(who, sizeof who, " (rank %d of %d)", lb_dist_rank(), lb_dist_size());
    fprintf(stderr, "lowbit%s: %s\n", who, err->msg[0] ? lb_esc(err->msg, SIZE_MAX, msg, sizeof msg)
                                                      : lb_status_str(err->code));
    return LB_EXIT_ERROR;
}

void lb_warn_vocab(const lb_vocab *v) {
    const char *w = v ? lb_vocab_warning(v) : NULL;
    char        msg[1024];
    if (w) fprintf(stderr, "lowbit: warning: %s\n", lb_esc(w, SIZE_MAX, msg, sizeof msg));
}

lb_status lb_cli_model_load(lb_model **out, const char *path, const char *tokenizer_path,
                            lb_error *err) {
    lb_status st = lb_model_load(out, path, tokenizer_path, err);
    if (!st) lb_warn_vocab((*out)->vocab);
    return st;
}

lb_status lb_cli_vocab_load(lb_vocab **out, const char *path, lb_error *err) {
    lb_status st = lb_vocab_load_any(out, path, err);
    if (!st) lb_warn_vocab(*out);
    return st;
}

const char *lb_esc(const char *s, size_t n, char *buf, size_t cap) {
    static const char hex[] = "0123456789abcdef";
    size_t            k     = 0;
    if (!cap) return buf;
    for (size_t i = 0; i < n && s[i] && k + 1 < cap; i++) {
        const unsigned char c = (unsigned char)s[i];
        /* C0 controls, DEL, and C1 controls (U+0080..U+009F, 0xc2 0x80..0x9f in UTF-8) */
        const bool c1  = c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                        (unsigned char)s[i + 1] <= 0x9f;
        const bool esc = c < 0x20 || c == 0x7f || c1;
        if (!esc) {
            buf[k++] = (char)c;
            continue;
        }
        const size_t m = c1 ? 2 : 1;
        if (k + 4 * m >= cap) break;
        for (size_t j = 0; j < m; j++) {
            const unsigned char e = (unsigned char)s[i + j];
            buf[k++] = '\\', buf[k++] = 'x', buf[k++] = hex[e >> 4], buf[k++] = hex[e & 15];
        }
        i += m - 1;
    }
    buf[k] = '\0';
    return buf;
}

bool lb_is_help(const char *opt) {
    return strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0;
}

int lb_print_help(const char *cmd) {
    const lb_command *c = lb_find_command(cmd);
    if (!c) return LB_EXIT_USAGE;
    printf("lowbit %s: %s\n\n%s%s", c->name, c->summary, c->usage, c->usage_more ? c->usage_more : "");
    return LB_EXIT_OK;
}

void lb_ctx_options_init(lb_ctx_options *o, bool fast) {
    o->fast   = fast;
    o->type_k = o->type_v = LB_TYPE_F32;
}

bool lb_args_ctx_option(lb_args *a, const char *opt, lb_ctx_options *o) {
    const bool k = !strcmp(opt, "--cache-type-k") || !strcmp(opt, "-ctk");
    const bool v = !strcmp(opt, "--cache-type-v") || !strcmp(opt, "-ctv");
    if (!strcmp(opt, "--matmul")) {
        const char *m = lb_args_value(a);
        if (m && (!strcmp(m, "q8") || !strcmp(m, "exact"))) {
            o->fast = !strcmp(m, "q8");
        } else if (m) {
            lb_usage_error(a->cmd, "--matmul takes q8 or exact, not '%s'", m);
            a->bad = true;
        }
        return true;
    }
    if (!k && !v) return false;
    const char *name = lb_args_value(a);
    if (!name) return true;
    const lb_type t = lb_type_from_name(name);
    if (t != LB_TYPE_F32 && t != LB_TYPE_F16 && t != LB_TYPE_Q8_0 && t != LB_TYPE_Q4_0) {
        lb_usage_error(a->cmd, "%s takes f32, f16, q8_0 or q4_0, not '%s'", opt, name);
        a->bad = true;
    } else if (k) {
        o->type_k = t;
    } else {
        o->type_v = t;
    }
    return true;
}

int lb_check_ctx(const char *cmd, const char *opt, int64_t n_ctx, const lb_model *m, bool allow) {
    if (n_ctx <= m->cfg.n_ctx_train) return LB_EXIT_OK;
    if (!allow) {
        fprintf(stderr, "lowbit %s: %s %lld is past the model's context of %d tokens (give "
                "--allow-long-ctx to go on anyway)\n", cmd, opt, (long long)n_ctx, m->cfg.n_ctx_train);
        return LB_EXIT_USAGE;
    }
    fprintf(stderr, "lowbit %s: warning: %s %lld is past the model's context of %d tokens; "
            "positions beyond it were never trained\n", cmd, opt, (long long)n_ctx, m->cfg.n_ctx_train);
    return LB_EXIT_OK;
}

bool lb_args_size(lb_args *a, size_t *out) {
    char opt[64];
    snprintf(opt, sizeof opt, "%s", opt_name(a));
    const char *v   = lb_args_value(a);
    if (!v) return false;
    char  *end;
    errno          = 0;
    const double x = strtod(v, &end);
    double       k = 1;
    switch (*end == 0 ? 0 : (*end | 0x20)) { /* K, M, G, T (powers of 1024), then an optional iB/B */
    case 'k': k = 1024.0, end++; break;
    case 'm': k = 1024.0 * 1024, end++; break;
    case 'g': k = 1024.0 * 1024 * 1024, end++; break;
    case 't': k = 1024.0 * 1024 * 1024 * 1024, end++; break;
    default: break;
    }
    if (k > 1 && (*end | 0x20) == 'i') end++;
    if ((*end | 0x20) == 'b') end++;
    if (errno || *end || end == v || !(x > 0) || x * k > 1e18) {
        lb_usage_error(a->cmd, "option %s wants a size (e.g. 6G, 512M, 2GiB), got '%s'", opt, v);
        a->bad = true;
        return false;
    }
    *out = (size_t)(x * k);
    return true;
}
