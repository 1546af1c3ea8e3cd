/* lowbit: quantize LLMs on a CPU, write GGUF, measure what was lost. Umbrella header. */
#ifndef LOWBIT_H
#define LOWBIT_H

#include "actq.h"
#include "bench.h"
#include "calib.h"
#include "core.h"
#include "eval.h"
#include "gguf.h"
#include "hf.h"
#include "kernels.h"
#include "model.h"
#include "quant.h"
#include "safetensors.h"
#include "status.h"
#include "synth.h"
#include "tensor.h"
#include "tokenizer.h"

#endif
