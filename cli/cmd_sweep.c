/* lowbit sweep IN --types LIST [--method LIST --calib FILE] --text FILE -o DIR: quantize to
 * each type with each method, evaluate each against IN (KL divergence from IN's saved
 * logits), write DIR/report.md and report.svg. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define MAX_TYPES   64
#define MAX_METHODS 8
#define MAX_TARGETS 16
#define MAX_RUNS    (MAX_TYPES * MAX_METHODS + MAX_TARGETS * MAX_METHODS)

typedef struct {
    const char *text_path, *dir;
    int64_t     n_ctx, chunks;
    size_t      n_ids;
    int32_t    *ids;
} sweep_ctx;

/* evaluate one model file against the saved reference logits (NULL: save them) */
static lb_status eval_file(const sweep_ctx *s, const char *path, const char *ref_logits,
                           const char *save_logits, lb_model **out, lb_ppl_result *r,
                           lb_kld_result *k, lb_error *err) {
    lb_model   *m;
    lb_context *ctx;
    lb_status   st = lb_cli_model_load(&m, path, NULL, err);
    if (st) return st;
    st = lb_context_create(&ctx, m, (int32_t)s->n_ctx, (int32_t)s->n_ctx, err);
    if (!st) {
        const lb_ppl_params p   = { .n_ctx = (int32_t)s->n_ctx, .max_chunks = (int32_t)s->chunks,
                                    .logits_path = save_logits };
        const lb_kld_ref    ref = { .logits_path = ref_logits };
        st = lb_eval_kld(ctx, m->vocab, s->ids, s->n_ids, &p, ref_logits ? &ref : NULL, r,
                         ref_logits ? k : NULL, err);
    }
    lb_context_free(ctx);
    if (st) lb_model_free(m);
    else *out = m;
    return st;
}

/* a failed sweep into a directory it made: remove what it wrote there, then the directory */
static void remove_outputs(const char *dir, char (*files)[96], int32_t n) {
    static const char *const fixed[] = { "reference.gguf", "reference.logits", "report.md", "report.svg" };
    char                     path[4096];
    for (int32_t i = 0; i < n + 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, i < 4 ? fixed[i] : files[i - 4]);
        unlink(path);
    }
    rmdir(dir);
}

/* --ref-points FILE: a CSV whose header names at least name (or type), bpw and kld (or
 * kld_mean), and optionally method (or source): figures from elsewhere (llama.cpp's), drawn
 * and listed beside the sweep's. Plain fields, no quoting. */
#define MAX_POINTS 64
static int read_points(const char *path, lb_report_row *rows, int32_t *n) {
    lb_error err = { 0 };
    char    *text;
    size_t   len;
    if (lb_read_file(path, &text, &len, &err)) return lb_runtime_error(&err);
    int   col[4] = { -1, -1, -1, -1 }; /* name, bpw, kld, method */
    int   rc = LB_EXIT_OK, line = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l && rc == LB_EXIT_OK; l = strtok_r(NULL, "\n", &save)) {
        line++;
        l[strcspn(l, "\r")] = 0;
        if (!*l) continue;
        char *f[16], *s2 = NULL;
        int   nf = 0;
        for (char *t = strtok_r(l, ",", &s2); t && nf < 16; t = strtok_r(NULL, ",", &s2)) f[nf++] = t;
        if (col[0] < 0 && col[1] < 0) { /* the header */
            static const char *const names[4][2] = { { "name", "type" }, { "bpw", "bpw" }, { "kld", "kld_mean" },
                                                     { "method", "source" } };
            for (int c = 0; c < nf; c++)
                for (int k = 0; k < 4; k++)
                    if (!strcasecmp(f[c], names[k][0]) || !strcasecmp(f[c], names[k][1])) col[k] = c;
            if (col[0] < 0 || col[1] < 0 || col[2] < 0)
                rc = lb_usage_error("sweep", "%s: the header must name the columns name, bpw and kld", path);
            continue;
        }
        char        *e1, *e2;
        const double bpw = col[1] < nf ? strtod(f[col[1]], &e1) : 0, kld = col[2] < nf ? strtod(f[col[2]], &e2) : 0;
        if (*n == MAX_POINTS || col[0] >= nf || col[1] >= nf || col[2] >= nf || *e1 || *e2 || !(bpw > 0) || !(kld >= 0))
            rc = lb_usage_error("sweep", "%s:%d: a point wants a name, bpw > 0 and kld >= 0 (at most %d points)", path,
                                line, MAX_POINTS);
        else {
            lb_report_row *r = &rows[(*n)++];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "%s", f[col[0]]);
            snprintf(r->method, sizeof r->method, "%s", col[3] >= 0 && col[3] < nf ? f[col[3]] : "given");
            r->bpw = bpw, r->kld_mean = kld, r->external = true;
        }
    }
    free(text);
    return rc;
}

