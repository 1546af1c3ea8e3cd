/* A vocabulary as Hugging Face's tokenizer.json and tokenizer_config.json text.
 * SentencePiece-style vocabularies become a BPE model with byte_fallback, the '▁' normalizer
 * (Prepend when a space prefix is added, Replace) and merges made as transformers'
 * SentencePieceExtractor makes them: pieces by descending score, each split into two normal
 * pieces (ordered by their ids), so reading the file back (hf_tokenizer.c) gives the same
 * merge order. Byte-level vocabularies keep their merges, and their pre-tokenizer regexes
 * become Split pre-tokenizers before a ByteLevel one (GPT-2's regex: ByteLevel alone). */
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "core/json.h"
#include "lowbit/tokenizer.h"
#include "pretokenize.h"
#include "vocab_internal.h"


static void jstr(lb_strbuf *b, const char *s) { lb_strbuf_json_string(b, s, strlen(s)); }

#define ADDS(b, lit) lb_strbuf_add(b, lit, sizeof(lit) - 1) /* a string literal */

static bool is_added(const lb_vocab *v, int32_t i) {
    const int32_t t = v->type[i];
    return t == LB_TOKEN_CONTROL || t == LB_TOKEN_UNKNOWN || t == LB_TOKEN_USER_DEFINED || t == LB_TOKEN_UNUSED;
}

