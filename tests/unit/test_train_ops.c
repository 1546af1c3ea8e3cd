/* Training ops (src/train/ops.h) against an independent f64 forward written in this file:
 *   - each f32 forward agrees with the f64 one (norm-relative error below TOL_FW);
 *   - each backward agrees with central differences (±h in f64) of loss = Σ out ⊙ r, r random
 *     (of the loss itself for cross-entropy and KL), norm-relative error below TOL_FD, on every
 *     element of an input or on MAX_PTS random ones of the big inputs;
 *   - conventions: weight gradients accumulate (twice gives double), input gradients are
 *     written (buffers filled with NaN beforehand) or added as documented, dx_add, targets -1
 *     ignored, dlogits aliasing the logits;
 *   - odd sizes, GQA (H=4, KVH=2), B=2 sequences, T=7 and 19, GEMMs split in several tasks;
 *   - every forward and backward gives the same bits with 1 and with 2 threads.
 * Seeded data (the seed is printed). */
#include <math.h>

#include "test_util.h"
#include "train/ops.h"

#define H_FD    1e-4 /* finite-difference step, in f64 */
#define TOL_FD  1e-3 /* backward against finite differences */
#define TOL_FW  1e-5 /* f32 forward against the f64 one */
#define MAX_PTS 150  /* finite differences on at most this many elements of an input */

/* ---- data and bookkeeping ---- */

static const uint64_t g_seed = 0x7a11b0b5eedull;
static uint64_t       g_rng;

