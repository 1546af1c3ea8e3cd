/* Part of qdot_x86.h (included from it, after the block decoders): the kernels that hold one
 * weight row per 32-bit lane. For generation, blocks of 8 rows are transposed in registers;
 * packed weights (qdot_pack.c) come already interleaved and are read as one stream, each
 * decoded block serving QX_PNC activation rows. Per block, each row's exact integer sum meets
 * its float scale in one fma; the single-row functions (row1_X) do the same operations, so a
 * row's result never depends on its neighbours, packed or not. */

/* ---- generation (one column), 8 rows at a time for the 4-bit 32-blocks: the blocks of 8 rows
 * are transposed in registers (4-byte groups) so that each int32 lane holds one row; the
 * int16 sums of 8 steps cannot overflow (8 * 2 * 15 * 127 < 2^15), the scales of the 8 rows
 * convert at once and no horizontal sum is left. Per block, each row's exact integer sum
 * meets its float scale in one fma; the single-row remainder does the same operations, so a
 * row's result does not depend on its neighbours. ---- */

/* dword k of the 16 bytes at p[r], for the 8 rows r, in g[k] (lane r) */
QX_INLINE void qx_transpose8x4(const uint8_t *const *p, __m256i g[4]) {
    const __m256i t0 = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)p[4]), _mm_loadu_si128((const __m128i *)p[0]));
    const __m256i t1 = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)p[5]), _mm_loadu_si128((const __m128i *)p[1]));
    const __m256i t2 = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)p[6]), _mm_loadu_si128((const __m128i *)p[2]));
    const __m256i t3 = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)p[7]), _mm_loadu_si128((const __m128i *)p[3]));
    const __m256i u0 = _mm256_unpacklo_epi32(t0, t1), u1 = _mm256_unpackhi_epi32(t0, t1);
    const __m256i u2 = _mm256_unpacklo_epi32(t2, t3), u3 = _mm256_unpackhi_epi32(t2, t3);
    g[0] = _mm256_unpacklo_epi64(u0, u2);
    g[1] = _mm256_unpackhi_epi64(u0, u2);
    g[2] = _mm256_unpacklo_epi64(u1, u3);
    g[3] = _mm256_unpackhi_epi64(u1, u3);
}

QX_INLINE uint16_t qx_u16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* the 8 f16 at p[r] + off as floats, lane r */
QX_INLINE __m256 qx_f16_rows8(const uint8_t *const *p, int off) {
    return _mm256_cvtph_ps(_mm_setr_epi16((short)qx_u16(p[0] + off), (short)qx_u16(p[1] + off),
                                          (short)qx_u16(p[2] + off), (short)qx_u16(p[3] + off),
                                          (short)qx_u16(p[4] + off), (short)qx_u16(p[5] + off),
                                          (short)qx_u16(p[6] + off), (short)qx_u16(p[7] + off)));
}

QX_INLINE __m256i qx_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* One row against nc activation rows, per block: the exact integer sum, then one fma with the
 * scales (the operations of the 8-row and packed kernels, lane by lane). KIND: 0 signed
 * levels, 1 affine, > 1 unsigned levels minus KIND. */
#define QX_ROW1(X, KIND)                                                                           \
    static void row1_##X(int64_t nb, const uint8_t *row, const uint8_t *A, size_t as, int64_t nc, \
                         float *out, int64_t ldo) {                                                \
        for (int64_t c = 0; c < nc; c++) {                                                         \
            const lb_block_q8a *a   = (const lb_block_q8a *)(A + (size_t)c * as);                  \
            float               acc = 0.0f, macc = 0.0f;                                           \
            for (int64_t i = 0; i < nb; i++) {                                                     \
                const lb_block_##X *b  = (const lb_block_##X *)row + i;                            \
                const __m256i       q  = dec_##X(b);                                               \
                const __m256i       av = _mm256_loadu_si256((const __m256i *)a[i].qs);             \
                int is = qx_hsum_i32(KIND == 0 ? QX_DOT(_mm256_sign_epi8(q, q), _mm256_sign_epi8(av, q)) \
                                               : QX_DOT(q, av));                                   \
                if (KIND > 1) is -= (KIND) * a[i].sum;                                             \
                acc = fmaf((float)is, qx_f16(b->d) * a[i].d, acc);                                 \
                if (KIND == 1) macc = fmaf(qx_f16(((const uint16_t *)b)[1]), a[i].s, macc);        \
            }                                                                                      \
            out[c * ldo] = KIND == 1 ? acc + macc : acc;                                           \
        }                                                                                          \
    }

/* ---- packed weights (qdot_pack.c): groups of 8 rows, one row per lane, read as one stream;
 * each decoded group-block serves QX_PNC activation rows ---- */
#define QX_PNC 4

/* Ask for the lines QX_PF bytes ahead of the block at B (of size bytes): one stream of packed
 * weights read at a core's decoding speed keeps too few misses in flight for the hardware
 * prefetcher alone. The distance covers bandwidth x latency: 1536 suited a Zen 3 core (~25
 * GB/s); a Zen 5 core reads ~40 GB/s, where 1536 was 15% slower than none at all and 8192
 * the best of 0..24576 (1b Q4_0 tg, bench/README.md section 6). */
#ifndef QX_PF
#define QX_PF 8192
#endif
QX_INLINE void qx_prefetch(const uint8_t *B, size_t size) {
    for (size_t o = 0; o < size; o += 64) _mm_prefetch((const char *)B + QX_PF + o, _MM_HINT_T0);
}

/* Q4_0 (KIND 8), Q4_1 (KIND 1), IQ4_NL (KIND 0: signed grid levels). The 4-byte groups are the
 * outer loop: one group of the 8 rows is decoded, then meets each of the ncol activation rows,
 * whose sums stay in registers (int16 for the unsigned levels: 8 steps of 2 * 15 * 127 fit,
 * int32 for the signed grid), so that 4 columns fit AVX2's 16 registers without spilling. */