/* a quantized file's row: its figures against the reference's logits */
static lb_status measure(const sweep_ctx *s, const char *path, const char *ref_logits, const char *name,
                         const char *method, const lb_quant_summary *qs, lb_report_row *row, lb_error *err) {
    lb_model     *qm;
    lb_ppl_result r;
    lb_kld_result k;
    lb_status     st = eval_file(s, path, ref_logits, NULL, &qm, &r, &k, err);
    if (st) return st;
    snprintf(row->name, sizeof row->name, "%s", name);
    snprintf(row->method, sizeof row->method, "%s", method);
    row->bpw = qs->bpw, row->bytes = qs->bytes_out, row->ppl = r.ppl, row->ppl_stderr = r.ppl_stderr;
    row->kld_mean = k.kld_mean, row->kld_stderr = k.kld_stderr, row->kld_p99 = k.kld_p99, row->top1 = k.top1;
    row->fallbacks = qs->n_fallback;
    if (lb_dist_rank() == 0)
        fprintf(stderr, "sweep: %-8s %-9s %7.3f bpw  PPL %.4f  KLD %.6f  top-1 %.2f%%%s\n", row->name, row->method,
            row->bpw, row->ppl, row->kld_mean, 100 * row->top1, qs->n_fallback ? "  (fallbacks)" : "");
    lb_model_free(qm);
    return LB_OK;
}

typedef struct {
    const double  *targets;
    int32_t        n_targets;
    const lb_type *types;
    int32_t        n_types, windows;
    bool           proxy;
} sweep_bpw;

/* --target-bpw: each tensor measured once in each candidate type (lb_bpw_allocate), the heat map
 * of those measurements (DIR/sensitivity.svg, the first target's choice outlined), then for each
 * target and method a file of the allocation for that size (files[t * n_methods + k]), its row a
 * point of the method's curve ("target/METHOD"; rtn measures and quantizes as imatrix) */
