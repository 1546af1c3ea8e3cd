/* lowbit bench MODEL: prompt processing and generation speed as llama-bench measures them
 * (pp: one batch of -p random tokens from an empty cache; tg: -n tokens one at a time from an
 * empty cache), median of repetitions after a warm-up, with the spread; the weight bytes each
 * generated token streams, against the read bandwidth measured in the same run.
 * lowbit bench --memory: the read bandwidth alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lowbit/bench.h"

typedef struct {
    lb_context    *ctx;
    const int32_t *toks;
    int32_t        n;
} job;

static lb_status run_pp(void *user, lb_error *err) {
    job         *j = user;
    const float *lg;
    lb_context_reset(j->ctx);
    return lb_forward(j->ctx, j->toks, j->n, &lg, err);
}

static lb_status run_tg(void *user, lb_error *err) {
    job         *j = user;
    const float *lg;
    lb_context_reset(j->ctx);
    for (int32_t i = 0; i < j->n; i++) {
        const lb_status st = lb_forward(j->ctx, j->toks + i, 1, &lg, err);
        if (st) return st;
    }
    return LB_OK;
}

/* the type most of the model's weights are in, for the tables: the FFN's (the experts') */
static const char *weight_type(const lb_model *m) {
    const lb_layer *L = &m->layers[0];
    return lb_type_name(L->ffn_gate.data ? L->ffn_gate.type : L->ffn_gate_exps.data ? L->ffn_gate_exps.type : L->wq.type);
}

/* The read bandwidth probes of one run (GB/s; 0: not on this CPU), the best of them the
 * ceiling a generation speed is judged against, and where the threads ran. */
typedef struct {
    double words, avx2, avx512, q4_k, q8_0, best;
    char   cpus[160];
} bw_probes;

static lb_status measure_probes(int64_t mib, int32_t reps, bw_probes *b, lb_error *err) {
    memset(b, 0, sizeof *b);
    double *const loads[3] = { &b->words, &b->avx2, &b->avx512 };
    for (int isa = 0; isa < 3; isa++) { /* 8-byte words, AVX2, AVX-512 loads */
        int       width;
        double    bps;
        lb_status st = lb_bench_memory_read_isa((size_t)mib << 20, lb_threads_get(), reps, isa, &bps, &width, err);
        if (st) return st;
        if (width == isa) *loads[isa] = bps / 1e9;
    }
    double *const kern[2] = { &b->q4_k, &b->q8_0 }; /* the kernels' own reads, half the buffer each */
    const lb_type types[2] = { LB_TYPE_Q4_K, LB_TYPE_Q8_0 };
    for (int k = 0; k < 2; k++) {
        double    bps;
        lb_status st = lb_bench_kernel_read(types[k], (size_t)(mib > 32 ? mib / 2 : 16) << 20, reps, &bps, err);
        if (st == LB_ERR_UNSUPPORTED) continue;
        if (st) return st;
        *kern[k] = bps / 1e9;
    }
    const double all[5] = { b->words, b->avx2, b->avx512, b->q4_k, b->q8_0 };
    for (int i = 0; i < 5; i++) b->best = all[i] > b->best ? all[i] : b->best;
    lb_bench_thread_cpus(b->cpus, sizeof b->cpus);
    return LB_OK;
}

static void json_probes(lb_jout *j, const bw_probes *b) {
    const struct {
        const char *k;
        double      v;
    } f[] = { { "mem_gbs", b->best }, { "mem_words_gbs", b->words }, { "mem_avx2_gbs", b->avx2 },
              { "mem_avx512_gbs", b->avx512 }, { "mem_q4_k_gbs", b->q4_k }, { "mem_q8_0_gbs", b->q8_0 } };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) lb_jout_num(j, f[i].k, 3, f[i].v);
    lb_jout_str(j, "cpus", b->cpus);
    lb_jout_str(j, "omp_proc_bind", getenv("OMP_PROC_BIND") ? getenv("OMP_PROC_BIND") : "unset");
}