#define QX_PACKED_NIBBLES(X, KIND, GRID)                                                               \
    QX_INLINE void pk_##X(const uint8_t *P, int64_t nb, const uint8_t *A, size_t as, float *out,  \
                          int64_t ldo, const int ncol) {                                           \
        const size_t  PB = KIND == 1 ? 160 : 144;                                                  \
        const __m256i m4 = _mm256_set1_epi8(0x0F);                                                 \
        __m256        acc[QX_PNC], macc[QX_PNC];                                                   \
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) acc[c] = macc[c] = _mm256_setzero_ps(); \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            const uint8_t *B = P + (size_t)i * PB;                                                 \
            qx_prefetch(B, PB);                                                                    \
            const uint8_t *Q = B + (KIND == 1 ? 32 : 16);                                          \
            __m256i        s[QX_PNC];                                                              \
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) s[c] = _mm256_setzero_si256(); \
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {                                  \
                const __m256i g  = _mm256_loadu_si256((const __m256i *)(Q + 32 * k));              \
                __m256i       lo = _mm256_and_si256(g, m4);                                        \
                __m256i       hi = _mm256_and_si256(_mm256_srli_epi16(g, 4), m4);                  \
                if (KIND == 0) {                                                                   \
                    lo = _mm256_shuffle_epi8(qx_grid8(GRID), lo);                                  \
                    hi = _mm256_shuffle_epi8(qx_grid8(GRID), hi);                                  \
                }                                                                                  \
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {                           \
                    const int8_t *aq = ((const lb_block_q8a *)(A + (size_t)c * as) + i)->qs + 4 * k; \
                    if (KIND == 0) {                                                               \
                        s[c] = _mm256_add_epi32(s[c], QX_DOT(_mm256_sign_epi8(lo, lo),            \
                                                             _mm256_sign_epi8(qx_bcast4(aq), lo))); \
                        QX_KEEP(s[c]);                                                         \
                        s[c] = _mm256_add_epi32(s[c], QX_DOT(_mm256_sign_epi8(hi, hi),            \
                                                             _mm256_sign_epi8(qx_bcast4(aq + 16), hi))); \
                        QX_KEEP(s[c]);                                                         \
                    } else {                                                                       \
                        s[c] = _mm256_add_epi16(s[c], _mm256_maddubs_epi16(lo, qx_bcast4(aq)));    \
                        QX_KEEP(s[c]);                                                         \
                        s[c] = _mm256_add_epi16(s[c], _mm256_maddubs_epi16(hi, qx_bcast4(aq + 16))); \
                        QX_KEEP(s[c]);                                                         \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B));                \
            const __m256 m8 = KIND == 1 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(B + 16))) \
                                        : _mm256_setzero_ps();                                     \
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {                               \
                const lb_block_q8a *ab = (const lb_block_q8a *)(A + (size_t)c * as) + i;           \
                __m256i is = KIND == 0 ? s[c] : _mm256_madd_epi16(s[c], _mm256_set1_epi16(1));     \
                if (KIND > 1) is = _mm256_sub_epi32(is, _mm256_set1_epi32((KIND) * ab->sum));      \
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(d8, _mm256_set1_ps(ab->d)), acc[c]); \
                if (KIND == 1)                                                                     \
                    macc[c] = _mm256_fmadd_ps(m8, _mm256_set1_ps(ab->s), macc[c]);                 \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++)                                     \
            _mm256_storeu_ps(out + c * ldo, KIND == 1 ? _mm256_add_ps(acc[c], macc[c]) : acc[c]);  \
    }

/* X2_0 (KIND 2: levels u - 2), X2_1 (KIND 1: affine) and X2_K (X2_0's blocks, SUB = 8 of them
 * under one scale per 8 rows' super-block), 2 bits: dword k of the 8 rows holds
 * bytes 4 k .. 4 k + 3 of each row's 8, so shift sh (0, 2, 4, 6) of it gives values 8 sh / 2 +
 * 4 k .. + 3 in each row's lane, against 4 consecutive activation bytes. With VNNI each step
 * adds into int32 (dpbusd); without, the int16 sums of a block's 8 steps fit (8 * 2 * 3 * 127)
 * and widen once. The offset comes off the exact int32 sum per lane. */
#ifdef __AVX512VNNI__
#define QX_CRUMB_ADD(s, w, a) _mm256_dpbusd_epi32((s), (w), (a))
#define QX_CRUMB_SUM(s)       (s)
#else
#define QX_CRUMB_ADD(s, w, a) _mm256_add_epi16((s), _mm256_maddubs_epi16((w), (a)))
#define QX_CRUMB_SUM(s)       _mm256_madd_epi16((s), _mm256_set1_epi16(1))
#endif
#define QX_PACKED_CRUMBS(X, KIND, SUB)                                                             \
    QX_INLINE void pk_##X(const uint8_t *P, int64_t nb, const uint8_t *A, size_t as, float *out,  \
                          int64_t ldo, const int ncol) {                                           \
        const size_t  H = KIND == 1 ? 32 : 16, PB = H + 64 * (SUB); /* scales, SUB blocks of 32 */ \
        const __m256i m2 = _mm256_set1_epi8(3);                                                    \
        __m256        acc[QX_PNC], macc[QX_PNC];                                                   \
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) acc[c] = macc[c] = _mm256_setzero_ps(); \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            const uint8_t *B  = P + (size_t)i * PB;                                                \
            const __m256   d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B));              \
            const __m256   m8 = KIND == 1 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(B + 16))) \
                                          : _mm256_setzero_ps();                                   \
            for (int sb = 0; sb < (SUB); sb++) {                                                   \
                const uint8_t *Q  = B + H + 64 * sb;                                               \
                const int64_t  ia = i * (SUB) + sb; /* the activations' 32-block */                \
                qx_prefetch(Q, 64);                                                                \
                __m256i s[QX_PNC];                                                                 \
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) s[c] = _mm256_setzero_si256(); \
                _Pragma("GCC unroll 2") for (int k = 0; k < 2; k++) {                              \
                    __m256i g = _mm256_loadu_si256((const __m256i *)(Q + 32 * k));                 \
                    _Pragma("GCC unroll 4") for (int sh = 0; sh < 4; sh++, g = _mm256_srli_epi16(g, 2)) { \
                        const __m256i w = _mm256_and_si256(g, m2);                                 \
                        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {                   \
                            const int8_t *aq = ((const lb_block_q8a *)(A + (size_t)c * as) + ia)->qs + 8 * sh + 4 * k; \
                            s[c] = QX_CRUMB_ADD(s[c], w, qx_bcast4(aq));                           \
                            QX_KEEP(s[c]);                                                         \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {                           \
                    const lb_block_q8a *ab = (const lb_block_q8a *)(A + (size_t)c * as) + ia;      \
                    __m256i is = QX_CRUMB_SUM(s[c]);                                               \
                    if (KIND > 1) is = _mm256_sub_epi32(is, _mm256_set1_epi32((KIND) * ab->sum));  \
                    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(d8, _mm256_set1_ps(ab->d)), acc[c]); \
                    if (KIND == 1) macc[c] = _mm256_fmadd_ps(m8, _mm256_set1_ps(ab->s), macc[c]);  \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++)                                     \
            _mm256_storeu_ps(out + c * ldo, KIND == 1 ? _mm256_add_ps(acc[c], macc[c]) : acc[c]);  \
    }

/* X2_K, one row: X2_0's operations with each 256-block's d for its 8 blocks of 32 */
static void row1_x2_k(int64_t nb, const uint8_t *row, const uint8_t *A, size_t as, int64_t nc, float *out,
                      int64_t ldo) {
    for (int64_t c = 0; c < nc; c++) {
        const lb_block_q8a *a   = (const lb_block_q8a *)(A + (size_t)c * as);
        float               acc = 0.0f;
        for (int64_t i = 0; i < nb; i++) {
            const lb_block_x2_k *b = (const lb_block_x2_k *)row + i;
            const float          d = qx_f16(b->d);
            for (int sb = 0; sb < 8; sb++) {
                const __m256i q  = _mm256_sub_epi8(qx_crumbs(b->qs + 8 * sb), _mm256_set1_epi8(2));
                const __m256i av = _mm256_loadu_si256((const __m256i *)a[8 * i + sb].qs);
                const int     is = qx_hsum_i32(QX_DOT(_mm256_sign_epi8(q, q), _mm256_sign_epi8(av, q)));
                acc              = fmaf((float)is, d * a[8 * i + sb].d, acc);
            }
        }
        out[c * ldo] = acc;
    }
}

/* One activation row through the one-row kernel, row by row: the packed kernel's operations
 * (for the types whose rows are packed wherever speed matters). */
#define QX_GEMV_ROW1(X)                                                                            \
    static void gemv_##X(int64_t nb, const uint8_t *W, size_t ws, int64_t nr, const uint8_t *A,   \
                         size_t as, float *out) {                                                  \
        for (int64_t r = 0; r < nr; r++) row1_##X(nb, W + (size_t)r * ws, A, as, 1, out + r, 1);  \
    }

