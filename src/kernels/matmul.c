/* Matrix products, threaded over output rows with OpenMP (BLAS itself runs single-threaded:
 * two thread pools spinning against each other cost 3x). Three paths:
 *   - f32 weights: BLAS on the rows of each tile;
 *   - quantized kernels (qdot.h), FAST mode: activations quantized once to 8-bit blocks
 *     (shared by all threads; up to PRIVATE_T tokens each thread quantizes its own copy and
 *     no barrier waits for it), then each thread's rows against all tokens; packed weights
 *     (lb_matmul_pack: groups of 8 rows read as one stream) where the context packed them;
 *     F16/BF16/INT8_PC rows against f32 activations for a few tokens in either mode, and
 *     for any number where the kernel says it is fast for many (lb_qdot.any_t: AVX-512 F16/BF16);
 *     in FAST mode BF16 rows against activations rounded to bf16 where the CPU has vdpbf16ps;
 *   - otherwise: LB_MATMUL_TILE_ROWS rows converted to f32 in the thread's scratch, then BLAS
 *     with all T tokens (each tile reused for the whole batch);
 *   - W8A8 (lb_matmul_w8a8): INT8_PC rows against the caller's int8 activation rows, through
 *     the quantized kernels' tiling, LLM.int8's f32 columns added tile by tile.
 * Tile boundaries never depend on the thread count, so neither do the results. */
#include <cblas.h>
#include <omp.h>

#include "matmul.h"
#include "qdot.h"

/* Up to this many tokens, every thread quantizes the activations into its own copy: no
 * barrier before the products (generation). */
#define PRIVATE_T 4

/* the threads' f32 tiles, or (in the same place: one path per product) the activations of
 * every rounded kind (lb_block_q8a: 44 bytes for 32 values, lb_block_q8k: 292 for 256, bf16:
 * 2 a value), or W8A8's int8 rows (the caller's, lb_matmul_w8a8) */
/* bytes of T tokens' activations of every rounded kind, each kind 64-byte aligned */
static int64_t act_bytes(int64_t n_in, int64_t T) {
    return (T * ((n_in + 31) / 32) * (int64_t)sizeof(lb_block_q8a) + 63) / 64 * 64 +
           (T * ((n_in + 255) / 256) * (int64_t)sizeof(lb_block_q8k) + 63) / 64 * 64 +
           (T * (int64_t)lb_act_row_size(LB_ACT_BF16, n_in) + 63) / 64 * 64;
}

int64_t lb_matmul_scratch_floats(int64_t n_in, int64_t T, int n_threads) {
    const int64_t tiles  = (int64_t)LB_MATMUL_TILE_ROWS * n_in * n_threads;
    const int64_t i8     = (T * (int64_t)lb_matmul_i8_row_size(n_in) + 63) / 64 * 64;
    const int64_t shared = act_bytes(n_in, T);
    const int64_t own    = n_threads * act_bytes(n_in, T < PRIVATE_T ? T : PRIVATE_T); /* a copy each */
    int64_t       act    = (shared > own ? shared : own) / 4;
    if (i8 / 4 > act) act = i8 / 4;
    return tiles > act ? tiles : act;
}

size_t lb_matmul_i8_row_size(int64_t n_in) {
    return lb_act_row_size(LB_ACT_I8, n_in);
}

/* out[:, r0:r0+nr] = x · W[r0:r0+nr]ᵀ for f32 rows W (row stride n_in) */
static void gemm_rows(float *out, const float *x, const float *W, int64_t T, int64_t n_in,
                      int64_t nr, int64_t ldo) {
    if (T == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)nr, (blasint)n_in, 1.0f, W,
                    (blasint)n_in, x, 1, 0.0f, out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)nr,
                    (blasint)n_in, 1.0f, x, (blasint)n_in, W, (blasint)n_in, 0.0f, out,
                    (blasint)ldo);
}

/* The quantized kernel for this product, or NULL for the BLAS paths. */
static const lb_qdot *choose_kernel(const lb_tensor *w, int64_t T, lb_matmul_mode mode) {
    const lb_qdot *k = mode == LB_MATMUL_FAST ? lb_qdot_get_fast(w->type) : lb_qdot_get(w->type);
    if (!k || lb_row_size(w->type, w->ne[0]) == 0) return NULL;
    if (k->act == LB_ACT_F32) return T <= LB_MATMUL_DIRECT_T || k->any_t ? k : NULL;
    return mode == LB_MATMUL_FAST ? k : NULL;
}

size_t lb_matmul_pack_size(const lb_tensor *w) {
    const lb_qdot *k = lb_qdot_get(w->type);
    if (!k || !k->gemm_packed || lb_row_size(w->type, w->ne[0]) == 0) return 0;
    return lb_pack_size(w->type, w->ne[0], w->ne[1]);
}

