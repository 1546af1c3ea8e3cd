/* Part of qdot_avx512.c (included after qdot_x86.h): the packed kernels on 512-bit vectors.
 * Two packed groups of 8 rows (qdot_pack.c) are read side by side, group g in the low 256 bits
 * and group g + 1 in the high ones, so each int32 lane still holds one row, 16 rows a vector,
 * and the activations' 4-byte broadcasts serve both groups. VNNI's dpbusd multiplies unsigned
 * weight bytes by signed activation bytes and adds the int32 sums in one instruction:
 *   - Q4_0: nibbles 0..15, the sum starts at -8 sum(a) (the levels' offset);
 *   - Q4_1: nibbles as they are, the minimum times s_a in float as elsewhere;
 *   - Q5_0, Q5_1: Q4_0's and Q4_1's with the fifth bits added from the rows' qh (0..31; Q5_0's
 *     sum starts at -16 sum(a));
 *   - IQ4_NL, XNF4: the grid shifted by +128 into bytes 1..255, the sum starts at -128 sum(a);
 *   - Q8_0: w ^ 0x80 = w + 128 (any byte), the sum starts at -128 sum(a);
 *   - X2_0, X2_1: the 2-bit levels u in 0..3, four shifts a group; X2_0's sum starts at -2 sum(a).
 * Every sum is the exact integer the 256-bit kernels compute (|sum| < 2^21), and the float
 * steps per block are theirs (acc = fma(float(sum), d_w * d_a, acc)), so a row's result has
 * the same bits in either kernel: packed or not, 512 or 256 bits, any tile. An odd last group
 * and the unpacked rows go through the 256-bit kernels, and so does generation (one column):
 * one stream of 8 rows read at once kept the memory busier than two (1b Q4_0 tg, 1 thread:
 * 43 vs 32 tok/s), Q2_K's generation excepted (ZX_GEMM_PACKED). */

#define ZX_PNC 8 /* activation columns per pass over a block: 32 registers hold 8 */

QX_INLINE __m512i zx_pair(const uint8_t *p0, const uint8_t *p1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p0)),
                              _mm256_loadu_si256((const __m256i *)p1), 1);
}

QX_INLINE __m512 zx_f16_pair(const uint8_t *p0, const uint8_t *p1) {
    return _mm512_cvtph_ps(_mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)), _mm_loadu_si128((const __m128i *)p1), 1));
}

QX_INLINE __m512i zx_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* Q5_0 / Q5_1's fifth bits: bit 4 k + j (b = 0: the low nibbles' values) or 16 + 4 k + j
 * (b = 2: the high ones') of each lane's 32-bit qh h, added as 0x10 to byte j of the lane's
 * levels v: byte k / 2 + b of the lane picked into each byte, then tested against its bit. */
QX_INLINE __m512i zx_q5_high(__m512i v, __m512i h, const int k, const int b) {
    const __m512i lane = _mm512_set4_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0x00000000);
    const __m512i sel  = _mm512_shuffle_epi8(h, _mm512_add_epi8(lane, _mm512_set1_epi8((char)(k / 2 + b))));
    const __mmask64 m  = _mm512_test_epi8_mask(sel, _mm512_set1_epi32(k % 2 ? (int)0x80402010 : 0x08040201));
    return _mm512_mask_add_epi8(v, m, v, _mm512_set1_epi8(0x10));
}

/* KIND: 8 (Q4_0), 16 (Q5_0), 1 (Q4_1, Q5_1), 0 (IQ4_NL, XNF4) on nibbles (NG 4), 0 with NG 8
 * (Q8_0's bytes), 2 (X2_0, X2_K) or 1 (X2_1) with NG 2 (2-bit levels, the 4-byte groups of
 * pk_x2_0). SUB: blocks of 32 under one scale (X2_K: 8, QO its first's quants). PB: bytes of
 * a packed block, QO: offset of its quants, H5: of Q5's qh (the fifth bits), or -1. OFF: the
 * constant taken off each level product's sum (times the activations' sum). */