/* Q8_0: 8 groups of 4 signed bytes per row, the groups the outer loop as above */
QX_INLINE void pk_q8_0(const uint8_t *P, int64_t nb, const uint8_t *A, size_t as, float *out,
                       int64_t ldo, const int ncol) {
    __m256 acc[QX_PNC];
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *B = P + (size_t)i * 272;
        qx_prefetch(B, 272);
        __m256i        s[QX_PNC];
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) s[c] = _mm256_setzero_si256();
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
            const __m256i w  = _mm256_loadu_si256((const __m256i *)(B + 16 + 32 * k));
            const __m256i uw = _mm256_sign_epi8(w, w);
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                const int8_t *aq = ((const lb_block_q8a *)(A + (size_t)c * as) + i)->qs + 4 * k;
                s[c] = _mm256_add_epi32(s[c], QX_DOT(uw, _mm256_sign_epi8(qx_bcast4(aq), w)));
                QX_KEEP(s[c]);
            }
        }
        const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B));
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
            const lb_block_q8a *ab = (const lb_block_q8a *)(A + (size_t)c * as) + i;
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]), _mm256_mul_ps(d8, _mm256_set1_ps(ab->d)), acc[c]);
        }
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) _mm256_storeu_ps(out + c * ldo, acc[c]);
}

/* Q4_K, packed (qdot_pack.c): per super-block of 8 rows, each group's scale multiplies its
 * int16 sums inside madd (the scale in both halves of a row's lane), its min the activation
 * sums of its 32 values (bsums[2j] and bsums[2j+1] in one lane), all exact in int32. */
QX_INLINE __m256i qx_rows_u8x2(const uint8_t *p) { /* 8 bytes -> 8 lanes of (b, b) int16 */
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
}

/* five: Q5_K, the fifth bits from the rows' qh (packed after Q4_K's bytes, dword k of the 8
 * rows at 1184 + 32 k: bit 2c of a byte for chunk c's low nibbles, 2c + 1 for its high ones);
 * its int16 sums are taken to int32 every 4 steps (4 * 2 * 31 * 127 < 2^15) */
QX_INLINE void pk_k45(const uint8_t *P, int64_t nb, const uint8_t *A, size_t as, float *out,
                      int64_t ldo, const int ncol, const int five) {
    const size_t  PB = five ? 1440 : 1184;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256        acc[QX_PNC];
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *B   = P + (size_t)i * PB;
        qx_prefetch(B, PB);
        const __m256   d8  = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B));
        const __m256   dm8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(B + 16)));
        __m256i        is[QX_PNC];
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = _mm256_setzero_si256();
        for (int ch = 0; ch < 4; ch++) { /* each 32-byte group decoded once for the ncol columns */
            __m256i slo[QX_PNC], shi[QX_PNC];
            const __m256i sl = qx_rows_u8x2(B + 32 + 16 * ch), sh = qx_rows_u8x2(B + 40 + 16 * ch);
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) slo[c] = shi[c] = _mm256_setzero_si256();
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
                const __m256i g  = _mm256_loadu_si256((const __m256i *)(B + 160 + 256 * ch + 32 * k));
                __m256i       lo = _mm256_and_si256(g, m4);
                __m256i       hi = _mm256_and_si256(_mm256_srli_epi16(g, 4), m4);
                if (five) {
                    const __m256i h = _mm256_loadu_si256((const __m256i *)(B + 1184 + 32 * k));
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * ch), one), 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * ch + 1), one), 4));
                }
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                    const int8_t *aq = ((const lb_block_q8k *)(A + (size_t)c * as) + i)->qs + 64 * ch + 4 * k;
                    slo[c] = _mm256_add_epi16(slo[c], _mm256_maddubs_epi16(lo, qx_bcast4(aq)));
                    shi[c] = _mm256_add_epi16(shi[c], _mm256_maddubs_epi16(hi, qx_bcast4(aq + 32)));
                    QX_KEEP(slo[c]);
                    QX_KEEP(shi[c]);
                }
                if (five ? k % 4 == 3 : k == 7) {
                    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                        is[c]  = _mm256_add_epi32(is[c], _mm256_madd_epi16(slo[c], sl));
                        is[c]  = _mm256_add_epi32(is[c], _mm256_madd_epi16(shi[c], sh));
                        slo[c] = shi[c] = _mm256_setzero_si256();
                    }
                }
            }
        }
        __m256i ms[QX_PNC]; /* the mins' terms: each group's mins unpacked once for the columns */
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) ms[c] = _mm256_setzero_si256();
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
            const __m256i mn = qx_rows_u8x2(B + 96 + 8 * j);
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                const lb_block_q8k *ab = (const lb_block_q8k *)(A + (size_t)c * as) + i;
                ms[c] = _mm256_add_epi32(ms[c], _mm256_madd_epi16(mn, qx_bcast4((const int8_t *)(ab->bsums + 2 * j))));
            }
        }
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
            const __m256 da = _mm256_set1_ps(((const lb_block_q8k *)(A + (size_t)c * as) + i)->d);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[c]), _mm256_mul_ps(d8, da), acc[c]);
            acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms[c]), _mm256_mul_ps(dm8, da), acc[c]);
        }
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) _mm256_storeu_ps(out + c * ldo, acc[c]);
}

