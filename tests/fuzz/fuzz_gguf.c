/* Fuzz target: the GGUF reader and the tokenizer metadata on top of it, from memory.
 * Everything a parsed file exposes is read back, so out-of-bounds views show up. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lowbit/lowbit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lb_gguf *g;
    lb_error err;
    if (lb_gguf_open_memory(&g, data, size, "fuzz", &err) != LB_OK) return 0;
    char     buf[256];
    unsigned sink = 0;
    for (int64_t i = 0; i < g->n_kv; i++) {
        lb_gguf_kv_format(&g->kv[i], buf, sizeof buf);
        for (uint64_t k = 0; g->kv[i].type == LB_GGUF_ARRAY && k < g->kv[i].arr_n; k++) {
            if (g->kv[i].arr_type == LB_GGUF_STRING) sink += g->kv[i].arr_str[k].n ? (uint8_t)g->kv[i].arr_str[k].p[0] : 0;
            else sink += (unsigned)lb_gguf_arr_int(&g->kv[i], k);
        }
    }
    for (int64_t i = 0; i < g->n_tensors; i++) /* touch the first and last byte of every tensor */
        if (g->tensors[i].nbytes)
            sink += ((const uint8_t *)g->tensors[i].data)[0] +
                    ((const uint8_t *)g->tensors[i].data)[g->tensors[i].nbytes - 1];
    lb_vocab *v;
    if (lb_vocab_from_gguf(&v, g, &err) == LB_OK) {
        int32_t *ids;
        size_t   n;
        if (lb_tokenize(v, "Hello world, once upon a time", 29, true, true, &ids, &n, &err) == LB_OK) {
            for (size_t i = 1; i < n; i++) sink += (unsigned)lb_token_to_piece(v, ids[i - 1], ids[i], buf, sizeof buf);
            free(ids);
        }
        lb_vocab_free(v);
    }
    lb_gguf_close(g);
    return (int)(sink & 0);
}
