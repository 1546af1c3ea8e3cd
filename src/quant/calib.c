/* Calibration windows and activation statistics, gathered by a forward hook. Hessians are
 * accumulated a window at a time: X^T X in f32 (gram.c), added into f64. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/dist.h"
#include "core/fail.h"
#include "gram.h"
#include "lowbit/actq.h"
#include "lowbit/calib.h"

#define N_KINDS LB_INPUT_COUNT /* inputs per layer: attn in, attn out, ffn in, ffn down in */

/* Inputs with statistics per slice of a stacked tensor, or inside a family's attention, by the
 * role the forward hook reports them with: a mixture of experts' experts (each expert's input
 * to its gate and up; each one's down input), MLA's per-head inputs to k_b and v_b, and its
 * q_b's input (one slice). */
#define N_STACKS 5
static const lb_tensor_role k_stack_roles[N_STACKS] = { LB_ROLE_FFN_GATE_EXPS, LB_ROLE_FFN_DOWN_EXPS, LB_ROLE_ATTN_K_B,
                                                        LB_ROLE_ATTN_V_B, LB_ROLE_ATTN_Q_B };

struct lb_calib {
    const lb_model *m;
    int32_t         n_layers;
    lb_act_stats   *stats;   /* n_layers * N_KINDS + 1 (the output head), then per layer each
                                stack kind's slices (stack_kinds) */
    int32_t         n_stats;
    int32_t         n_slice[N_STACKS], per_layer; /* slices of each stack kind a layer, their sum */
    bool            hessians;
    bool            bf16;    /* the Gram products on bf16 activations (lb_calib_set_bf16) */
    bool            oom;     /* a hook's Gram product found no memory: the pass fails */
    int32_t         sel_layer;
    lb_tensor_role  sel_role;
    int32_t         sel_e0, sel_e1; /* an expert role's selected experts [e0, e1) */
    const float    *ref_x;   /* the cross pass: the reference's X of the window, [T, n] */
    double         *cross;   /* and C += ref_x^T X */
    const float    *prior_w; /* a prior pass: each expert's weight a token (lb_calib_run_states_prior) */
    /* During a pass, each window's statistics wait in `win` (win_len doubles) until the window
     * is whole, then join the sums (fold_step): so the sums take the windows whole and in order
     * on any number of ranks. For each selected input i, at win_at[i] (-1: not selected): the
     * tokens, the prior's weight, then sum x^2 [n], sum |x| [n], max |x| [n]. Under MPI a step
     * runs one window on each rank, and every rank folds all of them, in window order. */
    double         *win, *win_all; /* [win_len], [ranks * win_len] */
    size_t          win_len;
    int64_t        *win_at;  /* [n_stats] */
    /* The matrices: a hook call's X^T X (f32, as gram.c makes it) goes into the f64 sums at
     * once, tile by tile (lb_gram_*_add). Under MPI they wait for the step's end like the vectors
     * (per_window): each selected Hessian's at mat_at[i] of mat (upper triangle), the cross
     * pass's ref_x^T X in cd; exchange_fold folds them in window order.
     * The forward calls the hook once per input and window, so both ways add the same terms. */
    bool            per_window;
    float          *mat, *cd;
    int64_t        *mat_at;  /* [n_stats], -1: none */
    float          *sbuf, *xbuf; /* a band of the matrices' rows out to the ranks, and in (MPI) */
    size_t          band;    /* floats: the most one exchange round carries */
};

/* the statistics' kind: the block input the role reads (lb_block_input_of, from the table) */
static int kind_of(lb_tensor_role r) {
    return lb_block_input_of(r);
}

/* the stack kind of a role (the input it reads, or the hook's name for that input); -1: none */
static int stack_kind(lb_tensor_role r) {
    const lb_slot *s = lb_slot_of(r);
    for (int k = 0; s && k < N_STACKS; k++)
        if (s->input == k_stack_roles[k] || r == k_stack_roles[k]) return k;
    return -1;
}

/* a kind with one slice (q_b's input) is its slice 0 whatever the expert asked */
static lb_act_stats *find_x(const lb_calib *c, int32_t layer, lb_tensor_role role, int32_t expert) {
    const int xk = stack_kind(role);
    if (xk >= 0) {
        if (c->n_slice[xk] == 1) expert = 0;
        if (layer < 0 || layer >= c->n_layers || expert < 0 || expert >= c->n_slice[xk]) return NULL;
        size_t at = (size_t)(c->n_layers * N_KINDS + 1) + (size_t)layer * (size_t)c->per_layer + (size_t)expert;
        for (int k = 0; k < xk; k++) at += (size_t)c->n_slice[k];
        return &c->stats[at];
    }
    if (role == LB_ROLE_OUTPUT || (role == LB_ROLE_TOKEN_EMBD && c->m->tied_output))
        return &c->stats[c->n_layers * N_KINDS];
    const int k = kind_of(role);
    if (k < 0 || layer < 0 || layer >= c->n_layers) return NULL;
    return &c->stats[layer * N_KINDS + k];
}

static lb_act_stats *find(const lb_calib *c, int32_t layer, lb_tensor_role role) {
    return find_x(c, layer, role, -1);
}

const lb_act_stats *lb_calib_get(const lb_calib *c, int32_t layer, lb_tensor_role role) {
    return find(c, layer, role);
}

const lb_act_stats *lb_calib_get_expert(const lb_calib *c, int32_t layer, lb_tensor_role role, int32_t expert) {
    return find_x(c, layer, role, expert);
}

/* whether s is what the selection collects */
static bool selected(const lb_calib *c, const lb_act_stats *s) {
    if (c->sel_layer == LB_CALIB_ALL) return true;
    if (stack_kind(c->sel_role) >= 0) {
        const int32_t e = s->expert < 0 ? 0 : s->expert;
        return e >= c->sel_e0 && e < c->sel_e1 && s == find_x(c, c->sel_layer, c->sel_role, e);
    }
    return s == find(c, c->sel_layer, c->sel_role);
}