void lb_matmul_pack(void *dst, const lb_tensor *w) {
    const int64_t n = w->ne[0], ng = w->ne[1] / 8;
    const size_t  rs = lb_row_size(w->type, n), gs = lb_pack_size(w->type, n, 8);
#pragma omp parallel for schedule(static) if (ng >= 64)
    for (int64_t g = 0; g < ng; g++)
        lb_pack_rows(w->type, (uint8_t *)dst + (size_t)g * gs, (const uint8_t *)w->data + (size_t)g * 8 * rs, n, 8);
}

/* One product job: n matrices against the same (quantized) activations. */
typedef struct {
    const lb_mat         *w;
    const lb_qdot *const *k;
    int                   n;
    int64_t               n_in, T;
    const uint8_t        *act[LB_ACT_COUNT]; /* by lb_act_kind; [LB_ACT_F32] is x */
    float *const         *out;
    const lb_w8a8_outliers *ol;   /* W8A8: f32 columns to add, or NULL */
    int64_t               first_tile[LB_MATMUL_MAX_MULTI + 1];
} product_job;

/* LLM.int8: out[t, r] += sum_o x[t, cols[o]] * wo[r, o] for rows r0 .. r1-1 of matrix i */
static void add_outliers(const product_job *j, int i, int64_t r0, int64_t r1) {
    const lb_w8a8_outliers *ol    = j->ol;
    const int64_t           n_out = j->w[i].t->ne[1];
    for (int64_t t = 0; t < j->T; t++) {
        const float *x = ol->x + t * j->n_in;
        for (int64_t r = r0; r < r1; r++) {
            const float *wo = ol->w[i] + r * ol->k;
            float        s  = 0.0f;
            for (int32_t o = 0; o < ol->k; o++) s += x[ol->cols[o]] * wo[o];
            j->out[i][t * n_out + r] += s;
        }
    }
}

/* Tiles t0 .. t1-1 of the matrices laid end to end (16 rows a tile). */
static void product_tiles(const product_job *j, int64_t t0, int64_t t1) {
    for (int i = 0; i < j->n; i++) {
        const int64_t lo = t0 > j->first_tile[i] ? t0 : j->first_tile[i];
        const int64_t hi = t1 < j->first_tile[i + 1] ? t1 : j->first_tile[i + 1];
        if (lo >= hi) continue;
        const lb_mat  *w     = &j->w[i];
        const int64_t  n_out = w->t->ne[1], r0 = (lo - j->first_tile[i]) * 16;
        const int64_t  r1    = (hi - j->first_tile[i]) * 16 < n_out ? (hi - j->first_tile[i]) * 16 : n_out;
        const size_t   ws    = lb_row_size(w->t->type, j->n_in);
        const size_t   as    = lb_act_row_size(j->k[i]->act, j->n_in);
        const uint8_t *A     = j->act[j->k[i]->act];
        const uint8_t *W     = w->t->data;
        if (w->packed) { /* whole groups of 8 packed, the rows after them in place */
            const int64_t g0 = r0 / 8;
            int64_t       g1 = (r1 < n_out / 8 * 8 ? r1 : n_out / 8 * 8) / 8;
            const int64_t rr = g1 * 8 > r0 ? g1 * 8 : r0;
            if (g1 < g0) g1 = g0;
            j->k[i]->gemm_packed(j->n_in, (const uint8_t *)w->packed + (size_t)g0 * lb_pack_size(w->t->type, j->n_in, 8),
                                 g1 - g0, W + (size_t)rr * ws, ws, r1 - rr, A, as, j->T,
                                 j->out[i] + r0, n_out);
        } else {
            j->k[i]->gemm(j->n_in, W + (size_t)r0 * ws, ws, r1 - r0, A, as, j->T, j->out[i] + r0, n_out);
        }
        if (j->ol && j->ol->k > 0) add_outliers(j, i, r0, r1);
    }
}

/* The products of x with n matrices sharing it (q, k, v; gate, up) in one parallel region:
 * the activations are quantized once per kind the kernels consume, then the rows of all the
 * matrices, in tiles of 16 (a multiple of every kernel's row tile and of the packed groups),
 * go to the threads in chunks handed out as threads come free: a thread the machine delays
 * does not hold the others up, and a row's result does not depend on who computes it. */
