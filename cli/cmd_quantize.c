/* lowbit quantize IN OUT.gguf --type T: the main job. Prints one line per tensor (its
 * type, and the fallback when its rows do not fit), then the size before and after. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_OVERRIDES 32

/* Where the run's progress goes: on a terminal one redrawn line, cleared before any log line;
 * otherwise (a log file, a pipe) one line per block; and with --log-json one JSON object per
 * block into a file. */
typedef struct {
    bool  show, tty, drawn;
    FILE *json;
} quant_log;

static void log_line(void *user, const char *line) {
    quant_log *q = user;
    if (q->drawn) fputs("\r\033[K", stderr);
    q->drawn = false;
    fprintf(stderr, "  %s\n", line);
}

static void on_block(void *user, const lb_block_report *r) {
    quant_log *q = user;
    if (q->json) {
        lb_jout j;
        lb_jout_begin(&j, q->json);
        lb_jout_int(&j, "block", r->done);
        lb_jout_int(&j, "blocks", r->total);
        lb_jout_str(&j, "name", r->name);
        lb_jout_str(&j, "method", r->method);
        const struct {
            const char *key;
            double      v;
        } f[] = { { "seconds", r->seconds }, { "elapsed", r->elapsed }, { "eta", r->eta },
                  { "seconds_calib", r->seconds_calib }, { "seconds_method", r->seconds_method } };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) lb_jout_num(&j, f[i].key, 3, f[i].v);
        lb_jout_int(&j, "peak_rss", (long long)r->peak_rss);
        lb_jout_num(&j, "err_rtn", -6, r->err_rtn);
        lb_jout_num(&j, "err_method", -6, r->err_method);
        if (lb_dist_size() > 1) lb_jout_int(&j, "mpi_bytes_sent", (long long)lb_dist_bytes_sent());
        lb_jout_end(&j);
    }
    if (!q->show) return;
    char errs[80] = "";
    if (r->err_rtn > 0)
        snprintf(errs, sizeof errs, ", output error RTN %.5f -> %.5f", r->err_rtn, r->err_method);
    if (q->tty) {
        fprintf(stderr, "\r\033[K%s %d/%d %s: %.1fs, ETA %.1fs, peak RSS %.0f MB%s", r->method, r->done, r->total,
                r->name, r->elapsed, r->eta, (double)r->peak_rss / 1e6, errs);
        q->drawn = r->done < r->total;
        if (!q->drawn) fputc('\n', stderr);
        fflush(stderr);
    } else {
        fprintf(stderr, "quantize: block %d/%d %-10s %s: %.1fs (elapsed %.1fs, ETA %.1fs), peak RSS %.0f MB%s\n",
                r->done, r->total, r->name, r->method, r->seconds, r->elapsed, r->eta,
                (double)r->peak_rss / 1e6, errs);
    }
}

/* --log-json FILE: written as the run goes (tail -f), so not through a temp; a special file
 * or a symlink there is refused */
static FILE *open_log(const char *path) {
    lb_error err = { 0 };
    if (lb_out_check(path, false, &err)) {
        lb_runtime_error(&err);
        return NULL;
    }
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    FILE     *f  = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "lowbit quantize: %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
    }
    return f;
}

/* one --tensor-type NAME=TYPE (llama-quantize's spelling: the first '=' splits) into ov */
static int add_override(lb_type_override *ov, char **ov_buf, int32_t *n_ov, const char *v) {
    const char *eq = strchr(v, '=');
    if (*n_ov == MAX_OVERRIDES) return lb_usage_error("quantize", "at most %d --tensor-type options", MAX_OVERRIDES);
    if (!eq || eq == v) return lb_usage_error("quantize", "--tensor-type wants REGEX=TYPE, got '%s'", v);
    const lb_type t = lb_type_from_name(eq + 1);
    if (t == LB_TYPE_INVALID) return lb_usage_error("quantize", "--tensor-type: unknown type '%s'", eq + 1);
    if (!(ov_buf[*n_ov] = strndup(v, (size_t)(eq - v)))) return LB_EXIT_ERROR;
    ov[*n_ov] = (lb_type_override){ ov_buf[*n_ov], t };
    (*n_ov)++;
    return LB_EXIT_OK;
}