lb_status lb_calib_create(lb_calib **out, const lb_model *m, bool hessians, lb_error *err) {
    *out        = NULL;
    lb_calib *c = calloc(1, sizeof *c);
    LB_RETURN_IF(!c, err, LB_ERR_NOMEM, "out of memory");
    const lb_llama_config *cfg = &m->cfg;
    const int32_t          dense = cfg->n_layers * N_KINDS + 1;
    const bool             mla   = m->arch && m->arch->ops.mla;
    const int32_t          n_slice[N_STACKS] = { cfg->n_expert, cfg->n_expert, mla ? cfg->n_heads : 0,
                                                 mla ? cfg->n_heads : 0, mla && cfg->n_lora_q > 0 ? 1 : 0 };
    const int32_t          width[N_STACKS]   = { cfg->n_embd, (int32_t)lb_model_dim(m, LB_DIM_FX),
                                                 (int32_t)lb_model_dim(m, LB_DIM_DN), cfg->n_lora_kv, cfg->n_lora_q };
    c->m         = m;
    c->n_layers  = cfg->n_layers;
    c->per_layer = 0;
    for (int k = 0; k < N_STACKS; k++) c->per_layer += c->n_slice[k] = n_slice[k];
    c->n_stats   = dense + cfg->n_layers * c->per_layer;
    c->hessians  = hessians;
    c->sel_layer = LB_CALIB_ALL;
    c->stats     = calloc((size_t)c->n_stats, sizeof *c->stats);
    /* a mixture of experts' FFN-down input is its shared expert's (DeepSeek's first layers: dense) */
    const int32_t dims[N_KINDS] = { cfg->n_embd, (int32_t)lb_model_dim(m, LB_DIM_QV), cfg->n_embd, cfg->n_ff };
    static const lb_tensor_role roles[N_KINDS] = { LB_ROLE_ATTN_Q, LB_ROLE_ATTN_OUTPUT,
                                                   LB_ROLE_FFN_GATE, LB_ROLE_FFN_DOWN };
    bool    ok   = c->stats != NULL;
    for (int32_t i = 0; ok && i < c->n_stats; i++) {
        lb_act_stats *s = &c->stats[i];
        const bool    o = i == dense - 1;
        s->expert  = -1;
        if (i >= dense) { /* layer l's slice e of stack kind k */
            int32_t j = (i - dense) % c->per_layer, k = 0;
            while (j >= c->n_slice[k]) j -= c->n_slice[k++];
            s->layer  = (i - dense) / c->per_layer;
            s->expert = c->n_slice[k] == 1 ? -1 : j;
            s->role   = k_stack_roles[k];
            s->n      = width[k];
        } else {
            s->layer = o ? -1 : i / N_KINDS;
            s->role  = o ? LB_ROLE_OUTPUT : roles[i % N_KINDS];
            s->n     = o ? cfg->n_embd : dims[i % N_KINDS];
            if (!o && s->role == LB_ROLE_FFN_DOWN && cfg->n_ff_shexp > 0 &&
                lb_layer_use(m->arch, cfg, s->layer, LB_ROLE_FFN_DOWN) == LB_USE_NONE)
                s->n = cfg->n_ff_shexp;
        }
        s->sum_x2  = calloc((size_t)s->n, sizeof *s->sum_x2);
        s->sum_abs = calloc((size_t)s->n, sizeof *s->sum_abs);
        s->max_abs = calloc((size_t)s->n, sizeof *s->max_abs);
        ok = s->sum_x2 && s->sum_abs && s->max_abs; /* H: when cleared (lb_calib_clear) */
    }
    if (!ok) {
        lb_calib_free(c);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory for calibration statistics");
    }
    *out = c;
    return LB_OK;
}

void lb_calib_free(lb_calib *c) {
    if (!c) return;
    for (int32_t i = 0; c->stats && i < c->n_stats; i++) {
        free(c->stats[i].sum_x2);
        free(c->stats[i].sum_abs);
        free(c->stats[i].max_abs);
        free(c->stats[i].H);
    }
    free(c->stats);
    free(c->win);
    free(c->win_all);
    free(c->win_at);
    free(c->mat_at);
    free(c);
}

void lb_calib_set_bf16(lb_calib *c, bool bf16) { c->bf16 = bf16; }

void lb_calib_select(lb_calib *c, int32_t layer, lb_tensor_role role) {
    c->sel_layer = layer;
    c->sel_role  = role;
    const int xk = stack_kind(role);
    c->sel_e0 = 0, c->sel_e1 = xk >= 0 ? c->n_slice[xk] : 0;
}

void lb_calib_select_experts(lb_calib *c, int32_t layer, lb_tensor_role role, int32_t e0, int32_t e1) {
    lb_calib_select(c, layer, role);
    c->sel_e0 = e0, c->sel_e1 = e1;
}

static bool clear_one(lb_calib *c, lb_act_stats *s) {
    if (c->hessians && !s->H && !(s->H = malloc((size_t)s->n * (size_t)s->n * sizeof *s->H))) return false;

    s->count = 0;
    s->prior = 0;
    memset(s->sum_x2, 0, (size_t)s->n * sizeof *s->sum_x2);
    memset(s->sum_abs, 0, (size_t)s->n * sizeof *s->sum_abs);
    memset(s->max_abs, 0, (size_t)s->n * sizeof *s->max_abs);
    if (s->H) memset(s->H, 0, (size_t)s->n * (size_t)s->n * sizeof *s->H);
    return true;
}

lb_status lb_calib_clear(lb_calib *c, int32_t layer, lb_tensor_role role, lb_error *err) {
    bool ok = true;
    if (layer == LB_CALIB_ALL) {
        for (int32_t i = 0; i < c->n_stats; i++) ok = clear_one(c, &c->stats[i]) && ok;
    } else if (stack_kind(role) >= 0) { /* the selected slices' */
        for (int32_t e = c->sel_e0; e < c->sel_e1; e++) {
            lb_act_stats *s = find_x(c, layer, role, e);
            if (s) ok = clear_one(c, s) && ok;
        }
    } else {
        lb_act_stats *s = find(c, layer, role);
        if (s) ok = clear_one(c, s);
    }
    LB_RETURN_IF(!ok, err, LB_ERR_NOMEM, "out of memory for the calibration Hessians");
    return LB_OK;
}

void lb_calib_release(lb_calib *c, int32_t layer, lb_tensor_role role) {
    const int xk = stack_kind(role);
    for (int32_t e = xk >= 0 ? 0 : -1; e < (xk >= 0 ? c->n_slice[xk] : 0); e++) {
        lb_act_stats *s = find_x(c, layer, role, e);
        if (!s) continue;
        free(s->H);
        s->H = NULL;
    }
}

/* The floats an exchange round carries, at most (plus a row per rank): 2^26 (256 MB), or
 * LOWBIT_MPI_BAND_MB's (its buffers are two such bands; the tests make it small) */
static size_t band_floats(void) {
    const char *e = getenv("LOWBIT_MPI_BAND_MB");
    const long  mb = e ? strtol(e, NULL, 10) : 0;
    return mb > 0 ? (size_t)mb << 18 : (size_t)1 << 26;
}

/* A pass's buffers: each window's statistics (win) and, under MPI, matrices (mat; cd for the
 * cross pass: n^2 when cross); only the inputs of `layer` (a pass through one layer's
 * states: -1 the head's) or, with LB_CALIB_ALL, every selected one. */