static uint64_t next_u64(void) { return g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull; }
static float   frand(void) { return (float)((next_u64() >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f; }
static int64_t irand(int64_t n) { return (int64_t)((next_u64() >> 33) % (uint64_t)n); }

/* every buffer of a test, freed together at its end */
static void *g_allocs[256];
static int   g_nallocs;

static void *talloc(size_t bytes) {
    assert_true(g_nallocs < 256);
    void *p = calloc(1, bytes ? bytes : 1);
    assert_non_null(p);
    return g_allocs[g_nallocs++] = p;
}
static void tfree_all(void) {
    while (g_nallocs > 0) free(g_allocs[--g_nallocs]);
}

static float *fzero(int64_t n) { return talloc((size_t)n * sizeof(float)); }
static float *frnd(int64_t n, float scale) {
    float *x = fzero(n);
    for (int64_t i = 0; i < n; i++) x[i] = frand() * scale;
    return x;
}
static float *fnan(int64_t n) {
    float *x = fzero(n);
    for (int64_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}
static float *fdup(const float *x, int64_t n) {
    float *y = fzero(n);
    memcpy(y, x, (size_t)n * sizeof *y);
    return y;
}
static float *fdiff(const float *a, const float *b, int64_t n) { /* a - b: what an op added */
    float *d = fzero(n);
    for (int64_t i = 0; i < n; i++) d[i] = a[i] - b[i];
    return d;
}
static double *dnew(int64_t n) { return talloc((size_t)n * sizeof(double)); }
static double *todbl(const float *x, int64_t n) {
    double *d = dnew(n);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static double dot_r(const double *y, const float *r, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += y[i] * r[i];
    return s;
}

/* ‖got − ref‖ / ‖ref‖ below tol; otherwise the first mismatches are printed */
static void expect_close(const char *what, const double *ref, const float *got, int64_t n, double tol) {
    double e2 = 0.0, r2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = got[i] - ref[i];
        e2 += d * d;
        r2 += ref[i] * ref[i];
    }
    const double err = sqrt(e2 / (r2 > 0.0 ? r2 : 1.0));
    printf("# %-28s n %5lld  norm-relative error %.2e\n", what, (long long)n, err);
    if (!(err <= tol)) {
        for (int64_t i = 0, shown = 0; i < n && shown < 5; i++)
            if (!(fabs(got[i] - ref[i]) <= tol * (fabs(ref[i]) + 1e-3))) {
                printf("#   [%lld] got %.8g want %.8g\n", (long long)i, (double)got[i], ref[i]);
                shown++;
            }
        printf("#   seed %#llx\n", (unsigned long long)g_seed);
    }
    assert_true(err <= tol);
    assert_true(r2 > 0.0); /* a check against all zeros checks nothing */
}

/* after - before = 2 · once: a gradient accumulated twice (a tied weight's two uses) */
static void expect_twice(const char *what, const float *once, const float *after,
                         const float *before, int64_t n) {
    double *twice = dnew(n);
    for (int64_t i = 0; i < n; i++) twice[i] = 2.0 * once[i];
    expect_close(what, twice, fdiff(after, before, n), n, 1e-6);
}

typedef double (*loss_fn)(void *ctx);

/* grad[i] against scale · (f(x + h e_i) − f(x − h e_i)) / 2h, x in f64 */
static void expect_grad(const char *what, loss_fn f, void *ctx, double *x, int64_t n,
                        const float *grad, double scale) {
    const int64_t m  = n <= MAX_PTS ? n : MAX_PTS;
    double       *fd = dnew(m);
    float        *an = fzero(m);
    for (int64_t j = 0; j < m; j++) {
        const int64_t i = n <= MAX_PTS ? j : irand(n);
        const double  x0 = x[i];
        x[i]             = x0 + H_FD;
        const double lp  = f(ctx);
        x[i]             = x0 - H_FD;
        const double lm  = f(ctx);
        x[i]             = x0;
        fd[j]            = scale * (lp - lm) / (2.0 * H_FD);
        an[j]            = grad[i];
    }
    expect_close(what, fd, an, m, TOL_FD);
}

/* ---- linear ---- */

typedef struct {
    int64_t      n, in, out;
    double      *x, *w, *y;
    const float *r;
} lin_ref;

static void lin_fwd(lin_ref *c) {
    for (int64_t t = 0; t < c->n; t++)
        for (int64_t o = 0; o < c->out; o++) {
            double s = 0.0;
            for (int64_t i = 0; i < c->in; i++) s += c->x[t * c->in + i] * c->w[o * c->in + i];
            c->y[t * c->out + o] = s;
        }
}
static double lin_loss(void *p) {
    lin_ref *c = p;
    lin_fwd(c);
    return dot_r(c->y, c->r, c->n * c->out);
}

static void test_linear(void **state) {
    (void)state;
    /* B*T = 2*5 tokens; GEMMs in two tasks (y by columns, dx and dw by rows); in four
     * tasks by columns */
    const int64_t cfg[3][3] = { { 10, 13, 11 }, { 70, 9, 75 }, { 3, 5, 200 } };
    for (int k = 0; k < 3; k++) {
        const int64_t n = cfg[k][0], in = cfg[k][1], out = cfg[k][2], nx = n * in, nw = out * in;
        float  *x = frnd(nx, 1.0f), *w = frnd(nw, 0.5f), *r = frnd(n * out, 1.0f);
        float  *y = fnan(n * out);
        lin_ref c = { n, in, out, todbl(x, nx), todbl(w, nw), dnew(n * out), r };
        lb_op_linear_fwd(y, x, w, n, in, out);
        lin_fwd(&c);
        expect_close("linear y", c.y, y, n * out, TOL_FW);

        float *dx = fnan(nx); /* written */
        lb_op_linear_bwd(dx, NULL, r, x, w, n, in, out, false);
        expect_grad("linear dx", lin_loss, &c, c.x, nx, dx, 1.0);
        float *dx0 = frnd(nx, 1.0f), *dxa = fdup(dx0, nx); /* added */
        lb_op_linear_bwd(dxa, NULL, r, x, w, n, in, out, true);
        expect_grad("linear dx (dx_add)", lin_loss, &c, c.x, nx, fdiff(dxa, dx0, nx), 1.0);

        float *dw0 = frnd(nw, 1.0f), *dw = fdup(dw0, nw); /* accumulated */
        lb_op_linear_bwd(NULL, dw, r, x, w, n, in, out, false);
        float *g1 = fdiff(dw, dw0, nw), *dw1 = fdup(dw, nw);
        expect_grad("linear dw", lin_loss, &c, c.w, nw, g1, 1.0);
        lb_op_linear_bwd(NULL, dw, r, x, w, n, in, out, false);
        expect_twice("linear dw twice", g1, dw, dw0, nw);

        /* both gradients in one call: the bits of one at a time */
        float *dx2 = fnan(nx), *dw2 = fdup(dw0, nw);
        lb_op_linear_bwd(dx2, dw2, r, x, w, n, in, out, false);
        assert_memory_equal(dx2, dx, (size_t)nx * sizeof *dx);
        assert_memory_equal(dw2, dw1, (size_t)nw * sizeof *dw);
    }
    tfree_all();
}

/* ---- RMSNorm ---- */

typedef struct {
    int64_t      n, dim;
    double      *x, *w, *y, *rstd;
    double       eps;
    const float *r;
} rms_ref;

static void rms_fwd(rms_ref *c) {
    for (int64_t t = 0; t < c->n; t++) {
        const double *x = c->x + t * c->dim;
        double        ss = 0.0;
        for (int64_t i = 0; i < c->dim; i++) ss += x[i] * x[i];
        c->rstd[t] = 1.0 / sqrt(ss / (double)c->dim + c->eps);
        for (int64_t i = 0; i < c->dim; i++) c->y[t * c->dim + i] = c->w[i] * x[i] * c->rstd[t];
    }
}
static double rms_loss(void *p) {
    rms_ref *c = p;
    rms_fwd(c);
    return dot_r(c->y, c->r, c->n * c->dim);
}

static void test_rmsnorm(void **state) {
    (void)state;
    const int64_t cfg[2][2] = { { 10, 37 }, { 6, 300 } }; /* 300: dw in five column tasks */
    for (int k = 0; k < 2; k++) {
        const int64_t n = cfg[k][0], dim = cfg[k][1], nx = n * dim;
        const float   eps = 1e-5f;
        float        *x = frnd(nx, 2.0f), *w = frnd(dim, 0.3f), *r = frnd(nx, 1.0f);
        for (int64_t i = 0; i < dim; i++) w[i] += 1.0f;
        float  *y = fnan(nx), *rstd = fnan(n);
        rms_ref c = { n, dim, todbl(x, nx), todbl(w, dim), dnew(nx), dnew(n), eps, r };
        lb_op_rmsnorm_fwd(y, rstd, x, w, n, dim, eps);
        rms_fwd(&c);
        expect_close("rmsnorm y", c.y, y, nx, TOL_FW);
        expect_close("rmsnorm rstd", c.rstd, rstd, n, TOL_FW);

        float *dx0 = frnd(nx, 1.0f), *dx = fdup(dx0, nx), *dw0 = frnd(dim, 1.0f), *dw = fdup(dw0, dim);
        lb_op_rmsnorm_bwd(dx, dw, r, x, w, rstd, n, dim); /* both added */
        float *g1 = fdiff(dw, dw0, dim);
        expect_grad("rmsnorm dx (added)", rms_loss, &c, c.x, nx, fdiff(dx, dx0, nx), 1.0);
        expect_grad("rmsnorm dw", rms_loss, &c, c.w, dim, g1, 1.0);
        lb_op_rmsnorm_bwd(dx, dw, r, x, w, rstd, n, dim);
        expect_twice("rmsnorm dw twice", g1, dw, dw0, dim);

        float *dx2 = fdup(dx0, nx); /* no dw: the same dx */
        lb_op_rmsnorm_bwd(dx2, NULL, r, x, w, rstd, n, dim);
        float *dx1 = fdup(dx0, nx);
        lb_op_rmsnorm_bwd(dx1, fzero(dim), r, x, w, rstd, n, dim);
        assert_memory_equal(dx1, dx2, (size_t)nx * sizeof *dx);
    }
    tfree_all();
}

/* ---- RoPE ---- */

static void rope_tables(float *cs, float *sn, int32_t T, int32_t D) {
    for (int32_t t = 0; t < T; t++)
        for (int32_t j = 0; j < D / 2; j++) {
            const float a = (float)t * powf(10000.0f, -2.0f * (float)j / (float)D);
            cs[t * (D / 2) + j] = cosf(a);
            sn[t * (D / 2) + j] = sinf(a);
        }
}

typedef struct {
    int64_t      n;
    int32_t      T, H, D;
    double      *x, *y;
    const float *cs, *sn, *r;
} rope_ref;

static void rope_ref_fwd(rope_ref *c) {
    for (int64_t t = 0; t < c->n; t++)
        for (int32_t h = 0; h < c->H; h++)
            for (int32_t j = 0; j < c->D / 2; j++) {
                const int64_t i  = (t * c->H + h) * c->D + 2 * j;
                const int64_t e  = (t % c->T) * (c->D / 2) + j;
                const double  co = c->cs[e], si = c->sn[e];
                c->y[i]          = c->x[i] * co - c->x[i + 1] * si;
                c->y[i + 1]      = c->x[i] * si + c->x[i + 1] * co;
            }
}
static double rope_loss(void *p) {
    rope_ref *c = p;
    rope_ref_fwd(c);
    return dot_r(c->y, c->r, c->n * c->H * c->D);
}

static void test_rope(void **state) {
    (void)state;
    const int32_t B = 2, T = 7, H = 3, D = 10;
    const int64_t n = B * T, nx = n * H * D;
    float        *cs = fzero(T * D / 2), *sn = fzero(T * D / 2);
    rope_tables(cs, sn, T, D);
    float   *x = frnd(nx, 1.0f), *r = frnd(nx, 1.0f), *y = fdup(x, nx);
    rope_ref c = { n, T, H, D, todbl(x, nx), dnew(nx), cs, sn, r };
    lb_op_rope_fwd(y, n, T, H, D, cs, sn);
    rope_ref_fwd(&c);
    expect_close("rope y", c.y, y, nx, TOL_FW);
    float *dx = fdup(r, nx); /* in place on the gradient */
    lb_op_rope_bwd(dx, n, T, H, D, cs, sn);
    expect_grad("rope dx", rope_loss, &c, c.x, nx, dx, 1.0);
    lb_op_rope_bwd(y, n, T, H, D, cs, sn); /* a rotation: the backward undoes the forward */
    expect_close("rope bwd(fwd(x))", c.x, y, nx, 1e-6);
    tfree_all();
}

/* ---- attention ---- */

typedef struct {
    int32_t      B, T, H, KVH, D;
    double      *q, *k, *v, *o, *p;
    const float *r;
    lb_op_att    a; /* scale (0: 1/sqrt(D)), soft-cap, window */
} att_ref;

static void att_fwd(att_ref *c) {
    const int32_t T = c->T, H = c->H, KVH = c->KVH, D = c->D, G = H / KVH;
    for (int32_t b = 0; b < c->B; b++)
        for (int32_t h = 0; h < H; h++)
            for (int32_t t = 0; t < T; t++) {
                const double *qt = c->q + ((int64_t)(b * T + t) * H + h) * D;
                double       *pr = c->p + ((int64_t)(b * H + h) * T + t) * T;
                double        mx = -INFINITY, sum = 0.0;
                for (int32_t s = 0; s < T; s++) {
                    const double *ks = c->k + ((int64_t)(b * T + s) * KVH + h / G) * D;
                    double        d  = 0.0;
                    for (int32_t i = 0; i < D; i++) d += qt[i] * ks[i];
                    pr[s] = d * (c->a.scale > 0 ? c->a.scale : 1.0 / sqrt((double)D));
                    if (c->a.softcap > 0) pr[s] = c->a.softcap * tanh(pr[s] / c->a.softcap);
                    if (s <= t && (c->a.window <= 0 || t - s < c->a.window) && pr[s] > mx) mx = pr[s];
                }
                for (int32_t s = 0; s < T; s++) {
                    pr[s] = s <= t && (c->a.window <= 0 || t - s < c->a.window) ? exp(pr[s] - mx) : 0.0;
                    sum += pr[s];
                }
                double *ot = c->o + ((int64_t)(b * T + t) * H + h) * D;
                for (int32_t i = 0; i < D; i++) ot[i] = 0.0;
                for (int32_t s = 0; s < T; s++) {
                    pr[s] /= sum;
                    const double *vs = c->v + ((int64_t)(b * T + s) * KVH + h / G) * D;
                    for (int32_t i = 0; i < D; i++) ot[i] += pr[s] * vs[i];
                }
            }
}
static double att_loss(void *p) {
    att_ref *c = p;
    att_fwd(c);
    return dot_r(c->o, c->r, (int64_t)c->B * c->T * c->H * c->D);
}

static void test_attention(void **state) {
    (void)state;
    /* B, T, H, KVH, D: GQA with two sequences; one KV head for three; plain multi-head; then
     * the first two with Gemma's scores: a scale of their own, soft-capping at 2 (the scores
     * of these inputs reach about 3: the cap bends them), a window of 3 (Gemma, Mistral) */
    const int32_t   cfg[5][5] = { { 2, 7, 4, 2, 6 }, { 1, 19, 3, 1, 16 }, { 2, 5, 2, 2, 8 }, { 2, 7, 4, 2, 6 },
                                  { 1, 19, 3, 1, 16 } };
    const lb_op_att opt[5]    = { { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }, { 0.3f, 2.0f, 3 }, { 0, 2.0f, 5 } };
    for (int k = 0; k < 5; k++) {
        const int32_t B = cfg[k][0], T = cfg[k][1], H = cfg[k][2], KVH = cfg[k][3], D = cfg[k][4];
        const int64_t nq = (int64_t)B * T * H * D, nk = (int64_t)B * T * KVH * D;
        const int64_t np = (int64_t)B * H * T * T;
        float  *q = frnd(nq, 1.5f), *kk = frnd(nk, 1.5f), *v = frnd(nk, 1.0f), *r = frnd(nq, 1.0f);
        float  *o = fnan(nq), *p = fnan(np);
        att_ref c = { B, T, H, KVH, D, todbl(q, nq), todbl(kk, nk), todbl(v, nk), dnew(nq), dnew(np), r, opt[k] };
        lb_op_attention_fwd(o, p, q, kk, v, B, T, H, KVH, D, &opt[k]);
        att_fwd(&c);
        expect_close("attention o", c.o, o, nq, TOL_FW);
        expect_close("attention p", c.p, p, np, TOL_FW);
        for (int64_t row = 0; row < np / T; row++) /* causal: exact zeros past the diagonal */
            for (int32_t s = (int32_t)(row % T) + 1; s < T; s++) assert_true(p[row * T + s] == 0.0f);
        for (int64_t row = 0; opt[k].window > 0 && row < np / T; row++) /* and before the window */
            for (int32_t s = 0; s <= (int32_t)(row % T) - opt[k].window; s++) assert_true(p[row * T + s] == 0.0f);

        float *dq = fnan(nq), *dk = fnan(nk), *dv = fnan(nk); /* all written */
        lb_op_attention_bwd(dq, dk, dv, r, p, q, kk, v, B, T, H, KVH, D, &opt[k]);
        expect_grad("attention dq", att_loss, &c, c.q, nq, dq, 1.0);
        expect_grad("attention dk", att_loss, &c, c.k, nk, dk, 1.0);
        expect_grad("attention dv", att_loss, &c, c.v, nk, dv, 1.0);
    }
    tfree_all();
}

/* ---- SwiGLU ---- */

typedef struct {
    int64_t      n;
    double      *g, *u, *h;
    const float *r;
} swi_ref;

static double swi_loss(void *p) {
    swi_ref *c = p;
    for (int64_t i = 0; i < c->n; i++) c->h[i] = c->g[i] / (1.0 + exp(-c->g[i])) * c->u[i];
    return dot_r(c->h, c->r, c->n);
}

static void test_swiglu(void **state) {
    (void)state;
    const int64_t n = 37;
    float        *g = frnd(n, 4.0f), *u = frnd(n, 1.0f), *r = frnd(n, 1.0f), *h = fnan(n);
    g[3] = 30.0f, g[11] = -30.0f, g[20] = 95.0f, g[21] = -95.0f; /* saturated sigmoids */
    swi_ref c = { n, todbl(g, n), todbl(u, n), dnew(n), r };
    lb_op_swiglu_fwd(h, g, u, n);
    swi_loss(&c);
    expect_close("swiglu h", c.h, h, n, TOL_FW);
    float *dg = fnan(n), *du = fnan(n); /* written */
    lb_op_swiglu_bwd(dg, du, r, g, u, n);
    expect_grad("swiglu dg", swi_loss, &c, c.g, n, dg, 1.0);
    expect_grad("swiglu du", swi_loss, &c, c.u, n, du, 1.0);
    float *gi = fdup(g, n), *ui = fdup(u, n); /* in place of g and u: the same bits */
    lb_op_swiglu_bwd(gi, ui, r, gi, ui, n);
    assert_memory_equal(gi, dg, (size_t)n * sizeof *dg);
    assert_memory_equal(ui, du, (size_t)n * sizeof *du);
    tfree_all();
}

/* ---- GeGLU (Gemma), biases, soft-capping ---- */

static double geg_loss(void *p) {
    swi_ref *c = p;
    for (int64_t i = 0; i < c->n; i++) {
        const double x = c->g[i];
        c->h[i] = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))) * c->u[i];
    }
    return dot_r(c->h, c->r, c->n);
}