/* --tensor-type-file FILE: NAME=TYPE entries separated by spaces or newlines */
static int add_override_file(lb_type_override *ov, char **ov_buf, int32_t *n_ov, const char *path) {
    lb_error err = { 0 };
    char    *text;
    size_t   len;
    if (lb_read_file(path, &text, &len, &err)) {
        lb_runtime_error(&err);
        return LB_EXIT_USAGE;
    }
    int rc = LB_EXIT_OK;
    for (char *save = NULL, *tok = strtok_r(text, " \t\r\n", &save); tok && rc == LB_EXIT_OK;
         tok = strtok_r(NULL, " \t\r\n", &save))
        rc = add_override(ov, ov_buf, n_ov, tok);
    free(text);
    return rc;
}

/* --output-tensor-type / --token-embedding-type TYPE */
static bool type_opt(lb_args *a, const char *opt, bool *has, lb_type *t) {
    const char *v = lb_args_value(a);
    if (!v) return true;
    *t   = lb_type_from_name(v);
    *has = *t != LB_TYPE_INVALID;
    if (!*has) lb_usage_error("quantize", "%s: unknown type '%s'", opt, v);
    return *has;
}

/* llama-quantize's positional forms, when --type is not given: IN OUT TYPE [NTHREADS] and
 * IN TYPE [NTHREADS] (OUT: ggml-model-TYPE.gguf beside IN; with --dry-run none is written) */