static lb_status pass_begin(lb_calib *c, size_t cross, int32_t layer, lb_error *err) {
    const int R = lb_dist_size();
    size_t    len = 0, mats = 0, widest = cross, wide_n = (size_t)sqrt((double)cross);
    c->oom        = false;
    if (!c->win_at) c->win_at = malloc((size_t)c->n_stats * sizeof *c->win_at);
    if (!c->mat_at) c->mat_at = malloc((size_t)c->n_stats * sizeof *c->mat_at);
    LB_RETURN_IF(!c->win_at || !c->mat_at, err, LB_ERR_NOMEM, "out of memory");
    c->per_window = R > 1;
    for (int32_t i = 0; i < c->n_stats; i++) {
        const lb_act_stats *s  = &c->stats[i];
        const size_t        nn = (size_t)s->n * (size_t)s->n;
        const bool          on = selected(c, s) && (layer == LB_CALIB_ALL || s->layer == layer);
        c->win_at[i] = on ? (int64_t)len : -1;
        c->mat_at[i] = on && s->H ? (c->per_window ? (int64_t)mats : 0) : -1;
        len += on ? 2 + 3 * (size_t)s->n : 0;
        mats += on && s->H ? nn : 0;
        if (on && s->H && nn > widest) widest = nn, wide_n = (size_t)s->n;
    }
    /* a round's rows: a band of every rank's slice, at most BAND_FLOATS and a row per rank */
    const size_t B = band_floats();
    c->band        = widest ? (widest < B ? widest : B) + 2 * (size_t)R * wide_n : 0;
    c->win_len = len;
    c->win     = calloc(len ? len : 1, sizeof *c->win);
    c->win_all = R > 1 ? malloc((size_t)R * (len ? len : 1) * sizeof *c->win_all) : NULL;
    c->mat     = c->per_window && mats ? calloc(mats, sizeof *c->mat) : NULL;
    c->cd      = cross && c->per_window ? calloc(cross, sizeof *c->cd) : NULL;
    c->sbuf    = c->per_window && widest ? malloc(c->band * sizeof *c->sbuf) : NULL;
    c->xbuf    = c->per_window && widest ? malloc(c->band * sizeof *c->xbuf) : NULL;
    LB_RETURN_IF(!c->win || (R > 1 && !c->win_all) || (c->per_window && mats && !c->mat) ||
                 (c->per_window && cross && !c->cd) || (c->per_window && widest && (!c->sbuf || !c->xbuf)),
                 err, LB_ERR_NOMEM, "out of memory for the calibration statistics");
    return LB_OK;
}

static void pass_end(lb_calib *c) {
    free(c->win), free(c->win_all), free(c->mat), free(c->cd), free(c->sbuf), free(c->xbuf);
    c->win = c->win_all = NULL;
    c->mat = c->cd = c->sbuf = c->xbuf = NULL;
}

/* the floats of rows [a, z) of an n x n matrix: of its upper triangle (upper) or whole */
static double rows_area(int32_t n, bool upper, int32_t a, int32_t z) {
    const double k = (double)(z - a);
    return upper ? k * n - k * (a + z - 1) / 2 : k * n;
}

/* the first row i of [lo, hi) whose rows [lo, i) hold want floats or more (hi when none) */
static int32_t area_bound(int32_t n, bool upper, int32_t lo, int32_t hi, double want) {
    int32_t i = lo;
    while (i < hi && rows_area(n, upper, lo, i) + 0.5 < want) i++;
    return i;
}

/* Rank q's rows [*lo, *hi) of an n x n matrix: the upper triangle (upper) or all of it, in
 * slices of about equal area */
static void row_slice(int32_t n, bool upper, int q, int R, int32_t *lo, int32_t *hi) {
    const double total = rows_area(n, upper, 0, n);
    *lo = area_bound(n, upper, 0, n, total * q / R);
    *hi = q + 1 == R ? n : area_bound(n, upper, 0, n, total * (q + 1) / R);
}

/* Band b of `bands` of rank q's slice: its rows [*a, *z), a share of the slice's area each */
static void band_rows(int32_t n, bool upper, int q, int R, int32_t b, int32_t bands, int32_t *a, int32_t *z) {
    int32_t lo, hi;
    row_slice(n, upper, q, R, &lo, &hi);
    const double area = rows_area(n, upper, lo, hi);
    *a = area_bound(n, upper, lo, hi, area * b / bands);
    *z = b + 1 == bands ? hi : area_bound(n, upper, lo, hi, area * (b + 1) / bands);
}

/* Under MPI, the step's f32 matrix P (n x n; upper: its upper triangle) into its f64 sum S,
 * then P zeroed: each rank folds its own rows of S (row_slice). Every rank sends each one its
 * rows of P and folds what it receives in rank order, which is window order; share_matrix
 * gives every rank the whole of S after the pass. The rows go in bands (a share of each
 * slice a round), so no round carries more than about band_floats(): MPI's counts are ints. */
static lb_status exchange_fold(lb_calib *c, float *P, double *S, int32_t n, bool upper, lb_error *err) {
    const int     R = lb_dist_size(), me = lb_dist_rank();
    const int32_t bands = (int32_t)ceil(rows_area(n, upper, 0, n) / (double)band_floats()); /* the same on every rank */
    size_t       *cnt = malloc(2 * (size_t)R * sizeof *cnt), *rcnt;
    lb_status     st  = LB_OK;
    LB_RETURN_IF(!cnt, err, LB_ERR_NOMEM, "out of memory");
    rcnt = cnt + R;
    for (int32_t b = 0; b < bands && st == LB_OK; b++) {
        int32_t a, z, qa, qz;
        size_t  at = 0;
        band_rows(n, upper, me, R, b, bands, &a, &z);
        const size_t mine = (size_t)rows_area(n, upper, a, z);
        for (int q = 0; q < R; q++) { /* rank q's band of rows of P, packed */
            band_rows(n, upper, q, R, b, bands, &qa, &qz);
            cnt[q]  = 0;
            rcnt[q] = mine;
            for (int32_t i = qa; i < qz; i++) {
                const size_t k = (size_t)(upper ? n - i : n);
                memcpy(c->sbuf + at, P + (size_t)i * (size_t)n + (size_t)(upper ? i : 0), k * sizeof *P);
                at += k, cnt[q] += k;
            }
        }
        st = lb_dist_alltoallv(c->sbuf, cnt, c->xbuf, rcnt, err);
        for (int r = 0; st == LB_OK && r < R; r++) {
            const float *v = c->xbuf + (size_t)r * mine;
            for (int32_t i = a; i < z; i++) {
                double *h = S + (size_t)i * (size_t)n;
                for (int32_t j = upper ? i : 0; j < n; j++) h[j] += *v++;
            }
        }
    }
    memset(P, 0, (size_t)n * (size_t)n * sizeof *P);
    free(cnt);
    return st;
}

/* after a pass under MPI: each rank's rows of S to every rank */
static lb_status share_matrix(double *S, int32_t n, bool upper, lb_error *err) {
    const int R = lb_dist_size();
    if (R == 1) return LB_OK;
    size_t *sizes = malloc((size_t)R * sizeof *sizes);
    LB_RETURN_IF(!sizes, err, LB_ERR_NOMEM, "out of memory");
    int32_t lo, hi;
    for (int q = 0; q < R; q++) {
        row_slice(n, upper, q, R, &lo, &hi);
        sizes[q] = (size_t)(hi - lo) * (size_t)n * sizeof *S;
    }
    row_slice(n, upper, lb_dist_rank(), R, &lo, &hi);
    const lb_status st = lb_dist_allgatherv(S + (size_t)lo * (size_t)n, sizes, S, err);
    free(sizes);
    return st;
}