#define ZX_PACKED(X, KIND, NG, PB, QO, H5, OFF, GRID, SUB)                                                      \
    QX_INLINE void zk_##X(const uint8_t *P0, const uint8_t *P1, int64_t nb, const uint8_t *A,      \
                          size_t as, float *out, int64_t ldo, const int ncol) {                    \
        const __m512i m4   = _mm512_set1_epi8(0x0F);                                               \
        const __m512i grid = _mm512_broadcast_i32x4(                                               \
            _mm_xor_si128(_mm_loadu_si128((const __m128i *)(GRID)), _mm_set1_epi8((char)0x80)));  \
        __m512 acc[ZX_PNC], macc[ZX_PNC];                                                          \
        _Pragma("GCC unroll 8") for (int c = 0; c < ncol; c++) acc[c] = macc[c] = _mm512_setzero_ps(); \
        for (int64_t i = 0; i < nb * (SUB); i++) { /* blocks of 32; SUB of them under a scale */ \
            const uint8_t *B0 = P0 + (size_t)(i / (SUB)) * (PB), *B1 = P1 + (size_t)(i / (SUB)) * (PB); \
            const size_t   qo = (QO) + 64 * (size_t)(i % (SUB));                                   \
            qx_prefetch(B0 + qo - (QO), (PB) / (SUB));                                             \
            qx_prefetch(B1 + qo - (QO), (PB) / (SUB));                                             \
            __m512i s[ZX_PNC];                                                                     \
            _Pragma("GCC unroll 8") for (int c = 0; c < ncol; c++)                                 \
                s[c] = _mm512_set1_epi32(-(OFF) * ((const lb_block_q8a *)(A + (size_t)c * as) + i)->sum); \
            _Pragma("GCC unroll 8") for (int k = 0; k < (NG); k++) {                               \
                const __m512i g = zx_pair(B0 + qo + 32 * k, B1 + qo + 32 * k);                     \
                if ((NG) == 2) { /* X2_0 / X2_1: four shifts of the 2-bit levels */               \
                    _Pragma("GCC unroll 4") for (int sh = 0; sh < 4; sh++) {                       \
                        const __m512i w = _mm512_and_si512(_mm512_srli_epi16(g, 2 * sh), _mm512_set1_epi8(3)); \
                        _Pragma("GCC unroll 8") for (int c = 0; c < ncol; c++) {                   \
                            const int8_t *aq = ((const lb_block_q8a *)(A + (size_t)c * as) + i)->qs + 8 * sh + 4 * k; \
                            s[c] = _mm512_dpbusd_epi32(s[c], w, zx_bcast4(aq));                    \
                        }                                                                          \
                    }                                                                              \
                } else if ((NG) == 8) {                                                            \
                    const __m512i u = _mm512_xor_si512(g, _mm512_set1_epi8((char)0x80));           \
                    _Pragma("GCC unroll 8") for (int c = 0; c < ncol; c++) {                       \
                        const int8_t *aq = ((const lb_block_q8a *)(A + (size_t)c * as) + i)->qs + 4 * k; \
                        s[c] = _mm512_dpbusd_epi32(s[c], u, zx_bcast4(aq));                        \
                    }                                                                              \
                } else {                                                                           \
                    __m512i lo = _mm512_and_si512(g, m4);                                          \
                    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(g, 4), m4);                    \
                    if ((H5) >= 0) {                                                               \
                        const __m512i h = zx_pair(B0 + (H5), B1 + (H5));                           \
                        lo              = zx_q5_high(lo, h, k, 0);                                 \
                        hi              = zx_q5_high(hi, h, k, 2);                                 \
                    }                                                                              \
                    if (KIND == 0) {                                                               \
                        lo = _mm512_shuffle_epi8(grid, lo);                                        \
                        hi = _mm512_shuffle_epi8(grid, hi);                                        \
                    }                                                                              \
                    _Pragma("GCC unroll 8") for (int c = 0; c < ncol; c++) {                       \
                        const int8_t *aq = ((const lb_block_q8a *)(A + (size_t)c * as) + i)->qs + 4 * k; \
                        s[c] = _mm512_dpbusd_epi32(s[c], lo, zx_bcast4(aq));                       \
                        s[c] = _mm512_dpbusd_epi32(s[c], hi, zx_bcast4(aq + 16));                  \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            const __m512 d16 = zx_f16_pair(B0, B1);                                                \
            const __m512 m16 = KIND == 1 ? zx_f16_pair(B0 + 16, B1 + 16) : _mm512_setzero_ps();    \
            _Pragma("GCC unroll 8") for (int c = 0; c < ncol; c++) {                               \
                const lb_block_q8a *ab = (const lb_block_q8a *)(A + (size_t)c * as) + i;           \
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[c]), _mm512_mul_ps(d16, _mm512_set1_ps(ab->d)), acc[c]); \
                if (KIND == 1) macc[c] = _mm512_fmadd_ps(m16, _mm512_set1_ps(ab->s), macc[c]);    \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int c = 0; c < ncol; c++)                                     \
            _mm512_storeu_ps(out + c * ldo, KIND == 1 ? _mm512_add_ps(acc[c], macc[c]) : acc[c]);  \
    }

/* Q4_K and Q5_K (its fifth bits from qh), packed (qdot_pack.c): each 32-value group's exact sum by dpbusd in int32, times the
 * row's 6-bit scale (vpmulld), the mins by dpwssd against the activations' 16-value sums:
 * the integers of pk_q4_k, so the same bits. Four columns a pass (five vectors each). */
#define ZX_KNC 4
QX_INLINE __m512i zx_u8_pair(const uint8_t *p0, const uint8_t *p1) { /* 8 + 8 bytes -> 16 lanes */
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)p0),
                                                   _mm_loadl_epi64((const __m128i *)p1)));
}

