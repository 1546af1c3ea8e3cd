/* lowbit convert IN OUT [--type T] [--to gguf|hf|hf-gptq]: any readable model to GGUF, to a
 * Hugging Face directory, or (its matrices in q4_0/q8_0/intN) to a GPTQ checkpoint. A GPTQ or
 * AWQ checkpoint comes in as GGUF blocks; what its import did is reported on stderr. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lowbit/hf.h"

static void report_import(const lb_hf_quant_report *r) {
    fprintf(stderr, "convert: %s %d-bit, group %d%s%s: %d packed layers -> %d q4_0, %d q4_1, %d q8_0; %d exact",
            r->method, r->bits, r->group_size, r->sym ? ", sym" : "", r->desc_act ? ", act-order" : "", r->n_tensors,
            r->n_by_type[0], r->n_by_type[1], r->n_by_type[2], r->n_exact);
    if (r->n_tensors) fprintf(stderr, ", largest error %.3g (relative RMS%s%s)", r->max_rel_err,
                              r->max_rel_err > 0 ? ", " : "", r->max_rel_err > 0 ? r->worst : "");
    fprintf(stderr, "\n");
}

int cmd_convert(int argc, char **argv) {
    lb_args     a;
    const char *opt, *tok = NULL, *type_name = NULL, *to = "gguf";
    bool        json = false;
    lb_args_init(&a, "convert", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) return lb_print_help("convert");
        else if (!strcmp(opt, "--type")) type_name = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--to")) to = lb_args_value(&a);
        else if (!strcmp(opt, "--json")) json = true;
        else return lb_usage_error("convert", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional != 2) return lb_usage_error("convert", "expected IN and OUT");
    const bool hf = !strcmp(to, "hf"), gptq = !strcmp(to, "hf-gptq");
    if (!hf && !gptq && strcmp(to, "gguf") != 0)
        return lb_usage_error("convert", "--to must be gguf, hf or hf-gptq, not '%s'", to);
    if (gptq && type_name) return lb_usage_error("convert", "--to hf-gptq keeps the model's types: no --type");
    lb_type type = type_name && strcmp(type_name, "keep") ? lb_type_from_name(type_name) : LB_TYPE_INVALID;
    if (type_name && strcmp(type_name, "keep") && type != LB_TYPE_F32 && type != LB_TYPE_F16 && type != LB_TYPE_BF16)
        return lb_usage_error("convert", "--type must be f32, f16, bf16 or keep, not '%s'", type_name);
    if (type_name && !strcmp(type_name, "keep") && hf) return lb_usage_error("convert", "--to hf takes f32, f16 or bf16");
    if (lb_check_output(a.positional[1], hf || gptq)) return LB_EXIT_ERROR;
    lb_model *m;
    lb_error  err = { 0 };
    if (lb_cli_model_load(&m, a.positional[0], tok, &err)) return lb_runtime_error(&err);
    const lb_hf_quant_report *rep = lb_model_hf_quant(m);
    if (rep) report_import(rep);
    if (!type_name && !gptq) type = rep ? LB_TYPE_INVALID : LB_TYPE_F32; /* an import keeps its blocks */
    if (hf && type == LB_TYPE_INVALID) type = LB_TYPE_F32;
    const double t0 = lb_time_sec();
    if (gptq ? lb_model_save_hf_gptq(m, a.positional[1], &err)
        : hf ? lb_model_save_hf(m, a.positional[1], type, &err)
             : lb_model_save_gguf(m, a.positional[1], type, &err)) {
        lb_model_free(m);
        return lb_runtime_error(&err);
    }
    fprintf(stderr, "convert: %s -> %s (%s%s, %lld parameters) in %.2fs\n", a.positional[0], a.positional[1],
            gptq ? "GPTQ checkpoint" : hf ? "HF directory, " : "", gptq ? "" : type == LB_TYPE_INVALID ? "types kept" : lb_type_name(type),
            (long long)lb_model_nparams(m), lb_time_sec() - t0);
    if (json) {
        lb_jout j;
        lb_jout_begin(&j, stdout);
        lb_jout_str(&j, "input", a.positional[0]);
        lb_jout_str(&j, "output", a.positional[1]);
        lb_jout_str(&j, "to", to);
        lb_jout_str(&j, "type", gptq ? "gptq" : type == LB_TYPE_INVALID ? "keep" : lb_type_name(type));
        lb_jout_int(&j, "params", (long long)lb_model_nparams(m));
        lb_jout_num(&j, "seconds", 3, lb_time_sec() - t0);
        if (rep) {
            lb_jout_str(&j, "import_method", rep->method);
            lb_jout_int(&j, "import_bits", rep->bits);
            lb_jout_int(&j, "import_group_size", rep->group_size);
            lb_jout_bool(&j, "import_act_order", rep->desc_act);
            lb_jout_int(&j, "import_layers", rep->n_tensors);
            lb_jout_int(&j, "import_exact", rep->n_exact);
            lb_jout_num(&j, "import_max_rel_err", -6, rep->max_rel_err);
            lb_jout_str(&j, "import_worst", rep->worst);
        }
        lb_jout_end(&j);
    }
    lb_model_free(m);
    return LB_EXIT_OK;
}