typedef struct {
    int64_t      n, dim;
    double      *y, *b, *x;
    double       cap;
    const float *r;
} cap_ref;

/* y = cap·tanh((x + b)/cap) over rows: the bias and the soft-cap together */
static double cap_loss(void *p) {
    cap_ref *c = p;
    for (int64_t t = 0; t < c->n; t++)
        for (int64_t j = 0; j < c->dim; j++) c->y[t * c->dim + j] = c->cap * tanh((c->x[t * c->dim + j] + c->b[j]) / c->cap);
    return dot_r(c->y, c->r, c->n * c->dim);
}

static void test_geglu_bias_softcap(void **state) {
    (void)state;
    const int64_t n = 37;
    float        *g = frnd(n, 4.0f), *u = frnd(n, 1.0f), *r = frnd(n, 1.0f), *h = fnan(n);
    g[3] = 12.0f, g[11] = -12.0f; /* the tails */
    swi_ref c = { n, todbl(g, n), todbl(u, n), dnew(n), r };
    lb_op_geglu_fwd(h, g, u, n);
    geg_loss(&c);
    expect_close("geglu h", c.h, h, n, TOL_FW);
    float *dg = fnan(n), *du = fnan(n);
    lb_op_geglu_bwd(dg, du, r, g, u, n);
    expect_grad("geglu dg", geg_loss, &c, c.g, n, dg, 1.0);
    expect_grad("geglu du", geg_loss, &c, c.u, n, du, 1.0);

    const int64_t rows = 5, dim = 7;
    float        *x = frnd(rows * dim, 3.0f), *b = frnd(dim, 1.0f), *rr = frnd(rows * dim, 1.0f);
    float        *y = fdup(x, rows * dim), *db = fzero(dim);
    cap_ref       cc = { rows, dim, dnew(rows * dim), todbl(b, dim), todbl(x, rows * dim), 2.5, rr };
    lb_op_bias_fwd(y, b, rows, dim);
    lb_op_softcap_fwd(y, rows * dim, 2.5f);
    cap_loss(&cc);
    expect_close("bias + softcap y", cc.y, y, rows * dim, TOL_FW);
    float *dy = fdup(rr, rows * dim);
    lb_op_softcap_bwd(dy, y, rows * dim, 2.5f); /* now d/d(x + b) */
    lb_op_bias_bwd(db, dy, rows, dim);
    expect_grad("softcap dx", cap_loss, &cc, cc.x, rows * dim, dy, 1.0);
    expect_grad("bias db", cap_loss, &cc, cc.b, dim, db, 1.0);
    tfree_all();
}