/* "words 20.1, avx2 33.2, avx512 35.4, q4_K kernel 30.2, q8_0 kernel 33.0 GB/s; CPUs 0,1" */
static void print_probes(const bw_probes *b) {
    printf("words %.2f, avx2 %.2f, avx512 %.2f, q4_K kernel %.2f, q8_0 kernel %.2f GB/s; threads on CPUs %s, "
           "OMP_PROC_BIND %s", b->words, b->avx2, b->avx512, b->q4_k, b->q8_0, b->cpus,
           getenv("OMP_PROC_BIND") ? getenv("OMP_PROC_BIND") : "unset");
}

static int bench_memory(int64_t mib, int64_t reps, bool json) {
    lb_error  err = { 0 };
    bw_probes b;
    if (measure_probes(mib, (int32_t)reps, &b, &err)) return lb_runtime_error(&err);
    if (json) {
        lb_jout j;
        lb_jout_begin(&j, stdout);
        json_probes(&j, &b);
        lb_jout_int(&j, "threads", lb_threads_get());
        lb_jout_int(&j, "bytes", (long long)mib << 20);
        lb_jout_end(&j);
    } else {
        printf("memory read bandwidth: %.2f GB/s, the best of (%d threads, %lld MiB, median of %lld each):\n  ",
               b.best, lb_threads_get(), (long long)mib, (long long)reps);
        print_probes(&b);
        printf("\n");
    }
    return LB_EXIT_OK;
}

static void print_speed(const char *name, int64_t n, const lb_bench_result *r) {
    printf("%-8s %9.2f tok/s  (median of %d; %.2f .. %.2f)\n", name, (double)n / r->median,
           r->reps, (double)n / r->max, (double)n / r->min);
}

/* ---- llama-bench's forms: comma lists and -o md|csv|json|jsonl ---- */
#define MAX_LIST 16
typedef struct {
    int64_t v[MAX_LIST];
    int     n;
} num_list;

/* "512,1024": each in [lo, hi] (false, with a usage error printed, otherwise) */
static bool parse_list(lb_args *a, const char *opt, int64_t lo, int64_t hi, num_list *l) {
    const char *v = lb_args_value(a);
    if (!v) return false;
    l->n = 0;
    for (const char *p = v;;) {
        char     *end;
        long long x = strtoll(p, &end, 10);
        if (end == p || (*end && *end != ',') || x < lo || x > hi || l->n == MAX_LIST) {
            lb_usage_error("bench", "%s wants up to %d integers in %lld .. %lld, comma-separated, not '%s'", opt,
                           MAX_LIST, (long long)lo, (long long)hi, v);
            return false;
        }
        l->v[l->n++] = x;
        if (!*end) return true;
        p = end + 1;
    }
}

typedef struct {
    const char *model, *type, *fmt;
    size_t      bytes;
    int64_t     params;
    int         rows;
} table;

/* a CSV field, quoted, its quotes doubled (RFC 4180); a Markdown cell, its '|' escaped */
static void put_csv(const char *s) {
    putchar('"');
    for (; *s; s++) fputs(*s == '"' ? "\"\"" : (char[]){ *s, 0 }, stdout);
    putchar('"');
}

static void put_md(const char *s) {
    for (; *s; s++) fputs(*s == '|' ? "\\|" : (char[]){ *s, 0 }, stdout);
}