QX_INLINE void zk_k45(const uint8_t *P0, const uint8_t *P1, int64_t nb, const uint8_t *A,
                      size_t as, float *out, int64_t ldo, const int ncol, const int five) {
    const size_t  PB = five ? 1440 : 1184;
    const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1);
    __m512        acc[ZX_KNC];
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *B0 = P0 + (size_t)i * PB, *B1 = P1 + (size_t)i * PB;
        qx_prefetch(B0, PB);
        qx_prefetch(B1, PB);
        __m512i is[ZX_KNC];
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = _mm512_setzero_si512();
        for (int ch = 0; ch < 4; ch++) {
            __m512i slo[ZX_KNC], shi[ZX_KNC];
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) slo[c] = shi[c] = _mm512_setzero_si512();
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
                const __m512i g  = zx_pair(B0 + 160 + 256 * ch + 32 * k, B1 + 160 + 256 * ch + 32 * k);
                __m512i       lo = _mm512_and_si512(g, m4);
                __m512i       hi = _mm512_and_si512(_mm512_srli_epi16(g, 4), m4);
                if (five) { /* Q5_K's fifth bits: bit 2 ch (low nibbles) and 2 ch + 1 of qh */
                    const __m512i h = zx_pair(B0 + 1184 + 32 * k, B1 + 1184 + 32 * k);
                    lo = _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 2 * ch), one), 4));
                    hi = _mm512_or_si512(hi, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 2 * ch + 1), one), 4));
                }
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                    const int8_t *aq = ((const lb_block_q8k *)(A + (size_t)c * as) + i)->qs + 64 * ch + 4 * k;
                    slo[c] = _mm512_dpbusd_epi32(slo[c], lo, zx_bcast4(aq));
                    shi[c] = _mm512_dpbusd_epi32(shi[c], hi, zx_bcast4(aq + 32));
                }
            }
            const __m512i sl = zx_u8_pair(B0 + 32 + 16 * ch, B1 + 32 + 16 * ch);
            const __m512i sh = zx_u8_pair(B0 + 40 + 16 * ch, B1 + 40 + 16 * ch);
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++)
                is[c] = _mm512_add_epi32(is[c], _mm512_add_epi32(_mm512_mullo_epi32(slo[c], sl),
                                                                 _mm512_mullo_epi32(shi[c], sh)));
        }
        __m512i ms[ZX_KNC];
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) ms[c] = _mm512_setzero_si512();
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
            const __m512i v  = zx_u8_pair(B0 + 96 + 8 * j, B1 + 96 + 8 * j);
            const __m512i mn = _mm512_or_si512(v, _mm512_slli_epi32(v, 16));
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                const lb_block_q8k *ab = (const lb_block_q8k *)(A + (size_t)c * as) + i;
                ms[c] = _mm512_dpwssd_epi32(ms[c], mn, zx_bcast4((const int8_t *)(ab->bsums + 2 * j)));
            }
        }
        const __m512 d16 = zx_f16_pair(B0, B1), dm16 = zx_f16_pair(B0 + 16, B1 + 16);
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
            const __m512 da = _mm512_set1_ps(((const lb_block_q8k *)(A + (size_t)c * as) + i)->d);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[c]), _mm512_mul_ps(d16, da), acc[c]);
            acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms[c]), _mm512_mul_ps(dm16, da), acc[c]);
        }
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) _mm512_storeu_ps(out + c * ldo, acc[c]);
}

QX_INLINE void zk_q4_k(const uint8_t *P0, const uint8_t *P1, int64_t nb, const uint8_t *A,
                       size_t as, float *out, int64_t ldo, const int ncol) {
    zk_k45(P0, P1, nb, A, as, out, ldo, ncol, 0);
}

QX_INLINE void zk_q5_k(const uint8_t *P0, const uint8_t *P1, int64_t nb, const uint8_t *A,
                       size_t as, float *out, int64_t ldo, const int ncol) {
    zk_k45(P0, P1, nb, A, as, out, ldo, ncol, 1);
}

/* Q6_K, Q3_K and Q2_K, packed (qdot_pack.c), pairs of groups as zk_q4_k: each 16-value scale
 * group's levels (unsigned: Q6_K 0..63, Q3_K 0..7, Q2_K 0..3) times the activations by dpbusd
 * in int32 over its 4 steps, times the group's scale (vpmulld); Q6_K's and Q3_K's levels'
 * offset (32, 4) as the offset times the scales times the activations' 16-sums, Q2_K's mins
 * the same way (dpwssd): the integers of q6k_block, q3k_block and q2k_block, then their fmas,
 * so the same bits. KIND: 6, 3 or 2. */