static int cmp_score(const void *a, const void *b, void *ctx) {
    const lb_vocab *v  = ctx;
    const int32_t   ia = *(const int32_t *)a, ib = *(const int32_t *)b;
    if (v->score[ia] != v->score[ib]) return v->score[ia] > v->score[ib] ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

/* SentencePiece-style merges (see the top of the file), as "left right" strings. */
static bool spm_merges(const lb_vocab *v, lb_strbuf *b) {
    int32_t *order = malloc((size_t)v->n * sizeof *order);
    size_t   max   = 0;
    for (int32_t i = 0; i < v->n; i++) max = v->len[i] > max ? v->len[i] : max;
    char *pair = malloc(max + 2);
    if (!order || !pair) {
        free(order);
        free(pair);
        return false;
    }
    for (int32_t i = 0; i < v->n; i++) order[i] = i;
    qsort_r(order, (size_t)v->n, sizeof *order, cmp_score, (void *)v);
    bool first = true;
    for (int32_t k = 0; k < v->n; k++) {
        const int32_t id = order[k];
        const char   *s  = v->text[id];
        const size_t  n  = v->len[id];
        if (v->type[id] != LB_TOKEN_NORMAL) continue;
        for (size_t cut = 1; cut < n; cut++) {
            if (((uint8_t)s[cut] & 0xc0) == 0x80) continue; /* inside a character */
            const int32_t l = lb_vocab_find(v, s, cut), r = lb_vocab_find(v, s + cut, n - cut);
            if (l < 0 || r < 0 || v->type[l] != LB_TOKEN_NORMAL || v->type[r] != LB_TOKEN_NORMAL) continue;
            memcpy(pair, s, cut);
            pair[cut] = ' ';
            memcpy(pair + cut + 1, s + cut, n - cut);
            if (!first) ADDS(b, ",");
            ADDS(b, "\n    ");
            lb_strbuf_json_string(b, pair, n + 1);
            first = false;
        }
    }
    free(order);
    free(pair);
    return true;
}

static void special_token_json(lb_strbuf *b, const lb_vocab *v, const char *key, int32_t id,
                               bool comma) {
    if (id < 0) return;
    lb_strbuf_printf(b, "%s\n  \"%s\": ", comma ? "," : "", key);
    jstr(b, v->text[id]);
}

lb_status lb_vocab_to_hf_json(const lb_vocab *v, char **tokenizer_json, char **config_json,
                              lb_error *err) {
    const bool bpe = v->kind == LB_VOCAB_BPE;
    lb_strbuf  b = { 0 }, c = { 0 };
    *tokenizer_json = *config_json = NULL;
    LB_RETURN_IF(v->kind == LB_VOCAB_UGM, err, LB_ERR_UNSUPPORTED,
                 "tokenizer.json: writing a SentencePiece Unigram tokenizer is not supported "
                 "(keep its .model file, or convert to GGUF)");
    ADDS(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    bool first = true;
    for (int32_t i = 0; i < v->n; i++) {
        if (!is_added(v, i)) continue;
        lb_strbuf_printf(&b, "%s\n    {\"id\": %d, \"content\": ", first ? "" : ",", i);
        jstr(&b, v->text[i]);
        const bool special = v->type[i] != LB_TOKEN_USER_DEFINED;
        lb_strbuf_printf(&b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                             "\"normalized\": %s, \"special\": %s}",
                         special ? "false" : "true", special ? "true" : "false");
        first = false;
    }
    ADDS(&b, "\n  ],\n");
    if (bpe) {
        const size_t nr   = lb_vocab_n_pre_regex(v);
        const bool   gpt2 = nr == 1 && strcmp(lb_vocab_pre_regex(v, 0), LB_GPT2_REGEX) == 0;
        ADDS(&b, "  \"normalizer\": null,\n  \"pre_tokenizer\": ");
        if (gpt2) {
            lb_strbuf_printf(&b, "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true},\n");
        } else {
            lb_strbuf_printf(&b, "{\"type\": \"Sequence\", \"pretokenizers\": [");
            for (size_t i = 0; i < nr; i++) {
                lb_strbuf_printf(&b, "\n    {\"type\": \"Split\", \"pattern\": {\"Regex\": ");
                jstr(&b, lb_vocab_pre_regex(v, i));
                lb_strbuf_printf(&b, "}, \"behavior\": \"Isolated\", \"invert\": false},");
            }
            lb_strbuf_printf(&b, "\n    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},\n");
        }
    } else {
        lb_strbuf_printf(&b, "  \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [%s", "");
        if (v->add_space_prefix) lb_strbuf_printf(&b, "{\"type\": \"Prepend\", \"prepend\": \"\xe2\x96\x81\"}, ");
        lb_strbuf_printf(&b, "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"}]},\n");
        lb_strbuf_printf(&b, "  \"pre_tokenizer\": null,\n");
    }
    if (v->add_bos && v->bos >= 0) {
        lb_strbuf_printf(&b, "  \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": ");
        jstr(&b, v->text[v->bos]);
        lb_strbuf_printf(&b, ", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [{\"SpecialToken\": {\"id\": ");
        jstr(&b, v->text[v->bos]);
        lb_strbuf_printf(&b, ", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": ");
        jstr(&b, v->text[v->bos]);
        lb_strbuf_printf(&b, ", \"type_id\": 1}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], \"special_tokens\": {");
        jstr(&b, v->text[v->bos]);
        lb_strbuf_printf(&b, ": {\"id\": ");
        jstr(&b, v->text[v->bos]);
        lb_strbuf_printf(&b, ", \"ids\": [%d], \"tokens\": [", v->bos);
        jstr(&b, v->text[v->bos]);
        lb_strbuf_printf(&b, "]}}},\n");
    } else {
        lb_strbuf_printf(&b, "  \"post_processor\": null,\n");
    }
    if (bpe)
        lb_strbuf_printf(&b, "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n");
    else
        lb_strbuf_printf(&b, "  \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": "
                             "{\"String\": \"\xe2\x96\x81\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, "
                             "{\"type\": \"Fuse\"}%s]},\n",
                         v->add_space_prefix ? ", {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}" : "");
    lb_strbuf_printf(&b, "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": ");
    if (v->unk >= 0 && v->type[v->unk] == LB_TOKEN_UNKNOWN) jstr(&b, v->text[v->unk]);
    else ADDS(&b, "null");
    lb_strbuf_printf(&b, ", \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, "
                         "\"fuse_unk\": %s, \"byte_fallback\": %s, \"ignore_merges\": %s,\n    \"vocab\": {",
                     bpe ? "false" : "true", bpe ? "false" : "true", lb_vocab_ignore_merges(v) ? "true" : "false");
    first = true;
    for (int32_t i = 0; i < v->n; i++) {
        if (v->type[i] == LB_TOKEN_UNUSED) continue;
        if (!first) ADDS(&b, ",");
        ADDS(&b, "\n      ");
        lb_strbuf_json_string(&b, v->text[i], v->len[i]);
        lb_strbuf_printf(&b, ": %d", i);
        first = false;
    }
    ADDS(&b, "\n    },\n    \"merges\": [");
    if (bpe) {
        for (size_t i = 0; i < lb_vocab_n_merges(v); i++) {
            if (i) ADDS(&b, ",");
            ADDS(&b, "\n    ");
            jstr(&b, lb_vocab_merge(v, i));
        }
    } else if (!spm_merges(v, &b)) {
        b.oom = true;
    }
    ADDS(&b, "\n    ]\n  }\n}\n");

    lb_strbuf_printf(&c, "{\n  \"add_bos_token\": %s,\n  \"add_eos_token\": %s,\n  "
                         "\"clean_up_tokenization_spaces\": false,\n  \"tokenizer_class\": \"%s\"",
                     v->add_bos && v->bos >= 0 ? "true" : "false", lb_vocab_add_eos(v) ? "true" : "false",
                     bpe ? "PreTrainedTokenizerFast" : "LlamaTokenizerFast");
    special_token_json(&c, v, "bos_token", v->bos, true);
    special_token_json(&c, v, "eos_token", v->eos, true);
    special_token_json(&c, v, "unk_token", v->unk >= 0 && v->type[v->unk] == LB_TOKEN_UNKNOWN ? v->unk : -1, true);
    special_token_json(&c, v, "pad_token", v->pad, true);
    if (v->chat_template) {
        ADDS(&c, ",\n  \"chat_template\": ");
        jstr(&c, v->chat_template);
    }
    ADDS(&c, "\n}\n");
    if (b.oom || c.oom) {
        free(b.p);
        free(c.p);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory writing tokenizer.json");
    }
    *tokenizer_json = b.p;
    *config_json    = c.p;
    return LB_OK;
}