/* ---- embedding ---- */

typedef struct {
    int64_t        n, dim;
    double        *emb, *x;
    const int32_t *tok;
    const float   *r;
} emb_ref;

static double emb_loss(void *p) {
    emb_ref *c = p;
    for (int64_t t = 0; t < c->n; t++)
        for (int64_t i = 0; i < c->dim; i++) c->x[t * c->dim + i] = c->emb[c->tok[t] * c->dim + i];
    return dot_r(c->x, c->r, c->n * c->dim);
}

static void test_embed(void **state) {
    (void)state;
    const int32_t V = 11;
    const int64_t n = 12, dims[2] = { 9, 70 }; /* 70: two column tasks in the backward */
    int32_t       tok[12];
    for (int64_t t = 0; t < n; t++) tok[t] = (int32_t)irand(V);
    tok[5] = tok[2] = tok[9]; /* repeated tokens sum their gradients */
    for (int k = 0; k < 2; k++) {
        const int64_t dim = dims[k], ne = V * dim, nx = n * dim;
        float        *emb = frnd(ne, 1.0f), *r = frnd(nx, 1.0f), *x = fnan(nx);
        lb_op_embed_fwd(x, emb, tok, n, dim);
        for (int64_t t = 0; t < n; t++)
            assert_memory_equal(x + t * dim, emb + tok[t] * dim, (size_t)dim * sizeof *x);
        emb_ref c = { n, dim, todbl(emb, ne), dnew(nx), tok, r };
        float  *d0 = frnd(ne, 1.0f), *d = fdup(d0, ne); /* accumulated */
        lb_op_embed_bwd(d, r, tok, n, dim);
        float *g1 = fdiff(d, d0, ne);
        expect_grad("embed demb", emb_loss, &c, c.emb, ne, g1, 1.0);
        lb_op_embed_bwd(d, r, tok, n, dim);
        expect_twice("embed demb twice", g1, d, d0, ne);
    }
    tfree_all();
}

