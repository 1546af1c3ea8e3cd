/* lowbit synth --shape NAME -o OUT.gguf [--type T] [shape flags]: a random-weight model of a
 * real shape, streamed to disk (see lowbit/synth.h). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "lowbit/synth.h"

/* --upcycle DENSE: a mixture of experts made from a trained dense model (synth.h) */
static int synth_upcycle(const char *in, const char *out, const char *type, int32_t X, int32_t K, double noise,
                         int64_t seed, bool quiet) {
    lb_error          err = { 0 };
    lb_model         *m;
    lb_upcycle_params p = { .n_expert = X, .n_expert_used = K, .noise = (float)noise, .seed = (uint64_t)seed,
                            .type = lb_type_from_name(type) };
    if (p.type != LB_TYPE_F32 && p.type != LB_TYPE_F16 && p.type != LB_TYPE_BF16)
        return lb_usage_error("synth", "--upcycle writes f32, f16 or bf16, not '%s'", type);
    if (lb_check_output(out, false)) return LB_EXIT_ERROR;
    if (lb_model_load(&m, in, NULL, &err)) return lb_runtime_error(&err);
    const double t0 = lb_time_sec();
    const int    rc = lb_synth_upcycle(out, m, &p, &err) ? lb_runtime_error(&err) : LB_EXIT_OK;
    if (!rc && !quiet)
        fprintf(stderr, "synth: %s -> %s: %d experts (%d a token) from each FFN, noise %.3g, %s, %.1f s\n", in, out,
                X > 0 ? X : 8, K > 0 ? K : 2, noise, type, lb_time_sec() - t0);
    lb_model_free(m);
    return rc;
}