static void matmul_kernels(float *const *out, const float *x, const lb_mat *w, int n, int64_t T,
                           const lb_qdot *const *k, uint8_t *scratch, int par,
                           const uint8_t *xq, const lb_w8a8_outliers *ol) {
    product_job        j = { .w = w, .k = k, .n = n, .n_in = w[0].t->ne[0], .T = T, .out = out, .ol = ol };
    lb_quantize_act_fn quant[LB_ACT_COUNT] = { NULL };
    size_t             at[LB_ACT_COUNT]    = { 0 }; /* offsets in a copy of the activations */
    size_t             copy                = 0;     /* bytes of one copy */
    for (int i = 0; i < n; i++) {
        const lb_act_kind a = k[i]->act;
        if (a != LB_ACT_F32 && a != LB_ACT_I8 && !quant[a]) { /* rounded here */
            quant[a] = lb_quantize_act_get(a);
            at[a]    = copy;
            copy += ((size_t)T * lb_act_row_size(a, j.n_in) + 63) / 64 * 64;
        }
        j.first_tile[i + 1] = j.first_tile[i] + (w[i].t->ne[1] + 15) / 16;
    }
    j.act[LB_ACT_F32]     = (const uint8_t *)x;
    j.act[LB_ACT_I8]      = xq; /* quantized by the caller */
    const int64_t n_tiles = j.first_tile[n];
    const bool    own     = T <= PRIVATE_T;
#pragma omp parallel if (par)
    {
        product_job   jt   = j; /* this thread's view: its own copy of the activations */
        uint8_t      *base = copy && own ? scratch + (size_t)omp_get_thread_num() * copy : scratch;
        for (int a = 0; a < LB_ACT_COUNT; a++)
            if (quant[a]) {
                const size_t as = lb_act_row_size((lb_act_kind)a, j.n_in);
                uint8_t     *dst = base + at[a];
                jt.act[a]        = dst;
                if (own)
                    for (int64_t t = 0; t < T; t++) quant[a](dst + (size_t)t * as, x + t * j.n_in, j.n_in);
                else {
#pragma omp for schedule(static)
                    for (int64_t t = 0; t < T; t++) quant[a](dst + (size_t)t * as, x + t * j.n_in, j.n_in);
                }
            }
        const int64_t per = (n_tiles + 8 * omp_get_num_threads() - 1) / (8 * omp_get_num_threads());
#pragma omp for schedule(dynamic, 1) nowait /* the region's end is the barrier */
        for (int64_t t0 = 0; t0 < n_tiles; t0 += per)
            product_tiles(&jt, t0, t0 + per < n_tiles ? t0 + per : n_tiles);
    }
}

void lb_matmul_w8a8(float *const *out, const void *xq, const lb_mat *w, int n, int64_t T,
                    const lb_w8a8_outliers *ol) {
    const lb_qdot  ki8 = { .act = LB_ACT_I8, .gemm = lb_gemm_i8_get() };
    const lb_qdot *k[LB_MATMUL_MAX_MULTI];
    int64_t        work = 0;
    for (int i = 0; i < n; i++) {
        k[i] = &ki8;
        work += w[i].t->ne[0] * w[i].t->ne[1] * T;
    }
    matmul_kernels(out, ol ? ol->x : NULL, w, n, T, k, NULL, work >= (1 << 19), xq, ol);
}

void lb_matmul_multi(float *const *out, const float *x, const lb_mat *w, int n, int64_t T,
                     lb_matmul_mode mode, float *scratch) {
    const lb_qdot *k[LB_MATMUL_MAX_MULTI];
    int64_t        work = 0;
    bool           all  = n <= LB_MATMUL_MAX_MULTI;
    for (int i = 0; all && i < n; i++) {
        k[i] = choose_kernel(w[i].t, T, mode);
        all  = k[i] != NULL && w[i].t->ne[0] == w[0].t->ne[0];
        work += w[i].t->ne[0] * w[i].t->ne[1] * T;
    }
    if (!all) { /* BLAS for some: one product at a time */
        for (int i = 0; i < n; i++) lb_matmul(out[i], x, w[i], T, mode, scratch);
        return;
    }
    /* below ~1 MFLOP a second thread costs more than it brings */
    matmul_kernels(out, x, w, n, T, k, (uint8_t *)scratch, work >= (1 << 19), NULL, NULL);
}

void lb_matmul(float *out, const float *x, lb_mat wm, int64_t T, lb_matmul_mode mode,
               float *scratch) {
    const lb_tensor *w = wm.t;
    const int64_t n_in = w->ne[0], n_out = w->ne[1];
    const int64_t n_tiles = (n_out + LB_MATMUL_TILE_ROWS - 1) / LB_MATMUL_TILE_ROWS;
    /* below ~1 MFLOP a second thread costs more than it brings */
    const int      par = n_in * n_out * T >= (1 << 19) && n_tiles > 1;
    const lb_qdot *k   = choose_kernel(w, T, mode);
    if (k) {
        matmul_kernels(&out, x, &wm, 1, T, &k, (uint8_t *)scratch, par, NULL, NULL); /* the tiles are unused */
        return;
    }
    const lb_to_float_fn to_float = lb_qdot_to_float(w->type);
#pragma omp parallel if (par)
    {
        float *tile = scratch + (int64_t)omp_get_thread_num() * LB_MATMUL_TILE_ROWS * n_in;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n_tiles; t++) {
            const int64_t r0 = t * LB_MATMUL_TILE_ROWS;
            const int64_t nr = n_out - r0 < LB_MATMUL_TILE_ROWS ? n_out - r0 : LB_MATMUL_TILE_ROWS;
            const float  *W;
            if (w->type == LB_TYPE_F32) {
                W = (const float *)w->data + r0 * n_in;
            } else {
                for (int64_t r = 0; r < nr; r++) to_float(tile + r * n_in, lb_tensor_row(w, r0 + r), n_in);
                W = tile;
            }
            gemm_rows(out + r0, x, W, T, n_in, nr, n_out);
        }
    }
}