/* ---- losses ---- */

typedef struct {
    int64_t        n;
    int32_t        V;
    double        *x, *te;
    const int32_t *tgt;
} loss_ref;

static double ce_loss(void *p) { /* naive: fine in f64 for logits up to a few hundred */
    const loss_ref *c = p;
    double          L = 0.0;
    for (int64_t t = 0; t < c->n; t++) {
        if (c->tgt[t] < 0) continue;
        double s = 0.0;
        for (int32_t i = 0; i < c->V; i++) s += exp(c->x[t * c->V + i]);
        L += log(s) - c->x[t * c->V + c->tgt[t]];
    }
    return L;
}

static double kl_loss(void *p) {
    const loss_ref *c = p;
    double          L = 0.0;
    for (int64_t t = 0; t < c->n; t++) {
        const double *s = c->x + t * c->V, *te = c->te + t * c->V;
        double        zs = 0.0, zt = 0.0;
        for (int32_t i = 0; i < c->V; i++) zs += exp(s[i]), zt += exp(te[i]);
        for (int32_t i = 0; i < c->V; i++) {
            const double pt = exp(te[i]) / zt;
            L += pt * (log(pt) - log(exp(s[i]) / zs));
        }
    }
    return L;
}

static void test_cross_entropy(void **state) {
    (void)state;
    const int64_t n = 10; /* B*T = 2*5 */
    const int32_t V = 29;
    const float   scale = 0.125f;
    int32_t       tgt[10];
    for (int64_t t = 0; t < n; t++) tgt[t] = (int32_t)irand(V);
    tgt[3] = tgt[7] = -1;
    float *x = frnd(n * V, 3.0f), *d = fnan(n * V);
    for (int32_t i = 0; i < V; i++) x[4 * V + i] += 200.0f; /* overflows a naive f32 softmax */
    loss_ref c = { n, V, todbl(x, n * V), NULL, tgt };
    int64_t  count = -1;
    const double L = lb_op_cross_entropy(d, x, tgt, n, V, scale, &count);
    assert_int_equal(count, 8);
    const double want = ce_loss(&c);
    printf("# cross-entropy loss %.10f want %.10f\n", L, want);
    assert_true(fabs(L - want) <= 1e-6 * fabs(want));
    expect_grad("cross-entropy dlogits", ce_loss, &c, c.x, n * V, d, scale);
    for (int32_t i = 0; i < V; i++) assert_true(d[3 * V + i] == 0.0f && d[7 * V + i] == 0.0f);

    /* no gradient: the same loss; gradient in place of the logits: the same bits */
    int64_t count2 = -1;
    assert_true(lb_op_cross_entropy(NULL, x, tgt, n, V, scale, &count2) == L && count2 == 8);
    float *xa = fdup(x, n * V);
    assert_true(lb_op_cross_entropy(xa, xa, tgt, n, V, scale, &count2) == L);
    assert_memory_equal(xa, d, (size_t)(n * V) * sizeof *d);
    tfree_all();
}