QX_INLINE void pk_q4_k(const uint8_t *P, int64_t nb, const uint8_t *A, size_t as, float *out,
                       int64_t ldo, const int ncol) {
    pk_k45(P, nb, A, as, out, ldo, ncol, 0);
}

QX_INLINE void pk_q5_k(const uint8_t *P, int64_t nb, const uint8_t *A, size_t as, float *out,
                       int64_t ldo, const int ncol) {
    pk_k45(P, nb, A, as, out, ldo, ncol, 1);
}

/* Q6_K, packed (qdot_pack.c), one row per lane: per super-block, the 6-bit levels of each
 * 4-value step times the activations (maddubs: 2 * 63 * 127 fits int16), times the step's
 * int8 scale into int32 (madd; with VNNI a scale group's 4 steps by dpbusd, then its scale by
 * vpmulld), all exact; the levels' offset 32 is taken off as 32 times the
 * scales times the activation sums of 16 (bsums); then one fma with d * d_a. The one-column
 * kernel packs each super-block of 8 rows first and runs the same code; row1_q6_k does the
 * same integer sum and fma per row. */
QX_INLINE __m256i qx_s8x2(const uint8_t *p) { /* 8 int8 -> 8 lanes of (s, s) int16 */
    const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(v, 16));
}

/* 8 bytes -> 8 lanes of (n, n) int16, n the nibble at bit sh (0, 4) of each byte */
QX_INLINE __m256i qx_nib2(const uint8_t *p, const int sh) {
    const __m256i v = _mm256_and_si256(_mm256_srli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)), sh),
                                       _mm256_set1_epi32(0xF));
    return _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
}

/* the 8 rows' scales of 16 values (scale j of row r at S + 8 j + r: int8, or the high nibble
 * of a byte) times the activations' sums of 16 (bsums), summed over the 16 groups into each
 * column's ms (exact int32) */
QX_INLINE void qx_scale_sums(const uint8_t *S, const uint8_t *A, size_t as, int64_t i, const int ncol, __m256i *ms,
                             const int hi_nibble) {
    _Pragma("GCC unroll 2") for (int j = 0; j < 16; j += 2) {
        const __m256i sc  = hi_nibble ? qx_nib2(S + 8 * j, 4) : qx_s8x2(S + 8 * j);
        const __m256i sc1 = hi_nibble ? qx_nib2(S + 8 + 8 * j, 4) : qx_s8x2(S + 8 + 8 * j);
        const __m256i two = _mm256_or_si256(_mm256_and_si256(sc, _mm256_set1_epi32(0xFFFF)),
                                            _mm256_slli_epi32(sc1, 16)); /* (sc_j, sc_j+1) */
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
            const lb_block_q8k *ab = (const lb_block_q8k *)(A + (size_t)c * as) + i;
            ms[c] = _mm256_add_epi32(ms[c], _mm256_madd_epi16(two, qx_bcast4((const int8_t *)(ab->bsums + j))));
        }
    }
}

/* acc[c] += (is[c] - (ms[c] << sh)) * (d * d_a) for each column, d the 8 rows' f16 at B: the
 * close of a super-block whose levels' offset came through the activation sums */
QX_INLINE void qx_sb_close(const uint8_t *B, const uint8_t *A, size_t as, int64_t i, const int ncol,
                           const __m256i *is, const __m256i *ms, const int sh, __m256 *acc) {
    const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B));
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
        const __m256i t  = _mm256_sub_epi32(is[c], _mm256_slli_epi32(ms[c], sh));
        const __m256  da = _mm256_set1_ps(((const lb_block_q8k *)(A + (size_t)c * as) + i)->d);
        acc[c]           = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(d8, da), acc[c]);
    }
}

QX_INLINE void q6k_block(const uint8_t *B, const uint8_t *A, size_t as, int64_t i, const int ncol, __m256 *acc) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256i       is[QX_PNC], ms[QX_PNC];
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = ms[c] = _mm256_setzero_si256();
    qx_scale_sums(B + 16, A, as, i, ncol, ms, 0);
    for (int hk = 0; hk < 4; hk++) { /* h = hk / 2, steps k0 .. k0 + 3: scale group 8 h + 2 q + k0 / 4 */
        const int h = hk / 2, k0 = 4 * (hk % 2);
        __m256i   sc[4];
#ifdef __AVX512VNNI__
        __m256i s[4][QX_PNC]; /* each group's 4 steps in int32, then its scale */
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) s[q][c] = _mm256_setzero_si256();
#endif
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) sc[q] = qx_s8x2(B + 16 + 8 * (8 * h + 2 * q + k0 / 4));
        _Pragma("GCC unroll 4") for (int k = k0; k < k0 + 4; k++) {
            const __m256i L0 = _mm256_loadu_si256((const __m256i *)(B + 144 + 512 * h + 32 * k));
            const __m256i L1 = _mm256_loadu_si256((const __m256i *)(B + 144 + 512 * h + 256 + 32 * k));
            const __m256i H  = _mm256_loadu_si256((const __m256i *)(B + 1168 + 256 * h + 32 * k));
            const __m256i v[4] = { /* values 128 h + 32 q + 4 k .. + 3, q = 0..3 */
                _mm256_or_si256(_mm256_and_si256(L0, m4), _mm256_slli_epi16(_mm256_and_si256(H, m3), 4)),
                _mm256_or_si256(_mm256_and_si256(L1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 2), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L0, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 4), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L1, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 6), m3), 4)),
            };
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                const int8_t *aq = ((const lb_block_q8k *)(A + (size_t)c * as) + i)->qs + 128 * h + 32 * q + 4 * k;
#ifdef __AVX512VNNI__
                s[q][c] = _mm256_dpbusd_epi32(s[q][c], v[q], qx_bcast4(aq));