static lb_status sweep_targets(const sweep_ctx *s, const lb_model *in, const char *model, const char *calib,
                               const lb_imatrix *im, const sweep_bpw *b, const char *const *methods, int32_t n_methods,
                               int32_t samples, int32_t calib_ctx, uint64_t seed, const char *ref_logits,
                               char (*files)[96], lb_report_row *rows, lb_error *err) {
    const lb_bpw_params p = { .target_bpw = b->targets[0], .types = b->types, .n_types = b->n_types, .calib_text = calib,
                              .calib = { .n_samples = b->windows, .n_ctx = calib_ctx < 128 ? calib_ctx : 128, .seed = seed },
                              .imatrix = im, .proxy = b->proxy };
    lb_bpw_result   res = { 0 };
    lb_named_tensor *ts = malloc((size_t)lb_model_n_tensors(in) * sizeof *ts);
    const char     **rn = malloc((size_t)lb_model_n_tensors(in) * sizeof *rn);
    int32_t         *mk = malloc((size_t)lb_model_n_tensors(in) * sizeof *mk);
    lb_status        st = !ts || !rn || !mk ? lb_fail(err, LB_ERR_NOMEM, "out of memory") : LB_OK;
    char             path[4096];
    fprintf(stderr, "sweep: --target-bpw: measuring each matrix in %d types ...\n", b->n_types);
    if (!st) st = lb_bpw_allocate(in, &p, &res, err);
    if (!st) { /* the heat map of the matrices (norms stay f32) */
        const char *cn[LB_BPW_MAX_TYPES];
        double     *v = malloc((size_t)res.n_tensors * (size_t)res.n_types * sizeof *v);
        int32_t     nr = 0;
        lb_model_tensors(in, ts, res.n_tensors);
        for (int32_t j = 0; j < res.n_types; j++) cn[j] = lb_type_name(res.types[j]);
        for (int32_t i = 0; v && i < res.n_tensors; i++) {
            if (res.choice[i] == LB_TYPE_F32) continue;
            rn[nr] = ts[i].name, mk[nr] = -1;
            for (int32_t j = 0; j < res.n_types; j++) {
                v[(size_t)nr * (size_t)res.n_types + (size_t)j] = res.sens[i * res.n_types + j];
                if (res.types[j] == res.choice[i]) mk[nr] = j;
            }
            nr++;
        }
        char title[600];
        snprintf(title, sizeof title, "Sensitivity of %.400s (outlined: its choice at %.2f bits per weight)", model, b->targets[0]);
        const lb_heatmap h = { title, b->proxy ? "importance-weighted squared error of that tensor"
                                               : "KL divergence with only that tensor quantized",
                               nr, res.n_types, rn, cn, v, mk };
        snprintf(path, sizeof path, "%s/sensitivity.svg", s->dir);
        st = !v ? lb_fail(err, LB_ERR_NOMEM, "out of memory") : lb_dist_rank() > 0 ? LB_OK /* rank 0 writes */
                                                                   : lb_report_write_heatmap(&h, path, err);
        free(v);
    }
    for (int32_t t = 0; !st && t < b->n_targets; t++) {
        if ((st = lb_bpw_choose(&res, b->targets[t], err))) break;
        for (int32_t k = 0; !st && k < n_methods; k++) {
            lb_type_override *ov = NULL;
            char            **names = NULL;
            int32_t           n_ov  = 0;
            const lb_recipe  *r     = NULL;
            if (lb_cli_bpw_plan(in, &res, &ov, &n_ov, &names, &r) != LB_EXIT_OK) {
                st = lb_fail(err, LB_ERR_NOMEM, "out of memory");
            } else if (!r) {
                st = lb_fail(err, LB_ERR_UNSUPPORTED, "--target-bpw %.2f: no recipe names the main type", b->targets[t]);
            } else {
                const char     *m  = strcmp(methods[k], "rtn") ? methods[k] : "imatrix";
                lb_quant_params qp = { .recipe = r, .method = m, .calib_text = calib, .imatrix = im, .overrides = ov,
                                       .n_overrides = n_ov, .calib = { .n_samples = samples, .n_ctx = calib_ctx, .seed = seed },
                                       .gptq = { .damp = 0, .block = 128 } };
                lb_quant_summary qs;
                char             name[32], meth[32];
                snprintf(path, sizeof path, "%s/%s", s->dir, files[t * n_methods + k]);
                snprintf(name, sizeof name, "%.2f bpw", b->targets[t]);
                snprintf(meth, sizeof meth, "target/%.24s", m);
                st = lb_quantize_model(in, path, &qp, NULL, NULL, 0, &qs, err);
                if (!st) st = measure(s, path, ref_logits, name, meth, &qs, &rows[t * n_methods + k], err);
                rows[t * n_methods + k].curve = true;
            }
            for (int32_t i = 0; names && i < n_ov; i++) free(names[i]);
            free(names);
            free(ov);
        }
    }
    lb_bpw_result_free(&res);
    free(ts), free(rn), free(mk);
    return st;
}

/* --json: the reference and one object per type, on one line */
static void print_json(const lb_report *r, const char *dir) {
    lb_jout j;
    lb_jout_begin(&j, stdout);
    lb_jout_str(&j, "model", r->model);
    lb_jout_str(&j, "text", r->text);
    lb_jout_str(&j, "dir", dir);
    lb_jout_int(&j, "ctx", r->n_ctx);
    lb_jout_int(&j, "chunks", r->chunks);
    lb_jout_num(&j, "ppl_ref", 6, r->ppl_ref);
    lb_jout_num(&j, "bpw_ref", 4, r->bpw_ref);
    lb_jout_raw(&j, "rows", "[");
    for (int32_t i = 0; i < r->n_rows; i++) {
        const lb_report_row *w = &r->rows[i];
        lb_jout              e;
        fputs(i ? ", " : "", stdout);
        lb_jout_begin(&e, stdout);
        lb_jout_str(&e, "type", w->name);
        lb_jout_str(&e, "method", w->method);
        lb_jout_int(&e, "fallbacks", w->fallbacks);
        lb_jout_bool(&e, "external", w->external);
        lb_jout_num(&e, "bpw", 4, w->bpw);
        lb_jout_int(&e, "bytes", (long long)w->bytes);
        lb_jout_num(&e, "ppl", 6, w->ppl);
        lb_jout_num(&e, "ppl_stderr", 6, w->ppl_stderr);
        lb_jout_num(&e, "kld_mean", 6, w->kld_mean);
        lb_jout_num(&e, "kld_stderr", 6, w->kld_stderr);
        lb_jout_num(&e, "kld_p99", 6, w->kld_p99);
        lb_jout_num(&e, "top1", 6, w->top1);
        fputc('}', stdout);
    }
    fputc(']', stdout);
    lb_jout_end(&j);
}

