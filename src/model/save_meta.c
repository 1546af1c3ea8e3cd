/* The metadata of a GGUF written from a model that came from a GGUF: the input's keys, in
 * their order, with lowbit's own keys merged in, as llama-quantize keeps its input's keys
 * (gguf_set_kv from the input, then its own values set over them).
 *
 * For each key of the input:
 *   - dropped: lowbit.* (the previous run's provenance, and tensor_type / tensor_ne0 /
 *     actq keys that describe the input's tensors; the writer adds the new ones),
 *     quantize.imatrix.* (the importance matrix the input's tensors were quantized with),
 *     split.* (the writer writes its own shards' keys), general.alignment unless it is the u32 32 written;
 *   - tokenizer.*: kept as they are when the vocabulary is the input's, else dropped (the
 *     replacing vocabulary's keys are written instead);
 *   - general.file_type and general.quantization_version: always lowbit's value, in place;
 *   - any other key lowbit writes (general.architecture, general.name, the hyperparameters,
 *     provenance such as general.quantized_by): the input's bytes when the values are equal
 *     (integers of any width, floats at f32 precision), else lowbit's value, in place;
 *   - every other key (general.license, custom keys, rope scaling, ...): kept byte for byte.
 * Then lowbit's keys the input lacked, in lowbit's order. No key is written twice. */
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "model_internal.h"

static bool has_prefix(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

typedef enum { KEEP, DROP, OURS, OURS_UNLESS_EQUAL } key_rule;

static key_rule rule_of(const lb_gguf_kv *kv, bool vocab_from_meta) {
    const char *k = kv->key;
    if (has_prefix(k, "lowbit.") || has_prefix(k, "quantize.imatrix.") || has_prefix(k, "split."))
        return DROP;
    if (!strcmp(k, "general.alignment"))
        return kv->type == LB_GGUF_U32 && kv->v.u64 == LB_GGUF_DEFAULT_ALIGNMENT ? KEEP : DROP;
    if (has_prefix(k, "tokenizer.")) return vocab_from_meta ? KEEP : DROP;
    if (!strcmp(k, "general.file_type") || !strcmp(k, "general.quantization_version")) return OURS;
    return OURS_UNLESS_EQUAL;
}

lb_status lb_model_merge_meta(lb_gguf_writer *w, const lb_gguf *in, const lb_gguf_writer *own,
                              bool vocab_from_meta, lb_error *err) {
    void     *img = NULL;
    size_t    n   = 0;
    lb_gguf  *g   = NULL;
    bool     *done = NULL;
    lb_status st  = lb_gguf_writer_kv_image(own, &img, &n);
    if (!st) st = lb_gguf_open_memory(&g, img, n, "lowbit's metadata", err);
    if (!st && !(done = calloc((size_t)g->n_kv + 1, sizeof *done))) st = LB_ERR_NOMEM;
    for (int64_t i = 0; !st && i < in->n_kv; i++) {
        const lb_gguf_kv *kv = &in->kv[i];
        key_rule          r  = rule_of(kv, vocab_from_meta);
        const int64_t     j  = r == DROP || r == KEEP ? -1 : lb_gguf_find_key(g, kv->key);
        if (r == OURS_UNLESS_EQUAL) r = j < 0 || lb_gguf_kv_same_value(kv, &g->kv[j]) ? KEEP : OURS;
        if (j >= 0) done[j] = true; /* written here, or the input's equal value is */
        if (r == KEEP) st = lb_gguf_writer_copy_kv(w, kv);
        else if (r == OURS && j >= 0) st = lb_gguf_writer_copy_kv(w, &g->kv[j]);
    }
    for (int64_t j = 0; !st && g && j < g->n_kv; j++) /* lowbit's keys the input lacked */
        if (!done[j] && !(vocab_from_meta && has_prefix(g->kv[j].key, "tokenizer.")))
            st = lb_gguf_writer_copy_kv(w, &g->kv[j]);
    if (st && err && !err->code) lb_fail(err, st, "%s: cannot merge its metadata (%s)", in->src.name, lb_status_str(st));
    free(done);
    lb_gguf_close(g);
    free(img);
    return st;
}
