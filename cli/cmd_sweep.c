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
#define MAX_RUNS    (MAX_TYPES * MAX_METHODS)

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
    const char *calib = NULL, *imatrix_path = NULL, *points_path = NULL;
    int64_t     n_ctx = 128, chunks = 0, threads = 0, samples = 128, calib_ctx = 128, seed = 1234;
    bool        long_ctx = false, json = false;
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
    const int32_t  n_runs = n_types * n_methods;
    lb_model      *in = NULL, *ref = NULL;
    char          *text = NULL;
    lb_report_row *rows = calloc((size_t)(n_runs + MAX_POINTS), sizeof *rows);
    int32_t        n_points = 0;
    char (*files)[96]   = calloc((size_t)n_runs, sizeof *files);
    char           path[4096], ref_logits[4096];
    sweep_ctx      s  = { text_path, dir, n_ctx, chunks, 0, NULL };
    int            rc = LB_EXIT_ERROR;
    size_t         len;
    lb_ppl_result  rr;
    for (int32_t k = 0; k < n_methods && files; k++) /* TYPE.gguf, or TYPE-METHOD.gguf beside other methods */
        for (int32_t i = 0; i < n_types; i++)
            snprintf(files[k * n_types + i], sizeof files[0], "%s%s%s.gguf", recipes[i]->name, n_methods > 1 ? "-" : "",
                     n_methods > 1 ? methods[k] : "");
    if (rows && points_path && (rc = read_points(points_path, rows + n_runs, &n_points)) != LB_EXIT_OK) goto quiet;
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
    if (lb_model_save_gguf(in, path, LB_TYPE_F32, &err)) goto done;
    if (eval_file(&s, path, NULL, ref_logits, &ref, &rr, NULL, &err)) goto done;
    fprintf(stderr, "sweep: reference PPL %.4f over %d chunks of %d\n", rr.ppl, rr.chunks, rr.n_ctx);
    for (int32_t run = 0; run < n_runs; run++) {
        const int32_t    i = run % n_types, mk = run / n_types;
        lb_quant_params  qp = { .recipe = recipes[i], .method = methods[mk], .calib_text = calib, .imatrix = im,
                                .calib = { .n_samples = (int32_t)samples, .n_ctx = (int32_t)calib_ctx,
                                           .seed = (uint64_t)seed },
                                .gptq = { .damp = 0, .block = 128 } };
        lb_quant_summary qs;
        lb_model        *qm;
        lb_ppl_result    r;
        lb_kld_result    k;
        snprintf(path, sizeof path, "%s/%s", dir, files[run]);
        if (lb_quantize_model(in, path, &qp, NULL, NULL, 0, &qs, &err)) goto done;
        if (eval_file(&s, path, ref_logits, NULL, &qm, &r, &k, &err)) goto done;
        lb_report_row *row = &rows[run];
        snprintf(row->name, sizeof row->name, "%s", recipes[i]->name);
        snprintf(row->method, sizeof row->method, "%s", methods[mk]);
        row->bpw        = qs.bpw;
        row->bytes      = qs.bytes_out;
        row->ppl        = r.ppl;
        row->ppl_stderr = r.ppl_stderr;
        row->kld_mean   = k.kld_mean;
        row->kld_stderr = k.kld_stderr;
        row->kld_p99    = k.kld_p99;
        row->top1       = k.top1;
        row->fallbacks  = qs.n_fallback;
        fprintf(stderr, "sweep: %-8s %-9s %7.3f bpw  PPL %.4f  KLD %.6f  top-1 %.2f%%%s\n", row->name, row->method,
                row->bpw, row->ppl, row->kld_mean, 100 * row->top1, qs.n_fallback ? "  (fallbacks)" : "");
        lb_model_free(qm);
    }
    const lb_report rep = { .model = a.positional[0], .text = text_path, .n_ctx = (int32_t)n_ctx,
                            .chunks = rr.chunks, .ppl_ref = rr.ppl,
                            .bytes_ref = lb_model_nbytes(ref),
                            .bpw_ref = 8.0 * (double)lb_model_nbytes(ref) / (double)lb_model_nparams(ref),
                            .rows = rows, .n_rows = n_runs + n_points };
    snprintf(path, sizeof path, "%s/report.md", dir);
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
    if (rc != LB_EXIT_OK && created && files) remove_outputs(dir, files, n_runs);
    free(rows);
    free(files);
    lb_imatrix_free(im);
    free(text);
    free(s.ids);
    lb_model_free(in);
    lb_model_free(ref);
    return rc;
}