/* every selected Hessian whole on every rank */
static lb_status share_hessians(lb_calib *c, lb_error *err) {
    for (int32_t i = 0; c->mat_at && i < c->n_stats; i++)
        if (c->mat_at[i] >= 0) LB_TRY_RET(share_matrix(c->stats[i].H, c->stats[i].n, true, err));
    return LB_OK;
}

/* the selected input s's window statistics */
static double *win_of(const lb_calib *c, const lb_act_stats *s) {
    return c->win + c->win_at[s - c->stats];
}

/* the step's windows (one on each rank) into the sums, in window order */
static lb_status fold_step(lb_calib *c, lb_error *err) {
    const int     R   = lb_dist_size();
    const double *src = c->win;
    if (R > 1) {
        LB_TRY_RET(lb_dist_allgather(c->win, c->win_len * sizeof *c->win, c->win_all, err));
        src = c->win_all;
    }
    for (int r = 0; r < R; r++)
        for (int32_t i = 0; i < c->n_stats; i++) {
            if (c->win_at[i] < 0) continue;
            lb_act_stats *s = &c->stats[i];
            const double *v = src + (size_t)r * c->win_len + c->win_at[i], *x2 = v + 2, *ab = x2 + s->n, *mx = ab + s->n;
            s->count += (int64_t)v[0];
            s->prior += v[1];
            for (int32_t j = 0; j < s->n; j++) {
                s->sum_x2[j] += x2[j];
                s->sum_abs[j] += ab[j];
                if ((float)mx[j] > s->max_abs[j]) s->max_abs[j] = (float)mx[j];
            }
        }
    memset(c->win, 0, c->win_len * sizeof *c->win);
    for (int32_t i = 0; c->per_window && i < c->n_stats; i++)
        if (c->mat_at[i] >= 0) LB_TRY_RET(exchange_fold(c, c->mat + c->mat_at[i], c->stats[i].H, c->stats[i].n, true, err));
    return LB_OK;
}

/* s's statistics += w times those of the rows x [T, n] (w = 1: tokens it saw; count apart);
 * max_abs takes the rows' largest whatever w */
static void add_rows(lb_calib *c, lb_act_stats *s, const float *x, int32_t T, int32_t n, float w) {
    double *x2 = win_of(c, s) + 2, *ab = x2 + n, *mx = ab + n;
#pragma omp parallel for schedule(static) if (n >= 512)
    for (int32_t j0 = 0; j0 < n; j0 += 256) { /* columns apart: each one's sums in token order */
        const int32_t j1 = n - j0 < 256 ? n : j0 + 256;
        for (int32_t t = 0; t < T; t++) {
            const float *r = x + (size_t)t * (size_t)n;
            for (int32_t j = j0; j < j1; j++) {
                const float a = fabsf(r[j]);
                x2[j] += (double)w * ((double)r[j] * r[j]);
                ab[j] += w * a;
                if (a > mx[j]) mx[j] = a;
            }
        }
    }
    if (s->H && c->per_window) /* upper triangle of X^T X (row-major) into the window's */
        c->oom |= !lb_gram_upper(n, T, w, x, 1.0f, c->mat + c->mat_at[s - c->stats], c->bf16);
    else if (s->H) /* into the f64 sum's; the pass mirrors the sums into their lower ones at the end */
        c->oom |= !lb_gram_upper_add(n, T, w, x, s->H, c->bf16);
}

static void hook(void *user, int32_t layer, lb_tensor_role role, int32_t expert, const float *x, int32_t T, int32_t n) {
    lb_calib     *c = user;
    lb_act_stats *s = find_x(c, layer, role, expert);
    if (!s || s->n != n || c->win_at[s - c->stats] < 0) return; /* not what the pass collects */
    add_rows(c, s, x, T, n, 1.0f);
    if (c->cross && c->ref_x && c->per_window) /* C += X_ref^T X, the window's */
        c->oom |= !lb_gram_cross(n, T, c->ref_x, x, 1.0f, c->cd, c->bf16);
    else if (c->cross && c->ref_x)
        c->oom |= !lb_gram_cross_add(n, T, c->ref_x, x, c->cross, c->bf16);
    win_of(c, s)[0] += T;
}

typedef struct {
    const lb_calib *c;
    float          *x; /* [T, n] */
    bool            seen;
} ref_capture;

static void ref_hook(void *user, int32_t layer, lb_tensor_role role, int32_t expert, const float *x, int32_t T, int32_t n) {
    ref_capture        *r = user;
    if (expert >= 0) return; /* the cross term is for a block's shared inputs */
    const lb_act_stats *s = find(r->c, layer, role);
    if (!s || s->n != n || s != find(r->c, r->c->sel_layer, r->c->sel_role)) return;
    memcpy(r->x, x, (size_t)T * (size_t)n * sizeof *x);
    r->seen = true;
}

/* the Hessians' lower triangles: the upper ones (the hook adds upper triangles only) */
static void mirror_hessians(lb_calib *c) {
    for (int32_t k = 0; k < c->n_stats; k++) {
        lb_act_stats *s = &c->stats[k];
        if (!s->H) continue;
        for (int32_t i = 1; i < s->n; i++)
            for (int32_t j = 0; j < i; j++)
                s->H[(size_t)i * (size_t)s->n + (size_t)j] = s->H[(size_t)j * (size_t)s->n + (size_t)i];
    }
}

/* A layer's input one pass keeps for the next (lb_calib_states_keep_att, _keep_mid): each
 * window's input of `role` [n_ctx, w] where the states are (RAM or their spill file), kept at
 * `layer` (-1: none) */
typedef struct {
    bool           on;
    lb_tensor_role role; /* LB_ROLE_ATTN_OUTPUT (the attention's output) or LB_ROLE_FFN_DOWN */
    float         *x;
    size_t         mapped; /* bytes when a file mapping */
    int32_t        w, layer;
} kept_io;

/* where a calibration pass takes each window from: its tokens, or its residual stream at the
 * input of layer `first` (lb_calib_states) */
typedef struct {
    const int32_t *windows;
    const float   *states;
    bool           ffn;            /* the states are layer first's FFN input stream */
    const kept_io *from;           /* or with each window's kept input of that layer: from there */
    int32_t        first, n_ctx, n_embd;
    int32_t        n_windows;      /* the windows it holds */
    int32_t        n_steps;        /* the pass's steps, as many on every rank */
    int32_t        stride, offset; /* step k runs its window k * stride + offset, when it holds one */
} source;