#else /* each step times the scale: 4 steps of 2 * 63 * 127 would overflow int16 */
                is[c] = _mm256_add_epi32(is[c], _mm256_madd_epi16(_mm256_maddubs_epi16(v[q], qx_bcast4(aq)), sc[q]));
#endif
            }
        }
#ifdef __AVX512VNNI__
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++)
            is[c] = _mm256_add_epi32(is[c], _mm256_mullo_epi32(s[q][c], _mm256_srai_epi32(sc[q], 16)));
#endif
    }
    qx_sb_close(B, A, as, i, ncol, is, ms, 5, acc);
}

/* Q3_K, packed (qdot_pack.c), as Q6_K: per 4-value step the 3-bit levels (2 bits of qs, the
 * third from hmask) times the activations, times the step's scale, exact in int32; the
 * levels' offset 4 comes off as 4 times the scales times the activation sums of 16. */
QX_INLINE void q3k_block(const uint8_t *B, const uint8_t *A, size_t as, int64_t i, const int ncol, __m256 *acc) {
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
    __m256i       is[QX_PNC], ms[QX_PNC];
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = ms[c] = _mm256_setzero_si256();
    qx_scale_sums(B + 16, A, as, i, ncol, ms, 0);
    __m256i scv[16]; /* each group's scale, (s, s) in each row's lane, widened once */
    _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) scv[j] = qx_s8x2(B + 16 + 8 * j);
    for (int hk = 0; hk < 4; hk++) { /* h = hk / 2, steps k = 4 (hk % 2) .. + 3: one scale per q */
        const int h = hk / 2, k0 = 4 * (hk % 2);
        __m256i   g[4], hb[4];
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
            g[k]  = _mm256_loadu_si256((const __m256i *)(B + 144 + 256 * h + 32 * (k0 + k)));
            hb[k] = _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(B + 656 + 32 * (k0 + k))), 4 * h);
        }
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
            __m256i s16[QX_PNC]; /* 4 steps of 2 * 7 * 127 fit int16 */
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) s16[c] = _mm256_setzero_si256();
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) { /* values 128 h + 32 q + 4 (k0 + k) .. + 3 */
                const __m256i hi = q < 2 ? _mm256_slli_epi16(hb[k], 2 - q) : _mm256_srli_epi16(hb[k], q - 2);
                const __m256i v  = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(g[k], 2 * q), m3),
                                                   _mm256_and_si256(hi, m4)); /* hmask bit 4 h + q as 4 */
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                    const int8_t *aq = ((const lb_block_q8k *)(A + (size_t)c * as) + i)->qs + 128 * h + 32 * q + 4 * (k0 + k);
                    s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(v, qx_bcast4(aq)));
                }
            }
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++)
                is[c] = _mm256_add_epi32(is[c], _mm256_madd_epi16(s16[c], scv[8 * h + 2 * q + k0 / 4]));
        }
    }
    qx_sb_close(B, A, as, i, ncol, is, ms, 2, acc);
}

/* Q2_K, packed (qdot_pack.c): per 4-value step the 2-bit levels times the activations, times
 * the step's 4-bit scale, exact in int32; the mins (high nibbles) times the activation sums
 * of 16, in int32; then Q4_K's two fmas (d, dmin). */
QX_INLINE void q2k_block(const uint8_t *B, const uint8_t *A, size_t as, int64_t i, const int ncol, __m256 *acc) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i       is[QX_PNC], ms[QX_PNC];
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = ms[c] = _mm256_setzero_si256();
    qx_scale_sums(B + 32, A, as, i, ncol, ms, 1);
    __m256i scv[16];
    _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) scv[j] = qx_nib2(B + 32 + 8 * j, 0);
    for (int hk = 0; hk < 4; hk++) { /* h = hk / 2, steps k = 4 (hk % 2) .. + 3: one scale per q */
        const int h = hk / 2, k0 = 4 * (hk % 2);
        __m256i   g[4];
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) g[k] = _mm256_loadu_si256((const __m256i *)(B + 160 + 256 * h + 32 * (k0 + k)));
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
            __m256i s16[QX_PNC]; /* 4 steps of 2 * 3 * 127 fit int16 */
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) s16[c] = _mm256_setzero_si256();
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(g[k], 2 * q), m3); /* values 128 h + 32 q + 4 (k0 + k) .. + 3 */
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                    const int8_t *aq = ((const lb_block_q8k *)(A + (size_t)c * as) + i)->qs + 128 * h + 32 * q + 4 * (k0 + k);
                    s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(v, qx_bcast4(aq)));
                }
            }
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++)
                is[c] = _mm256_add_epi32(is[c], _mm256_madd_epi16(s16[c], scv[8 * h + 2 * q + k0 / 4]));
        }
    }
    const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B));
    const __m256 dm8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(B + 16)));
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
        const __m256 da = _mm256_set1_ps(((const lb_block_q8k *)(A + (size_t)c * as) + i)->d);
        acc[c]          = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[c]), _mm256_mul_ps(d8, da), acc[c]);
        acc[c]          = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms[c]), _mm256_mul_ps(dm8, da), acc[c]);
    }
}

/* One row of a super-block type through its deck: per super-block the exact integer sum of the
 * levels times their scales, the offset (or MIN: the mins, a second fma with dmin) through the
 * activation sums, one fma with d * d_a: a packed kernel's lane. SIGNED: grid levels (sign
 * trick). */