int cmd_synth(int argc, char **argv) {
    lb_args     a;
    const char *opt, *shape = NULL, *out = NULL, *type = "f16", *vocab = NULL;
    int64_t     seed = 1234, threads = 0;
    bool        quiet = false, json = false;
    struct {
        const char *flag;
        int64_t     v;
    } dims[] = { { "--n-embd", 0 }, { "--n-ff", 0 },     { "--n-layers", 0 }, { "--n-heads", 0 },
                 { "--n-kv-heads", 0 }, { "--n-vocab", 0 }, { "--ctx", 0 }, { "--head-dim", 0 },
                 { "--sliding-window", 0 }, { "--experts", 0 }, { "--experts-used", 0 },
                 { "--n-ff-exp", 0 }, { "--n-ff-shexp", 0 }, { "--q-lora", 0 }, { "--kv-lora", 0 },
                 { "--rope-dim", 0 }, { "--v-head-dim", 0 }, { "--shared-experts", 0 }, { "--expert-groups", 0 },
                 { "--groups-used", 0 } };
    int64_t     dense_lead = -1;
    const char *router     = "softmax";
    const char *arch = NULL, *upcycle = NULL;
    double      theta = 0, noise = 0.05;
    lb_args_init(&a, "synth", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        bool dim = false;
        for (size_t i = 0; i < sizeof dims / sizeof dims[0] && !dim; i++)
            if (!strcmp(opt, dims[i].flag)) dim = lb_args_int(&a, 1, 1 << 24, &dims[i].v) || true;
        if (dim) continue;
        if (lb_is_help(opt)) return lb_print_help("synth");
        else if (!strcmp(opt, "--shape")) shape = lb_args_value(&a);
        else if (!strcmp(opt, "--arch")) arch = lb_args_value(&a);
        else if (!strcmp(opt, "-o") || !strcmp(opt, "--output")) out = lb_args_value(&a);
        else if (!strcmp(opt, "--type")) type = lb_args_value(&a);
        else if (!strcmp(opt, "--vocab")) vocab = lb_args_value(&a);
        else if (!strcmp(opt, "--upcycle")) upcycle = lb_args_value(&a);
        else if (!strcmp(opt, "--noise")) lb_args_float(&a, 0, 0.99, &noise);
        else if (!strcmp(opt, "--dense-lead")) lb_args_int(&a, 0, 1024, &dense_lead);
        else if (!strcmp(opt, "--router")) router = lb_args_value(&a);
        else if (!strcmp(opt, "--seed")) lb_args_int(&a, 0, INT64_MAX, &seed);
        else if (!strcmp(opt, "--rope-theta")) lb_args_float_pos(&a, 1e12, &theta);
        else if (!strcmp(opt, "-q") || !strcmp(opt, "--quiet")) quiet = true;
        else if (!strcmp(opt, "--json")) json = true;
        else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) lb_args_int(&a, 0, 1024, &threads);
        else return lb_usage_error("synth", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional > 1 || (a.n_positional == 1 && out))
        return lb_usage_error("synth", "expected one output file (-o OUT.gguf)");
    if (a.n_positional == 1) out = a.positional[0];
    if (!out) return lb_usage_error("synth", "-o OUT.gguf is required");
    if (upcycle) return synth_upcycle(upcycle, out, type, (int32_t)dims[9].v, (int32_t)dims[10].v, noise, seed, quiet);
    lb_progress     bar;
    lb_synth_params p = { .seed = (uint64_t)seed, .vocab_path = vocab, .progress = quiet ? NULL : lb_cli_progress,
                          .progress_user = &bar, .arch = arch };
    if (arch && !lb_arch_by_name(arch))
        return lb_usage_error("synth", "unknown architecture '%s' (%s)", arch, lb_arch_names());
    lb_error        err = { 0 };
    if (lb_synth_shape(shape ? shape : "tiny", &p.cfg, &err)) return lb_usage_error("synth", "%s", err.msg);
    p.cfg.head_dim    = 0; /* n_embd / n_heads unless --head-dim says otherwise */
    int32_t *fields[] = { &p.cfg.n_embd, &p.cfg.n_ff, &p.cfg.n_layers, &p.cfg.n_heads,
                          &p.cfg.n_kv_heads, &p.cfg.n_vocab, &p.cfg.n_ctx_train, &p.cfg.head_dim,
                          &p.cfg.n_swa, &p.cfg.n_expert, &p.cfg.n_expert_used, &p.cfg.n_ff_exp, &p.cfg.n_ff_shexp,
                          &p.cfg.n_lora_q, &p.cfg.n_lora_kv, &p.cfg.n_rot, &p.cfg.head_dim_v, &p.cfg.n_expert_shared,
                          &p.cfg.n_expert_groups, &p.cfg.n_group_used };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v) *fields[i] = (int32_t)dims[i].v;
    if (dims[3].v && !dims[4].v) p.cfg.n_kv_heads = p.cfg.n_heads; /* --n-heads alone: MHA */
    if (theta > 0) p.cfg.rope_theta = (float)theta;
    const lb_arch *A = lb_arch_by_name(arch ? arch : "llama");
    bool mla_flag = dense_lead >= 0 || strcmp(router, "softmax");
    for (size_t i = 13; i < sizeof dims / sizeof dims[0]; i++) mla_flag = mla_flag || dims[i].v;
    if (mla_flag && !A->ops.mla)
        return lb_usage_error("synth", "--q-lora, --kv-lora, --rope-dim, --v-head-dim, --dense-lead, --shared-experts, "
                              "--expert-groups, --groups-used and --router are for --arch deepseek2");
    p.cfg.n_dense_lead = dense_lead < 0 ? 0 : dense_lead == 0 ? -1 : (int32_t)dense_lead; /* synth.c: 0 default, -1 none */
    if (!strcmp(router, "v3")) { /* DeepSeek-V3's: sigmoid, a selection bias, renormalized, scaled */
        p.cfg.moe_gating = LB_GATING_SIGMOID, p.cfg.moe_norm_w = 1, p.cfg.moe_w_scale = 2.5f;
    } else if (strcmp(router, "softmax")) {
        return lb_usage_error("synth", "--router softmax (DeepSeek-V2's) or v3, not '%s'", router);
    }
    if (A->moe) lb_synth_moe_defaults(A, &p.cfg);
    else if (p.cfg.n_expert || p.cfg.n_expert_used || p.cfg.n_ff_exp || p.cfg.n_ff_shexp)
        return lb_usage_error("synth", "--experts, --experts-used, --n-ff-exp and --n-ff-shexp are for a mixture "
                              "of experts (--arch mixtral, qwen2moe, qwen3moe)");
    p.type = lb_type_from_name(type);
    if (p.type == LB_TYPE_INVALID) return lb_usage_error("synth", "unknown type '%s'", type);
    if (lb_check_output(out, false)) return LB_EXIT_ERROR;
    lb_threads_set((int)threads);
    const double t0 = lb_time_sec();
    if (lb_synth_write(out, &p, &err)) return lb_runtime_error(&err);
    if (!quiet)
        fprintf(stderr, "synth: %s: %d layers, n_embd %d, n_ff %d, heads %d/%d, vocab %d%s, %s, "
                "%.1f s\n", out, p.cfg.n_layers, p.cfg.n_embd, p.cfg.n_ff, p.cfg.n_heads,
                A->ops.mla ? 1 : p.cfg.n_kv_heads, p.cfg.n_vocab, A->moe ? ", a mixture of experts" : "", lb_type_name(p.type),
                lb_time_sec() - t0);
    if (!quiet && A->moe)
        fprintf(stderr, "synth: %d experts, %d per token, expert n_ff %d, shared %d\n", p.cfg.n_expert,
                p.cfg.n_expert_used, p.cfg.n_ff_exp > 0 ? p.cfg.n_ff_exp : p.cfg.n_ff, p.cfg.n_ff_shexp);
    if (json) {
        struct stat sb;
        lb_jout     j;
        lb_jout_begin(&j, stdout);
        lb_jout_str(&j, "output", out);
        lb_jout_str(&j, "arch", arch ? arch : "llama");
        lb_jout_str(&j, "type", lb_type_name(p.type));
        const struct { const char *k; int32_t v; } dims_out[] = {
            { "n_layers", p.cfg.n_layers }, { "n_embd", p.cfg.n_embd }, { "n_ff", p.cfg.n_ff },
            { "n_heads", p.cfg.n_heads }, { "n_kv_heads", p.cfg.n_kv_heads }, { "n_vocab", p.cfg.n_vocab },
            { "n_ctx", p.cfg.n_ctx_train } };
        for (size_t i = 0; i < sizeof dims_out / sizeof dims_out[0]; i++) lb_jout_int(&j, dims_out[i].k, dims_out[i].v);
        if (p.cfg.n_expert > 0) lb_jout_int(&j, "n_expert", p.cfg.n_expert);
        lb_jout_int(&j, "bytes", stat(out, &sb) == 0 ? (long long)sb.st_size : -1);
        lb_jout_num(&j, "seconds", 3, lb_time_sec() - t0);
        lb_jout_end(&j);
    }
    return LB_EXIT_OK;
}
