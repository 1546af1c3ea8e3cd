/* Shared option parsing and error reporting for the subcommands. */
#include <errno.h>
#include <stdarg.h>
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

const char *lb_args_next(lb_args *a) {
    while (++a->i < a->argc) {
        const char *s = a->argv[a->i];
        if (s[0] == '-' && s[1] != '\0') return s;
        if (a->n_positional < 8) a->positional[a->n_positional++] = s;
        else a->bad = true;
    }
    return NULL;
}

const char *lb_args_value(lb_args *a) {
    if (a->i + 1 >= a->argc) {
        lb_usage_error(a->cmd, "option %s needs a value", a->argv[a->i]);
        a->bad = true;
        return NULL;
    }
    return a->argv[++a->i];
}

bool lb_args_int(lb_args *a, int64_t lo, int64_t hi, int64_t *out) {
    const char *opt = a->argv[a->i];
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

bool lb_args_float(lb_args *a, double *out) {
    const char *opt = a->argv[a->i];
    const char *v   = lb_args_value(a);
    if (!v) return false;
    char *end;
    errno          = 0;
    const double x = strtod(v, &end);
    if (errno || *end || end == v) {
        lb_usage_error(a->cmd, "option %s wants a number, got '%s'", opt, v);
        a->bad = true;
        return false;
    }
    *out = x;
    return true;
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
    fprintf(stderr, "lowbit: %s\n", err->msg[0] ? err->msg : lb_status_str(err->code));
    return LB_EXIT_ERROR;
}

bool lb_is_help(const char *opt) {
    return strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0;
}

int lb_print_help(const char *cmd) {
    const lb_command *c = lb_find_command(cmd);
    if (!c) return LB_EXIT_USAGE;
    printf("lowbit %s: %s\n\n%s", c->name, c->summary, c->usage);
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
    if (t == LB_TYPE_INVALID) {
        lb_usage_error(a->cmd, "%s: unknown type '%s' (f32, f16, q8_0, q4_0)", opt, name);
        a->bad = true;
    } else if (k) {
        o->type_k = t;
    } else {
        o->type_v = t;
    }
    return true;
}
