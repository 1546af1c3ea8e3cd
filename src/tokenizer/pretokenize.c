/* Byte-level BPE pre-tokenization with PCRE2 (UTF, UCP): llama.cpp's presets by name, and
 * the regex sequence applied as llama.cpp's unicode_regex_split applies it. Text is first
 * decoded as llama.cpp decodes it (a byte that starts no valid sequence becomes U+FFFD) and
 * re-encoded; the regexes then run on a copy in which characters std::regex would not see
 * as llama.cpp means them are replaced by ones of the same byte length that PCRE2 sees
 * alike (surrogates -> U+FFFD, non-ASCII white space -> U+00A0 / U+2000), so word bounds
 * in the copy are word bounds in the text. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/fail.h"
#include "pretokenize.h"

/* ---- llama.cpp's presets (llama-vocab.cpp, llm_tokenizer_bpe), as tokenizers.json has them ---- */
#define LLAMA3_RE                                                                                  \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_RE                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define CJK_RE "[一-龥ࠀ-一가-퟿]+"

static const char *const k_gpt2[]    = { LB_GPT2_REGEX, NULL };
static const char *const k_llama3[]  = { LLAMA3_RE, NULL };
static const char *const k_qwen2[]   = { QWEN2_RE, NULL };
/* llama.cpp's smollm, starcoder, refact, command-r, codeshell, exaone and minerva-7b: digits one
 * by one, then GPT-2's words (as tokenizer.json's Digits + ByteLevel gives them) */
static const char *const k_smollm[]  = { "\\p{N}", LB_GPT2_REGEX, NULL };
static const char *const k_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    CJK_RE,
    "\\p{N}+",
    NULL,
};
static const char *const k_deepseek_coder[] = {
    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK_RE, "\\p{N}", NULL,
};
static const char *const k_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
    NULL,
};

static const char *const k_gpt2_alias[]   = { "phi-2", "jina-es", "jina-de", "gigachat", "mpt", "olmo", NULL };
static const char *const k_llama3_alias[] = { "llama3", "llama-v3", "falcon3", "pixtral", "dbrx", "smaug-bpe", NULL };
static const char *const k_qwen2_alias[]  = { "deepseek-r1-qwen", "stablelm2", NULL };
static const char *const k_smollm_alias[] = { "starcoder", "refact", "command-r", "codeshell", "exaone",
                                               "minerva-7b", NULL };
static const char *const k_none[]         = { NULL };

static const lb_pretok_preset k_presets[] = {
    { "gpt-2", k_gpt2_alias, k_gpt2, false, false },
    { "llama-bpe", k_llama3_alias, k_llama3, true, true },
    { "qwen2", k_qwen2_alias, k_qwen2, false, false },
    { "smollm", k_smollm_alias, k_smollm, false, false },
    { "deepseek-llm", k_none, k_deepseek_llm, false, false },
    { "deepseek-coder", k_none, k_deepseek_coder, false, false },
    { "default", k_none, k_default, false, false },
};

const lb_pretok_preset *lb_pretok_preset_by_name(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++) {
        const lb_pretok_preset *p = &k_presets[i];
        if (strlen(p->name) == len && memcmp(p->name, name, len) == 0) return p;
        for (const char *const *a = p->aliases; *a; a++)
            if (strlen(*a) == len && memcmp(*a, name, len) == 0) return p;
    }
    return NULL;
}

const lb_pretok_preset *lb_pretok_preset_by_regexes(const char *const *regexes, size_t n) {
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++) {
        const lb_pretok_preset *p = &k_presets[i];
        size_t                  k = 0;
        while (p->regexes[k] && k < n && strcmp(p->regexes[k], regexes[k]) == 0) k++;
        if (k == n && !p->regexes[k]) return p;
    }
    return NULL;
}

/* ---- compiled regexes ---- */
struct lb_pretok {
    size_t             n;
    pcre2_code       **code;
    pcre2_match_data **md;
};

void lb_pretok_free(lb_pretok *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        if (p->md) pcre2_match_data_free(p->md[i]);
        if (p->code) pcre2_code_free(p->code[i]);
    }
    free(p->md);
    free(p->code);
    free(p);
}

lb_status lb_pretok_create(lb_pretok **out, const char *const *regexes, size_t n, lb_error *err) {
    *out         = NULL;
    lb_pretok *p = calloc(1, sizeof *p);
    LB_RETURN_IF(!p, err, LB_ERR_NOMEM, "out of memory");
    p->code = calloc(n ? n : 1, sizeof *p->code);
    p->md   = calloc(n ? n : 1, sizeof *p->md);
    if (!p->code || !p->md) {
        lb_pretok_free(p);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++, p->n++) {
        int        ecode;
        PCRE2_SIZE eoff;
        p->code[i] = pcre2_compile((PCRE2_SPTR)regexes[i], PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ecode, &eoff, NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            lb_pretok_free(p);
            return lb_fail(err, LB_ERR_UNSUPPORTED, "pre-tokenizer regex %zu: %s at offset %zu", i,
                           (const char *)msg, (size_t)eoff);
        }
        pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
        p->md[i] = pcre2_match_data_create_from_pattern(p->code[i], NULL);
        if (!p->md[i]) {
            pcre2_code_free(p->code[i]);
            lb_pretok_free(p);
            return lb_fail(err, LB_ERR_NOMEM, "out of memory");
        }
    }
    *out = p;
    return LB_OK;
}

