/* lowbit info [--json]: version, CPU features, threads and the storage types table, each type
 * marked with whether llama.cpp (and Ollama) load it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    lb_args     a;
    const char *opt;
    bool        json = false;
    lb_args_init(&a, "info", argc, argv);
    while ((opt = lb_args_next(&a)))
        if (lb_is_help(opt)) return lb_print_help("info");
        else if (!strcmp(opt, "--json")) json = true;
        else return lb_usage_error("info", "unknown option %s", opt);
    if (a.bad) return LB_EXIT_USAGE;
    if (json) {
        lb_jout j;
        lb_jout_begin(&j, stdout);
        lb_jout_str(&j, "version", lb_version());
        lb_jout_str(&j, "cpu", lb_cpu_features_str());
        lb_jout_str(&j, "kernels", lb_kernels_name());
        lb_jout_int(&j, "threads", lb_threads_get());
        lb_jout_bool(&j, "mpi", lb_dist_built());
        lb_jout_raw(&j, "types", "[");
        for (int t = 0, n = 0; t < LB_TYPE_COUNT; t++) {
            const lb_type_traits *tr = lb_type_get_traits((lb_type)t);
            if (!tr || tr->internal) continue; /* reserved; kernel layouts are not types a user has */
            lb_jout e;
            fputs(n++ ? ", " : "", stdout);
            lb_jout_begin(&e, stdout);
            lb_jout_str(&e, "name", tr->name);
            lb_jout_int(&e, "block", tr->block_size);
            lb_jout_int(&e, "bytes", (long long)tr->type_size);
            lb_jout_num(&e, "bpw", 4, (double)tr->bits_per_weight);
            lb_jout_bool(&e, "llama_cpp", lb_type_to_ggml((lb_type)t) >= 0);
            fputc('}', stdout);
        }
        fputc(']', stdout);
        lb_jout_end(&j);
        return LB_EXIT_OK;
    }
    printf("lowbit %s\ncpu: %s\nkernels: %s\nthreads: %d\nmpi: %s\n\ntypes:\n", lb_version(), lb_cpu_features_str(),
           lb_kernels_name(), lb_threads_get(), lb_dist_built() ? "yes (run under mpirun)" : "no (make mpi builds it)");
    printf("  %-12s %6s %6s %6s  %s\n", "name", "block", "bytes", "bpw", "llama.cpp");
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        const lb_type_traits *tr = lb_type_get_traits((lb_type)t);
        if (!tr || tr->internal) continue;
        printf("  %-12s %6d %6zu %6.2f  %s\n", tr->name, tr->block_size, tr->type_size,
               (double)tr->bits_per_weight, lb_type_to_ggml((lb_type)t) >= 0 ? "yes" : "no (lowbit only)");
    }
    return LB_EXIT_OK;
}
