/* lowbit info: version, CPU features, threads and the storage types table. */
#include <stdio.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    lb_args     a;
    const char *opt;
    lb_args_init(&a, "info", argc, argv);
    while ((opt = lb_args_next(&a)))
        if (lb_is_help(opt)) return lb_print_help("info");
        else return lb_usage_error("info", "unknown option %s", opt);
    printf("lowbit %s\ncpu: %s\nkernels: %s\nthreads: %d\n\ntypes:\n", LB_VERSION,
           lb_cpu_features_str(), lb_kernels_name(), lb_threads_get());
    printf("  %-12s %6s %6s %6s\n", "name", "block", "bytes", "bpw");
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        const lb_type_traits *tr = lb_type_get_traits((lb_type)t);
        if (!tr) continue; /* reserved, not implemented yet */
        printf("  %-12s %6d %6zu %6.2f\n", tr->name, tr->block_size, tr->type_size,
               (double)tr->bits_per_weight);
    }
    return LB_EXIT_OK;
}
