/* lowbit: quantize LLMs on a CPU, write GGUF, measure what was lost. Umbrella header. */
#ifndef LOWBIT_H
#define LOWBIT_H

#include "calib.h"
#include "core.h"
#include "eval.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "status.h"
#include "tensor.h"
#include "tokenizer.h"

#endif
