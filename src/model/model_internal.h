/* Shared by the files of src/model: loaders, validation, ownership helpers. */
#ifndef LB_MODEL_INTERNAL_H
#define LB_MODEL_INTERNAL_H

#include "lowbit/model.h"

lb_status lb_model_load_gguf(lb_model *m, const char *path, lb_error *err);
lb_status lb_model_load_llama2c(lb_model *m, const char *path, lb_error *err);

/* Check the config, then every tensor's shape and type against it. */
lb_status lb_model_validate(const lb_model *m, const char *path, lb_error *err);

/* Keep a malloc'd buffer alive as long as the model. */
lb_status lb_model_own(lb_model *m, void *p);

/* Replace t's data by an owned f32 copy. */
lb_status lb_model_own_f32_copy(lb_model *m, lb_tensor *t);

/* Make a 1-D tensor f32 (norm weights): converted into an owned buffer when needed. */
lb_status lb_model_make_f32(lb_model *m, lb_tensor *t);

#endif