/* all of windows [n_windows], rank r of R taking windows r, r + R, ... */
static source tokens_source(const int32_t *windows, int32_t n_windows, int32_t n_ctx) {
    const int R = lb_dist_size();
    return (source){ windows, NULL, false, NULL, 0, n_ctx, 0, n_windows, (n_windows + R - 1) / R, R, lb_dist_rank() };
}

static lb_status run_window(lb_context *ctx, const source *src, int32_t w, lb_error *err) {
    const float *logits;
    lb_context_reset(ctx);
    const float *x = src->states ? src->states + (size_t)w * (size_t)src->n_ctx * (size_t)src->n_embd : NULL;
    if (src->from) {
        const float *k = src->from->x + (size_t)w * (size_t)src->n_ctx * (size_t)src->from->w;
        return (src->from->role == LB_ROLE_FFN_DOWN ? lb_forward_from_down : lb_forward_from_att)(ctx, src->first, x, k,
                                                                                                  src->n_ctx, &logits, err);
    }
    if (src->states) return (src->ffn ? lb_forward_from_ffn : lb_forward_from)(ctx, src->first, x, src->n_ctx, &logits, err);
    return lb_forward(ctx, src->windows + (size_t)w * (size_t)src->n_ctx, src->n_ctx, &logits, err);
}

/* one input selected: the passes stop once they have it (the hook's name for it) */
static lb_tensor_role stop_role(const lb_calib *c) {
    if (c->sel_layer == LB_CALIB_ALL) return LB_ROLE_COUNT;
    if (c->sel_role == LB_ROLE_OUTPUT || c->sel_role == LB_ROLE_TOKEN_EMBD) return LB_ROLE_OUTPUT;
    const int xk = stack_kind(c->sel_role);
    if (xk >= 0) return k_stack_roles[xk];
    const int k = kind_of(c->sel_role);
    return k < 0 ? LB_ROLE_COUNT : lb_block_input_role((lb_block_input)k);
}

/* the rare-expert prior's probe: every token of the pass into expert `expert`, weighted */
static void prior_hook(void *user, int32_t layer, lb_tensor_role role, int32_t expert, const float *x, int32_t T,
                       int32_t n) {
    lb_calib     *c = user;
    lb_act_stats *s = find_x(c, layer, role, expert);
    if (!s || s->n != n || c->win_at[s - c->stats] < 0 || !(c->prior_w[expert] > 0)) return;
    add_rows(c, s, x, T, n, c->prior_w[expert]);
    win_of(c, s)[1] += (double)c->prior_w[expert] * T;
}

static lb_status gram_failed(lb_error *err) {
    return lb_fail(err, LB_ERR_NOMEM, "calib: out of memory for the Hessians' products");
}

/* each window's residual where its pass stopped, into the states it came from */
static void keep_residual(float *keep, const source *src, int32_t w, const lb_context *ctx) {
    const size_t len = (size_t)src->n_ctx * (size_t)src->n_embd;
    memcpy(keep + (size_t)w * len, lb_context_residual(ctx), len * sizeof *keep);
}

/* each window's input where its pass stopped, into the states' kept ones: false when the
 * context cannot start there again (lb_context_att_out, lb_context_ffn_mid) */
static bool keep_window(kept_io *k, const source *src, int32_t w, const lb_context *ctx) {
    const float *a   = k->role == LB_ROLE_FFN_DOWN ? lb_context_ffn_mid(ctx) : lb_context_att_out(ctx);
    const size_t len = (size_t)src->n_ctx * (size_t)k->w;
    if (a) memcpy(k->x + (size_t)w * len, a, len * sizeof *a);
    return a != NULL;
}

/* the windows through ctx, the hook accumulating the selection; with probe (n_expert flags):
 * a probe pass instead, prior_hook taking every token into the flagged experts; keep: each
 * window's residual where it stopped goes back into its states */
static lb_status run_pass(lb_calib *c, lb_context *ctx, const source *src, const uint8_t *probe, float *keep,
                          kept_io *keep_a, bool *kept_a, lb_error *err) {
    const int32_t only = !src->states ? LB_CALIB_ALL : src->first < c->n_layers ? src->first : -1;
    lb_status     st   = pass_begin(c, 0, only, err);
    if (probe) lb_context_set_probe(ctx, prior_hook, c, probe);
    else lb_context_set_hook(ctx, hook, c);
    lb_context_set_stop(ctx, stop_role(c));
    for (int32_t k = 0; k < src->n_steps && st == LB_OK; k++) {
        const int32_t w = k * src->stride + src->offset;
        lb_status sw = w < src->n_windows ? run_window(ctx, src, w, err) : LB_OK;
        if (sw == LB_OK && keep && w < src->n_windows) keep_residual(keep, src, w, ctx);
        if (sw == LB_OK && keep_a && w < src->n_windows) *kept_a &= keep_window(keep_a, src, w, ctx);
        if (sw == LB_OK && c->oom) sw = gram_failed(err);
        st = lb_dist_agree(sw, err);
        if (st == LB_OK) st = fold_step(c, err);
    }
    lb_context_set_stop(ctx, LB_ROLE_COUNT);
    lb_context_set_hook(ctx, NULL, NULL);
    lb_context_set_probe(ctx, NULL, NULL, NULL);
    if (st == LB_OK) st = share_hessians(c, err);
    pass_end(c);
    mirror_hessians(c);
    return st;
}

static lb_status run_plain(lb_calib *c, lb_context *ctx, const source *src, lb_error *err) {
    return run_pass(c, ctx, src, NULL, NULL, NULL, NULL, err);
}

/* out's sums for one window's X_ref [T, n] into slots[0..n_groups): each group's rows' squares
 * (lb_gram_out_sq_add) summed in row order; false: out of memory */
static bool ref_rows_window(const lb_calib *c, const lb_calib_ref_rows *out, int32_t n, int32_t T, const float *x,
                            double *rsum, double *slots) {
    const int64_t m = out->ends[out->n_groups - 1];
    memset(rsum, 0, (size_t)m * sizeof *rsum);
    if (!lb_gram_out_sq_add(n, T, x, out->rows, m, rsum, c->bf16)) return false;
    int64_t r = 0;
    for (int32_t g = 0; g < out->n_groups; g++)
        for (slots[g] = 0; r < out->ends[g]; r++) slots[g] += rsum[r];
    return true;
}

/* keep_q, keep_r: each window's residual where its pass stopped goes back into its states;
 * ref_whole: the reference runs its whole layer (then keep_r takes the next layer's input).
 * out's sums: a window's slots (step k's on rank r at k R + r: the window's place in the
 * windows' order, whether the source deals the windows or holds a rank's share; zero on the
 * other ranks), summed over the ranks (exact: one term each) and then in that order. */
