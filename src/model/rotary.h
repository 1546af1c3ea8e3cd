/* Rows of rotary tensors (q, k, their biases and per-head norms) in two orders. lowbit keeps
 * each head's rotary dimensions as adjacent pairs (GGUF's llama order, llama.cpp's "normal"
 * RoPE); Hugging Face checkpoints and llama.cpp's NEOX-rope architectures (Qwen2, Qwen3) keep
 * them split in halves: row j of a head is paired with row j + D/2. The loaders turn the
 * half-split order into pairs and the writers turn it back, so the forward pass has one RoPE. */
#ifndef LB_MODEL_ROTARY_H
#define LB_MODEL_ROTARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lowbit/model.h"

/* dst = src with the rows of each group of head_rows (even) reordered: to_pairs, half-split to
 * adjacent pairs; else back. Rows of row_bytes each (a vector: its elements are the rows);
 * dst and src must not overlap. */
void lb_rotary_rows(void *dst, const void *src, int64_t rows, size_t row_bytes, int64_t head_rows,
                    bool to_pairs);

/* The rows per rotary head of a slot in m (head_dim), 0 when the slot is not rotary. */
int64_t lb_rotary_head_rows(const lb_model *m, const lb_slot *s);

#endif
