/* Fuzz target: the safetensors reader, from memory. Every tensor a parsed file exposes is
 * touched at its first and last byte, so a view outside the file shows up under ASan. */
#include <stddef.h>
#include <stdint.h>

#include "lowbit/lowbit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lb_safetensors *st;
    lb_error        err;
    if (lb_safetensors_open_memory(&st, data, size, "fuzz", &err) != LB_OK) return 0;
    unsigned sink = 0;
    for (int64_t i = 0; i < st->n_tensors; i++) {
        const lb_st_tensor *t = &st->tensors[i];
        if (t->end > t->begin)
            sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->end - t->begin - 1];
        sink += (unsigned)lb_safetensors_find(st, t->name);
    }
    lb_safetensors_close(st);
    return (int)(sink & 0);
}
