/* Token sampling: greedy (temperature 0), or temperature with optional top-p (nucleus),
 * from a seeded xorshift generator (llama2.c's), so runs are reproducible. */
#include <math.h>
#include <stdlib.h>

#include "lowbit/model.h"

void lb_sampler_init(lb_sampler *s, float temp, float top_p, uint64_t seed) {
    s->temp  = temp;
    s->top_p = top_p;
    s->rng   = seed ? seed : 0x2545f4914f6cdd1dull;
}

static uint32_t random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

static float random_f32(uint64_t *state) { /* [0, 1) */
    return (float)(random_u32(state) >> 8) / 16777216.0f;
}

static int cmp_desc(const void *a, const void *b) {
    const float x = ((const float *)a)[0], y = ((const float *)b)[0];
    return x > y ? -1 : x < y;
}

int32_t lb_sample(lb_sampler *s, const float *logits, int32_t n, float *scratch) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temp <= 0.0f) return best;
    /* softmax(logits / temp) into scratch as (prob, index) pairs */
    float sum = 0.0f;
    for (int32_t i = 0; i < n; i++) {
        const float p      = expf((logits[i] - logits[best]) / s->temp);
        scratch[2 * i]     = p;
        scratch[2 * i + 1] = (float)i;
        sum += p;
    }
    for (int32_t i = 0; i < n; i++) scratch[2 * i] /= sum;
    int32_t m = n;
    if (s->top_p > 0.0f && s->top_p < 1.0f) {
        qsort(scratch, (size_t)n, 2 * sizeof(float), cmp_desc);
        float cum = 0.0f;
        for (m = 0; m < n;) {
            cum += scratch[2 * m++];
            if (cum >= s->top_p) break;
        }
        sum = cum;
    } else {
        sum = 1.0f;
    }
    const float r   = random_f32(&s->rng) * sum;
    float       cdf = 0.0f;
    for (int32_t i = 0; i < m; i++) {
        cdf += scratch[2 * i];
        if (r < cdf) return (int32_t)scratch[2 * i + 1];
    }
    return (int32_t)scratch[2 * (m - 1) + 1];
}
