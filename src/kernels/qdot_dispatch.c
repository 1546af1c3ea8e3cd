/* The kernel tables, one per ISA, filled once; lb_qdot_get answers from the best table the
 * CPU runs (lb_cpu_get_features), type by type falling back to a lesser ISA and then to the
 * scalar reference. LB_FORCE_REF=1 in the environment chooses the scalar table;
 * LB_MAX_ISA=NAME (scalar, avx2, avx512vnni, avx512bf16) caps the choice at that tier, as a
 * CPU without the later ones would choose (an unknown name: no cap). */
#include <stdlib.h>
#include <string.h>

#include "lowbit/core.h"
#include "lowbit/kernels.h"
#include "qdot.h"

static lb_qdot_table g_tables[LB_ISA_COUNT];
static bool          g_have[LB_ISA_COUNT];
static lb_isa        g_isa;
static int           g_ready;

static bool cpu_has(lb_isa isa) {
    const lb_cpu_features *f = lb_cpu_get_features();
    switch (isa) {
    case LB_ISA_REF:        return true;
    case LB_ISA_AVX2:       return f->avx2 && f->fma && f->f16c;
    case LB_ISA_AVX512VNNI: return f->avx2 && f->fma && f->f16c && f->avx512f && f->avx512bw &&
                                   f->avx512vl && f->avx512vnni;
    case LB_ISA_AVX512BF16: return cpu_has(LB_ISA_AVX512VNNI) && f->avx512bf16;
    default:                return false;
    }
}

static void init(void) {
    if (g_ready) return; /* benign race: every thread fills the same values */
    /* a table's own code is compiled for its ISA: fill it only where the CPU runs it */
    for (int i = 0; i < LB_ISA_COUNT; i++) g_have[i] = cpu_has((lb_isa)i);
    lb_qdot_fill_ref(&g_tables[LB_ISA_REF]);
    if (g_have[LB_ISA_AVX2]) lb_qdot_fill_avx2(&g_tables[LB_ISA_AVX2]);
    if (g_have[LB_ISA_AVX512VNNI]) lb_qdot_fill_avx512(&g_tables[LB_ISA_AVX512VNNI]);
    if (g_have[LB_ISA_AVX512BF16]) lb_qdot_fill_avx512bf16(&g_tables[LB_ISA_AVX512BF16]);
    const char *force = getenv("LB_FORCE_REF"), *cap = getenv("LB_MAX_ISA");
    int         top   = LB_ISA_COUNT - 1;
    if (force && strcmp(force, "0") != 0 && force[0]) top = LB_ISA_REF;
    else if (cap)
        for (int i = 0; i < LB_ISA_COUNT; i++)
            if (!strcmp(cap, lb_isa_name((lb_isa)i))) top = i;
    g_isa = LB_ISA_REF;
    for (int i = top; i > 0; i--) /* a table filled: built for this ISA */
        if (g_have[i] && g_tables[i].quantize_act[i == LB_ISA_AVX512BF16 ? LB_ACT_BF16 : LB_ACT_Q8A]) {
            g_isa = (lb_isa)i;
            break;
        }
    g_ready = 1;
}

const lb_qdot *lb_qdot_get_isa(lb_type t, lb_isa isa) {
    init();
    if ((int)t < 0 || t >= LB_TYPE_COUNT || (int)isa < 0 || isa >= LB_ISA_COUNT || !g_have[isa])
        return NULL;
    return g_tables[isa].kern[t].gemm ? &g_tables[isa].kern[t] : NULL;
}

const lb_qdot *lb_qdot_get_fast_isa(lb_type t, lb_isa isa) {
    init();
    if ((int)t < 0 || t >= LB_TYPE_COUNT || (int)isa < 0 || isa >= LB_ISA_COUNT || !g_have[isa])
        return NULL;
    return g_tables[isa].fast[t].gemm ? &g_tables[isa].fast[t] : NULL;
}