QX_INLINE __m512i zx_s8_pair(const uint8_t *p0, const uint8_t *p1) { /* 8 + 8 int8 -> 16 lanes */
    return _mm512_cvtepi8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)p0),
                                                   _mm_loadl_epi64((const __m128i *)p1)));
}

/* group j's scale (KIND 2: the low nibble of the scale byte) or, when min, Q2_K's min (the high
 * one), 16 lanes */
QX_INLINE __m512i zx_sc16_scale(const uint8_t *B0, const uint8_t *B1, int j, const int KIND, const int min) {
    if (KIND != 2) return zx_s8_pair(B0 + 16 + 8 * j, B1 + 16 + 8 * j);
    const __m512i v = zx_u8_pair(B0 + 32 + 8 * j, B1 + 32 + 8 * j);
    return min ? _mm512_srli_epi32(v, 4) : _mm512_and_si512(v, _mm512_set1_epi32(0xF));
}

QX_INLINE void zk_sc16(const uint8_t *P0, const uint8_t *P1, int64_t nb, const uint8_t *A, size_t as, float *out,
                       int64_t ldo, const int ncol, const int KIND) {
    const size_t  PB = KIND == 6 ? LB_Q6_K_PACKED : KIND == 3 ? LB_Q3_K_PACKED : LB_Q2_K_PACKED;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3), b2 = _mm512_set1_epi8(4);
    __m512        acc[ZX_KNC];
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *B0 = P0 + (size_t)i * PB, *B1 = P1 + (size_t)i * PB;
        qx_prefetch(B0, PB);
        qx_prefetch(B1, PB);
        __m512i is[ZX_KNC], ms[ZX_KNC];
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = ms[c] = _mm512_setzero_si512();
        _Pragma("GCC unroll 8") for (int j = 0; j < 16; j += 2) { /* (sc_j, sc_j+1) or the mins, int16 pairs */
            const __m512i two = _mm512_or_si512(_mm512_and_si512(zx_sc16_scale(B0, B1, j, KIND, 1), _mm512_set1_epi32(0xFFFF)),
                                                _mm512_slli_epi32(zx_sc16_scale(B0, B1, j + 1, KIND, 1), 16));
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                const lb_block_q8k *ab = (const lb_block_q8k *)(A + (size_t)c * as) + i;
                ms[c] = _mm512_dpwssd_epi32(ms[c], two, zx_bcast4((const int8_t *)(ab->bsums + j)));
            }
        }
        for (int hk = 0; hk < 4; hk++) { /* half h, steps k0 .. k0 + 3: scale groups 8 h + 2 q + k0 / 4 */
            const int h = hk / 2, k0 = 4 * (hk % 2);
            __m512i   s[4][ZX_KNC];
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) s[q][c] = _mm512_setzero_si512();
            _Pragma("GCC unroll 4") for (int k = k0; k < k0 + 4; k++) {
                __m512i v[4]; /* values 128 h + 32 q + 4 k .. + 3 */
                if (KIND == 6) {
                    const size_t  lo = 144 + 512 * (size_t)h + 32 * (size_t)k, hb = 1168 + 256 * (size_t)h + 32 * (size_t)k;
                    const __m512i L0 = zx_pair(B0 + lo, B1 + lo), L1 = zx_pair(B0 + lo + 256, B1 + lo + 256);
                    const __m512i H  = zx_pair(B0 + hb, B1 + hb);
                    _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
                        const __m512i L = q % 2 ? L1 : L0;
                        v[q] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4 * (q / 2)), m4),
                                               _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 2 * q), m3), 4));
                    }
                } else {
                    const size_t  qo = (KIND == 3 ? 144 : 160) + 256 * (size_t)h + 32 * (size_t)k;
                    const __m512i g  = zx_pair(B0 + qo, B1 + qo);
                    const __m512i hm = KIND == 3 ? _mm512_srli_epi16(zx_pair(B0 + 656 + 32 * k, B1 + 656 + 32 * k), 4 * h)
                                                 : _mm512_setzero_si512();
                    _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
                        v[q] = _mm512_and_si512(_mm512_srli_epi16(g, 2 * q), m3);
                        if (KIND == 3) { /* hmask bit 4 h + q as 4 */
                            const __m512i hi = q < 2 ? _mm512_slli_epi16(hm, 2 - q) : _mm512_srli_epi16(hm, q - 2);
                            v[q]             = _mm512_or_si512(v[q], _mm512_and_si512(hi, b2));
                        }
                    }
                }
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                    const int8_t *aq = ((const lb_block_q8k *)(A + (size_t)c * as) + i)->qs + 128 * h + 32 * q + 4 * k;
                    s[q][c] = _mm512_dpbusd_epi32(s[q][c], v[q], zx_bcast4(aq));
                }
            }
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
                const __m512i sc = zx_sc16_scale(B0, B1, 8 * h + 2 * q + k0 / 4, KIND, 0);
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = _mm512_add_epi32(is[c], _mm512_mullo_epi32(s[q][c], sc));
            }
        }
        const __m512 d16 = zx_f16_pair(B0, B1);
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
            const __m512 da = _mm512_set1_ps(((const lb_block_q8k *)(A + (size_t)c * as) + i)->d);
            if (KIND == 2) { /* Q4_K's two fmas: the levels by d, the mins by dmin */
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[c]), _mm512_mul_ps(d16, da), acc[c]);
                acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms[c]), _mm512_mul_ps(zx_f16_pair(B0 + 16, B1 + 16), da), acc[c]);
                continue;
            }
            const __m512i t = _mm512_sub_epi32(is[c], _mm512_slli_epi32(ms[c], KIND == 6 ? 5 : 2));
            acc[c]          = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(d16, da), acc[c]);
        }
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) _mm512_storeu_ps(out + c * ldo, acc[c]);
}

