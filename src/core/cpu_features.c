/* Run-time CPU feature detection (x86 cpuid + xgetbv); all false elsewhere.
 * Kernels are chosen from these at run time, never at compile time. */
#include <stdio.h>
#include <string.h>

#include "lowbit/core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static void detect(lb_cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const int osxsave = (c >> 27) & 1;
    const int fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return;
    const uint64_t xcr0     = xgetbv0();
    const int      os_avx   = (xcr0 & 0x6) == 0x6;
    const int      os_avx512 = (xcr0 & 0xe6) == 0xe6;
    if (!os_avx) return;
    f->fma  = fma;
    f->f16c = f16c;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = (b >> 5) & 1;
    if (os_avx512) {
        f->avx512f    = (b >> 16) & 1;
        f->avx512bw   = (b >> 30) & 1;
        f->avx512vl   = (b >> 31) & 1;
        f->avx512vnni = (c >> 11) & 1;
        __cpuid_count(7, 1, a, b, c, d);
        f->avx512bf16 = (a >> 5) & 1;
    }
}
#else
static void detect(lb_cpu_features *f) {
    (void)f;
}
#endif

static lb_cpu_features g_features;
static int             g_detected;
static char            g_str[128];

const lb_cpu_features *lb_cpu_get_features(void) {
    if (!g_detected) { /* benign race: every thread computes the same value */
        lb_cpu_features f;
        memset(&f, 0, sizeof f);
        detect(&f);
        g_features = f;
        g_detected = 1;
    }
    return &g_features;
}

const char *lb_cpu_features_str(void) {
    const lb_cpu_features *f = lb_cpu_get_features();
    snprintf(g_str, sizeof g_str, "%s%s%s%s%s%s%s%s", f->avx2 ? "avx2 " : "", f->fma ? "fma " : "",
             f->f16c ? "f16c " : "", f->avx512f ? "avx512f " : "", f->avx512bw ? "avx512bw " : "",
             f->avx512vl ? "avx512vl " : "", f->avx512vnni ? "avx512vnni " : "",
             f->avx512bf16 ? "avx512bf16 " : "");
    size_t n = strlen(g_str);
    if (n > 0) g_str[n - 1] = '\0';
    else snprintf(g_str, sizeof g_str, "scalar");
    return g_str;
}
