/* quantize --target-bpw X: the library's allocation by measured sensitivity (lb_bpw_allocate)
 * turned into one --tensor-type per weight matrix, the table of what was measured and chosen. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define BPW_DEFAULT_TYPES "q2_k,iq2_xxs,iq2_xs,iq2_s,iq3_xxs,q3_k,iq3_s,iq4_xs,q4_k,q5_k,q6_k,q8_0"

/* the comma list into types; false (and a usage message) on a bad name or too many */
bool lb_cli_bpw_types(const char *csv, bool lowbit, lb_type *types, int32_t *n) {
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", csv ? csv : BPW_DEFAULT_TYPES) >= (int)sizeof buf) {
        lb_usage_error("quantize", "--bpw-types: the list is too long");
        return false;
    }
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const lb_type t = lb_type_from_name(tok);
        if (t == LB_TYPE_INVALID || !lb_type_get_traits(t) || !lb_type_get_traits(t)->is_quantized) {
            lb_usage_error("quantize", "--bpw-types: '%s' is not a quantized type", tok);
            return false;
        }
        if (lb_type_to_ggml(t) < 0 && !lowbit) { /* the file is for llama.cpp unless asked otherwise */
            lb_usage_error("quantize", "--bpw-types: %s is lowbit's own type, which llama.cpp cannot load "
                           "(--allow-lowbit-types allows it)", tok);
            return false;
        }
        if (*n == LB_BPW_MAX_TYPES) {
            lb_usage_error("quantize", "--bpw-types: at most %d types", LB_BPW_MAX_TYPES);
            return false;
        }
        types[(*n)++] = t;
    }
    if (*n == 0) lb_usage_error("quantize", "--bpw-types wants a comma list of types");
    return *n > 0;
}

int lb_cli_bpw_plan(const lb_model *m, const lb_bpw_result *res, lb_type_override **ov, int32_t *n_ov,
                    char ***names, const lb_recipe **r) {
    lb_named_tensor *ts = malloc((size_t)res->n_tensors * sizeof *ts);
    *ov    = calloc((size_t)res->n_tensors, sizeof **ov);
    *names = calloc((size_t)res->n_tensors, sizeof **names);
    *n_ov  = 0;
    double by_type[LB_BPW_MAX_TYPES] = { 0 };
    int    rc = ts && *ov && *names ? LB_EXIT_OK : LB_EXIT_ERROR;
    if (rc != LB_EXIT_OK) fprintf(stderr, "lowbit: out of memory\n");
    if (ts) lb_model_tensors(m, ts, res->n_tensors);
    for (int32_t i = 0; rc == LB_EXIT_OK && i < res->n_tensors; i++) {
        if (res->choice[i] == LB_TYPE_F32) continue;
        char pat[160];
        snprintf(pat, sizeof pat, "^%s$", ts[i].name); /* names hold no regex metacharacters but '.' */
        char *s = strdup(pat);
        if (!s) {
            rc = LB_EXIT_ERROR;
            break;
        }
        (*names)[*n_ov] = s;
        (*ov)[*n_ov]    = (lb_type_override){ s, res->choice[i] };
        (*n_ov)++;
        for (int32_t j = 0; j < res->n_types; j++)
            if (res->types[j] == res->choice[i]) by_type[j] += (double)res->bytes[i * res->n_types + j];
    }
    int32_t top = 0; /* the file is named after the type holding the most bytes */
    for (int32_t j = 1; j < res->n_types; j++) top = by_type[j] > by_type[top] ? j : top;
    *r = lb_recipe_find(lb_type_name(res->types[top]));
    free(ts);
    return rc;
}