static lb_status run_cross(lb_calib *c, lb_context *ctx, const source *src, lb_context *ref,
                           const source *ref_src, float *keep_q, float *keep_r, kept_io *att_q, kept_io *att_r,
                           bool *kept_a, bool ref_whole, double *C, lb_calib_ref_rows *out, lb_error *err) {
    const lb_act_stats *s = find(c, c->sel_layer, c->sel_role);
    LB_RETURN_IF(!s || !s->H, err, LB_ERR_PARAM, "calib: the cross term needs one selected input "
                 "with its Hessian");
    LB_RETURN_IF(out && (out->n_groups < 1 || !out->ends || !out->sums), err, LB_ERR_PARAM,
                 "calib: the reference's rows need a group");
    const int32_t G     = out ? out->n_groups : 0;
    const int     R     = lb_dist_size(), me = lb_dist_rank();
    const size_t  n_sl  = (size_t)src->n_steps * (size_t)R * (size_t)G; /* step k's on rank r: window k R + r */
    ref_capture   r     = { c, malloc((size_t)src->n_ctx * (size_t)s->n * sizeof(float)), false };
    double       *slots = out ? calloc(n_sl + 1, sizeof *slots) : NULL;
    double       *rsum  = out ? malloc((size_t)(out->ends[G - 1] + 1) * sizeof *rsum) : NULL;
    const size_t  nn    = (size_t)s->n * (size_t)s->n;
    lb_status     st0   = !r.x || (out && (!slots || !rsum)) ? lb_fail(err, LB_ERR_NOMEM, "out of memory") : LB_OK;
    if (st0 == LB_OK) st0 = pass_begin(c, nn, src->first < c->n_layers ? src->first : -1, err);
    st0 = lb_dist_agree(st0, err); /* every rank, or none, goes on to the collectives */
    if (st0) {
        pass_end(c);
        free(r.x), free(slots), free(rsum);
        return st0;
    }
    memset(C, 0, nn * sizeof *C);
    lb_context_set_hook(ref, ref_hook, &r);
    lb_context_set_hook(ctx, hook, c);
    lb_context_set_stop(ref, ref_whole ? LB_ROLE_COUNT : stop_role(c));
    lb_context_set_stop(ctx, stop_role(c));
    c->cross     = C;
    lb_status st = LB_OK;
    for (int32_t k = 0; k < src->n_steps && st == LB_OK; k++) {
        const int32_t w = k * src->stride + src->offset;
        lb_status     sw = LB_OK;
        r.seen           = false;
        if (w < src->n_windows) sw = run_window(ref, ref_src, w, err);
        if (w < src->n_windows && sw == LB_OK && keep_r) keep_residual(keep_r, ref_src, w, ref);
        if (w < src->n_windows && sw == LB_OK && att_r) *kept_a &= keep_window(att_r, ref_src, w, ref);
        c->ref_x = r.seen ? r.x : NULL; /* NULL: the reference never reached the input */
        if (w < src->n_windows && sw == LB_OK && out && r.seen)
            c->oom |= !ref_rows_window(c, out, s->n, src->n_ctx, r.x, rsum, slots + ((size_t)k * R + me) * (size_t)G);
        if (w < src->n_windows && sw == LB_OK) sw = run_window(ctx, src, w, err);
        if (w < src->n_windows && sw == LB_OK && keep_q) keep_residual(keep_q, src, w, ctx);
        if (w < src->n_windows && sw == LB_OK && att_q) *kept_a &= keep_window(att_q, src, w, ctx);
        if (sw == LB_OK && c->oom) sw = gram_failed(err);
        st = lb_dist_agree(sw, err);
        if (st == LB_OK) st = fold_step(c, err);
        if (st == LB_OK && c->per_window) st = exchange_fold(c, c->cd, C, s->n, false, err);
    }
    if (st == LB_OK) st = share_hessians(c, err);
    if (st == LB_OK) st = share_matrix(C, s->n, false, err);
    if (st == LB_OK && out) st = lb_dist_sum(slots, n_sl, err);
    for (int32_t g = 0; st == LB_OK && g < G; g++) {
        out->sums[g] = 0;
        for (size_t w = 0; w < n_sl / (size_t)G; w++) out->sums[g] += slots[w * (size_t)G + (size_t)g];
    }
    c->cross = NULL;
    c->ref_x = NULL;
    lb_context_set_stop(ref, LB_ROLE_COUNT);
    lb_context_set_stop(ctx, LB_ROLE_COUNT);
    lb_context_set_hook(ref, NULL, NULL);
    lb_context_set_hook(ctx, NULL, NULL);
    pass_end(c);
    mirror_hessians(c);
    free(r.x), free(slots), free(rsum);
    return st;
}

lb_status lb_calib_run(lb_calib *c, lb_context *ctx, const int32_t *windows, int32_t n_windows,
                       int32_t n_ctx, lb_error *err) {
    const source src = tokens_source(windows, n_windows, n_ctx);
    return run_plain(c, ctx, &src, err);
}

/* ---- one layer at a time ---- */

struct lb_calib_states {
    int32_t n_windows, n_ctx, n_embd, n_layers;
    int32_t n_total; /* the run's windows on every rank: this rank holds its share (n_windows) */
    int32_t layer; /* the states are the input of this layer (n_layers: of the output norm) */
    bool    ffn;   /* ... or its residual after its attention, its FFN's input stream
                      (LB_CALIB_TO_FFN) */
    float  *x;     /* [n_windows, n_ctx, n_embd] */
    size_t  mapped; /* bytes when x is a file mapping (spilled), else 0 */
    char   *spill;  /* where x is spilled (NULL: RAM) */
    kept_io att, mid; /* the attention outputs, the down projections' inputs (kept_io) */
};

/* n bytes of memory backed by an unlinked file in dir: pages the kernel writes back and drops
 * under memory pressure, instead of holding them (NULL on failure, errno set) */
static void *spill_map(const char *dir, size_t n) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/streams.XXXXXX", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    const int fd = mkstemp(path);
    if (fd < 0) return NULL;
    unlink(path);
    void *p = ftruncate(fd, (off_t)n) == 0 ? mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    const int e = errno;
    close(fd);
    errno = e;
    return p == MAP_FAILED ? NULL : p;
}

