/* Fuzz target: a Hugging Face directory's config.json. On first use the 1-layer 8-wide
 * model of corpus/model/tiny-llama.gguf is written as an HF directory (model.safetensors,
 * tokenizer.json) in a private directory; each input replaces its config.json, the directory
 * is loaded with lb_model_load, and a model that loads runs one forward pass. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_file.h"
#include "lowbit/lowbit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *hf_dir(void) {
    static int ready; /* 0: not tried, 1: made, -1: failed */
    const char *dir = fuzz_dir();
    if (!dir || ready < 0) return NULL;
    if (ready) return dir;
    lb_model *m;
    lb_error  err;
    ready = -1;
    if (lb_model_load(&m, LB_SOURCE_DIR "/tests/fuzz/corpus/model/tiny-llama.gguf", NULL, &err) != LB_OK)
        return NULL;
    if (lb_model_save_hf(m, dir, LB_TYPE_F32, &err) == LB_OK) ready = 1;
    lb_model_free(m);
    return ready > 0 ? dir : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = hf_dir();
    if (!dir || !fuzz_put(dir, "config.json", data, size)) return 0;
    lb_model *m;
    lb_error  err;
    if (lb_model_load(&m, dir, NULL, &err) != LB_OK) return 0;
    lb_context *c;
    if (lb_context_create(&c, m, 8, 8, &err) == LB_OK) {
        const int32_t tok[2] = { 1, 2 % m->cfg.n_vocab };
        const float  *logits;
        lb_forward(c, tok, 2, &logits, &err);
        lb_context_free(c);
    }
    lb_model_free(m);
    return 0;
}