#define ZX_SC16(X, KIND)                                                                           \
    QX_INLINE void zk_##X(const uint8_t *P0, const uint8_t *P1, int64_t nb, const uint8_t *A,     \
                          size_t as, float *out, int64_t ldo, const int ncol) {                    \
        zk_sc16(P0, P1, nb, A, as, out, ldo, ncol, KIND);                                          \
    }
ZX_SC16(q6_k, 6)
ZX_SC16(q3_k, 3)
ZX_SC16(q2_k, 2)

/* IQ4_XS, packed (qdot_pack.c), pairs of groups: each 32-value group's grid levels shifted
 * by +128 into bytes (as IQ4_NL's), dpbusd in int32 from -128 times the group's activation sum,
 * times the group's scale (vpmulld), then one fma: the integers of iq4xs_block, the same bits. */
QX_INLINE void zk_iq4_xs(const uint8_t *P0, const uint8_t *P1, int64_t nb, const uint8_t *A, size_t as,
                         float *out, int64_t ldo, const int ncol) {
    const __m512i m4   = _mm512_set1_epi8(0x0F);
    const __m512i grid = _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)lb_iq4nl_grid),
                                                              _mm_set1_epi8((char)0x80)));
    __m512        acc[ZX_KNC];
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *B0 = P0 + (size_t)i * LB_IQ4_XS_PACKED, *B1 = P1 + (size_t)i * LB_IQ4_XS_PACKED;
        qx_prefetch(B0, LB_IQ4_XS_PACKED);
        qx_prefetch(B1, LB_IQ4_XS_PACKED);
        __m512i is[ZX_KNC];
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            __m512i s[ZX_KNC];
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                const lb_block_q8k *ab = (const lb_block_q8k *)(A + (size_t)c * as) + i;
                s[c] = _mm512_set1_epi32(-128 * ((int32_t)ab->bsums[2 * j] + ab->bsums[2 * j + 1]));
            }
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) { /* values 32 j + 4 k .. + 3 and + 16 */
                const __m512i g  = zx_pair(B0 + 80 + 128 * j + 32 * k, B1 + 80 + 128 * j + 32 * k);
                const __m512i lo = _mm512_shuffle_epi8(grid, _mm512_and_si512(g, m4));
                const __m512i hi = _mm512_shuffle_epi8(grid, _mm512_and_si512(_mm512_srli_epi16(g, 4), m4));
                _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
                    const int8_t *aq = ((const lb_block_q8k *)(A + (size_t)c * as) + i)->qs + 32 * j + 4 * k;
                    s[c] = _mm512_dpbusd_epi32(s[c], lo, zx_bcast4(aq));
                    s[c] = _mm512_dpbusd_epi32(s[c], hi, zx_bcast4(aq + 16));
                }
            }
            const __m512i sc = zx_s8_pair(B0 + 16 + 8 * j, B1 + 16 + 8 * j);
            _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) is[c] = _mm512_add_epi32(is[c], _mm512_mullo_epi32(s[c], sc));
        }
        const __m512 d16 = zx_f16_pair(B0, B1);
        _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) {
            const __m512 da = _mm512_set1_ps(((const lb_block_q8k *)(A + (size_t)c * as) + i)->d);
            acc[c]          = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[c]), _mm512_mul_ps(d16, da), acc[c]);
        }
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < ncol; c++) _mm512_storeu_ps(out + c * ldo, acc[c]);
}