static void test_kl_distill(void **state) {
    (void)state;
    const int64_t n = 6;
    const int32_t V = 23;
    const float   scale = 0.5f;
    float *s = frnd(n * V, 3.0f), *te = frnd(n * V, 2.0f), *d = fnan(n * V);
    for (int32_t i = 0; i < V; i++) te[2 * V + i] += 150.0f, s[5 * V + i] -= 120.0f;
    loss_ref     c    = { n, V, todbl(s, n * V), todbl(te, n * V), NULL };
    const double L    = lb_op_kl_distill(d, s, te, n, V, scale);
    const double want = kl_loss(&c);
    printf("# KL loss %.10f want %.10f\n", L, want);
    assert_true(want > 0.1 && fabs(L - want) <= 1e-6 * want);
    expect_grad("KL dlogits", kl_loss, &c, c.x, n * V, d, scale);

    float *sa = fdup(s, n * V); /* gradient in place of the student's logits */
    assert_true(lb_op_kl_distill(sa, sa, te, n, V, scale) == L);
    assert_memory_equal(sa, d, (size_t)(n * V) * sizeof *d);
    /* a student equal to its teacher: no loss, no gradient */
    assert_true(fabs(lb_op_kl_distill(d, te, te, n, V, scale)) < 1e-9);
    for (int64_t i = 0; i < n * V; i++) assert_true(fabsf(d[i]) < 1e-6f);
    tfree_all();
}