#define QX_ROW1_SC(X, MIN, SIGNED)                                                                 \
    static void row1_##X(int64_t nb, const uint8_t *row, const uint8_t *A, size_t as, int64_t nc, \
                         float *out, int64_t ldo) {                                                \
        for (int64_t c = 0; c < nc; c++) {                                                         \
            const lb_block_q8k *a   = (const lb_block_q8k *)(A + (size_t)c * as);                  \
            float               acc = 0.0f;                                                        \
            for (int64_t i = 0; i < nb; i++) {                                                     \
                qx_deck dk;                                                                        \
                dec_##X(&dk, (const lb_block_##X *)row + i);                                       \
                __m256i is = _mm256_setzero_si256();                                               \
                for (int j = 0; j < 8; j++)                                                        \
                    is = _mm256_add_epi32(is, _mm256_madd_epi16(                                   \
                             (SIGNED) ? _mm256_maddubs_epi16(dk.u[j], _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * j)), dk.q[j])) \
                                      : _mm256_maddubs_epi16(dk.q[j], _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * j))), \
                             dk.sc[j]));                                                           \
                const int ms = qx_hsum_i32(_mm256_madd_epi16(dk.mn, _mm256_loadu_si256((const __m256i *)a[i].bsums))); \
                acc = fmaf((float)(qx_hsum_i32(is) - ((MIN) ? 0 : ms)), dk.d * a[i].d, acc);       \
                if (MIN) acc = fmaf(-(float)ms, dk.dmin * a[i].d, acc);                            \
            }                                                                                      \
            out[c * ldo] = acc;                                                                    \
        }                                                                                          \
    }

/* IQ4_XS, packed (qdot_pack.c): per 32-value group, the grid levels of its 4-byte steps times
 * the activations (the sign trick, exact int32), times the group's scale (-32..31), then one
 * fma with d * d_a. */
QX_INLINE void iq4xs_block(const uint8_t *B, const uint8_t *A, size_t as, int64_t i, const int ncol, __m256 *acc) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), grid = qx_grid();
    __m256i       is[QX_PNC];
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
        __m256i s32[QX_PNC];
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) s32[c] = _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) { /* values 32 j + 4 k .. + 3 and + 16 */
            const __m256i g  = _mm256_loadu_si256((const __m256i *)(B + 80 + 128 * j + 32 * k));
            const __m256i lo = _mm256_shuffle_epi8(grid, _mm256_and_si256(g, m4));
            const __m256i hi = _mm256_shuffle_epi8(grid, _mm256_and_si256(_mm256_srli_epi16(g, 4), m4));
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                const int8_t *aq = ((const lb_block_q8k *)(A + (size_t)c * as) + i)->qs + 32 * j + 4 * k;
                s32[c] = QX_DPADD(s32[c], _mm256_sign_epi8(lo, lo), _mm256_sign_epi8(qx_bcast4(aq), lo));
                s32[c] = QX_DPADD(s32[c], _mm256_sign_epi8(hi, hi), _mm256_sign_epi8(qx_bcast4(aq + 16), hi));
            }
        }
        const __m256i sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(B + 16 + 8 * j)));
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = _mm256_add_epi32(is[c], _mm256_mullo_epi32(s32[c], sc));
    }
    const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B));
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
        const __m256 da = _mm256_set1_ps(((const lb_block_q8k *)(A + (size_t)c * as) + i)->d);
        acc[c]          = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[c]), _mm256_mul_ps(d8, da), acc[c]);
    }
}

/* Q6_K, Q3_K (scales per 16, the levels' offset through the activation sums), Q2_K (MIN:
 * its mins scaled by dmin, a second fma) and IQ4_XS (SIGNED grid levels): the packed
 * kernel; one row through dec_X, the same integer sum and fma as the packed kernel's lane; one
 * column with each super-block of 8 rows packed on the stack first, then the packed code. */
#define QX_PACKED_SC16(X, PB, MIN, SIGNED)                                                                  \
    QX_INLINE void pk_##X(const uint8_t *P, int64_t nb, const uint8_t *A, size_t as, float *out,  \
                          int64_t ldo, const int ncol) {                                           \
        __m256 acc[QX_PNC];                                                                        \
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) acc[c] = _mm256_setzero_ps();       \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            qx_prefetch(P + (size_t)i * (PB), PB);                                                 \
            X##_sb(P + (size_t)i * (PB), A, as, i, ncol, acc);                                     \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) _mm256_storeu_ps(out + c * ldo, acc[c]); \
    }                                                                                              \
    QX_ROW1_SC(X, MIN, SIGNED)                                                                     \
    static void gemv_##X(int64_t nb, const uint8_t *W, size_t ws, int64_t nr, const uint8_t *A,   \
                         size_t as, float *out) {                                                  \
        _Alignas(32) uint8_t buf[PB];                                                              \
        int64_t              r = 0;                                                                \
        for (; r + 8 <= nr; r += 8) {                                                              \
            __m256 acc = _mm256_setzero_ps();                                                      \
            for (int64_t i = 0; i < nb; i++) {                                                     \
                const uint8_t *rows[8];                                                            \
                for (int k = 0; k < 8; k++) rows[k] = W + (size_t)(r + k) * ws + (size_t)i * sizeof(lb_block_##X); \
                lb_pack_##X##_block(buf, rows);                                                    \
                X##_sb(buf, A, as, i, 1, &acc);                                                    \
            }                                                                                      \
            _mm256_storeu_ps(out + r, acc);                                                        \
        }                                                                                          \
        for (; r < nr; r++) row1_##X(nb, W + (size_t)r * ws, A, as, 1, out + r, 1);               \
    }

#define q6_k_sb q6k_block
#define q3_k_sb q3k_block
#define q2_k_sb q2k_block
#define iq4_xs_sb iq4xs_block
QX_PACKED_SC16(q6_k, LB_Q6_K_PACKED, 0, 0)
QX_PACKED_SC16(q3_k, LB_Q3_K_PACKED, 0, 0)
QX_PACKED_SC16(q2_k, LB_Q2_K_PACKED, 1, 0)
QX_PACKED_SC16(iq4_xs, LB_IQ4_XS_PACKED, 0, 1)

/* one Q4_K / Q5_K row, the operations of pk_k45 lane by lane (the same exact integer sums, the
 * same two fmas a super-block) */
#define QX_ROW1K(X) QX_ROW1_SC(X, 1, 0) QX_GEMV_ROW1(X)
QX_ROW1K(q4_k)
QX_ROW1K(q5_k)

/* packed groups, then the rows left over in the tensor's layout, against nc activation rows */
#define QX_GEMM_PACKED(X, PB, QK)                                                                  \
    static void gemm_packed_##X(int64_t n, const void *packed, int64_t ng, const void *rem,       \
                                size_t ws, int64_t nrem, const void *a, size_t as, int64_t nc,    \
                                float *out, int64_t ldo) {                                         \
        const int64_t  nb = n / (QK);                                                              \
        const uint8_t *A  = a;                                                                     \
        for (int64_t g = 0; g < ng; g++) {                                                         \
            const uint8_t *P = (const uint8_t *)packed + (size_t)(g * nb) * (PB);                  \
            int64_t        c = 0;                                                                  \
            for (; c + QX_PNC <= nc; c += QX_PNC)                                                  \
                pk_##X(P, nb, A + (size_t)c * as, as, out + c * ldo + 8 * g, ldo, QX_PNC);         \
            for (; c < nc; c++) pk_##X(P, nb, A + (size_t)c * as, as, out + c * ldo + 8 * g, ldo, 1); \
        }                                                                                          \
        for (int64_t r = 0; r < nrem; r++)                                                         \
            row1_##X(nb, (const uint8_t *)rem + (size_t)r * ws, A, as, nc, out + 8 * ng + r, ldo); \
    }