/* pairs of packed groups against NC columns a pass (then 4, then 1), the rest through the
 * 256-bit kernel: the odd last group, the unpacked rows, and generation unless PAIR1. Two
 * streams of a pair slow generation down where one stream of 8 rows keeps up with memory
 * (1b, 1 thread, tok/s, one stream -> pairs: Q4_0 61 -> 41, Q4_K 59 -> 40, Q6_K 35 -> 22);
 * Q2_K's 256-bit kernel is bound by its operations there, and pairs halve them (61 -> 75-80,
 * at 2 threads 103 -> 98-101): PAIR1 for Q2_K alone. The columns go in
 * blocks of ZX_ACT_CACHE bytes of activations, each block against all the pairs: a block and
 * the call's weights stay in L2 (a prompt's activations alone may not: 512 tokens of a 5632-wide
 * input are 3.9 MB). On the 1b shape within noise (pp512 Q4_0 2 threads 264-277 -> 267-286
 * tok/s); meant for the wider inputs of larger shapes. */
#define ZX_ACT_CACHE (256 * 1024)
#define ZX_GEMM_PACKED(X, PB, QK, NC, PAIR1)                                                       \
    static void zgemm_packed_##X(int64_t n, const void *packed, int64_t ng, const void *rem,      \
                                 size_t ws, int64_t nrem, const void *a, size_t as, int64_t nc,   \
                                 float *out, int64_t ldo) {                                        \
        const int64_t  nb = n / (QK), npair = nc > 1 || (PAIR1) ? ng / 2 : 0;                               \
        const uint8_t *A  = a;                                                                     \
        int64_t        cb = (int64_t)(ZX_ACT_CACHE / as) / (NC) * (NC);                            \
        if (cb < (NC)) cb = (NC);                                                                  \
        for (int64_t c0 = 0; c0 < nc && npair > 0; c0 += cb) {                                     \
            const int64_t c1 = nc - c0 < cb ? nc : c0 + cb;                                        \
            for (int64_t g = 0; g < 2 * npair; g += 2) {                                           \
                const uint8_t *P0 = (const uint8_t *)packed + (size_t)(g * nb) * (PB);             \
                const uint8_t *P1 = P0 + (size_t)nb * (PB);                                        \
                float         *o  = out + 8 * g;                                                   \
                int64_t        c  = c0;                                                            \
                for (; c + (NC) <= c1; c += (NC)) zk_##X(P0, P1, nb, A + (size_t)c * as, as, o + c * ldo, ldo, NC); \
                for (; c + 4 <= c1; c += 4) zk_##X(P0, P1, nb, A + (size_t)c * as, as, o + c * ldo, ldo, 4); \
                for (; c < c1; c++) zk_##X(P0, P1, nb, A + (size_t)c * as, as, o + c * ldo, ldo, 1); \
            }                                                                                      \
        }                                                                                          \
        gemm_packed_##X(n, (const uint8_t *)packed + (size_t)(2 * npair * nb) * (PB), ng - 2 * npair, \
                        rem, ws, nrem, a, as, nc, out + 16 * npair, ldo);                          \
    }

ZX_PACKED(q4_0, 8, 4, 144, 16, -1, 8, lb_iq4nl_grid, 1)
ZX_PACKED(q4_1, 1, 4, 160, 32, -1, 0, lb_iq4nl_grid, 1)
ZX_PACKED(q5_0, 16, 4, 176, 48, 16, 16, lb_iq4nl_grid, 1)
ZX_PACKED(q5_1, 1, 4, 192, 64, 32, 0, lb_iq4nl_grid, 1)
ZX_PACKED(iq4_nl, 0, 4, 144, 16, -1, 128, lb_iq4nl_grid, 1)
ZX_PACKED(xnf4, 0, 4, 144, 16, -1, 128, lb_nf4_grid8, 1)
ZX_PACKED(q8_0, 0, 8, 272, 16, -1, 128, lb_iq4nl_grid, 1)
ZX_PACKED(x2_0, 2, 2, 80, 16, -1, 2, lb_iq4nl_grid, 1)
ZX_PACKED(x2_1, 1, 2, 96, 32, -1, 0, lb_iq4nl_grid, 1)
ZX_PACKED(x2_k, 2, 2, 528, 16, -1, 2, lb_iq4nl_grid, 8)
ZX_GEMM_PACKED(q4_0, 144, 32, ZX_PNC, 0)
ZX_GEMM_PACKED(q4_1, 160, 32, ZX_PNC, 0)
ZX_GEMM_PACKED(q5_0, 176, 32, ZX_PNC, 0)
ZX_GEMM_PACKED(q5_1, 192, 32, ZX_PNC, 0)
ZX_GEMM_PACKED(iq4_nl, 144, 32, ZX_PNC, 0)
ZX_GEMM_PACKED(xnf4, 144, 32, ZX_PNC, 0)
ZX_GEMM_PACKED(x2_0, 80, 32, ZX_PNC, 0)
ZX_GEMM_PACKED(x2_1, 96, 32, ZX_PNC, 0)
ZX_GEMM_PACKED(x2_k, 528, 256, ZX_PNC, 0)
ZX_GEMM_PACKED(q8_0, 272, 32, ZX_PNC, 0)
ZX_GEMM_PACKED(q4_k, 1184, 256, ZX_KNC, 0)
ZX_GEMM_PACKED(q5_k, 1440, 256, ZX_KNC, 0)
ZX_GEMM_PACKED(q6_k, LB_Q6_K_PACKED, 256, ZX_KNC, 0)
ZX_GEMM_PACKED(q3_k, LB_Q3_K_PACKED, 256, ZX_KNC, 0)
ZX_GEMM_PACKED(q2_k, LB_Q2_K_PACKED, 256, ZX_KNC, 1)
ZX_GEMM_PACKED(iq4_xs, LB_IQ4_XS_PACKED, 256, ZX_KNC, 0)

