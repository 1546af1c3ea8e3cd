/* Fuzz target: lowbit's token cache files ("LBTK", src/train/data.c) through
 * lb_tokens_read_cache, from a memfd: once with the key and vocabulary size the header
 * itself claims (so the checks past them are reached), once with fixed ones. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_file.h"
#include "lowbit/lowbit.h"
#include "lowbit/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char      path[64];
    const int fd = fuzz_memfd(data, size, path);
    if (fd < 0) return 0;
    uint64_t key = 0;
    int32_t  nv  = 512;
    if (size >= 20) {
        memcpy(&key, data + 8, 8);
        memcpy(&nv, data + 16, 4);
    }
    const struct { uint64_t key; int32_t n_vocab; } tries[2] = { { key, nv }, { 0, 512 } };
    uint32_t sink = 0;
    for (int k = 0; k < 2; k++) {
        lb_tokens t;
        lb_error  err;
        if (lb_tokens_read_cache(&t, path, tries[k].key, tries[k].n_vocab, &err) != LB_OK) continue;
        for (int64_t i = 0; i < t.n; i++) sink += (uint32_t)t.ids[i];
        lb_tokens_free(&t);
    }
    close(fd);
    return (int)(sink & 0);
}