/* Q4_0 (KIND 8), Q4_1 (KIND 1), IQ4_NL (KIND 0; NG 4: nibbles) and Q8_0 (KIND 0, NG 8: bytes)
 * against one activation row: the packed kernels' operations on blocks transposed in
 * registers. QS: offset of the quants in a block. */
#define QX_GEMV_X8(X, KIND, QS, NG, GRID)                                                              \
    static void gemv_##X(int64_t nb, const uint8_t *W, size_t ws, int64_t nr, const uint8_t *A,   \
                         size_t as, float *out) {                                                  \
        const lb_block_q8a *a  = (const lb_block_q8a *)A;                                          \
        const __m256i       m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);              \
        int64_t             r  = 0;                                                                \
        for (; r + 8 <= nr; r += 8) {                                                              \
            __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();                          \
            for (int64_t i = 0; i < nb; i++) {                                                     \
                const uint8_t *p[8], *q[8];                                                        \
                for (int k = 0; k < 8; k++) {                                                      \
                    p[k] = W + (size_t)(r + k) * ws + (size_t)i * sizeof(lb_block_##X);            \
                    q[k] = p[k] + (QS);                                                            \
                }                                                                                  \
                __m256i g[8], is = _mm256_setzero_si256();                                         \
                qx_transpose8x4(q, g);                                                             \
                if ((NG) == 8) {                                                                   \
                    for (int k = 0; k < 8; k++) q[k] += 16;                                        \
                    qx_transpose8x4(q, g + 4);                                                     \
                }                                                                                  \
                const lb_block_q8a *ab = a + i;                                                    \
                if ((NG) == 8) {                                                                   \
                    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++)                            \
                        is = _mm256_add_epi32(is, QX_DOT(_mm256_sign_epi8(g[k], g[k]),             \
                                              _mm256_sign_epi8(qx_bcast4(ab->qs + 4 * k), g[k]))); \
                } else if (KIND == 0) {                                                            \
                    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {                          \
                        const __m256i lo = _mm256_shuffle_epi8(qx_grid8(GRID), _mm256_and_si256(g[k], m4)); \
                        const __m256i hi = _mm256_shuffle_epi8(                                    \
                            qx_grid8(GRID), _mm256_and_si256(_mm256_srli_epi16(g[k], 4), m4));     \
                        is = _mm256_add_epi32(is, QX_DOT(_mm256_sign_epi8(lo, lo),                \
                                              _mm256_sign_epi8(qx_bcast4(ab->qs + 4 * k), lo)));   \
                        is = _mm256_add_epi32(is, QX_DOT(_mm256_sign_epi8(hi, hi),                \
                                              _mm256_sign_epi8(qx_bcast4(ab->qs + 16 + 4 * k), hi))); \
                    }                                                                              \
                } else {                                                                           \
                    __m256i s16 = _mm256_setzero_si256();                                          \
                    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {                          \
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_and_si256(g[k], m4), \
                                                                         qx_bcast4(ab->qs + 4 * k))); \
                        s16 = _mm256_add_epi16(                                                    \
                            s16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(g[k], 4), m4), \
                                                      qx_bcast4(ab->qs + 16 + 4 * k)));            \
                    }                                                                              \
                    is = _mm256_madd_epi16(s16, ones);                                             \
                }                                                                                  \
                if (KIND > 1) is = _mm256_sub_epi32(is, _mm256_set1_epi32((KIND) * ab->sum));      \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is),                                      \
                                      _mm256_mul_ps(qx_f16_rows8(p, 0), _mm256_set1_ps(ab->d)), acc); \
                if (KIND == 1)                                                                     \
                    macc = _mm256_fmadd_ps(qx_f16_rows8(p, 2), _mm256_set1_ps(ab->s), macc);       \
            }                                                                                      \
            _mm256_storeu_ps(out + r, KIND == 1 ? _mm256_add_ps(acc, macc) : acc);                 \
        }                                                                                          \
        for (; r < nr; r++) row1_##X(nb, W + (size_t)r * ws, A, as, 1, out + r, 1);               \
    }

/* Q5_0 (KIND 16) and Q5_1 (KIND 1), one row per lane: the low nibbles as Q4's, the fifth bits
 * from each row's 32-bit qh (lane r: row r's), spread to 0x10 in the bytes they belong to.
 * Packed (qdot_pack.c: the 8 rows' qh as the first 4-byte group, then the quants' 4) and one
 * column (8 rows transposed in registers) do the same operations per block; the integer sum
 * of a block is exact. */

/* bit 4 k + j (b = 0: the low nibbles' values) or 16 + 4 k + j (b = 2: the high ones') of each
 * lane's qh h, as 0x10 in byte j of the lane: byte k / 2 + b of the lane picked into each byte
 * by a shuffle, then compared with its bit */
QX_INLINE __m256i qx_q5_high(__m256i h, const int k, const int b) {
    const __m256i lane = _mm256_set_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0, 0x0c0c0c0c, 0x08080808, 0x04040404, 0);
    const __m256i sel  = _mm256_shuffle_epi8(h, _mm256_add_epi8(lane, _mm256_set1_epi8((char)(k / 2 + b))));
    const __m256i bit  = _mm256_set1_epi32(k % 2 ? (int)0x80402010 : 0x08040201);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(sel, bit), bit), _mm256_set1_epi8(0x10));
}

/* the 5-bit levels of a block of 8 rows: quant groups g[k] (lane r: bytes 4k..4k+3 of row r's
 * qs), fifth bits h */
QX_INLINE void qx_q5_decode(const __m256i g[4], __m256i h, __m256i lo[4], __m256i hi[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
        lo[k] = _mm256_or_si256(_mm256_and_si256(g[k], m4), qx_q5_high(h, k, 0));
        hi[k] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(g[k], 4), m4), qx_q5_high(h, k, 2));
    }
}

