/* lowbit calibrate MODEL --text FILE -o OUT.imatrix.gguf: run calibration windows through the
 * model and save the per-channel importance (mean x^2 of every linear layer's input) in
 * llama.cpp's importance-matrix format, for `lowbit quantize --imatrix` or llama-quantize. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_calibrate(int argc, char **argv) {
    lb_args     a;
    const char *opt, *text_path = NULL, *out = NULL, *tok = NULL, *ctx_opt = "--ctx";
    int64_t     samples = 0, ctx_len = 128, seed = 1234, threads = 0;
    bool        long_ctx = false, json = false;
    lb_args_init(&a, "calibrate", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) return lb_print_help("calibrate");
        else if (!strcmp(opt, "--text")) text_path = lb_args_value(&a);
        else if (!strcmp(opt, "-o")) out = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--calib-samples")) lb_args_int(&a, 1, 1 << 20, &samples);
        else if (!strcmp(opt, "--calib-ctx") || !strcmp(opt, "--ctx")) {
            ctx_opt = opt;
            lb_args_int(&a, 2, 1 << 20, &ctx_len);
        }
        else if (!strcmp(opt, "--allow-long-ctx")) long_ctx = true;
        else if (!strcmp(opt, "--seed")) lb_args_int(&a, 0, INT64_MAX, &seed);
        else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) lb_args_int(&a, 0, 1024, &threads);
        else if (!strcmp(opt, "--json")) json = true;
        else return lb_usage_error("calibrate", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional != 1 || !text_path || !out)
        return lb_usage_error("calibrate", "expected MODEL, --text FILE and -o OUT");
    if (lb_check_output(out, false)) return LB_EXIT_ERROR;
    lb_threads_set((int)threads);
    lb_error    err = { 0 };
    lb_model   *m   = NULL;
    lb_context *ctx = NULL;
    lb_calib   *cal = NULL;
    char       *text = NULL;
    int32_t    *win  = NULL, n_win = 0;
    size_t      len;
    int         rc = LB_EXIT_ERROR;
    const lb_calib_params cp = { .n_samples = (int32_t)samples, .n_ctx = (int32_t)ctx_len,
                                 .seed = (uint64_t)seed, .sequential = samples == 0 };
    const double t0 = lb_time_sec();
    if (lb_cli_model_load(&m, a.positional[0], tok, &err)) goto done;
    if ((rc = lb_check_ctx("calibrate", ctx_opt, ctx_len, m, long_ctx)) != LB_EXIT_OK) goto quiet;
    rc = LB_EXIT_ERROR;
    if (lb_read_file(text_path, &text, &len, &err) ||
        lb_calib_windows(m->vocab, text, len, &cp, &win, &n_win, &err) ||
        lb_context_create(&ctx, m, cp.n_ctx, cp.n_ctx, &err) || lb_calib_create(&cal, m, false, &err) ||
        lb_calib_run(cal, ctx, win, n_win, cp.n_ctx, &err) ||
        lb_imatrix_save(cal, m, out, text_path, n_win, cp.n_ctx, &err))
        goto done;
    if (json) {
        lb_jout j;
        lb_jout_begin(&j, stdout);
        lb_jout_str(&j, "model", a.positional[0]);
        lb_jout_str(&j, "text", text_path);
        lb_jout_str(&j, "out", out);
        lb_jout_int(&j, "windows", n_win);
        lb_jout_int(&j, "ctx", cp.n_ctx);
        lb_jout_int(&j, "ranks", lb_dist_size());
        lb_jout_bool(&j, "sequential", cp.sequential);
        lb_jout_num(&j, "seconds", 3, lb_time_sec() - t0);
        lb_jout_end(&j);
    } else if (lb_dist_rank() == 0) {
        fprintf(stderr, "calibrate: %d windows of %d tokens (%s) in %.2fs -> %s\n", n_win, cp.n_ctx,
                cp.sequential ? "sequential" : "random", lb_time_sec() - t0, out);
    }
    rc = LB_EXIT_OK;
done:
    if (rc != LB_EXIT_OK) lb_runtime_error(&err);
quiet:
    free(win);
    free(text);
    lb_calib_free(cal);
    lb_context_free(ctx);
    lb_model_free(m);
    return rc;
}
