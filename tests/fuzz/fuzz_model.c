/* Fuzz target: whole-model loading (GGUF or llama2.c checkpoint, by content) from a file
 * (memfd), then one forward pass of a token when it loads. The llama2.c path gets the
 * bundled tokenizer. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lowbit/lowbit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 22)) return 0;
    const int fd = memfd_create("lowbit-fuzz", 0);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    lb_model *m;
    lb_error  err;
    if (lb_model_load(&m, path, LB_SOURCE_DIR "/models/stories260K/tok512.bin", &err) == LB_OK) {
        lb_context *c;
        if (m->cfg.n_embd * (int64_t)m->cfg.n_layers <= (1 << 16) &&
            lb_context_create(&c, m, 8, 8, &err) == LB_OK) {
            const int32_t tok[2] = { 1, 2 % m->cfg.n_vocab };
            const float  *logits;
            lb_forward(c, tok, 2, &logits, &err);
            lb_context_free(c);
        }
        lb_model_free(m);
    }
    close(fd);
    return 0;
}
