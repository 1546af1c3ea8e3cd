/* lowbit qat IN OUT.gguf --type T --text F [--method qat|efficientqat|qaft] [--teacher REF]:
 * quantization-aware training (see lowbit/train.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train_args.h"

int cmd_qat(int argc, char **argv) {
    lb_args       a;
    lb_train_cli  c;
    const char   *opt, *type = NULL, *method = "qat", *teacher_path = NULL, *loss = NULL, *tok = NULL;
    lb_qat_params p = lb_qat_default_params(LB_QAT_QAT);
    int64_t       iv;
    double        fv;
    bool          no_lsq = false;
    lb_train_cli_init(&c, "qat", p.opts);
    lb_args_init(&a, "qat", argc, argv);
    /* the method first: it decides the defaults the other options change */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--method")) method = argv[i + 1];
    if (!strcmp(method, "qat")) p = lb_qat_default_params(LB_QAT_QAT);
    else if (!strcmp(method, "efficientqat")) p = lb_qat_default_params(LB_QAT_EFFICIENT);
    else if (!strcmp(method, "qaft")) p = lb_qat_default_params(LB_QAT_QAFT);
    else return lb_usage_error("qat", "unknown method '%s' (qat, efficientqat, qaft)", method);
    c.o = p.opts;
    while (c.rc == LB_EXIT_OK && (opt = lb_args_next(&a)) && !a.bad) {
        if (lb_train_cli_option(&c, &a, opt)) continue;
        if (lb_is_help(opt)) return lb_print_help("qat");
        else if (!strcmp(opt, "--method")) lb_args_value(&a);
        else if (!strcmp(opt, "--type")) type = lb_args_value(&a);
        else if (!strcmp(opt, "--teacher")) teacher_path = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--loss")) loss = lb_args_value(&a);
        else if (!strcmp(opt, "--no-lsq")) no_lsq = true;
        else if (!strcmp(opt, "--scale-lr")) { if (lb_args_float_pos(&a, 1e6, &fv)) p.scale_lr_mult = (float)fv; }
        else if (!strcmp(opt, "--bap-lr")) { if (lb_args_float_pos(&a, 10, &fv)) p.bap_lr = (float)fv; }
        else if (!strcmp(opt, "--bap-windows")) { if (lb_args_int(&a, 1, 1 << 20, &iv)) p.bap_windows = (int32_t)iv; }
        else if (!strcmp(opt, "--bap-epochs")) { if (lb_args_int(&a, 0, 1000, &iv)) p.bap_epochs = (int32_t)iv; }
        else c.rc = lb_usage_error("qat", "unknown option %s", opt);
    }
    lb_error  err = { 0 };
    lb_model *in = NULL, *teacher = NULL;
    lb_tokens train = { 0 }, valid = { 0 };
    FILE     *log = NULL;
    int       rc  = a.bad ? LB_EXIT_USAGE : c.rc;
    if (rc != LB_EXIT_OK) goto done;
    rc = LB_EXIT_USAGE;
    if (a.n_positional != 2 || !c.n_train) {
        lb_usage_error("qat", "expected IN OUT.gguf and --text FILE (or --text-list)");
        goto done;
    }
    if (loss && strcmp(loss, "ce") && strcmp(loss, "kd")) {
        lb_usage_error("qat", "--loss must be ce (cross-entropy on the text) or kd (distillation)");
        goto done;
    }
    if (p.method != LB_QAT_QAFT && !type) {
        lb_usage_error("qat", "--type T is required (qaft alone may keep the input's types)");
        goto done;
    }
    if (type && !lb_recipe_find(type)) {
        lb_usage_error("qat", "unknown type '%s' (see lowbit quantize --help)", type);
        goto done;
    }
    p.opts    = c.o;
    p.opts.report = lb_train_cli_report;
    p.type    = type;
    p.lsq     = !no_lsq;
    p.distill = loss ? !strcmp(loss, "kd") : p.distill;
    if (p.opts.warmup >= p.opts.steps) p.opts.warmup = p.opts.steps / 10;
    rc = LB_EXIT_ERROR;
    if (lb_check_output(a.positional[1], false) || (p.opts.ckpt_path && lb_check_output(p.opts.ckpt_path, false)))
        goto done;
    lb_threads_set((int)c.threads);
    if (lb_cli_model_load(&in, a.positional[0], tok, &err) ||
        (teacher_path && lb_cli_model_load(&teacher, teacher_path, tok, &err)) ||
        lb_train_cli_load(&c, in->vocab, &train, &valid, &log, &err))
        goto fail;
    p.opts.log = log;
    p.teacher  = teacher;
    if (p.method == LB_QAT_QAFT && p.distill && !teacher) {
        rc = lb_usage_error("qat", "qaft distills from the unquantized model: give --teacher REF "
                            "(or --loss ce)");
        goto done;
    }
    lb_train_result res;
    const double    t0 = lb_time_sec();
    const lb_status qst = lb_qat_run(in, &p, &train, valid.n ? &valid : NULL, a.positional[1], &res, &err);
    lb_train_cli_report_end();
    if (qst) goto fail;
    char vl[64] = ""; /* no validation figure without a validation set */
    if (valid.n && isfinite(res.valid_loss))
        snprintf(vl, sizeof vl, "; valid loss %.4f (ppl %.3f)", res.valid_loss, exp(res.valid_loss));
    fprintf(stderr, "qat: %s, %lld steps, %lld tokens in %.1f s (%.0f tokens/s in the end-to-end "
            "phase)%s -> %s\n", method, (long long)res.steps_done, (long long)res.tokens_seen,
            lb_time_sec() - t0, res.tokens_per_sec, vl, a.positional[1]);
    if (c.json) lb_train_cli_json("qat", a.positional[1], &res, lb_time_sec() - t0);
    rc = LB_EXIT_OK;
    goto done;
fail:
    lb_runtime_error(&err);
done:
    if (log) fclose(log);
    lb_tokens_free(&train);
    lb_tokens_free(&valid);
    lb_model_free(teacher);
    lb_model_free(in);
    lb_train_cli_free(&c);
    return rc;
}