/* ---- text cleaning (llama.cpp's unicode_cpts_from_utf8 / unicode_cpt_to_utf8) ---- */

/* Decode one code point at s[*i]; invalid: U+FFFD, one byte consumed. */
static uint32_t decode(const uint8_t *s, size_t n, size_t *i) {
    const uint8_t c = s[*i];
    size_t        k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (k == 0 || k > n - *i) {
        *i += 1;
        return 0xfffd;
    }
    uint32_t cp = k == 1 ? c : k == 2 ? (c & 0x1fu) : k == 3 ? (c & 0x0fu) : (c & 0x07u);
    for (size_t j = 1; j < k; j++) {
        if ((s[*i + j] & 0xc0) != 0x80) {
            *i += 1;
            return 0xfffd;
        }
        cp = (cp << 6) | (s[*i + j] & 0x3fu);
    }
    *i += k;
    return cp > 0x10ffff ? 0xfffd : cp;
}

static size_t encode(uint32_t cp, char *o) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xc0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xe0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
               o[2] = (char)(0x80 | (cp & 0x3f)), 3;
    return o[0] = (char)(0xf0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
           o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f)), 4;
}

static bool is_wide_space(uint32_t cp) { /* White_Space above ASCII (llama.cpp's set) */
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* ---- splitting ---- */
typedef struct {
    size_t *v, n, cap;
    bool    oom;
} offs;

static void push(offs *a, size_t x) {
    if (a->oom) return;
    if (a->n == a->cap) {
        const size_t cap = a->cap ? 2 * a->cap : 64;
        size_t      *p   = realloc(a->v, cap * sizeof *p);
        if (!p) {
            a->oom = true;
            return;
        }
        a->v   = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
}

/* Split [b, e) of m by regex k: matches and gaps become pieces (their ends pushed). */
static lb_status split_one(const lb_pretok *p, size_t k, const char *m, size_t b, size_t e,
                           offs *out) {
    size_t pos = b, prev = b;
    while (pos < e) {
        const int rc = pcre2_match(p->code[k], (PCRE2_SPTR)(m + b), e - b, pos - b,
                                   PCRE2_NO_UTF_CHECK, p->md[k], NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return rc == PCRE2_ERROR_NOMEMORY ? LB_ERR_NOMEM : LB_ERR_CORRUPT;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md[k]);
        const size_t      ms = b + ov[0], me = b + ov[1];
        if (me == ms) { /* an empty match takes nothing: step over one character */
            pos = ms + 1;
            while (pos < e && ((uint8_t)m[pos] & 0xc0) == 0x80) pos++;
            continue;
        }
        if (ms > prev) push(out, ms);
        push(out, me);
        prev = pos = me;
    }
    if (e > prev) push(out, e);
    return out->oom ? LB_ERR_NOMEM : LB_OK;
}

lb_status lb_pretok_split(const lb_pretok *p, const char *text, size_t len, char **clean,
                          size_t *clean_len, size_t **ends, size_t *n_words) {
    char     *c = malloc(3 * len + 1), *m = malloc(3 * len + 1); /* U+FFFD: 3 bytes per bad byte */
    offs      a = { 0 }, b = { 0 };
    lb_status st = LB_OK;
    *clean = NULL, *ends = NULL, *n_words = 0;
    if (!c || !m) {
        st = LB_ERR_NOMEM;
        goto done;
    }
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const uint32_t cp = decode((const uint8_t *)text, len, &i);
        const size_t   k  = encode(cp, c + n);
        uint32_t       mc = cp;
        if (cp >= 0xd800 && cp <= 0xdfff) mc = 0xfffd;
        else if (is_wide_space(cp)) mc = k == 2 ? 0xa0 : 0x2000;
        encode(mc, m + n);
        n += k;
    }
    if (n > 0) push(&a, n);
    size_t begin = 0;
    for (size_t k = 0; k < p->n && !st; k++) {
        b.n   = 0;
        begin = 0;
        for (size_t i = 0; i < a.n && !st; i++) {
            st    = split_one(p, k, m, begin, a.v[i], &b);
            begin = a.v[i];
        }
        const offs t = a;
        a            = b;
        b            = t;
    }
    if (!st && a.oom) st = LB_ERR_NOMEM;
done:
    free(m);
    free(b.v);
    if (st) {
        free(c);
        free(a.v);
        return st;
    }
    *clean     = c;
    *clean_len = n;
    *ends      = a.v;
    *n_words   = a.n;
    return LB_OK;
}
