/* Fuzz target: training checkpoints (GGUF: parameter groups, Adam moments,
 * lowbit.train.* keys) through lb_train_ckpt_load, from a memfd, into the optimizer of the
 * 1-layer 8-wide tied model of corpus/model/tiny-llama.gguf (the groups `lowbit train`
 * builds for that shape). A checkpoint is also a model: one that loads is copied into a
 * trainable model (lb_tmodel_init_from), as QAT does. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../src/train/loop.h"
#include "fuzz_file.h"
#include "lowbit/lowbit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lb_tmodel      tm;
static lb_param_group groups[64];
static lb_adamw       opt;

/* The groups lb_train_loop makes from the model's slots; false when that fails. */
static bool setup(void) {
    static int ready; /* 0: not tried, 1: made, -1: failed */
    if (ready) return ready > 0;
    ready = -1;
    lb_model *m;
    lb_error  err;
    if (lb_model_load(&m, LB_SOURCE_DIR "/tests/fuzz/corpus/model/tiny-llama.gguf", NULL, &err) != LB_OK)
        return false;
    const lb_status st = lb_tmodel_init_from(&tm, m, &err);
    lb_model_free(m);
    if (st || tm.n_slots > 64) return false;
    for (int32_t i = 0; i < tm.n_slots; i++) {
        const lb_tslot *s = &tm.slots[i];
        groups[i] = (lb_param_group){ .p = tm.w + s->off, .g = tm.g + s->off, .n = s->rows * s->cols,
                                      .ne0 = s->cols, .decay = s->matrix, .lr_mult = 1.0f };
        snprintf(groups[i].name, sizeof groups[i].name, "%s", s->name);
    }
    if (lb_adamw_init(&opt, groups, tm.n_slots, &err) != LB_OK) return false;
    ready = 1;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    if (!setup()) return 0;
    const int fd = fuzz_memfd(data, size, path);
    if (fd < 0) return 0;
    lb_train_state s = { 0 };
    lb_error       err;
    lb_train_ckpt_load(path, &opt, &s, &err);
    lb_model *m;
    if (lb_model_load(&m, path, NULL, &err) == LB_OK) {
        const lb_llama_config *c = &m->cfg;
        lb_tmodel              t = { 0 };
        if ((int64_t)c->n_vocab * c->n_embd + (int64_t)c->n_layers * c->n_embd * (c->n_ff + c->n_embd) <= (1 << 20) &&
            lb_tmodel_init_from(&t, m, &err) == LB_OK)
            lb_tmodel_free(&t);
        lb_model_free(m);
    }
    close(fd);
    return 0;
}