lb_status lb_calib_states_create_ex(lb_calib_states **out, const lb_model *m, const int32_t *windows,
                                    int32_t n_windows, int32_t n_ctx, const char *spill_dir, lb_error *err) {
    const int32_t E = m->cfg.n_embd;
    *out            = NULL;
    for (int64_t i = 0; i < (int64_t)n_windows * n_ctx; i++)
        LB_RETURN_IF(windows[i] < 0 || windows[i] >= m->cfg.n_vocab, err, LB_ERR_PARAM,
                     "calib: token id %d out of range", windows[i]);
    lb_calib_states *s = calloc(1, sizeof *s);
    LB_RETURN_IF(!s, err, LB_ERR_NOMEM, "out of memory");
    const int     R = lb_dist_size(), r = lb_dist_rank();
    const int32_t mine = n_windows / R + (r < n_windows % R); /* windows r, r + R, ... */
    const size_t  bytes = (size_t)(mine ? mine : 1) * (size_t)n_ctx * (size_t)E * sizeof *s->x;
    *s      = (lb_calib_states){ .n_windows = mine, .n_ctx = n_ctx, .n_embd = E, .n_layers = m->cfg.n_layers,
                                .n_total = n_windows,
                                .att = { .role = LB_ROLE_ATTN_OUTPUT, .w = (int32_t)lb_model_dim(m, LB_DIM_QV), .layer = -1 },
                                .mid = { .role = LB_ROLE_FFN_DOWN, .w = m->cfg.n_ff, .layer = -1 } };
    s->x    = spill_dir ? spill_map(spill_dir, bytes) : malloc(bytes);
    s->mapped = spill_dir ? bytes : 0;
    s->spill  = spill_dir ? strdup(spill_dir) : NULL;
    if (!s->x || (spill_dir && !s->spill)) {
        const int e = s->spill || !spill_dir ? errno : ENOMEM;
        if (s->x && s->mapped) munmap(s->x, s->mapped);
        free(s->spill);
        free(s);
        if (spill_dir) return lb_fail(err, LB_ERR_IO, "%s: cannot map %.1f MB of calibration streams: %s", spill_dir,
                                      (double)bytes / 1e6, strerror(e));
        return lb_fail(err, LB_ERR_NOMEM, "calib: out of memory for %d windows' states", n_windows);
    }
    for (int32_t w = 0; w < mine; w++) /* the embeddings: layer 0's input */
        for (int32_t t = 0; t < n_ctx; t++)
            lb_model_embed(m, windows[((size_t)w * (size_t)R + (size_t)r) * (size_t)n_ctx + (size_t)t],
                           s->x + ((size_t)w * (size_t)n_ctx + (size_t)t) * (size_t)E);
    *out = s;
    return LB_OK;
}

lb_status lb_calib_states_create(lb_calib_states **out, const lb_model *m, const int32_t *windows,
                                 int32_t n_windows, int32_t n_ctx, lb_error *err) {
    return lb_calib_states_create_ex(out, m, windows, n_windows, n_ctx, NULL, err);
}

/* kept inputs' memory: gone */
static void kept_free(kept_io *k) {
    if (k->mapped) munmap(k->x, k->mapped);
    else free(k->x);
    k->x      = NULL;
    k->mapped = 0;
    k->layer  = -1;
}

void lb_calib_states_free(lb_calib_states *s) {
    if (!s) return;
    if (s->mapped) munmap(s->x, s->mapped);
    else free(s->x);
    kept_free(&s->att);
    kept_free(&s->mid);
    free(s->spill);
    free(s);
}

void lb_calib_states_keep_att(lb_calib_states *s, bool on) {
    s->att.on    = on;
    s->att.layer = -1; /* what was kept is spent; the memory stays for the next time */
}

void lb_calib_states_keep_mid(lb_calib_states *s, bool on) {
    s->mid.on    = on;
    s->mid.layer = -1;
}

bool lb_calib_states_att_kept(const lb_calib_states *s) { return s->att.x && s->att.layer == s->layer && !s->ffn; }

bool lb_calib_states_mid_kept(const lb_calib_states *s) { return s->mid.x && s->mid.layer == s->layer && s->ffn; }

/* k's memory, where the states are (RAM or their spill file): false, none */
static bool kept_buffer(const lb_calib_states *s, kept_io *k) {
    if (k->x) return true;
    const size_t bytes = (size_t)(s->n_windows ? s->n_windows : 1) * (size_t)s->n_ctx * (size_t)k->w * sizeof(float);
    k->x      = s->spill ? spill_map(s->spill, bytes) : malloc(bytes);
    k->mapped = k->x && s->spill ? bytes : 0;
    return k->x != NULL;
}

int32_t lb_calib_states_layer(const lb_calib_states *s) { return s->layer; }

float *lb_calib_states_values(lb_calib_states *s, size_t *n) {
    *n = (size_t)s->n_windows * (size_t)s->n_ctx * (size_t)s->n_embd;
    return s->x;
}

void lb_calib_states_set_layer(lb_calib_states *s, int32_t layer) {
    s->layer     = layer;
    s->ffn       = false;
    s->att.layer = s->mid.layer = -1;
}

/* A pass over s: from its kept attention outputs when it stops at that layer's FFN input (they
 * do not depend on the output projection, quantized meanwhile). Where it keeps what it stops
 * at (NULL: nothing): the attention outputs (at the attention output, from the layer's input),
 * or the down projection's inputs (at the down projection, from the FFN's: for the advance,
 * lb_calib_states_advance). Either way what was kept is spent. */
static kept_io *keep_plan(const lb_calib *c, lb_calib_states *s, source *src) {
    const lb_tensor_role stop = stop_role(c);
    const bool           here = s->layer < s->n_layers;
    if (here && !s->ffn && s->att.on && s->att.x && s->att.layer == s->layer && stop == LB_ROLE_FFN_GATE)
        src->from = &s->att;
    s->att.layer = s->mid.layer = -1;
    kept_io *k = here && !s->ffn && s->att.on && stop == LB_ROLE_ATTN_OUTPUT ? &s->att
                 : here && s->ffn && s->mid.on && stop == LB_ROLE_FFN_DOWN  ? &s->mid
                                                                              : NULL;
    return k && kept_buffer(s, k) ? k : NULL;
}

/* ctx runs from the states' layer: that layer alone, or the head after the last one */
static source states_source(lb_context *ctx, const lb_calib_states *s) {
    const int R = lb_dist_size();
    lb_context_set_layer_limit(ctx, s->layer < s->n_layers ? s->layer + 1 : 0);
    return (source){ NULL, s->x, s->ffn, NULL, s->layer, s->n_ctx, s->n_embd, s->n_windows, (s->n_total + R - 1) / R, 1, 0 };
}

lb_status lb_calib_states_advance(lb_calib_states *s, lb_context *ctx, lb_error *err) {
    LB_RETURN_IF(s->layer >= s->n_layers, err, LB_ERR_PARAM, "calib: no layer after the last");
    source src = states_source(ctx, s);
    if (lb_calib_states_mid_kept(s)) src.from = &s->mid; /* the layer's down projection on */
    s->att.layer = s->mid.layer = -1;
    for (int32_t w = 0; w < s->n_windows; w++) {
        lb_status st = run_window(ctx, &src, w, err);
        if (st != LB_OK) return st;
        keep_residual(s->x, &src, w, ctx);
    }
    s->layer++;
    s->ffn = false;
    return LB_OK;
}

/* a pass over states s may start there: not at an attention input once they are the FFN's */
static lb_status check_from(const lb_calib *c, const lb_calib_states *s, lb_error *err) {
    const lb_tensor_role stop = stop_role(c);
    LB_RETURN_IF(s->ffn && (stop == LB_ROLE_ATTN_Q || stop == LB_ROLE_ATTN_OUTPUT || stop == LB_ROLE_COUNT ||
                            (c->sel_role >= 0 && stack_kind(c->sel_role) >= 2)),
                 err, LB_ERR_PARAM, "calib: the states are past layer %d's attention", s->layer);
    return LB_OK;
}

