/* The reference table of vecf.h (vecf_body.h in the plain build) and the choice of table:
 * the ISA of the dot products, falling back to a lesser one. */
#include "vecf.h"

#define VF_FILL lb_vecf_fill_ref
#include "vecf_body.h"

static lb_vecf g_vecf[LB_ISA_COUNT];
static int     g_vecf_ready;

static void init(void) {
    if (g_vecf_ready) return; /* benign race: every thread fills the same values */
    lb_vecf_fill_ref(&g_vecf[LB_ISA_REF]);
    if (lb_isa_runs(LB_ISA_AVX2)) lb_vecf_fill_avx2(&g_vecf[LB_ISA_AVX2]);
    if (lb_isa_runs(LB_ISA_AVX512VNNI)) lb_vecf_fill_avx512(&g_vecf[LB_ISA_AVX512VNNI]);
    g_vecf_ready = 1;
}

const lb_vecf *lb_vecf_get_isa(lb_isa isa) {
    init();
    return (int)isa >= 0 && isa < LB_ISA_COUNT && g_vecf[isa].exp ? &g_vecf[isa] : NULL;
}

const lb_vecf *lb_vecf_get(void) {
    for (int i = (int)lb_qdot_isa(); i >= 0; i--)
        if (lb_vecf_get_isa((lb_isa)i)) return lb_vecf_get_isa((lb_isa)i);
    return lb_vecf_get_isa(LB_ISA_REF);
}
