/* Fuzz target: llama.cpp importance-matrix files (GGUF, general.type "imatrix") through
 * lb_imatrix_load, from a memfd. For a file that loads, every "NAME.in_sum2" tensor is read
 * back with lb_imatrix_get at its own length and at a wrong one. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "lowbit/lowbit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char       path[64];
    const int  fd = fuzz_memfd(data, size, path);
    lb_imatrix *im;
    lb_error   err;
    if (fd < 0) return 0;
    if (lb_imatrix_load(&im, path, &err) != LB_OK) {
        close(fd);
        return 0;
    }
    volatile float sink = (float)lb_imatrix_count(im); /* keeps the reads */
    lb_gguf *g;
    if (lb_gguf_open_memory(&g, data, size, "fuzz", &err) == LB_OK) {
        for (int64_t i = 0; i < g->n_tensors; i++) {
            const char  *nm = g->tensors[i].name;
            const size_t l  = strlen(nm);
            if (l <= 8 || l - 8 >= 150 || strcmp(nm + l - 8, ".in_sum2") != 0) continue;
            char base[160];
            memcpy(base, nm, l - 8);
            base[l - 8] = 0;
            for (int64_t n = g->tensors[i].ne[0]; n >= g->tensors[i].ne[0] - 1 && n > 0; n--) {
                if (n > (1 << 20)) continue;
                float *out = malloc((size_t)n * sizeof *out);
                if (out && lb_imatrix_get(im, base, n, out)) sink += out[0] + out[n - 1];
                free(out);
            }
        }
        lb_gguf_close(g);
    }
    lb_imatrix_free(im);
    close(fd);
    return 0;
}