/* move's requirement on the selection, and the states it moves (to the FFN input) */
static lb_status check_move(const lb_calib *c, lb_calib_move move, lb_error *err) {
    LB_RETURN_IF(move == LB_CALIB_TO_FFN && stop_role(c) != LB_ROLE_FFN_GATE, err, LB_ERR_PARAM,
                 "calib: moving to the FFN's input wants that input selected");
    return LB_OK;
}

lb_status lb_calib_run_states(lb_calib *c, lb_context *ctx, lb_calib_states *s, lb_calib_move move, lb_error *err) {
    LB_TRY_RET(check_from(c, s, err));
    LB_TRY_RET(check_move(c, move, err));
    LB_RETURN_IF(move == LB_CALIB_REF_NEXT, err, LB_ERR_PARAM, "calib: no reference in this pass");
    LB_RETURN_IF(move == LB_CALIB_NEXT && (s->layer >= s->n_layers || stop_role(c) != LB_ROLE_COUNT), err,
                 LB_ERR_PARAM, "calib: moving to the next layer wants a layer's pass that nothing stops");
    const bool   to_ffn = move == LB_CALIB_TO_FFN && !s->ffn, next = move == LB_CALIB_NEXT;
    source       src    = states_source(ctx, s);
    kept_io     *ka     = keep_plan(c, s, &src);
    bool         kept   = true;
    LB_TRY_RET(run_pass(c, ctx, &src, NULL, to_ffn || next ? s->x : NULL, ka, &kept, err));
    if (ka && kept) ka->layer = s->layer;
    s->ffn |= to_ffn;
    if (next) s->layer++, s->ffn = false;
    return LB_OK;
}

lb_status lb_calib_run_states_prior(lb_calib *c, lb_context *ctx, const lb_calib_states *s, int64_t min_tokens,
                                    int32_t *n_topped, lb_error *err) {
    const int xk = stack_kind(c->sel_role);
    *n_topped    = 0;
    LB_RETURN_IF(xk < 0 || xk > 1 || c->sel_layer < 0, err, LB_ERR_PARAM,
                 "calib: the rare-expert prior is for a selected expert input");
    const double  N = (double)s->n_total * (double)s->n_ctx;
    const int32_t X = c->n_slice[xk];
    uint8_t      *on = calloc((size_t)X, 1);
    float        *w  = calloc((size_t)X, sizeof *w);
    lb_status     st = LB_OK;
    LB_GOTO_IF(!on || !w, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t e = c->sel_e0; e < c->sel_e1; e++) {
        const lb_act_stats *a = find_x(c, c->sel_layer, c->sel_role, e);
        if (!a || (double)a->count + a->prior >= (double)min_tokens) continue;
        w[e]  = (float)(((double)min_tokens - (double)a->count - a->prior) / N);
        on[e] = w[e] > 0;
        *n_topped += on[e];
    }
    if (*n_topped == 0) goto fail;
    const source src = states_source(ctx, s);
    c->prior_w       = w;
    st               = run_pass(c, ctx, &src, on, NULL, NULL, NULL, err);
    c->prior_w       = NULL;
fail:
    free(on);
    free(w);
    return st;
}

lb_status lb_calib_run_states_cross(lb_calib *c, lb_context *ctx, lb_calib_states *s, lb_context *ref,
                                    lb_calib_states *rs, double *C, lb_calib_ref_rows *out, lb_calib_move move,
                                    lb_error *err) {
    LB_RETURN_IF(rs->layer != s->layer || rs->n_windows != s->n_windows ||
                 (move == LB_CALIB_REF_NEXT && rs->layer >= rs->n_layers), err,
                 LB_ERR_PARAM, "calib: the reference's states are not at the same layer");
    LB_TRY_RET(check_from(c, s, err));
    LB_TRY_RET(check_from(c, rs, err));
    LB_TRY_RET(check_move(c, move, err));
    const bool   q_ffn = move == LB_CALIB_TO_FFN && !s->ffn, r_ffn = move == LB_CALIB_TO_FFN && !rs->ffn;
    const bool   next  = move == LB_CALIB_REF_NEXT;
    source       src = states_source(ctx, s), ref_src = states_source(ref, rs);
    kept_io     *aq = keep_plan(c, s, &src), *ar = keep_plan(c, rs, &ref_src);
    bool         kept = true;
    LB_TRY_RET(run_cross(c, ctx, &src, ref, &ref_src, q_ffn ? s->x : NULL, r_ffn || next ? rs->x : NULL, aq, ar, &kept,
                         next, C, out, err));
    if (kept && aq) aq->layer = s->layer;
    if (kept && ar) ar->layer = rs->layer;
    s->ffn |= q_ffn;
    rs->ffn |= r_ffn;
    if (next) rs->layer++, rs->ffn = false;
    return LB_OK;
}

bool lb_act_importance(const lb_act_stats *s, float *out) {
    if (!s || (double)s->count + s->prior <= 0) return false;
    for (int32_t j = 0; j < s->n; j++) out[j] = (float)(s->sum_x2[j] / ((double)s->count + s->prior));
    return true;
}

/* splitmix64: seeded, portable */
static uint64_t next_u64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z          = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

lb_status lb_calib_windows(const lb_vocab *v, const char *text, size_t len,
                           const lb_calib_params *p, int32_t **out, int32_t *n_windows,
                           lb_error *err) {
    int32_t  *ids;
    size_t    n;
    const bool add_bos = lb_vocab_add_bos(v); /* as llama-imatrix: BOS first when the vocabulary adds one */
    lb_status  st      = lb_tokenize(v, text, len, add_bos, false, &ids, &n, err);
    if (st) return st;
    const int32_t L = p->n_ctx;
    if (L < 2 || n < (size_t)L) {
        free(ids);
        return lb_fail(err, LB_ERR_PARAM, "calibration: the text has %zu tokens, fewer than one "
                       "window of %d", n, L);
    }
    const int32_t avail = (int32_t)(n / (size_t)L);
    const int32_t nw    = p->sequential || p->n_samples <= 0
                              ? (p->n_samples > 0 && p->n_samples < avail ? p->n_samples : avail)
                              : p->n_samples;
    int32_t *w = malloc((size_t)nw * (size_t)L * sizeof *w);
    if (!w) {
        free(ids);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    uint64_t rng = p->seed;
    for (int32_t i = 0; i < nw; i++) {
        const size_t start = p->sequential || p->n_samples <= 0
                                 ? (size_t)i * (size_t)L
                                 : (size_t)(next_u64(&rng) % (uint64_t)(n - (size_t)L + 1));
        memcpy(w + (size_t)i * (size_t)L, ids + start, (size_t)L * sizeof *w);
        if (add_bos) w[(size_t)i * (size_t)L] = lb_vocab_bos(v);
    }
    free(ids);
    *out       = w;
    *n_windows = nw;
    return LB_OK;
}
