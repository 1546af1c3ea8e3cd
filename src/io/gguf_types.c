/* ggml's tensor type ids: names, block sizes and bytes per block (ggml-common.h),
 * and the switch that maps them to and from lowbit's own type ids. */
#include "lowbit/gguf.h"

typedef struct {
    const char *name;
    int32_t     block_size;
    size_t      type_size;
} ggml_type_info;

static const ggml_type_info k_ggml[LB_GGML_TYPE_COUNT] = {
    [LB_GGML_F32]     = { "f32", 1, 4 },       [LB_GGML_F16]     = { "f16", 1, 2 },
    [LB_GGML_Q4_0]    = { "q4_0", 32, 18 },    [LB_GGML_Q4_1]    = { "q4_1", 32, 20 },
    [LB_GGML_Q5_0]    = { "q5_0", 32, 22 },    [LB_GGML_Q5_1]    = { "q5_1", 32, 24 },
    [LB_GGML_Q8_0]    = { "q8_0", 32, 34 },    [LB_GGML_Q8_1]    = { "q8_1", 32, 36 },
    [LB_GGML_Q2_K]    = { "q2_K", 256, 84 },   [LB_GGML_Q3_K]    = { "q3_K", 256, 110 },
    [LB_GGML_Q4_K]    = { "q4_K", 256, 144 },  [LB_GGML_Q5_K]    = { "q5_K", 256, 176 },
    [LB_GGML_Q6_K]    = { "q6_K", 256, 210 },  [LB_GGML_Q8_K]    = { "q8_K", 256, 292 },
    [LB_GGML_IQ2_XXS] = { "iq2_xxs", 256, 66 }, [LB_GGML_IQ2_XS] = { "iq2_xs", 256, 74 },
    [LB_GGML_IQ3_XXS] = { "iq3_xxs", 256, 98 }, [LB_GGML_IQ1_S]  = { "iq1_s", 256, 50 },
    [LB_GGML_IQ4_NL]  = { "iq4_nl", 32, 18 },  [LB_GGML_IQ3_S]   = { "iq3_s", 256, 110 },
    [LB_GGML_IQ2_S]   = { "iq2_s", 256, 82 },  [LB_GGML_IQ4_XS]  = { "iq4_xs", 256, 136 },
    [LB_GGML_I8]      = { "i8", 1, 1 },        [LB_GGML_I16]     = { "i16", 1, 2 },
    [LB_GGML_I32]     = { "i32", 1, 4 },       [LB_GGML_I64]     = { "i64", 1, 8 },
    [LB_GGML_F64]     = { "f64", 1, 8 },       [LB_GGML_IQ1_M]   = { "iq1_m", 256, 56 },
    [LB_GGML_BF16]    = { "bf16", 1, 2 },      [LB_GGML_TQ1_0]   = { "tq1_0", 256, 54 },
    [LB_GGML_TQ2_0]   = { "tq2_0", 256, 66 },  [LB_GGML_MXFP4]   = { "mxfp4", 32, 17 },
};

static const ggml_type_info *info(uint32_t t) {
    if (t >= LB_GGML_TYPE_COUNT || k_ggml[t].name == NULL) return NULL;
    return &k_ggml[t];
}

const char *lb_ggml_type_name(uint32_t t) {
    const ggml_type_info *i = info(t);
    return i ? i->name : NULL;
}

int32_t lb_ggml_type_block_size(uint32_t t) {
    const ggml_type_info *i = info(t);
    return i ? i->block_size : 0;
}

size_t lb_ggml_type_size(uint32_t t) {
    const ggml_type_info *i = info(t);
    return i ? i->type_size : 0;
}

/* (lowbit type, ggml type) pairs: the one place the two numberings meet */
static const struct {
    lb_type  lb;
    uint32_t ggml;
} k_map[] = {
    { LB_TYPE_F32, LB_GGML_F32 },       { LB_TYPE_F16, LB_GGML_F16 },
    { LB_TYPE_BF16, LB_GGML_BF16 },     { LB_TYPE_Q8_0, LB_GGML_Q8_0 },
    { LB_TYPE_Q4_0, LB_GGML_Q4_0 },     { LB_TYPE_Q4_1, LB_GGML_Q4_1 },
    { LB_TYPE_Q5_0, LB_GGML_Q5_0 },     { LB_TYPE_Q5_1, LB_GGML_Q5_1 },
    { LB_TYPE_Q2_K, LB_GGML_Q2_K },     { LB_TYPE_Q3_K, LB_GGML_Q3_K },
    { LB_TYPE_Q4_K, LB_GGML_Q4_K },     { LB_TYPE_Q5_K, LB_GGML_Q5_K },
    { LB_TYPE_Q6_K, LB_GGML_Q6_K },     { LB_TYPE_IQ4_NL, LB_GGML_IQ4_NL },
    { LB_TYPE_IQ4_XS, LB_GGML_IQ4_XS }, { LB_TYPE_TQ1_0, LB_GGML_TQ1_0 },
    { LB_TYPE_TQ2_0, LB_GGML_TQ2_0 },   { LB_TYPE_IQ2_XXS, LB_GGML_IQ2_XXS },
    { LB_TYPE_IQ2_XS, LB_GGML_IQ2_XS }, { LB_TYPE_IQ2_S, LB_GGML_IQ2_S },
    { LB_TYPE_IQ3_XXS, LB_GGML_IQ3_XXS }, { LB_TYPE_IQ3_S, LB_GGML_IQ3_S },
    { LB_TYPE_IQ1_S, LB_GGML_IQ1_S },   { LB_TYPE_IQ1_M, LB_GGML_IQ1_M },
    { LB_TYPE_MXFP4, LB_GGML_MXFP4 },
};

/* Only types whose traits exist (implemented) map; the rest are LB_TYPE_INVALID. */
lb_type lb_type_from_ggml(uint32_t t) {
    for (size_t i = 0; i < sizeof k_map / sizeof k_map[0]; i++)
        if (k_map[i].ggml == t) return lb_type_get_traits(k_map[i].lb) ? k_map[i].lb : LB_TYPE_INVALID;
    return LB_TYPE_INVALID;
}

int32_t lb_type_to_ggml(lb_type t) {
    for (size_t i = 0; i < sizeof k_map / sizeof k_map[0]; i++)
        if (k_map[i].lb == t) return (int32_t)k_map[i].ggml;
    return -1;
}

const char *lb_gguf_vtype_name(lb_gguf_vtype t) {
    static const char *const names[LB_GGUF_VTYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64",
    };
    return (unsigned)t < LB_GGUF_VTYPE_COUNT ? names[t] : "?";
}