/* each lane's exact sum of levels times the 32 activations aq (AVX2: a 4-value step's two
 * products in int16, 2 * 2 * 31 * 127 < 2^15, then int32) */
QX_INLINE __m256i qx_q5_dot(const __m256i lo[4], const __m256i hi[4], const int8_t *aq) {
    __m256i s = _mm256_setzero_si256();
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
#ifdef __AVX512VNNI__
        s = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(s, lo[k], qx_bcast4(aq + 4 * k)), hi[k], qx_bcast4(aq + 16 + 4 * k));
#else
        const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[k], qx_bcast4(aq + 4 * k)),
                                             _mm256_maddubs_epi16(hi[k], qx_bcast4(aq + 16 + 4 * k)));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
#endif
    }
    return s;
}

#define QX_Q5(X, KIND)                                                                             \
    QX_INLINE void pk_##X(const uint8_t *P, int64_t nb, const uint8_t *A, size_t as, float *out,   \
                          int64_t ldo, const int ncol) {                                           \
        const size_t PB = KIND == 1 ? 192 : 176, QO = KIND == 1 ? 32 : 16;                         \
        __m256       acc[QX_PNC], macc[QX_PNC];                                                    \
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) acc[c] = macc[c] = _mm256_setzero_ps(); \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            const uint8_t *B = P + (size_t)i * PB;                                                 \
            qx_prefetch(B, PB);                                                                    \
            __m256i g[4], lo[4], hi[4];                                                            \
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                                    \
                g[k] = _mm256_loadu_si256((const __m256i *)(B + QO + 32 + 32 * k));                \
            qx_q5_decode(g, _mm256_loadu_si256((const __m256i *)(B + QO)), lo, hi);                \
            const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)B));                \
            const __m256 m8 = KIND == 1 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(B + 16))) \
                                        : _mm256_setzero_ps();                                     \
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {                               \
                const lb_block_q8a *ab = (const lb_block_q8a *)(A + (size_t)c * as) + i;           \
                __m256i             is = qx_q5_dot(lo, hi, ab->qs);                                \
                if (KIND > 1) is = _mm256_sub_epi32(is, _mm256_set1_epi32((KIND) * ab->sum));      \
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(d8, _mm256_set1_ps(ab->d)), acc[c]); \
                if (KIND == 1) macc[c] = _mm256_fmadd_ps(m8, _mm256_set1_ps(ab->s), macc[c]);      \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++)                                     \
            _mm256_storeu_ps(out + c * ldo, KIND == 1 ? _mm256_add_ps(acc[c], macc[c]) : acc[c]);  \
    }                                                                                              \
    static void gemv_##X(int64_t nb, const uint8_t *W, size_t ws, int64_t nr, const uint8_t *A,    \
                         size_t as, float *out) {                                                  \
        const lb_block_q8a *a  = (const lb_block_q8a *)A;                                          \
        const int           HO = KIND == 1 ? 4 : 2; /* qh's offset in a block */                   \
        int64_t             r  = 0;                                                                \
        (void)as;                                                                                  \
        for (; r + 8 <= nr; r += 8) {                                                              \
            __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();                          \
            for (int64_t i = 0; i < nb; i++) {                                                     \
                const uint8_t *p[8], *q[8];                                                        \
                uint32_t       h[8];                                                               \
                for (int k = 0; k < 8; k++) {                                                      \
                    p[k] = W + (size_t)(r + k) * ws + (size_t)i * sizeof(lb_block_##X);            \
                    q[k] = p[k] + HO + 4;                                                          \
                    memcpy(&h[k], p[k] + HO, 4);                                                   \
                }                                                                                  \
                __m256i g[4], lo[4], hi[4];                                                        \
                qx_transpose8x4(q, g);                                                             \
                qx_q5_decode(g, _mm256_loadu_si256((const __m256i *)h), lo, hi);                   \
                const lb_block_q8a *ab = a + i;                                                    \
                __m256i             is = qx_q5_dot(lo, hi, ab->qs);                                \
                if (KIND > 1) is = _mm256_sub_epi32(is, _mm256_set1_epi32((KIND) * ab->sum));      \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is),                                      \
                                      _mm256_mul_ps(qx_f16_rows8(p, 0), _mm256_set1_ps(ab->d)), acc); \
                if (KIND == 1) macc = _mm256_fmadd_ps(qx_f16_rows8(p, 2), _mm256_set1_ps(ab->s), macc); \
            }                                                                                      \
            _mm256_storeu_ps(out + r, KIND == 1 ? _mm256_add_ps(acc, macc) : acc);                 \
        }                                                                                          \
        for (; r < nr; r++) row1_##X(nb, W + (size_t)r * ws, A, as, 1, out + r, 1);                \
    }

/* F16 / BF16 rows against one f32 activation row (generation): a row at a time, one
 * sequential stream, four chains of 8 values (32 a step), a line prefetched QX_PF bytes ahead
 * per 64 bytes read. Tiles of 4 rows read in 4 streams kept too few misses in flight (1b F16
 * tg at 1 thread: 12 of ~30 GB/s). */
#define QX_GEMV16(X)                                                                               \
    QX_INLINE float row16_##X(int64_t n, const uint8_t *w, const float *x) {                      \
        __m256        a[4];                                                                        \
        const int64_t n32 = n & ~(int64_t)31;                                                      \
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) a[k] = _mm256_setzero_ps();           \
        for (int64_t j = 0; j < n32; j += 32) {                                                    \
            _mm_prefetch((const char *)w + 2 * (size_t)j + QX_PF, _MM_HINT_T0);                   \
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                                    \
                a[k] = _mm256_fmadd_ps(qx_load_##X(w + 2 * (size_t)(j + 8 * k)), _mm256_loadu_ps(x + j + 8 * k), a[k]); \
        }                                                                                          \
        float s = qx_hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));  \
        for (int64_t j = n32; j < n; j++) s += qx_##X##_at(w + 2 * (size_t)j) * x[j];             \
        return s;                                                                                  \
    }                                                                                              \
    static void gemv_##X(int64_t n, const uint8_t *W, size_t ws, int64_t nr, const uint8_t *A,    \
                         size_t as, float *out) {                                                  \
        (void)as;                                                                                  \
        for (int64_t r = 0; r < nr; r++) out[r] = row16_##X(n, W + (size_t)r * ws, (const float *)A); \
    }
