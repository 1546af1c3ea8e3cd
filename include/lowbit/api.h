/* A flat interface for bindings (python/lowbit, through ctypes) and scripts: paths and a
 * JSON object of options in, a JSON object out. Every string returned is malloc'd JSON,
 * freed with lb_api_free. An unknown option, or one of the wrong type, is LB_ERR_PARAM naming
 * it. Nothing here prints.
 *
 * lb_api_quantize options (the CLI's quantize options; all optional but "type"):
 *   "type": "q4_k_m", "method": "gptq", "calib": PATH, "calib_samples": 128, "calib_ctx": 128,
 *   "seed": 1234, "imatrix": PATH, "range": "mse", "act": "dynamic", "damp": 0.01,
 *   "act_order": false, "pure": false, "allow_requantize": false, "tokenizer": PATH,
 *   "tensor_types": {"REGEX": "TYPE", ...}, "output_tensor_type": "q8_0",
 *   "token_embedding_type": "q8_0", "threads": 0, "calib_matmul": "q8" (or "exact")
 * result: {"bytes_in", "bytes_out", "bpw", "params", "tensors", "fallbacks", "err_rtn",
 *   "err_method", "seconds", "seconds_calib", "seconds_method", "peak_rss"}; progress (may be
 *   NULL) is called after each block with {"block", "blocks", "name", "seconds", "elapsed",
 *   "eta", "peak_rss", "err_rtn", "err_method"}.
 *
 * lb_api_evaluate options: "ctx": 128, "chunks": 0 (all), "ref": PATH (a reference model:
 *   adds the KL divergence), "tokenizer": PATH, "threads": 0
 * result: {"ppl", "ppl_stderr", "tokens_scored", "chunks", "ctx", "seconds"} and with "ref":
 *   {"kld_mean", "kld_stderr", "kld_median", "kld_p99", "kld_max", "top1", "ppl_ref"} too.
 *
 * lb_api_convert options (the CLI's convert): "to": "gguf" (default), "hf" or "hf-gptq";
 *   "type": "f32", "f16", "bf16" or "keep" (default: keep for a GPTQ/AWQ import, else f32;
 *   none with hf-gptq); "tokenizer": PATH
 * result: {"to", "type", "params", "seconds"} and, for a GPTQ/AWQ directory in, its import:
 *   {"import": {"method", "bits", "group_size", "sym", "act_order", "layers", "exact",
 *   "max_rel_err", "worst"}}. */
#ifndef LOWBIT_API_H
#define LOWBIT_API_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "model.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*lb_api_progress)(void *user, const char *json);

lb_status lb_api_quantize(const char *in, const char *out, const char *options, lb_api_progress progress,
                          void *user, char **result, lb_error *err);
lb_status lb_api_evaluate(const char *model, const char *text_path, const char *options, char **result,
                          lb_error *err);
lb_status lb_api_convert(const char *in, const char *out, const char *options, char **result, lb_error *err);

/* A loaded model (lb_model_load) described: {"arch", "name", "n_layers", "n_embd", "n_ff", "n_heads",
 * "n_kv_heads", "head_dim", "n_vocab", "n_ctx", "rope_base", "norm_eps", "params", "bytes",
 * "metadata": {key: value} (the input GGUF's keys: numbers, strings, booleans; an array as
 * {"array": element type, "n": count}), "tensors": [{"name", "type", "shape"}]}. */
lb_status lb_api_model_info(const lb_model *m, char **result, lb_error *err);

/* A GGUF file described without loading a model (any GGUF: a model, an importance matrix,
 * a vocabulary): {"file", "version", "alignment", "data_offset", "metadata" (as above),
 * "tensors": [{"name", "type" (lowbit's own types by their name), "shape", "bytes"}],
 * "tensor_bytes"}. */
lb_status lb_api_gguf_info(const char *path, char **result, lb_error *err);

/* A tensor of m by its GGUF name: its shape (ne[0] first, unused dimensions 1) and element
 * count; then its values dequantized to f32 into out (cap floats, at least the count). */
lb_status lb_api_tensor_shape(const lb_model *m, const char *name, int64_t ne[4], int64_t *count,
                              lb_error *err);
lb_status lb_api_tensor_read(const lb_model *m, const char *name, float *out, int64_t cap,
                             lb_error *err);

void lb_api_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
