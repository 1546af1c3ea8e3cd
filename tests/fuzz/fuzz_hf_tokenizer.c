/* Fuzz target: Hugging Face tokenizer.json (+ tokenizer_config.json) through
 * lb_vocab_load_hf, from files in a private directory. The input up to its first NUL byte
 * is tokenizer.json, the rest (when there is a NUL) tokenizer_config.json. A vocabulary that
 * loads must tokenize, decode and write itself back as tokenizer.json without fault. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "lowbit/lowbit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = fuzz_dir();
    if (!dir) return 0;
    const uint8_t *nul = memchr(data, 0, size);
    const size_t   n   = nul ? (size_t)(nul - data) : size;
    char           cfg[600];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    unlink(cfg);
    if (!fuzz_put(dir, "tokenizer.json", data, n) ||
        (nul && !fuzz_put(dir, "tokenizer_config.json", nul + 1, size - n - 1)))
        return 0;
    lb_vocab *v;
    lb_error  err;
    if (lb_vocab_load_hf(&v, dir, 0, &err) != LB_OK) return 0;
    const char text[] = "Once upon a time, \xe2\x98\x83 <s> caf\xc3\xa9 12345\n\t<|end|>";
    int32_t   *ids;
    size_t     n_ids;
    char       buf[128];
    if (lb_tokenize(v, text, sizeof text - 1, true, true, &ids, &n_ids, &err) == LB_OK) {
        for (size_t i = 1; i < n_ids; i++) lb_token_to_piece(v, ids[i - 1], ids[i], buf, sizeof buf);
        free(ids);
    }
    char *tj, *cj;
    if (lb_vocab_to_hf_json(v, &tj, &cj, &err) == LB_OK) {
        free(tj);
        free(cj);
    }
    lb_vocab_free(v);
    return 0;
}
