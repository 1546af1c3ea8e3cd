/* lowbit convert IN OUT [--type f32|f16|bf16] [--to gguf|hf]: any readable model to GGUF,
 * or to a Hugging Face directory. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_convert(int argc, char **argv) {
    lb_args     a;
    const char *opt, *tok = NULL, *type_name = "f32", *to = "gguf";
    lb_args_init(&a, "convert", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) return lb_print_help("convert");
        else if (!strcmp(opt, "--type")) type_name = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--to")) to = lb_args_value(&a);
        else return lb_usage_error("convert", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional != 2) return lb_usage_error("convert", "expected IN and OUT");
    const lb_type type = lb_type_from_name(type_name);
    if (type != LB_TYPE_F32 && type != LB_TYPE_F16 && type != LB_TYPE_BF16)
        return lb_usage_error("convert", "--type must be f32, f16 or bf16, not '%s'", type_name);
    const bool hf = !strcmp(to, "hf");
    if (!hf && strcmp(to, "gguf") != 0) return lb_usage_error("convert", "--to must be gguf or hf, not '%s'", to);
    if (lb_check_output(a.positional[1], hf)) return LB_EXIT_ERROR;
    lb_model *m;
    lb_error  err = { 0 };
    if (lb_cli_model_load(&m, a.positional[0], tok, &err)) return lb_runtime_error(&err);
    const double t0 = lb_time_sec();
    if (hf ? lb_model_save_hf(m, a.positional[1], type, &err)
           : lb_model_save_gguf(m, a.positional[1], type, &err)) {
        lb_model_free(m);
        return lb_runtime_error(&err);
    }
    fprintf(stderr, "convert: %s -> %s (%s%s, %lld parameters) in %.2fs\n", a.positional[0],
            a.positional[1], hf ? "HF directory, " : "", lb_type_name(type),
            (long long)lb_model_nparams(m), lb_time_sec() - t0);
    lb_model_free(m);
    return LB_EXIT_OK;
}
