/* Shared by the files of src/model: loaders, validation, ownership helpers. */
#ifndef LB_MODEL_INTERNAL_H
#define LB_MODEL_INTERNAL_H

#include "lowbit/model.h"

/* What lb_model keeps private (model.h's priv): every model the library makes has one. */
struct lb_model_priv {
    /* the GGUF whose metadata the GGUF writer keeps (save_meta.c): the loaded file's, borrowed
     * by clones; NULL for other formats. vocab_from_meta: the vocabulary is that file's (not
     * replaced with --tokenizer), so its tokenizer.* keys are kept too */
    const lb_gguf *meta;
    bool           vocab_from_meta;
    bool           vocab_borrowed; /* a clone's: not freed with it */
    /* ownership: weights are views into src (llama2.c) or gguf (GGUF), hf_files (the mapped
     * safetensors, load_hf.c), or into owned */
    lb_source      src;
    lb_gguf       *gguf;
    void         **owned;
    int32_t        n_owned;
    void          *hf_files;
    struct lb_hf_quant_report *hf_quant; /* HF GPTQ/AWQ: what the import did (hf.h), or NULL */
};

/* A zeroed model with its private part; NULL when out of memory. */
lb_model *lb_model_alloc(void);

lb_status lb_model_load_gguf(lb_model *m, const char *path, lb_error *err);
lb_status lb_model_load_llama2c(lb_model *m, const char *path, lb_error *err);
/* A Hugging Face model directory (load_hf.c); the tokenizer too when dir has one. */
lb_status lb_model_load_hf(lb_model *m, const char *dir, lb_error *err);
void      lb_hf_files_free(void *files);
/* Llama 3.1's rope_scaling ("llama3") as llama.cpp's rope_freqs: D/2 frequency divisors. */
/* YaRN's attention factor for a scaling factor (transformers' get_mscale; mscale 1: llama.cpp's
 * 1 + 0.1 ln factor, which cos and sin are multiplied by) */
float     lb_rope_yarn_mscale(float factor, float mscale);
void      lb_rope_llama3_factors(float *out, int32_t head_dim, float theta, float factor,
                                 float low_freq_factor, float high_freq_factor, float orig_ctx);

/* vocab_gguf.c: byte-level BPE keys (merges, pre) and the chat template */
lb_status lb_vocab_bpe_from_gguf(lb_vocab *v, const lb_gguf *g, lb_error *err);
lb_status lb_vocab_chat_template_from_gguf(lb_vocab *v, const lb_gguf *g, lb_error *err);
lb_status lb_vocab_unigram_from_gguf(lb_vocab *v, const lb_gguf *g, lb_error *err);
lb_status lb_vocab_extra_to_gguf(lb_gguf_writer *w, const lb_vocab *v);

/* Write m's llama.* keys and tokenizer into w (save_gguf.c). */
lb_status lb_model_write_meta(lb_gguf_writer *w, const lb_model *m, uint32_t file_type);

/* Into w: the keys of in (the model's input GGUF) merged with own's, lowbit's keys for the
 * model (save_meta.c: which are kept, replaced, dropped). */
lb_status lb_model_merge_meta(lb_gguf_writer *w, const lb_gguf *in, const lb_gguf_writer *own,
                              bool vocab_from_meta, lb_error *err);

/* The layers a slot is in, [lb_slot_first(s), lb_slot_end(m, s)): -1 alone for a global slot. */
int32_t lb_slot_first(const lb_slot *s);
int32_t lb_slot_end(const lb_model *m, const lb_slot *s);
/* A tensor's full name in layer `layer` (-1: a global): llama.cpp's "blk.3.<name>" or, hf,
 * Hugging Face's "model.layers.3.<name>"; name is a slot's or a fused tensor's. */
void lb_tensor_name(char *buf, size_t cap, const char *name, int32_t layer, bool hf);

/* The parts of a fused tensor of layer `layer` (arch.h's lb_fused) as views into its rows;
 * LB_ERR_SHAPE when its shape is not the parts'. name: for messages. */
lb_status lb_model_split_fused(lb_model *m, int32_t layer, const lb_fused *f, const lb_tensor *fused,
                               const char *name, lb_error *err);

/* Check the config, then every tensor's shape and type against it. */
lb_status lb_model_validate(const lb_model *m, const char *path, lb_error *err);

/* Keep a malloc'd buffer alive as long as the model. */
lb_status lb_model_own(lb_model *m, void *p);

/* Replace t's data by an owned f32 copy. */
lb_status lb_model_own_f32_copy(lb_model *m, lb_tensor *t);

/* W8A8 activation quantization from the GGUF's lowbit.actq.* keys (actq.c): m->actq, or
 * none; LLM.int8's f32 outlier columns are put back into the weights that read them. */
lb_status lb_model_load_actq(lb_model *m, lb_error *err);

/* Make a 1-D tensor f32 (norm weights): converted into an owned buffer when needed. */
lb_status lb_model_make_f32(lb_model *m, lb_tensor *t);
/* Every present slot the table computes in f32 (norms, biases, rope_freqs) made f32. */
lb_status lb_model_make_slots_f32(lb_model *m, lb_error *err);
/* Add delta to every norm weight (LB_SLOT_NORM), each into a buffer m owns: Gemma's HF norms
 * hold w where the computation and GGUF use 1 + w. */
lb_status lb_model_shift_norms(lb_model *m, float delta, lb_error *err);
/* m's writers keep src's GGUF keys (src's metadata, borrowed: src must outlive m), as a copy of
 * src would (clone, the trained model of qat). */
void lb_model_keep_meta_of(lb_model *m, const lb_model *src);

#endif
