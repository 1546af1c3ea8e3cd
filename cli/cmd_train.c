/* lowbit train --text F [--text F ...] --tokenizer TOK -o OUT.gguf [--arch A] [shape] [options]:
 * train a model of a family of arch.h from scratch on text, or go on training one (--init
 * MODEL: its family, shape and tokenizer); see lowbit/train.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lowbit/synth.h"
#include "train_args.h"

int cmd_train(int argc, char **argv) {
    lb_args      a;
    lb_train_cli c;
    const char  *opt, *tok_path = NULL, *out = NULL, *type = "f16", *shape = NULL, *init = NULL;
    bool         tied = false;
    struct {
        const char *flag;
        int64_t     v;
    } dims[] = { { "--n-embd", 0 }, { "--n-ff", 0 },     { "--n-layers", 0 }, { "--n-heads", 0 },
                 { "--n-kv-heads", 0 }, { "--n-ctx", 0 }, { "--experts", 0 }, { "--experts-used", 0 },
                 { "--n-ff-exp", 0 } };
    double aux = -1; /* --moe-aux: -1 not given */
    lb_train_cli_init(&c, "train", lb_train_default_opts());
    lb_args_init(&a, "train", argc, argv);
    while (c.rc == LB_EXIT_OK && (opt = lb_args_next(&a)) && !a.bad) {
        bool dim = false;
        for (size_t i = 0; i < sizeof dims / sizeof dims[0] && !dim; i++)
            if (!strcmp(opt, dims[i].flag)) dim = lb_args_int(&a, 1, 1 << 20, &dims[i].v) || true;
        if (dim || lb_train_cli_option(&c, &a, opt)) continue;
        if (lb_is_help(opt)) return lb_print_help("train");
        else if (!strcmp(opt, "--tokenizer")) tok_path = lb_args_value(&a);
        else if (!strcmp(opt, "-o") || !strcmp(opt, "--output")) out = lb_args_value(&a);
        else if (!strcmp(opt, "--type")) type = lb_args_value(&a);
        else if (!strcmp(opt, "--shape")) shape = lb_args_value(&a);
        else if (!strcmp(opt, "--tied")) tied = true;
        else if (!strcmp(opt, "--ternary")) c.o.ternary = true;
        else if (!strcmp(opt, "--arch")) c.o.arch = lb_args_value(&a);
        else if (!strcmp(opt, "--init")) init = lb_args_value(&a);
        else if (!strcmp(opt, "--moe-aux")) lb_args_float(&a, 0, 10, &aux);
        else c.rc = lb_usage_error("train", "unknown option %s", opt);
    }
    lb_error        err   = { 0 };
    lb_vocab       *vocab = NULL;
    lb_model       *from  = NULL;
    lb_tokens       train = { 0 }, valid = { 0 };
    FILE           *log   = NULL;
    lb_llama_config cfg;
    const lb_type   out_type = lb_type_from_name(type);
    lb_train_opts  *o        = &c.o;
    int             rc       = a.bad ? LB_EXIT_USAGE : c.rc;
    if (rc != LB_EXIT_OK) goto done;
    rc = LB_EXIT_USAGE;
    if (a.n_positional || (!tok_path && !init) || !out || !c.n_train) {
        lb_usage_error("train", "expected --text FILE (or --text-list), --tokenizer F (or --init MODEL) and -o OUT.gguf");
        goto done;
    }
    bool shaped = shape || c.o.arch || tied || c.o.ternary;
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) shaped |= dims[i].v != 0;
    if (init && shaped) {
        lb_usage_error("train", "--init continues a model: its family and shape are its own (no --shape, --arch, "
                       "dimensions, --tied or --ternary)");
        goto done;
    }
    if (out_type != LB_TYPE_F32 && out_type != LB_TYPE_F16 && out_type != LB_TYPE_BF16) {
        lb_usage_error("train", "--type must be f32, f16 or bf16 (quantize the result after)");
        goto done;
    }
    const lb_arch *A = lb_arch_by_name(o->arch ? o->arch : "llama");
    if (init) { /* its config, its tokenizer unless --tokenizer says otherwise */
        if (lb_model_load(&from, init, tok_path, &err)) {
            rc = lb_runtime_error(&err);
            goto done;
        }
        cfg = from->cfg, tied = from->tied_output, c.o.init = from, A = from->arch;
        if (o->ctx > cfg.n_ctx_train) {
            lb_usage_error("train", "--ctx %d exceeds the model's context of %d", o->ctx, cfg.n_ctx_train);
            goto done;
        }
    } else {
        if (lb_synth_shape(shape ? shape : "tiny", &cfg, &err)) {
            lb_usage_error("train", "%s", err.msg);
            goto done;
        }
        int32_t *fields[] = { &cfg.n_embd, &cfg.n_ff, &cfg.n_layers, &cfg.n_heads, &cfg.n_kv_heads,
                              &cfg.n_ctx_train, &cfg.n_expert, &cfg.n_expert_used, &cfg.n_ff_exp };
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
            if (dims[i].v) *fields[i] = (int32_t)dims[i].v;
        if (dims[3].v && !dims[4].v) cfg.n_kv_heads = cfg.n_heads; /* --n-heads alone: MHA */
        if (!dims[5].v) cfg.n_ctx_train = o->ctx;
        if (cfg.n_heads <= 0 || cfg.n_embd % cfg.n_heads || cfg.n_heads % cfg.n_kv_heads ||
            (cfg.n_embd / cfg.n_heads) % 2 || o->ctx > cfg.n_ctx_train) {
            lb_usage_error("train", "n_embd %d, n_heads %d, n_kv_heads %d, ctx %d / %d do not fit together",
                           cfg.n_embd, cfg.n_heads, cfg.n_kv_heads, o->ctx, cfg.n_ctx_train);
            goto done;
        }
        cfg.head_dim = cfg.n_embd / cfg.n_heads;
        if (A) lb_arch_config_defaults(A, &cfg); /* Gemma's windows and soft-capping */
        if (!A) {
            lb_usage_error("train", "unknown architecture '%s' (%s)", o->arch, lb_arch_names());
            goto done;
        }
        if (A->moe) lb_synth_moe_defaults(A, &cfg); /* 8 experts, 2 a token, unless given */
        if (!A->moe && (dims[6].v || dims[7].v || dims[8].v || aux >= 0)) {
            lb_usage_error("train", "--experts, --experts-used, --n-ff-exp and --moe-aux are for a mixture of experts "
                           "(--arch mixtral, qwen3moe)");
            goto done;
        }
        if (A->moe && (cfg.n_expert_used > cfg.n_expert || (dims[8].v && !A->ops.moe_ff_exp))) {
            lb_usage_error("train", "%d experts, %d a token%s", cfg.n_expert, cfg.n_expert_used,
                           dims[8].v && !A->ops.moe_ff_exp ? "; Mixtral's experts are --n-ff wide (no --n-ff-exp)" : "");
            goto done;
        }
    }
    if (aux >= 0) o->moe_aux = (float)aux;
    if (o->warmup >= o->steps) o->warmup = o->steps / 10;
    o->report   = lb_train_cli_report;
    rc          = LB_EXIT_ERROR;
    if (lb_check_output(out, false) || (o->ckpt_path && lb_check_output(o->ckpt_path, false))) goto done;
    lb_threads_set((int)c.threads);
    if ((!init && lb_cli_vocab_load(&vocab, tok_path, &err)) || /* --init: its own (or --tokenizer's, padded) */
        lb_train_cli_load(&c, vocab ? vocab : from->vocab, &train, &valid, &log, &err))
        goto fail;
    cfg.n_vocab = lb_vocab_n_tokens(vocab ? vocab : from->vocab);
    fprintf(stderr, "train: %s, %d layers, n_embd %d, n_ff %d, heads %d/%d, vocab %d, ctx %d%s\n", A->name,
            cfg.n_layers, cfg.n_embd, cfg.n_ff, cfg.n_heads, cfg.n_kv_heads, cfg.n_vocab,
            cfg.n_ctx_train, tied ? ", tied embeddings" : "");
    if (A->moe)
        fprintf(stderr, "train: %d experts of n_ff %d, %d a token, load-balancing loss weight %g\n", cfg.n_expert,
                cfg.n_ff_exp > 0 ? cfg.n_ff_exp : cfg.n_ff, cfg.n_expert_used, (double)o->moe_aux);
    lb_train_result res;
    const lb_status tst = lb_train_from_scratch(&cfg, tied, vocab ? vocab : from->vocab, &train, valid.n ? &valid : NULL,
                                                o, out, out_type, &res, &err);
    lb_train_cli_report_end();
    if (tst) goto fail;
    char vl[64] = ""; /* no validation figure without a validation set */
    if (valid.n && isfinite(res.valid_loss))
        snprintf(vl, sizeof vl, ", valid loss %.4f (ppl %.3f)", res.valid_loss, exp(res.valid_loss));
    fprintf(stderr, "train: %lld steps, %lld tokens in %.1f s (%.0f tokens/s); train loss %.4f%s "
            "-> %s\n", (long long)res.steps_done, (long long)res.tokens_seen, res.seconds,
            res.tokens_per_sec, res.train_loss, vl, out);
    if (c.json) lb_train_cli_json("train", out, &res, res.seconds);
    rc = LB_EXIT_OK;
    goto done;
fail:
    lb_runtime_error(&err);
done:
    if (log) fclose(log);
    lb_tokens_free(&train);
    lb_tokens_free(&valid);
    lb_vocab_free(vocab);
    lb_model_free(from);
    lb_train_cli_free(&c);
    return rc;
}