int cmd_sweep(int argc, char **argv) {
    lb_args     a;
    const char *opt, *types = NULL, *text_path = NULL, *dir = NULL, *tok = NULL, *methods_opt = "rtn";
    const char *calib = NULL, *imatrix_path = NULL, *points_path = NULL, *targets_opt = NULL, *bpw_types = NULL;
    int64_t     n_ctx = 128, chunks = 0, threads = 0, samples = 128, calib_ctx = 128, seed = 1234, bpw_windows = 4;
    bool        long_ctx = false, json = false, bpw_proxy = false, lowbit_types = false;
    lb_args_init(&a, "sweep", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) return lb_print_help("sweep");
        else if (!strcmp(opt, "--types")) types = lb_args_value(&a);
        else if (!strcmp(opt, "--text")) text_path = lb_args_value(&a);
        else if (!strcmp(opt, "-o")) dir = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--ctx")) lb_args_int(&a, 4, 1 << 20, &n_ctx);
        else if (!strcmp(opt, "--chunks")) lb_args_int(&a, 1, 1 << 30, &chunks);
        else if (!strcmp(opt, "--allow-long-ctx")) long_ctx = true;
        else if (!strcmp(opt, "--json")) json = true;
        else if (!strcmp(opt, "--method")) methods_opt = lb_args_value(&a);
        else if (!strcmp(opt, "--ref-points")) points_path = lb_args_value(&a);
        else if (!strcmp(opt, "--calib")) calib = lb_args_value(&a);
        else if (!strcmp(opt, "--imatrix")) imatrix_path = lb_args_value(&a);
        else if (!strcmp(opt, "--calib-samples")) lb_args_int(&a, 1, 1 << 20, &samples);
        else if (!strcmp(opt, "--calib-ctx")) lb_args_int(&a, 2, 1 << 20, &calib_ctx);
        else if (!strcmp(opt, "--seed")) lb_args_int(&a, 0, INT64_MAX, &seed);
        else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) lb_args_int(&a, 0, 1024, &threads);
        else if (!strcmp(opt, "--target-bpw")) targets_opt = lb_args_value(&a);
        else if (!strcmp(opt, "--bpw-types")) bpw_types = lb_args_value(&a);
        else if (!strcmp(opt, "--bpw-windows")) lb_args_int(&a, 1, 4096, &bpw_windows);
        else if (!strcmp(opt, "--bpw-measure")) {
            const char *v = lb_args_value(&a);
            if (v && strcmp(v, "kld") && strcmp(v, "proxy"))
                return lb_usage_error("sweep", "--bpw-measure wants kld or proxy, not '%s'", v);
            bpw_proxy = v && !strcmp(v, "proxy");
        }
        else if (!strcmp(opt, "--allow-lowbit-types")) lowbit_types = true;
        else return lb_usage_error("sweep", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional != 1 || !text_path || !dir)
        return lb_usage_error("sweep", "expected IN, --text FILE and -o DIR");
    /* the list of recipes */
    const lb_recipe *recipes[MAX_TYPES];
    int32_t          n_types = 0;
    if (!types || !strcmp(types, "all")) {
        for (const char *const *n = lb_recipe_names(); *n && n_types < MAX_TYPES; n++)
            if (strcmp(*n, "f32") != 0) recipes[n_types++] = lb_recipe_find(*n);
    } else {
        char *list = strdup(types), *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            const lb_recipe *r = lb_recipe_find(t);
            if (!r || n_types == MAX_TYPES) {
                free(list);
                return lb_usage_error("sweep", "unknown type '%s' (see lowbit quantize --help)", t);
            }
            recipes[n_types++] = r;
        }
        free(list);
    }
    /* the methods: comma-separated, each a chain as quantize takes it ("awq+gptq") */
    char        mbuf[256];
    const char *methods[MAX_METHODS];
    int32_t     n_methods = 0;
    if (!methods_opt || snprintf(mbuf, sizeof mbuf, "%s", methods_opt) >= (int)sizeof mbuf)
        return lb_usage_error("sweep", "--method: a comma-separated list of methods");
    for (char *save = NULL, *t = strtok_r(mbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n_methods == MAX_METHODS) return lb_usage_error("sweep", "--method: at most %d methods", MAX_METHODS);
        methods[n_methods++] = t;
    }
    if (!n_methods) return lb_usage_error("sweep", "--method: no method given");
    /* --target-bpw: sizes for a type per matrix chosen by measured sensitivity (a curve) */
    double  targets[MAX_TARGETS];
    int32_t n_targets = 0;
    lb_type bpw_cand[LB_BPW_MAX_TYPES];
    int32_t n_cand = 0;
    if (targets_opt) {
        char tbuf[256];
        if (snprintf(tbuf, sizeof tbuf, "%s", targets_opt) >= (int)sizeof tbuf)
            return lb_usage_error("sweep", "--target-bpw: the list is too long");
        for (char *save = NULL, *t = strtok_r(tbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char        *e;
            const double x = strtod(t, &e);
            if (*e || !(x > 0 && x <= 32) || n_targets == MAX_TARGETS)
                return lb_usage_error("sweep", "--target-bpw: '%s' is not a size in bits per weight (at most %d)", t, MAX_TARGETS);
            targets[n_targets++] = x;
        }
        if (!calib) return lb_usage_error("sweep", "--target-bpw measures each tensor on calibration text: give --calib FILE");
        if (!lb_cli_bpw_types(bpw_types, lowbit_types, bpw_cand, &n_cand)) return LB_EXIT_USAGE;
    }
    lb_imatrix *im  = NULL;
    lb_error    err = { 0 };
    if (imatrix_path && lb_imatrix_load(&im, imatrix_path, &err)) return lb_runtime_error(&err);
    for (int32_t k = 0; k < n_methods; k++)
        for (int32_t i = 0; i < n_types; i++) { /* every pairing, checked before any work */
            const lb_quant_params chk = { .recipe = recipes[i], .method = methods[k], .calib_text = calib, .imatrix = im };
            if (lb_quant_check(&chk, &err)) {
                lb_imatrix_free(im);
                return lb_usage_error("sweep", "%s with %s: %s", recipes[i]->name, methods[k], err.msg);
            }
        }
    lb_threads_set((int)threads);
    if (lb_check_output(dir, true)) {
        lb_imatrix_free(im);
        return LB_EXIT_ERROR;
    }
    const bool created = mkdir(dir, 0777) == 0; /* then a failed sweep leaves no directory */
    if (!created && errno != EEXIST) {
        fprintf(stderr, "lowbit: %s: cannot create directory: %s\n", dir, strerror(errno));
        lb_imatrix_free(im);
        return LB_EXIT_ERROR;
    }
    const int32_t  n_runs = n_types * n_methods, n_all = n_runs + n_targets * n_methods;
    lb_model      *in = NULL, *ref = NULL;
    char          *text = NULL;
    lb_report_row *rows = calloc((size_t)(n_all + MAX_POINTS), sizeof *rows);
    int32_t        n_points = 0;
    char (*files)[96]   = calloc((size_t)(n_all + 1), sizeof *files); /* and sensitivity.svg */
    char           path[4096], ref_logits[4096];
    sweep_ctx      s  = { text_path, dir, n_ctx, chunks, 0, NULL };
    int            rc = LB_EXIT_ERROR;
    size_t         len;
    lb_ppl_result  rr;
    for (int32_t k = 0; k < n_methods && files; k++) /* TYPE.gguf, or TYPE-METHOD.gguf beside other methods */
        for (int32_t i = 0; i < n_types; i++)
            snprintf(files[k * n_types + i], sizeof files[0], "%s%s%s.gguf", recipes[i]->name, n_methods > 1 ? "-" : "",
                     n_methods > 1 ? methods[k] : "");
    for (int32_t t = 0; t < n_targets && files; t++)
        for (int32_t k = 0; k < n_methods; k++)
            snprintf(files[n_runs + t * n_methods + k], sizeof files[0], "bpw-%.2f-%s.gguf", targets[t], methods[k]);
    if (files) snprintf(files[n_all], sizeof files[0], "%s", n_targets ? "sensitivity.svg" : "");
    if (rows && points_path && (rc = read_points(points_path, rows + n_all, &n_points)) != LB_EXIT_OK) goto quiet;
    rc = LB_EXIT_ERROR;
    if (!rows || !files || lb_cli_model_load(&in, a.positional[0], tok, &err)) goto done;
    if (lb_check_ctx("sweep", "--ctx", n_ctx, in, long_ctx)) {
        rc = LB_EXIT_USAGE;
        goto quiet;
    }
    if (lb_read_file(text_path, &text, &len, &err)) goto done;
    if (lb_tokenize(in->vocab, text, len, lb_vocab_add_bos(in->vocab), false, &s.ids, &s.n_ids, &err))
        goto done;
    /* the reference: IN as given, its logits saved once */
    snprintf(ref_logits, sizeof ref_logits, "%s/reference.logits", dir);
    snprintf(path, sizeof path, "%s/reference.gguf", dir);
    /* under MPI rank 0 writes every file (DIR: on a filesystem every rank reads), each run split */
    if (lb_dist_agree(lb_dist_rank() == 0 ? lb_model_save_gguf(in, path, LB_TYPE_F32, &err) : LB_OK, &err))
        goto done; /* written before any rank reads it */
    if (eval_file(&s, path, NULL, ref_logits, &ref, &rr, NULL, &err)) goto done;
    if (lb_dist_rank() == 0) fprintf(stderr, "sweep: reference PPL %.4f over %d chunks of %d\n", rr.ppl, rr.chunks, rr.n_ctx);
    for (int32_t run = 0; run < n_runs; run++) {
        const int32_t    i = run % n_types, mk = run / n_types;
        lb_quant_params  qp = { .recipe = recipes[i], .method = methods[mk], .calib_text = calib, .imatrix = im,
                                .calib = { .n_samples = (int32_t)samples, .n_ctx = (int32_t)calib_ctx,
                                           .seed = (uint64_t)seed },
                                .gptq = { .damp = 0, .block = 128 } };
        lb_quant_summary qs;
        snprintf(path, sizeof path, "%s/%s", dir, files[run]);
        if (lb_quantize_model(in, path, &qp, NULL, NULL, 0, &qs, &err)) goto done;
        if (measure(&s, path, ref_logits, recipes[i]->name, methods[mk], &qs, &rows[run], &err)) goto done;
    }
    if (n_targets && sweep_targets(&s, in, a.positional[0], calib, im, &(sweep_bpw){ targets, n_targets, bpw_cand, n_cand,
                                                                                  (int32_t)bpw_windows, bpw_proxy },
                                   methods, n_methods, (int32_t)samples, (int32_t)calib_ctx, (uint64_t)seed, ref_logits,
                                   files + n_runs, rows + n_runs, &err))
        goto done;
    const lb_report rep = { .model = a.positional[0], .text = text_path, .n_ctx = (int32_t)n_ctx,
                            .chunks = rr.chunks, .ppl_ref = rr.ppl,
                            .bytes_ref = lb_model_nbytes(ref),
                            .bpw_ref = 8.0 * (double)lb_model_nbytes(ref) / (double)lb_model_nparams(ref),
                            .rows = rows, .n_rows = n_all + n_points };
    snprintf(path, sizeof path, "%s/report.md", dir);
    if (lb_dist_rank() > 0) { /* rank 0 reports */
        rc = LB_EXIT_OK;
        goto quiet;
    }
    if (lb_report_write_md(&rep, path, &err)) goto done;
    if (json) {
        print_json(&rep, dir);
    } else {
        char *md;
        if (lb_read_file(path, &md, &len, &err)) goto done;
        fputs(md, stdout);
        free(md);
    }
    snprintf(path, sizeof path, "%s/report.svg", dir);
    if (lb_report_write_svg(&rep, path, &err)) goto done;
    fprintf(stderr, "sweep: wrote %s/report.md and %s/report.svg\n", dir, dir);
    rc = LB_EXIT_OK;
done:
    if (rc != LB_EXIT_OK) lb_runtime_error(&err);
quiet:
    if (rc != LB_EXIT_OK && created && files) remove_outputs(dir, files, n_all + 1);
    free(rows);
    free(files);
    lb_imatrix_free(im);
    free(text);
    free(s.ids);
    lb_model_free(in);
    lb_model_free(ref);
    return rc;
}