/* ---- threads ---- */

#define NB 80000 /* floats in each input pool */

typedef struct {
    float  *buf[32];
    int64_t len[32];
    double  loss[2];
    int     n;
} op_outputs;

static float *out_buf(op_outputs *o, int64_t len) {
    o->len[o->n] = len;
    return o->buf[o->n++] = fzero(len);
}

/* Every op on sizes that split into several tasks above the one-thread threshold. */
static void run_all(op_outputs *o, const float *a, const float *b, const float *c,
                    const int32_t *tok, const int32_t *tgt, const float *cs, const float *sn) {
    { /* linear: n 100, in 64, out 96 */
        float *y = out_buf(o, 100 * 96), *dx = out_buf(o, 100 * 64), *dw = out_buf(o, 96 * 64);
        lb_op_linear_fwd(y, a, b, 100, 64, 96);
        lb_op_linear_bwd(dx, dw, c, a, b, 100, 64, 96, false);
    }
    { /* rmsnorm: 256 rows of 160 */
        float *y = out_buf(o, 256 * 160), *rstd = out_buf(o, 256);
        float *dx = out_buf(o, 256 * 160), *dw = out_buf(o, 160);
        lb_op_rmsnorm_fwd(y, rstd, a, b, 256, 160, 1e-5f);
        lb_op_rmsnorm_bwd(dx, dw, c, a, b, rstd, 256, 160);
    }
    { /* rope: 8 sequences of 32 tokens, 5 heads of 32 */
        float *y = out_buf(o, 256 * 160), *dx = out_buf(o, 256 * 160);
        memcpy(y, a, 256 * 160 * sizeof *y);
        memcpy(dx, c, 256 * 160 * sizeof *dx);
        lb_op_rope_fwd(y, 256, 32, 5, 32, cs, sn);
        lb_op_rope_bwd(dx, 256, 32, 5, 32, cs, sn);
    }
    { /* attention: B 2, T 33, H 4, KVH 2, D 16 */
        const int64_t nq = 2 * 33 * 64, nk = 2 * 33 * 32;
        float *out = out_buf(o, nq), *p = out_buf(o, 2 * 4 * 33 * 33);
        float *dq = out_buf(o, nq), *dk = out_buf(o, nk), *dv = out_buf(o, nk);
        lb_op_attention_fwd(out, p, a, b, c, 2, 33, 4, 2, 16, NULL);
        lb_op_attention_bwd(dq, dk, dv, a + 20000, p, a, b, c, 2, 33, 4, 2, 16, NULL);
    }
    { /* swiglu: 40000 values */
        float *h = out_buf(o, 40000), *dg = out_buf(o, 40000), *du = out_buf(o, 40000);
        lb_op_swiglu_fwd(h, a, b, 40000);
        lb_op_swiglu_bwd(dg, du, c, a, b, 40000);
    }
    { /* embedding: 256 tokens of a vocabulary of 50, dim 160 */
        float *x = out_buf(o, 256 * 160), *demb = out_buf(o, 50 * 160);
        lb_op_embed_fwd(x, b, tok, 256, 160);
        lb_op_embed_bwd(demb, c, tok, 256, 160);
    }
    { /* losses: 64 rows of 600 logits */
        float  *dce = out_buf(o, 64 * 600), *dkl = out_buf(o, 64 * 600);
        int64_t count;
        o->loss[0] = lb_op_cross_entropy(dce, a, tgt, 64, 600, 0.01f, &count);
        o->loss[1] = lb_op_kl_distill(dkl, a, b, 64, 600, 0.01f);
    }
}

