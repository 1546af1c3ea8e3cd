/* Fuzz target: byte-level BPE (pre-tokenizer regexes through PCRE2, merges, decoding) on any
 * bytes. The first byte picks one of llama.cpp's pre-tokenizers; the rest is the text. The
 * vocabulary holds all 256 byte characters, so valid UTF-8 must decode back exactly. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/lowbit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const k_pre[] = { "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "default" };
static const char *const k_merges[] = { "\xc4\xa0 t", "h e", "\xc4\xa0t he", "i n", "\xc4\xa0 a", "e r",
                                        "o n", "r e", "\xc4\xa0 \xc4\xa0", "1 2" };
#define N_MERGES (sizeof k_merges / sizeof k_merges[0])

/* GPT-2's printable character of byte b, as UTF-8 (bytes_to_unicode). */
static size_t byte_char(int b, char *out) {
    int n = 0, cp = b;
    if (!((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae)) {
        for (int c = 0; c < b; c++) n += !((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae);
        cp = 256 + n;
    }
    if (cp < 0x80) return out[0] = (char)cp, 1;
    out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

static lb_vocab *make_vocab(const char *pre) {
    lb_vocab *v;
    lb_error  err;
    const int32_t n = 256 + (int32_t)N_MERGES + 2;
    if (lb_vocab_create(&v, n, &err)) abort();
    for (int b = 0; b < 256; b++) {
        char   c[2];
        size_t k = byte_char(b, c);
        lb_vocab_set_token(v, b, c, k, 0.0f, LB_TOKEN_NORMAL);
    }
    for (size_t i = 0; i < N_MERGES; i++) { /* each merge's result is a token */
        char        cat[32];
        const char *sp = strchr(k_merges[i], ' ');
        size_t      k  = (size_t)(sp - k_merges[i]);
        memcpy(cat, k_merges[i], k);
        strcpy(cat + k, sp + 1);
        lb_vocab_set_token(v, 256 + (int32_t)i, cat, strlen(cat), 0.0f, LB_TOKEN_NORMAL);
    }
    lb_vocab_set_token(v, n - 2, "<tool>", 6, 0.0f, LB_TOKEN_USER_DEFINED);
    lb_vocab_set_token(v, n - 1, "<|end|>", 7, 0.0f, LB_TOKEN_CONTROL);
    if (lb_vocab_set_bpe(v, k_merges, N_MERGES, pre, NULL, 0, false, &err)) abort();
    lb_vocab_set_special(v, n - 1, n - 1, -1);
    if (lb_vocab_build(v, &err)) abort();
    return v;
}

static bool valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        const uint8_t c = s[i];
        size_t        k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!k || k > n - i) return false;
        uint32_t cp = k == 1 ? c : k == 2 ? (c & 0x1fu) : k == 3 ? (c & 0x0fu) : (c & 0x07u);
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3fu);
        }
        const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += k;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lb_vocab *vocabs[6];
    if (size == 0) return 0;
    const int p = data[0] % 6;
    if (!vocabs[p]) vocabs[p] = make_vocab(k_pre[p]); /* kept for the process */
    const lb_vocab *v    = vocabs[p];
    const char     *text = (const char *)data + 1;
    int32_t        *ids;
    size_t          n;
    lb_error        err;
    if (lb_tokenize(v, text, size - 1, false, false, &ids, &n, &err) != LB_OK) return 0;
    char  *out = malloc(4 * size + 16);
    size_t k   = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= lb_vocab_n_tokens(v)) abort();
        k += lb_token_to_piece(v, i ? ids[i - 1] : -1, ids[i], out + k, 64);
    }
    if (valid_utf8(data + 1, size - 1) && (k != size - 1 || memcmp(out, text, k) != 0)) abort();
    free(out);
    free(ids);
    return 0;
}