/* F16 / BF16 rows against several f32 activation rows (prompts): 16 values a step on
 * 512-bit vectors, tiles of up to 4 rows x 6 columns (24 accumulators), the rows in blocks of
 * ZX_WROWS bytes that stay in L2 while every column passes; a masked last step for any n.
 * Each (row, column) is one chain of FMAs and the same reduction whatever the tile, so the
 * bits do not depend on the split. One column (generation) goes to the 256-bit gemv. */
#define ZX_WMR   4
#define ZX_WNC   6
#define ZX_WROWS (192 * 1024)
QX_INLINE __m512 zx_load_f16(const uint8_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
QX_INLINE __m512 zx_load_bf16(const uint8_t *p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
QX_INLINE __m512 zx_load_f16_full(const uint8_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
QX_INLINE __m512 zx_load_bf16_full(const uint8_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
/* one step of 16 values: mr weight rows at p converted (WL), nc activation rows at xa (XL) */
#define ZX_STEP16(WL, XL)                                                                          \
    do {                                                                                           \
        __m512 wv[ZX_WMR];                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) {                                     \
            const uint8_t *p = w + (size_t)r * ws + 2 * (size_t)j;                                 \
            wv[r]            = WL;                                                                 \
        }                                                                                          \
        _Pragma("GCC unroll 6") for (int c = 0; c < nc; c++) {                                     \
            const float *xa = (const float *)(a + (size_t)c * as) + j;                             \
            const __m512 xv = XL;                                                                  \
            _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]); \
        }                                                                                          \
    } while (0)
#define ZX_GEMM16(X)                                                                               \
    QX_INLINE void zt_##X(int64_t n, const uint8_t *w, size_t ws, const uint8_t *a, size_t as,     \
                          float *out, int64_t ldo, const int mr, const int nc) {                   \
        __m512 acc[ZX_WMR][ZX_WNC];                                                                \
        _Pragma("GCC unroll 4") for (int r = 0; r < ZX_WMR; r++)                                   \
        _Pragma("GCC unroll 6") for (int c = 0; c < ZX_WNC; c++) acc[r][c] = _mm512_setzero_ps();  \
        const int64_t n16 = n & ~(int64_t)15; /* masked loads only in a last partial step */       \
        for (int64_t j = 0; j < n16; j += 16) ZX_STEP16(zx_load_##X##_full(p), _mm512_loadu_ps(xa)); \
        if (n16 < n) {                                                                             \
            const int64_t   j = n16;                                                               \
            const __mmask16 m = (__mmask16)((1u << (n - j)) - 1);                                  \
            ZX_STEP16(zx_load_##X(p, m), _mm512_maskz_loadu_ps(m, xa));                            \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++)                                       \
        _Pragma("GCC unroll 6") for (int c = 0; c < nc; c++)                                       \
            out[c * ldo + r] = _mm512_reduce_add_ps(acc[r][c]);                                    \
    }                                                                                              \
    static void zgemm_##X(int64_t n, const void *w, size_t ws, int64_t nr, const void *a,          \
                          size_t as, int64_t nc, float *out, int64_t ldo) {                        \
        if (nc == 1) {                                                                             \
            gemv_##X(n, w, ws, nr, a, as, out);                                                    \
            return;                                                                                \
        }                                                                                          \
        const uint8_t *W = w, *A = a;                                                              \
        int64_t        rb = (int64_t)(ZX_WROWS / ws) / ZX_WMR * ZX_WMR;                            \
        if (rb < ZX_WMR) rb = ZX_WMR;                                                              \
        for (int64_t r0 = 0; r0 < nr; r0 += rb) {                                                  \
            const int64_t r1 = nr - r0 < rb ? nr : r0 + rb;                                        \
            for (int64_t c = 0; c < nc; c += ZX_WNC) {                                             \
                const int64_t k = nc - c < ZX_WNC ? nc - c : ZX_WNC;                               \
                for (int64_t r = r0; r < r1; r += ZX_WMR) {                                        \
                    const uint8_t *wr = W + (size_t)r * ws, *ac = A + (size_t)c * as;              \
                    float         *o  = out + c * ldo + r;                                         \
                    if (r1 - r >= ZX_WMR && k == ZX_WNC) zt_##X(n, wr, ws, ac, as, o, ldo, ZX_WMR, ZX_WNC); \
                    else if (r1 - r >= ZX_WMR)                                                     \
                        for (int64_t q = 0; q < k; q++) zt_##X(n, wr, ws, ac + (size_t)q * as, as, o + q * ldo, ldo, ZX_WMR, 1); \
                    else                                                                           \
                        for (int64_t i = r; i < r1; i++)                                           \
                            zt_##X(n, W + (size_t)i * ws, ws, ac, as, out + c * ldo + i, ldo, 1, (int)k); \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
ZX_GEMM16(f16)
ZX_GEMM16(bf16)

/* KM4 rows (16 f16 levels, then 4-bit indices, low nibble first) with f32 activations: the
 * row's levels are the look-up table, in one register; each 16 indices, widened to 32-bit
 * lanes, pick their levels with one vpermps. The scalar twin (qdot_ref.c) sums the
 * activations per level instead: the same products in another order. */
static void zgemm_km4(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, int64_t nc,
                      float *out, int64_t ldo) {
    const __m128i lo4 = _mm_set1_epi8(0x0f);
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * ws, *q = row + 32;
        const __m512   lv  = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)row));
        for (int64_t c = 0; c < nc; c++) {
            const float *x   = (const float *)((const uint8_t *)a + (size_t)c * as);
            __m512       acc = _mm512_setzero_ps();
            for (int64_t j = 0; j < n; j += 16) {
                const int64_t   k    = n - j < 16 ? n - j : 16;
                const __mmask16 m    = k == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1);
                uint64_t        bits = 0;
                memcpy(&bits, q + j / 2, (size_t)((k + 1) / 2));
                const __m128i b   = _mm_cvtsi64_si128((long long)bits);
                const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(b, lo4), _mm_and_si128(_mm_srli_epi16(b, 4), lo4));
                const __m512  v   = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(nib), lv);
                acc               = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, x + j), acc);
            }
            out[c * ldo + r] = _mm512_reduce_add_ps(acc);
        }
    }
}