static void test_threads(void **state) {
    (void)state;
    float  *a = frnd(NB, 2.0f), *b = frnd(NB, 1.0f), *c = frnd(NB, 1.0f);
    float  *cs = fzero(32 * 16), *sn = fzero(32 * 16);
    int32_t tok[256], tgt[64];
    rope_tables(cs, sn, 32, 32);
    for (int i = 0; i < 256; i++) tok[i] = (int32_t)irand(50);
    for (int i = 0; i < 64; i++) tgt[i] = i % 9 == 4 ? -1 : (int32_t)irand(600);
    op_outputs o1 = { .n = 0 }, o2 = { .n = 0 };
    lb_threads_set(1);
    run_all(&o1, a, b, c, tok, tgt, cs, sn);
    lb_threads_set(2);
    run_all(&o2, a, b, c, tok, tgt, cs, sn);
    lb_threads_set(0);
    assert_int_equal(o1.n, o2.n);
    for (int i = 0; i < o1.n; i++) assert_memory_equal(o1.buf[i], o2.buf[i], (size_t)o1.len[i] * sizeof(float));
    assert_memory_equal(o1.loss, o2.loss, sizeof o1.loss);
    printf("# %d outputs bit-identical with 1 and 2 threads\n", o1.n);
    tfree_all();
}

int main(void) {
    g_rng = g_seed;
    printf("# seed %#llx\n", (unsigned long long)g_seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope),          cmocka_unit_test(test_attention),
        cmocka_unit_test(test_swiglu),        cmocka_unit_test(test_geglu_bias_softcap),
        cmocka_unit_test(test_embed),
        cmocka_unit_test(test_cross_entropy), cmocka_unit_test(test_kl_distill),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