/* one test's row (fmt: md, csv, json, jsonl), the header before the first */
static void table_row(table *t, int threads, bool pp, int64_t n, const lb_bench_result *r) {
    char test[32];
    snprintf(test, sizeof test, "%s%lld", pp ? "pp" : "tg", (long long)n);
    const double tps = (double)n / r->median, lo = (double)n / r->max, hi = (double)n / r->min;
    if (!strcmp(t->fmt, "md")) {
        if (!t->rows) printf("| model | type | size | params | kernels | threads | test | t/s | min .. max |\n"
                             "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
        fputs("| ", stdout);
        put_md(t->model);
        printf(" | %s | %.2f MiB | %.2f M | %s | %d | %s | %.2f | %.2f .. %.2f |\n", t->type,
               (double)t->bytes / 1048576.0, (double)t->params / 1e6, lb_kernels_name(), threads, test, tps, lo, hi);
    } else if (!strcmp(t->fmt, "csv")) {
        if (!t->rows) printf("model,type,size_bytes,params,kernels,threads,test,n_prompt,n_gen,tps,tps_min,tps_max\n");
        put_csv(t->model);
        printf(",%s,%zu,%lld,%s,%d,%s,%lld,%lld,%.3f,%.3f,%.3f\n", t->type, t->bytes, (long long)t->params,
               lb_kernels_name(), threads, test, pp ? (long long)n : 0LL, pp ? 0LL : (long long)n, tps, lo, hi);
    } else {
        const bool arr = !strcmp(t->fmt, "json");
        fputs(arr ? (t->rows ? ",\n  " : "[\n  ") : "", stdout);
        lb_jout j;
        lb_jout_begin(&j, stdout);
        lb_jout_str(&j, "model", t->model);
        lb_jout_str(&j, "type", t->type);
        lb_jout_int(&j, "model_bytes", (long long)t->bytes);
        lb_jout_int(&j, "params", t->params);
        lb_jout_str(&j, "kernels", lb_kernels_name());
        lb_jout_int(&j, "threads", threads);
        lb_jout_str(&j, "test", test);
        lb_jout_int(&j, "n_prompt", pp ? n : 0);
        lb_jout_int(&j, "n_gen", pp ? 0 : n);
        lb_jout_num(&j, "tps", 3, tps);
        lb_jout_num(&j, "tps_min", 3, lo);
        lb_jout_num(&j, "tps_max", 3, hi);
        if (arr) fputc('}', stdout);
        else lb_jout_end(&j);
    }
    t->rows++;
}

int cmd_bench(int argc, char **argv) {
    lb_args        a;
    const char    *opt, *tok = NULL;
    int64_t        n_pp = 512, n_tg = 128, threads = 0, reps = 5, mib = 512;
    num_list       pps = { { 512 }, 1 }, tgs = { { 128 }, 1 }, ths = { { 0 }, 1 };
    const char    *fmt = NULL;
    double         mem_bw = 0;
    bool           json = false, memory = false;
    bw_probes      probes = { 0 };
    lb_ctx_options co;
    lb_ctx_options_init(&co, true);
    lb_args_init(&a, "bench", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) return lb_print_help("bench");
        else if (lb_args_ctx_option(&a, opt, &co)) continue;
        else if (!strcmp(opt, "-p") || !strcmp(opt, "--n-prompt")) {
            if (!parse_list(&a, opt, 0, 1 << 16, &pps)) return LB_EXIT_USAGE;
        } else if (!strcmp(opt, "-n") || !strcmp(opt, "--n-gen")) {
            if (!parse_list(&a, opt, 0, 1 << 16, &tgs)) return LB_EXIT_USAGE;
        } else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) {
            if (!parse_list(&a, opt, 0, 1024, &ths)) return LB_EXIT_USAGE;
        } else if (!strcmp(opt, "-r") || !strcmp(opt, "--reps")) lb_args_int(&a, 1, 1000, &reps);
        else if (!strcmp(opt, "-o") || !strcmp(opt, "--output")) {
            fmt = lb_args_value(&a);
            if (fmt && strcmp(fmt, "md") && strcmp(fmt, "csv") && strcmp(fmt, "json") && strcmp(fmt, "jsonl"))
                return lb_usage_error("bench", "-o wants md, csv, json or jsonl, not '%s'", fmt);
        }
        else if (!strcmp(opt, "--memory")) memory = true;
        else if (!strcmp(opt, "--mem-mib")) lb_args_int(&a, 16, 1 << 20, &mib);
        else if (!strcmp(opt, "--mem-bw")) lb_args_float(&a, 0, 1e6, &mem_bw);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--json")) json = true;
        else return lb_usage_error("bench", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    n_pp = pps.v[0], n_tg = tgs.v[0], threads = ths.v[0];
    if (pps.n > 1 || tgs.n > 1 || ths.n > 1) fmt = fmt ? fmt : "md"; /* llama-bench's table */
    if (fmt && json) return lb_usage_error("bench", "give --json or -o, not both");
    lb_threads_set((int)threads);
    if (memory) {
        if (a.n_positional) return lb_usage_error("bench", "--memory takes no MODEL");
        return bench_memory(mib, reps, json);
    }
    if (a.n_positional != 1) return lb_usage_error("bench", "expected one MODEL (or --memory)");
    if (n_pp == 0 && n_tg == 0 && pps.n == 1 && tgs.n == 1)
        return lb_usage_error("bench", "nothing to measure: -p 0 -n 0");

    lb_error        err = { 0 };
    lb_model       *m   = NULL;
    lb_context     *ctx = NULL;
    int32_t        *toks = NULL;
    lb_bench_result pp = { 0 }, tg = { 0 };
    int             rc = LB_EXIT_ERROR;
    if (lb_cli_model_load(&m, a.positional[0], tok, &err)) goto done;
    int64_t max_pp = 1, n_max = 1;
    for (int k = 0; k < pps.n; k++) max_pp = pps.v[k] > max_pp ? pps.v[k] : max_pp;
    for (int k = 0; k < tgs.n; k++) n_max = tgs.v[k] > n_max ? tgs.v[k] : n_max;
    n_max = max_pp > n_max ? max_pp : n_max;
    toks                = malloc((size_t)n_max * sizeof *toks);
    if (!toks) {
        lb_fail(&err, LB_ERR_NOMEM, "out of memory");
        goto done;
    }
    uint64_t s = 42; /* random tokens, as llama-bench uses */
    for (int32_t i = 0; i < n_max; i++) {
        s       = s * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((s >> 33) % (uint64_t)m->cfg.n_vocab);
    }
    lb_context_params cp = lb_context_default_params((int32_t)n_max, (int32_t)max_pp);
    cp.fast = co.fast, cp.type_k = co.type_k, cp.type_v = co.type_v;
    if (lb_context_create_ex(&ctx, m, &cp, &err)) goto done;
    const lb_bench_opts o  = { .warmup = 1, .reps = (int32_t)reps };
    if (fmt) { /* llama-bench's tests: each thread count, each -p (pp) and each -n (tg) */
        table t = { a.positional[0], weight_type(m), fmt, lb_model_nbytes(m),
                    lb_model_nparams(m), 0 };
        for (int ti = 0; ti < ths.n; ti++) {
            lb_threads_set((int)ths.v[ti]);
            for (int pass = 0; pass < 2; pass++)
                for (int k = 0; k < (pass ? tgs.n : pps.n); k++) {
                    const int64_t   n = pass ? tgs.v[k] : pps.v[k];
                    job             jb = { ctx, toks, (int32_t)n };
                    lb_bench_result r;
                    if (n == 0) continue;
                    if (lb_bench_run(pass ? run_tg : run_pp, &jb, &o, &r, &err)) goto done;
                    table_row(&t, lb_threads_get(), !pass, n, &r);
                }
        }
        if (!strcmp(fmt, "json")) puts(t.rows ? "\n]" : "[]");
        rc = LB_EXIT_OK;
        goto done;
    }
    job                 jp = { ctx, toks, (int32_t)n_pp }, jt = { ctx, toks, (int32_t)n_tg };
    if (n_pp > 0 && lb_bench_run(run_pp, &jp, &o, &pp, &err)) goto done;
    if (n_tg > 0 && lb_bench_run(run_tg, &jt, &o, &tg, &err)) goto done;
    /* a mixture of experts: the expert bytes one more generation run actually multiplies */
    double x_read = 0;
    if (n_tg > 0 && m->cfg.n_expert > 0) {
        const uint64_t before = lb_context_expert_bytes(ctx);
        if (run_tg(&jt, &err)) goto done;
        x_read = (double)(lb_context_expert_bytes(ctx) - before) / (double)n_tg;
    }
    const size_t rss = lb_peak_rss(); /* before the bandwidth probe's buffer */
    if (n_tg > 0 && mem_bw <= 0) { /* the ceiling: the best probe of this run */
        if (measure_probes(mib, 5, &probes, &err)) goto done;
        mem_bw = probes.best;
    }
    const double pp_tps = n_pp ? (double)n_pp / pp.median : 0, tg_tps = n_tg ? (double)n_tg / tg.median : 0;
    const size_t bytes = lb_model_nbytes(m), streamed = lb_model_token_nbytes(m);
    const double tg_gbs = (double)streamed * tg_tps / 1e9, frac = mem_bw > 0 ? tg_gbs / mem_bw : 0;
    const char  *wtype  = weight_type(m);
    if (json) {
        lb_jout j;
        lb_jout_begin(&j, stdout);
        lb_jout_str(&j, "model", a.positional[0]);
        lb_jout_str(&j, "type", wtype);
        lb_jout_int(&j, "model_bytes", (long long)bytes);
        lb_jout_int(&j, "params", (long long)lb_model_nparams(m));
        lb_jout_int(&j, "threads", lb_threads_get());
        lb_jout_str(&j, "kernels", lb_kernels_name());
        lb_jout_str(&j, "matmul", co.fast ? "q8" : "exact");
        lb_jout_str(&j, "cache_type_k", lb_type_name(co.type_k));
        lb_jout_str(&j, "cache_type_v", lb_type_name(co.type_v));
        lb_jout_int(&j, "p", n_pp);
        lb_jout_int(&j, "n", n_tg);
        lb_jout_int(&j, "reps", reps);
        const struct {
            const char *key;
            double      v;
        } f[] = { { "pp_tps", pp_tps }, { "pp_tps_min", n_pp ? n_pp / pp.max : 0 }, { "pp_tps_max", n_pp ? n_pp / pp.min : 0 },
                  { "tg_tps", tg_tps }, { "tg_tps_min", n_tg ? n_tg / tg.max : 0 }, { "tg_tps_max", n_tg ? n_tg / tg.min : 0 } };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) lb_jout_num(&j, f[i].key, 3, f[i].v);
        lb_jout_int(&j, "streamed_bytes", (long long)streamed);
        if (m->cfg.n_expert > 0) lb_jout_num(&j, "expert_bytes_read", 0, x_read);
        lb_jout_num(&j, "tg_gbs", 3, tg_gbs);
        if (probes.best > 0) json_probes(&j, &probes);
        else lb_jout_num(&j, "mem_gbs", 3, mem_bw);
        lb_jout_num(&j, "bw_frac", 4, frac);
        lb_jout_int(&j, "peak_rss", (long long)rss);
        lb_jout_end(&j);
    } else {
        printf("model:    %s (%s, %.3f GB, %.3f B parameters)\n"
               "setup:    %d threads, %s kernels, matmul %s, KV cache %s/%s\n",
               a.positional[0], wtype, (double)bytes / 1e9, (double)lb_model_nparams(m) / 1e9,
               lb_threads_get(), lb_kernels_name(), co.fast ? "q8" : "exact",
               lb_type_name(co.type_k), lb_type_name(co.type_v));
        char name[32];
        snprintf(name, sizeof name, "pp%lld", (long long)n_pp);
        if (n_pp) print_speed(name, n_pp, &pp);
        snprintf(name, sizeof name, "tg%lld", (long long)n_tg);
        if (n_tg) {
            print_speed(name, n_tg, &tg);
            printf("memory:   %.2f GB/s of weights (%.3f GB a token), %.0f%% of the %s %.2f GB/s\n", tg_gbs,
                   (double)streamed / 1e9, 100 * frac, probes.best > 0 ? "best probe's" : "given", mem_bw);
            if (probes.best > 0) {
                printf("probes:   ");
                print_probes(&probes);
                printf("\n");
            }
            if (m->cfg.n_expert > 0)
                printf("experts:  %d of %d a token: %.4f GB of expert matrices read a token, measured (their "
                       "share of the file's %.4f GB: %.4f)\n", m->cfg.n_expert_used, m->cfg.n_expert, x_read / 1e9,
                       (double)lb_model_expert_nbytes(m) / 1e9,
                       (double)lb_model_expert_nbytes(m) * m->cfg.n_expert_used / m->cfg.n_expert / 1e9);
        }
        printf("peak RSS: %.3f GB\n", (double)rss / 1e9);
    }
    rc = LB_EXIT_OK;
done:
    if (rc != LB_EXIT_OK) lb_runtime_error(&err);
    free(toks);
    lb_context_free(ctx);
    lb_model_free(m);
    return rc;
}