void lb_qdot_fill_avx512(lb_qdot_table *t) {
    lb_qdot_fill_avx512_ymm(t);
    t->kern[LB_TYPE_Q4_0].gemm_packed   = zgemm_packed_q4_0;
    t->kern[LB_TYPE_Q4_1].gemm_packed   = zgemm_packed_q4_1;
    t->kern[LB_TYPE_Q5_0].gemm_packed   = zgemm_packed_q5_0;
    t->kern[LB_TYPE_Q5_1].gemm_packed   = zgemm_packed_q5_1;
    t->kern[LB_TYPE_IQ4_NL].gemm_packed = zgemm_packed_iq4_nl;
    t->kern[LB_TYPE_XNF4].gemm_packed   = zgemm_packed_xnf4;
    t->kern[LB_TYPE_X2_0].gemm_packed   = zgemm_packed_x2_0;
    t->kern[LB_TYPE_X2_1].gemm_packed   = zgemm_packed_x2_1;
    t->kern[LB_TYPE_X2_K].gemm_packed   = zgemm_packed_x2_k;
    t->kern[LB_TYPE_Q8_0].gemm_packed   = zgemm_packed_q8_0;
    t->kern[LB_TYPE_Q4_K].gemm_packed   = zgemm_packed_q4_k;
    t->kern[LB_TYPE_Q5_K].gemm_packed   = zgemm_packed_q5_k;
    t->kern[LB_TYPE_Q6_K].gemm_packed   = zgemm_packed_q6_k;
    t->kern[LB_TYPE_Q3_K].gemm_packed   = zgemm_packed_q3_k;
    t->kern[LB_TYPE_Q2_K].gemm_packed   = zgemm_packed_q2_k;
    t->kern[LB_TYPE_IQ4_XS].gemm_packed = zgemm_packed_iq4_xs;
    t->kern[LB_TYPE_F16]  = (lb_qdot){ .act = LB_ACT_F32, .gemm = zgemm_f16, .any_t = true };
    t->kern[LB_TYPE_BF16] = (lb_qdot){ .act = LB_ACT_F32, .gemm = zgemm_bf16, .any_t = true };
    t->kern[LB_TYPE_KM4]  = (lb_qdot){ .act = LB_ACT_F32, .gemm = zgemm_km4 };
}
