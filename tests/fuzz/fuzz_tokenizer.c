/* Fuzz target: the tokenizer files (llama2.c tokenizer.bin, SentencePiece .model protobuf)
 * from memory; a vocabulary that loads must tokenize and decode without fault. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lowbit/lowbit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(lb_vocab *v) {
    int32_t *ids;
    size_t   n;
    lb_error err;
    char     buf[128];
    const char text[] = "Once upon a time, \xe2\x98\x83 <s> caf\xc3\xa9\n";
    if (lb_tokenize(v, text, sizeof text - 1, true, true, &ids, &n, &err) == LB_OK) {
        for (size_t i = 1; i < n; i++) lb_token_to_piece(v, ids[i - 1], ids[i], buf, sizeof buf);
        free(ids);
    }
    lb_vocab_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lb_vocab *v;
    lb_error  err;
    if (lb_vocab_load_llama2c(&v, data, size, "fuzz", &err) == LB_OK) exercise(v);
    if (lb_vocab_load_spm_proto(&v, data, size, "fuzz", &err) == LB_OK) exercise(v);
    return 0;
}