static bool positional_form(lb_args *a, const char **type_name, const char **out, char *derived,
                            size_t cap, int64_t *threads) {
    int         n = a->n_positional;
    char       *end;
    const long  nt = n >= 3 ? strtol(a->positional[n - 1], &end, 10) : 0;
    if (n >= 3 && *end == 0 && nt >= 0 && lb_recipe_find(a->positional[n - 2])) *threads = nt, n--;
    if (n < 2 || n > 3 || !lb_recipe_find(a->positional[n - 1])) return false;
    *type_name = a->positional[n - 1];
    if (n == 3) {
        *out = a->positional[1];
        return true;
    }
    const char *in = a->positional[0], *slash = strrchr(in, '/');
    const int   dir = slash ? (int)(slash - in + 1) : 0;
    int         k   = snprintf(derived, cap, "%.*sggml-model-", dir, in);
    for (const char *c = lb_recipe_find(*type_name)->name; *c && k + 1 < (int)cap; c++)
        derived[k++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    snprintf(derived + k, cap - (size_t)k, ".gguf");
    *out = derived;
    return true;
}

/* --dry-run: every tensor's planned type and bytes, and the totals; nothing is written */
static lb_status dry_run_report(const lb_model *m, const lb_quant_params *p, lb_tensor_plan *pl,
                                lb_named_tensor *nt, bool json, lb_error *err) {
    int32_t   n;
    lb_status st = lb_quant_check(p, err);
    if (!st) st = lb_quant_plan(m, p, nt, pl, lb_model_n_tensors(m), &n, err);
    if (st) return st;
    double  in = 0, outb = 0;
    int64_t params = 0;
    for (int32_t i = 0; i < n; i++) {
        const lb_tensor *t  = nt[i].t;
        const int64_t    nr = lb_tensor_nelements(t) / t->ne[0];
        const double     bi = (double)lb_tensor_nbytes(t), bo = (double)lb_row_size(pl[i].type, t->ne[0]) * (double)nr;
        in += bi, outb += bo, params += lb_tensor_nelements(t);
        if (!json)
            printf("%-28s [%6lld, %6lld] %-7s -> %-7s %9.3f MiB -> %9.3f MiB%s%s\n", nt[i].name, (long long)t->ne[0],
                   (long long)t->ne[1], lb_type_name(t->type), lb_type_name(pl[i].type), bi / 1048576.0,
                   bo / 1048576.0, pl[i].overridden ? "  (option)" : "", pl[i].fallback ? "  (fallback)" : "");
    }
    const double bpw = params > 0 ? outb * 8.0 / (double)params : 0;
    if (json) {
        lb_jout j;
        lb_jout_begin(&j, stdout);
        lb_jout_bool(&j, "dry_run", true);
        lb_jout_int(&j, "tensors", n);
        lb_jout_num(&j, "bytes_in", 0, in);
        lb_jout_num(&j, "bytes_out", 0, outb);
        lb_jout_num(&j, "bpw", 4, bpw);
        lb_jout_end(&j);
    } else
        printf("dry run: %d tensors, %.2f MiB -> %.2f MiB (%.3f bits per weight); nothing written\n", n,
               in / 1048576.0, outb / 1048576.0, bpw);
    return LB_OK;
}

/* one line when the file holds types only lowbit reads (llama.cpp and Ollama refuse it) */
/* gguf-split's --split-max-size: N bytes, or N followed by M or G (10^6, 10^9). */
static bool split_size(const char *v, uint64_t *out) {
    char         *end;
    errno               = 0;
    const double  x     = strtod(v, &end);
    const double  k     = *end == 'M' ? 1e6 : *end == 'G' ? 1e9 : 1;
    if (k > 1) end++;
    if (errno || *end || end == v || !(x >= 1) || x * k > 1e18) return false;
    *out = (uint64_t)(x * k);
    return true;
}

/* The shards a split output became (one file: OUT itself). */
static void report_shards(const char *out) {
    char p[4096];
    for (int n = 2; n <= 9999; n++) {
        if (!lb_gguf_shard_path(p, sizeof p, out, 0, n) || access(p, F_OK) != 0) continue;
        fprintf(stderr, "quantize: %d shards: %s ... ", n, p);
        lb_gguf_shard_path(p, sizeof p, out, n - 1, n);
        fprintf(stderr, "%s\n", p);
        return;
    }
}

static void warn_lowbit_types(const lb_tensor_plan *pl, int32_t n, const char *out) {
    for (int32_t i = 0; i < n; i++)
        if (lb_type_to_ggml(pl[i].type) < 0) {
            fprintf(stderr, "lowbit quantize: warning: %s holds %s, a lowbit type: llama.cpp and Ollama cannot "
                    "load it (lowbit can)\n", out, lb_type_name(pl[i].type));
            return;
        }
}

int cmd_quantize(int argc, char **argv) {
    lb_args          a;
    quant_log        qlog = { 0 };
    const char      *opt, *tok = NULL, *type_name = NULL, *method = "rtn";
    bool             json = false, pure = false, quiet = false;
    lb_type_override ov[MAX_OVERRIDES];
    char            *ov_buf[MAX_OVERRIDES];
    int32_t          n_ov = 0;
    int64_t          threads = 0;
    size_t           max_memory = 0;
    uint64_t         split_bytes = 0;
    int64_t          split_tensors = 0;
    bool             keep_split = false;
    lb_range         range   = { LB_RANGE_MINMAX, 0 };
    const char      *calib   = NULL, *imatrix_path = NULL, *log_json = NULL;
    lb_imatrix      *imatrix = NULL;
    int64_t          samples = 128, calib_ctx = 128, seed = 1234;
    bool             calib_exact = false;
    double           damp    = 0, alpha = 0.5, outlier = 6.0; /* damp 0: the library's per type */
    int64_t          min_tokens = 0;
    bool             act_order = false, self_target = false, long_ctx = false, nonfinite = false, resume = false;
    bool             has_out_type = false, has_embd_type = false, leave_output = false, requantize = false;
    bool             dry_run = false, include_w = false, exclude_w = false;
    const char      *weights[MAX_OVERRIDES], *kv[MAX_OVERRIDES];
    int32_t          n_weights = 0, n_kv = 0;
    lb_type          out_type = LB_TYPE_F32, embd_type = LB_TYPE_F32;
    const char      *out_path = NULL;
    char             derived[4096];
    double           target_bpw = 0; /* --target-bpw: the types measured, one per matrix */
    size_t           target_size = 0; /* --target-size: the same, for a file of at most this many bytes */
    bool             lowbit_types = false;
    const char      *bpw_types  = NULL;
    int64_t          bpw_windows = 4;
    bool             bpw_proxy   = false;
    lb_type_override *bov       = NULL;
    char           **bnames     = NULL;
    int32_t          n_bov      = 0;
    lb_act_calib     act       = { .calibrated = false };
    const char      *act_name  = NULL;
    lb_args_init(&a, "quantize", argc, argv);
    int rc = LB_EXIT_USAGE; /* the --tensor-type strings are freed at out */
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) {
            rc = lb_print_help("quantize");
            goto out;
        }
        else if (!strcmp(opt, "--type")) type_name = lb_args_value(&a);
        else if (!strcmp(opt, "--method")) method = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--pure")) pure = true;
        else if (!strcmp(opt, "--calib")) calib = lb_args_value(&a);
        else if (!strcmp(opt, "--imatrix")) imatrix_path = lb_args_value(&a);
        else if (!strcmp(opt, "--calib-samples")) lb_args_int(&a, 1, 1 << 20, &samples);
        else if (!strcmp(opt, "--calib-ctx")) lb_args_int(&a, 2, 1 << 20, &calib_ctx);
        else if (!strcmp(opt, "--seed")) lb_args_int(&a, 0, INT64_MAX, &seed);
        else if (!strcmp(opt, "--damp")) lb_args_float_pos(&a, 1, &damp);
        else if (!strcmp(opt, "--target-bpw")) lb_args_float_pos(&a, 32, &target_bpw);
        else if (!strcmp(opt, "--target-size")) lb_args_size(&a, &target_size);
        else if (!strcmp(opt, "--allow-lowbit-types")) lowbit_types = true;
        else if (!strcmp(opt, "--bpw-types")) bpw_types = lb_args_value(&a);
        else if (!strcmp(opt, "--bpw-windows")) lb_args_int(&a, 1, 4096, &bpw_windows);
        else if (!strcmp(opt, "--bpw-measure")) {
            const char *v = lb_args_value(&a);
            if (v && strcmp(v, "kld") && strcmp(v, "proxy")) {
                rc = lb_usage_error("quantize", "--bpw-measure wants kld or proxy, not '%s'", v);
                goto out;
            }
            bpw_proxy = v && !strcmp(v, "proxy");
        }
        else if (!strcmp(opt, "--act-order")) act_order = true;
        else if (!strcmp(opt, "--calib-matmul")) {
            const char *v = lb_args_value(&a);
            if (v && strcmp(v, "q8") && strcmp(v, "exact")) {
                rc = lb_usage_error("quantize", "--calib-matmul wants q8 or exact, not '%s'", v);
                goto out;
            }
            calib_exact = v && !strcmp(v, "exact");
        }
        else if (!strcmp(opt, "--gptq-min-tokens")) {
            const char *v   = lb_args_value(&a);
            char       *end = NULL;
            const long  k   = v ? strtol(v, &end, 10) : 0;
            if (v && !strcmp(v, "width")) min_tokens = LB_GPTQ_MIN_WIDTH;
            else if (v && (end == v || *end || k < -1 || k >= LB_GPTQ_MIN_WIDTH)) {
                rc = lb_usage_error("quantize", "--gptq-min-tokens wants a count, -1 or width, not '%s'", v);
                goto out;
            } else if (v) min_tokens = (int32_t)k;
        }
        else if (!strcmp(opt, "--allow-nonfinite")) nonfinite = true;
        else if (!strcmp(opt, "--allow-long-ctx")) long_ctx = true;
        else if (!strcmp(opt, "--gptq-target")) {
            const char *v = lb_args_value(&a);
            if (v && strcmp(v, "f32") && strcmp(v, "self"))
                {
                rc = lb_usage_error("quantize", "--gptq-target wants f32 or self, not '%s'", v);
                goto out;
            }
            self_target = v && !strcmp(v, "self");
        }
        else if (!strcmp(opt, "--alpha")) lb_args_float_pos(&a, 1, &alpha);
        else if (!strcmp(opt, "--outlier-threshold")) lb_args_float_pos(&a, 1e6, &outlier);
        else if (!strcmp(opt, "--act")) {
            act_name = lb_args_value(&a);
            if (act_name && lb_act_calib_parse(act_name, &act) != LB_OK)
                {
                rc = lb_usage_error("quantize", "--act wants dynamic, minmax, pNN (e.g. p99.99), mse, kl or "
                                    "kl-count, not '%s'", act_name);
                goto out;
            }
        }
        else if (!strcmp(opt, "--range")) {
            const char *v = lb_args_value(&a);
            if (v && lb_range_parse(v, &range) != LB_OK)
                {
                rc = lb_usage_error("quantize", "--range wants minmax, pNN (e.g. p99.9), mse, kl or kl-count, "
                                    "not '%s'", v);
                goto out;
            }
        }
        else if (!strcmp(opt, "--json")) json = true;
        else if (!strcmp(opt, "--log-json")) log_json = lb_args_value(&a);
        else if (!strcmp(opt, "--resume")) resume = true;
        else if (!strcmp(opt, "--max-memory")) lb_args_size(&a, &max_memory);
        else if (!strcmp(opt, "-q") || !strcmp(opt, "--quiet")) quiet = true;
        else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) lb_args_int(&a, 0, 1024, &threads);
        else if (!strcmp(opt, "--tensor-type") || !strcmp(opt, "--tensor-type-file")) {
            const char *v = lb_args_value(&a);
            if (!v) break;
            rc = opt[13] ? add_override_file(ov, ov_buf, &n_ov, v) : add_override(ov, ov_buf, &n_ov, v);
            if (rc != LB_EXIT_OK) goto out;
            rc = LB_EXIT_USAGE;
        }
        else if (!strcmp(opt, "--output-tensor-type")) {
            if (!type_opt(&a, opt, &has_out_type, &out_type)) goto out;
        }
        else if (!strcmp(opt, "--token-embedding-type")) {
            if (!type_opt(&a, opt, &has_embd_type, &embd_type)) goto out;
        }
        else if (!strcmp(opt, "--leave-output-tensor")) leave_output = true;
        else if (!strcmp(opt, "--allow-requantize")) requantize = true;
        else if (!strcmp(opt, "--dry-run")) dry_run = true;
        else if (!strcmp(opt, "--include-weights") || !strcmp(opt, "--exclude-weights")) {
            const char *v = lb_args_value(&a);
            if (!v) break;
            if (n_weights == MAX_OVERRIDES) {
                rc = lb_usage_error("quantize", "at most %d %s options", MAX_OVERRIDES, opt);
                goto out;
            }
            weights[n_weights++] = v;
            *(opt[2] == 'i' ? &include_w : &exclude_w) = true;
        }
        else if (!strcmp(opt, "--override-kv")) {
            const char *v = lb_args_value(&a);
            if (!v) break;
            if (n_kv == MAX_OVERRIDES) {
                rc = lb_usage_error("quantize", "at most %d --override-kv options", MAX_OVERRIDES);
                goto out;
            }
            kv[n_kv++] = v;
        }
        else if (!strcmp(opt, "--keep-split")) keep_split = true;
        else if (!strcmp(opt, "--split-max-tensors")) lb_args_int(&a, 1, 1000000, &split_tensors);
        else if (!strcmp(opt, "--split-max-size")) {
            const char *v = lb_args_value(&a);
            if (v && !split_size(v, &split_bytes)) {
                rc = lb_usage_error("quantize", "--split-max-size wants N, NM or NG (gguf-split's), got '%s'", v);
                goto out;
            }
        }
        else if (!strcmp(opt, "--prune-layers")) {
            rc = lb_usage_error("quantize", "%s: llama-quantize's option is not implemented in lowbit yet", opt);
            goto out;
        } else {
                rc = lb_usage_error("quantize", "unknown option %s", opt);
                goto out;
            }
    }
    if (a.bad) goto out;
    if (target_bpw > 0 && target_size > 0) {
        rc = lb_usage_error("quantize", "give --target-bpw or --target-size, not both");
        goto out;
    }
    if (lb_dist_rank() > 0) quiet = true; /* rank 0 reports */
    if (target_size > 0) target_bpw = 1; /* set from the size once the model is loaded */
    if (lowbit_types && target_bpw <= 0) {
        rc = lb_usage_error("quantize", "--allow-lowbit-types is for --target-bpw's and --target-size's candidates");
        goto out;
    }
    if (target_bpw > 0) { /* the allocation decides every matrix's type */
        if (n_ov > 0 || pure) {
            rc = lb_usage_error("quantize", "--target-bpw chooses every matrix's type: no --tensor-type or --pure");
            goto out;
        }
        if (!calib) {
            rc = lb_usage_error("quantize", "--target-bpw measures each tensor on calibration text: give --calib FILE");
            goto out;
        }
        if (!type_name) type_name = "q8_0"; /* replaced by the allocation's main type */
        if (!strcmp(method, "rtn")) method = "imatrix"; /* as the sensitivities were measured */
    }
    if (type_name && a.n_positional == 2) out_path = a.positional[1];
    else if (type_name && dry_run && a.n_positional == 1) out_path = NULL;
    else if (type_name || !positional_form(&a, &type_name, &out_path, derived, sizeof derived, &threads)) {
        lb_usage_error("quantize", type_name ? "expected IN and OUT" : "--type is required (or llama-quantize's "
                       "positional IN OUT TYPE [NTHREADS])");
        goto out;
    }
    const lb_recipe *r = lb_recipe_find(type_name);
    if (!r) {
        fprintf(stderr, "lowbit quantize: unknown type '%s'; available:", type_name);
        for (const char *const *n = lb_recipe_names(); *n; n++) fprintf(stderr, " %s", *n);
        fprintf(stderr, "\n");
        goto out;
    }
    if (act_name && strcmp(r->name, "w8a8") != 0) {
        lb_usage_error("quantize", "--act is for --type w8a8 (activations quantized to int8)");
        goto out;
    }
    lb_threads_set((int)threads);
    lb_error         err = { 0 };
    lb_model        *m;
    rc = LB_EXIT_ERROR;
    if (include_w && exclude_w) {
        rc = lb_usage_error("quantize", "--include-weights and --exclude-weights cannot be used together");
        goto out;
    }
    if ((include_w || exclude_w) && !imatrix_path) {
        rc = lb_usage_error("quantize", "--%s-weights chooses entries of --imatrix FILE", include_w ? "include" : "exclude");
        goto out;
    }
    if (imatrix_path && (lb_imatrix_load(&imatrix, imatrix_path, &err) ||
                         (n_weights && lb_imatrix_filter(imatrix, weights, n_weights, include_w, &err)))) {
        lb_runtime_error(&err);
        goto out;
    }
    const lb_quant_params chk = { .recipe = r, .range = range, .overrides = ov, .n_overrides = n_ov, .method = method,
                                  .kv_overrides = kv, .n_kv_overrides = n_kv,
                                  .calib_text = calib, .imatrix = imatrix, .act = act };
    if (lb_quant_check(&chk, &err)) {
        rc = lb_usage_error("quantize", "%s", err.msg);
        goto out;
    }
    if (!dry_run && lb_check_output(out_path, false)) goto out;
    qlog = (quant_log){ .show = !json && !quiet, .tty = isatty(STDERR_FILENO) };
    if (log_json && lb_dist_rank() == 0 && !(qlog.json = open_log(log_json))) goto out; /* rank 0 logs */
    if (calib) { /* the calibration text can be read, before the model is loaded */
        FILE *cf;
        if (lb_open_input(calib, &cf, &err)) {
            lb_runtime_error(&err);
            goto out;
        }
        fclose(cf);
    }
    if (lb_cli_model_load(&m, a.positional[0], tok, &err)) {
        lb_runtime_error(&err);
        goto out;
    }
    if (calib && (rc = lb_check_ctx("quantize", "--calib-ctx", calib_ctx, m, long_ctx)) != LB_EXIT_OK) {
        lb_model_free(m);
        goto out;
    }
    rc = LB_EXIT_ERROR;
    const int32_t    cap = lb_model_n_tensors(m);
    lb_tensor_plan  *pl  = malloc((size_t)cap * sizeof *pl);
    lb_named_tensor *nt  = malloc((size_t)cap * sizeof *nt);
    lb_quant_params  p   = { .recipe = r, .range = range, .pure = pure, .overrides = ov, .n_overrides = n_ov,
                             .method = method, .calib_text = calib, .imatrix = imatrix,
                             .calib = { .n_samples = (int32_t)samples, .n_ctx = (int32_t)calib_ctx,
                                        .seed = (uint64_t)seed, .exact = calib_exact },
                             .gptq = { .damp = damp, .block = 128, .act_order = act_order,
                                       .self_target = self_target, .min_tokens = (int32_t)min_tokens },
                             .act = act, .smooth_alpha = alpha, .outlier_threshold = outlier,
                             .on_block = on_block, .allow_nonfinite = nonfinite, .resume = resume,
                             .max_memory = max_memory, .log = quiet || json ? NULL : log_line,
                             .log_user = &qlog, .has_output_type = has_out_type, .output_type = out_type,
                             .has_embd_type = has_embd_type, .embd_type = embd_type,
                             .leave_output = leave_output, .allow_requantize = requantize,
                             .kv_overrides = kv, .n_kv_overrides = n_kv, .split_max_bytes = split_bytes,
                             .split_max_tensors = (int32_t)split_tensors, .keep_split = keep_split };
    lb_quant_summary s;
    if (target_size > 0) { /* the file's size: the weights' bytes plus its metadata (the input's, when a GGUF) */
        target_bpw = lb_cli_size_to_bpw(m, a.positional[0], target_size);
        if (target_bpw <= 0) {
            lb_fail(&err, LB_ERR_PARAM, "--target-size %zu: smaller than the file's metadata", target_size);
            rc = lb_runtime_error(&err);
            free(pl), free(nt);
            lb_model_free(m);
            goto out;
        }
    }
    if (target_bpw > 0) {
        const lb_cli_bpw b = { .target = target_bpw, .types = bpw_types, .calib = calib, .samples = (int32_t)bpw_windows,
                               .ctx = calib_ctx < 128 ? (int32_t)calib_ctx : 128, .seed = (uint64_t)seed, .imatrix = imatrix,
                               .quiet = quiet || json, .dry_run = dry_run, .json = json, .proxy = bpw_proxy,
                               .lowbit_types = lowbit_types };
        rc = lb_cli_target_bpw(m, &b, &bov, &n_bov, &bnames, &r);
        if (rc != LB_EXIT_OK || dry_run) {
            free(pl), free(nt);
            lb_model_free(m);
            goto out;
        }
        p.recipe = r, p.overrides = bov, p.n_overrides = n_bov;
        rc = LB_EXIT_ERROR;
    }
    lb_cli_graceful_stop(); /* SIGINT, SIGTERM: after the current block, the state kept */
    if (!pl || !nt) lb_fail(&err, LB_ERR_NOMEM, "out of memory");
    else if (dry_run) rc = dry_run_report(m, &p, pl, nt, json, &err) ? LB_EXIT_ERROR : LB_EXIT_OK;
    else if (lb_quantize_model(m, out_path, &p, pl, nt, cap, &s, &err) == LB_OK) rc = LB_EXIT_OK;
    if (dry_run) {
        if (rc != LB_EXIT_OK) lb_runtime_error(&err);
    } else if (rc != LB_EXIT_OK && err.code == LB_ERR_INTERRUPTED) {
        if (lb_dist_rank() == 0) { /* under MPI every rank stopped at the same block */
            lb_runtime_error(&err);
            fprintf(stderr, "lowbit: to resume: lowbit");
            for (int k = 0; k < argc; k++) fprintf(stderr, " %s", argv[k]); /* as given (quote as needed) */
            fprintf(stderr, "%s\n", resume ? "" : " --resume");
        }
        rc = 128 + (lb_interrupted() ? lb_interrupted() : SIGTERM); /* a rank the signal missed */
    } else if (rc != LB_EXIT_OK) {
        lb_runtime_error(&err);
    } else if (json) {
        char    rb[32];
        lb_jout j;
        lb_jout_begin(&j, stdout);
        lb_jout_str(&j, "in", a.positional[0]);
        lb_jout_str(&j, "out", out_path);
        lb_jout_str(&j, "type", r->name);
        lb_jout_str(&j, "method", method);
        lb_jout_str(&j, "range", lb_range_name(&range, rb, sizeof rb));
        lb_jout_int(&j, "bytes_in", (long long)s.bytes_in);
        lb_jout_int(&j, "bytes_out", (long long)s.bytes_out);
        lb_jout_num(&j, "bpw", 4, s.bpw);
        lb_jout_int(&j, "params", (long long)s.n_params);
        lb_jout_int(&j, "tensors", s.n_tensors);
        lb_jout_int(&j, "fallbacks", s.n_fallback);
        lb_jout_num(&j, "err_rtn", -6, s.err_rtn);
        lb_jout_num(&j, "err_method", -6, s.err_method);
        lb_jout_num(&j, "seconds_calib", 3, s.seconds_calib);
        lb_jout_num(&j, "seconds_method", 3, s.seconds_method);
        lb_jout_num(&j, "seconds", 3, s.seconds);
        lb_jout_int(&j, "peak_rss", (long long)s.peak_rss);
        lb_jout_int(&j, "memory_budget", (long long)s.memory_budget);
        lb_jout_int(&j, "streams_bytes", (long long)s.streams_bytes);
        lb_jout_bool(&j, "streams_spilled", s.streams_spilled);
        lb_jout_int(&j, "ranks", lb_dist_size());
        lb_jout_int(&j, "mpi_bytes_sent", (long long)lb_dist_bytes_sent());
        lb_jout_end(&j);
    } else {
        if (!quiet)
            for (int32_t i = 0; i < s.n_tensors; i++) {
                const lb_tensor *t = nt[i].t;
                fprintf(stderr, "  %-28s [%6lld, %6lld] %-6s -> %-6s%s", nt[i].name,
                        (long long)t->ne[0], (long long)t->ne[1], lb_type_name(t->type),
                        lb_type_name(pl[i].type), pl[i].overridden ? "  (--tensor-type)" : "");
                if (pl[i].fallback)
                    fprintf(stderr, "  (fallback: %s blocks do not divide rows of %lld)",
                            lb_type_name(pl[i].wanted), (long long)t->ne[0]);
                fputc('\n', stderr);
            }
        printf("quantize: %s -> %s (%s, %s): %.2f MB -> %.2f MB, %.3f bits per weight, %d tensors "
               "(%d fell back), %.2fs, peak RSS %.0f MB\n", a.positional[0], out_path, r->name, method,
               (double)s.bytes_in / 1e6, (double)s.bytes_out / 1e6, s.bpw, s.n_tensors,
               s.n_fallback, s.seconds, (double)s.peak_rss / 1e6);
        if (s.err_rtn > 0)
            printf("quantize: output error summed over the matrices of the last method: RTN %.5f -> "
                   "%s %.5f (%.2fx); calibration %.2fs, method %.2fs\n", s.err_rtn, method,
                   s.err_method, s.err_method > 0 ? s.err_rtn / s.err_method : 0.0,
                   s.seconds_calib, s.seconds_method);
    }
    if (rc == LB_EXIT_OK && !dry_run && !quiet) warn_lowbit_types(pl, s.n_tensors, out_path);
    if (rc == LB_EXIT_OK && !dry_run && !quiet && (split_bytes || split_tensors || keep_split)) report_shards(out_path);
    free(pl);
    free(nt);
    lb_model_free(m);
out:
    if (qlog.json) fclose(qlog.json);
    lb_imatrix_free(imatrix);
    for (int32_t i = 0; i < n_ov; i++) free(ov_buf[i]);
    for (int32_t i = 0; i < n_bov; i++) free(bnames[i]);
    free(bnames);
    free(bov);
    return rc;
}