lb_quantize_act_fn lb_quantize_act_get_isa(lb_act_kind k, lb_isa isa) {
    init();
    if ((int)k < 0 || k >= LB_ACT_COUNT || (int)isa < 0 || isa >= LB_ISA_COUNT || !g_have[isa])
        return NULL;
    return g_tables[isa].quantize_act[k];
}

const lb_qdot *lb_qdot_get(lb_type t) {
    init();
    for (int i = (int)g_isa; i >= 0; i--) {
        const lb_qdot *k = lb_qdot_get_isa(t, (lb_isa)i);
        if (k) return k;
    }
    return NULL;
}

const lb_qdot *lb_qdot_get_fast(lb_type t) {
    init();
    for (int i = (int)g_isa; i >= 0; i--) { /* the scalar `fast` kernels are twins for tests only */
        const lb_qdot *f = i > LB_ISA_REF ? lb_qdot_get_fast_isa(t, (lb_isa)i) : NULL;
        const lb_qdot *k = lb_qdot_get_isa(t, (lb_isa)i);
        if (f || k) return f ? f : k;
    }
    return NULL;
}

lb_quantize_act_fn lb_quantize_act_get(lb_act_kind k) {
    init();
    for (int i = (int)g_isa; i >= 0; i--) {
        const lb_quantize_act_fn f = lb_quantize_act_get_isa(k, (lb_isa)i);
        if (f) return f;
    }
    return NULL;
}

lb_gemm_i8_fn lb_gemm_i8_get_isa(lb_isa isa) {
    init();
    return (int)isa >= 0 && isa < LB_ISA_COUNT && g_have[isa] ? g_tables[isa].gemm_i8 : NULL;
}

lb_quantize_i8_fn lb_quantize_i8_get_isa(lb_isa isa) {
    init();
    return (int)isa >= 0 && isa < LB_ISA_COUNT && g_have[isa] ? g_tables[isa].quantize_i8 : NULL;
}

lb_gram_pairs_fn lb_gram_pairs_get_isa(lb_isa isa) {
    init();
    return (int)isa >= 0 && isa < LB_ISA_COUNT && g_have[isa] ? g_tables[isa].gram_pairs : NULL;
}

lb_gram_pairs_fn lb_gram_pairs_get(void) {
    init();
    for (int i = (int)g_isa; i > 0; i--)
        if (lb_gram_pairs_get_isa((lb_isa)i)) return lb_gram_pairs_get_isa((lb_isa)i);
    return NULL;
}

lb_gemm_i8_fn lb_gemm_i8_get(void) {
    init();
    for (int i = (int)g_isa; i >= 0; i--)
        if (lb_gemm_i8_get_isa((lb_isa)i)) return lb_gemm_i8_get_isa((lb_isa)i);
    return NULL;
}

lb_quantize_i8_fn lb_quantize_i8_get(void) {
    init();
    for (int i = (int)g_isa; i >= 0; i--)
        if (lb_quantize_i8_get_isa((lb_isa)i)) return lb_quantize_i8_get_isa((lb_isa)i);
    return NULL;
}

lb_to_float_fn lb_qdot_to_float(lb_type t) {
    init();
    if ((int)t >= 0 && t < LB_TYPE_COUNT)
        for (int i = (int)g_isa; i > 0; i--)
            if (g_have[i] && g_tables[i].to_float[t]) return g_tables[i].to_float[t];
    const lb_type_traits *tr = lb_type_get_traits(t);
    return tr ? tr->to_float : NULL;
}

bool lb_isa_runs(lb_isa isa) {
    init();
    return (int)isa >= 0 && isa < LB_ISA_COUNT && g_have[isa];
}

lb_isa lb_qdot_isa(void) {
    init();
    return g_isa;
}

const char *lb_isa_name(lb_isa isa) {
    switch (isa) {
    case LB_ISA_REF:        return "scalar";
    case LB_ISA_AVX2:       return "avx2";
    case LB_ISA_AVX512VNNI: return "avx512vnni";
    case LB_ISA_AVX512BF16: return "avx512bf16";
    default:                return "?";
    }
}

const char *lb_kernels_name(void) {
    return lb_isa_name(lb_qdot_isa());
}