int lb_cli_target_bpw(const lb_model *m, const lb_cli_bpw *b, lb_type_override **ov, int32_t *n_ov,
                      char ***names, const lb_recipe **r) {
    lb_type       types[LB_BPW_MAX_TYPES];
    int32_t       nt;
    lb_bpw_result res;
    lb_error      err = { 0 };
    if (!lb_cli_bpw_types(b->types, b->lowbit_types, types, &nt)) return LB_EXIT_USAGE;
    const lb_bpw_params p = { .target_bpw = b->target, .types = types, .n_types = nt, .calib_text = b->calib,
                              .calib = { .n_samples = b->samples, .n_ctx = b->ctx, .seed = b->seed },
                              .imatrix = b->imatrix, .proxy = b->proxy };
    if (!b->quiet)
        fprintf(stderr, "quantize: --target-bpw %.3f: measuring each matrix in %d types %s ...\n", b->target, nt,
                b->proxy ? "by its importance-weighted error" : "on the calibration windows");
    if (lb_bpw_allocate(m, &p, &res, &err)) {
        lb_runtime_error(&err);
        return LB_EXIT_ERROR;
    }
    lb_named_tensor *ts = malloc((size_t)res.n_tensors * sizeof *ts);
    int              rc = ts ? lb_cli_bpw_plan(m, &res, ov, n_ov, names, r) : LB_EXIT_ERROR;
    if (!ts) fprintf(stderr, "lowbit quantize: out of memory\n");
    if (ts) lb_model_tensors(m, ts, res.n_tensors);
    FILE *out = b->dry_run ? stdout : stderr;
    for (int32_t i = 0; rc == LB_EXIT_OK && !b->quiet && i < res.n_tensors; i++) {
        if (res.choice[i] == LB_TYPE_F32) continue;
        fprintf(out, "  %-28s -> %-7s", ts[i].name, lb_type_name(res.choice[i]));
        for (int32_t j = 0; j < nt; j++) /* each candidate's KLD, the chosen one marked */
            if (!isnan(res.sens[i * nt + j]))
                fprintf(out, " %s%s %.2g", types[j] == res.choice[i] ? "*" : "", lb_type_name(types[j]),
                        res.sens[i * nt + j]);
        fputc('\n', out);
    }
    if (!b->quiet)
        fprintf(out, "quantize: --target-bpw %.3f: %.3f bits per weight, %s (the sum of the chosen "
                "tensors') %.4g; %d measurements in %.1fs\n", b->target, res.bpw,
                b->proxy ? "weighted error" : "predicted KLD", res.kld_sum, res.evals, res.seconds);
    else if (b->dry_run && b->json) { /* the plan's totals; the table is the text form's */
        lb_jout j;
        lb_jout_begin(&j, stdout);
        lb_jout_bool(&j, "dry_run", true);
        lb_jout_num(&j, "target_bpw", 4, b->target);
        lb_jout_num(&j, "bpw", 4, res.bpw);
        lb_jout_num(&j, "kld_predicted", -6, res.kld_sum);
        lb_jout_int(&j, "measurements", res.evals);
        lb_jout_num(&j, "seconds", 3, res.seconds);
        lb_jout_end(&j);
    }
    free(ts);
    lb_bpw_result_free(&res);
    return rc;
}

double lb_cli_size_to_bpw(const lb_model *m, const char *in, size_t size) {
    const int32_t    n  = lb_model_n_tensors(m);
    lb_named_tensor *ts = malloc((size_t)n * sizeof *ts);
    if (!ts) return -1;
    lb_model_tensors(m, ts, n);
    int64_t params = 0; /* as the allocation counts them (lb_bpw_result.params) */
    for (int32_t i = 0; i < n; i++) params += lb_tensor_nelements(ts[i].t);
    free(ts);
    /* the output's metadata: about the input's when it is one GGUF (its size less its weights),
     * else a large vocabulary's; each tensor's padding to 32 bytes; lowbit's own keys */
    struct stat sb;
    size_t      over = (size_t)4 << 20;
    if (stat(in, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size > lb_model_nbytes(m))
        over = (size_t)sb.st_size - lb_model_nbytes(m);
    over += (size_t)32 * (size_t)n + 16384;
    return size > over && params > 0 ? 8.0 * (double)(size - over) / (double)params : -1;
}
