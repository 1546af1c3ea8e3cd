/* lowbit inspect FILE [--json]: a GGUF's metadata and tensor table, or a llama2.c checkpoint's
 * or Hugging Face directory's configuration (--json: the library's JSON, api.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void shape_str(const int64_t *ne, uint32_t n_dims, char *buf, size_t cap) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (uint32_t d = 0; d < n_dims && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)ne[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static int inspect_gguf(const char *path) {
    lb_gguf *g;
    lb_error err = { 0 };
    if (lb_gguf_open(&g, path, &err)) return lb_runtime_error(&err);
    printf("%s: GGUF v%u, %lld metadata pairs, %lld tensors, alignment %zu, data at %zu\n\n",
           path, g->version, (long long)g->n_kv, (long long)g->n_tensors, g->alignment,
           g->data_offset);
    for (int64_t i = 0; i < g->n_kv; i++) {
        char val[160], ek[1024], ev[4 * sizeof val];
        lb_gguf_kv_format(&g->kv[i], val, sizeof val);
        printf("  %-44s %-4s %s\n", lb_esc(g->kv[i].key, SIZE_MAX, ek, sizeof ek),
               lb_gguf_vtype_name(g->kv[i].type), lb_esc(val, SIZE_MAX, ev, sizeof ev));
    }
    if (g->n_tensors) printf("\n  %-32s %-11s %-20s %12s\n", "tensor", "type", "shape", "bytes");
    size_t total = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const lb_gguf_tensor_info *t = &g->tensors[i];
        char                       shape[96], name[1024], own[32], buf[4 * 32];
        int64_t                    ne[LB_GGUF_MAX_DIMS];
        const char                *type = lb_ggml_type_name(t->ggml_type);
        memcpy(ne, t->ne, sizeof ne);
        /* lowbit's own types are stored as i8 rows; the real type and row length are keys */
        if (lb_gguf_lowbit_type(g, t, own, sizeof own, &ne[0])) type = lb_esc(own, SIZE_MAX, buf, sizeof buf);
        shape_str(ne, t->n_dims, shape, sizeof shape);
        printf("  %-32s %-11s %-20s %12zu\n", lb_esc(t->name, SIZE_MAX, name, sizeof name), type,
               shape, t->nbytes);
        total += t->nbytes;
    }
    if (g->n_tensors) printf("\n  total tensor bytes: %zu\n", total);
    lb_gguf_close(g);
    return LB_EXIT_OK;
}

static int inspect_model(const char *path) {
    lb_model *m;
    lb_error  err = { 0 };
    if (lb_cli_model_load(&m, path, NULL, &err)) return lb_runtime_error(&err);
    const lb_llama_config *c = &m->cfg;
    printf("%s: %s\n  n_embd %d, n_ff %d, n_layers %d, n_heads %d, "
           "n_kv_heads %d, head_dim %d, n_vocab %d, n_ctx %d, %s classifier\n"
           "  %lld parameters, %zu bytes\n\n",
           path, m->format == LB_MODEL_HF ? "Hugging Face model directory" : "llama2.c checkpoint",
           c->n_embd, c->n_ff, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
           c->n_vocab, c->n_ctx_train, m->tied_output ? "shared" : "separate",
           (long long)lb_model_nparams(m), lb_model_nbytes(m));
    lb_model_free(m);
    return LB_EXIT_OK;
}

/* --json: lb_api_gguf_info, or lb_api_model_info of the loaded model */
static int inspect_json(const char *path, bool gguf) {
    lb_error  err = { 0 };
    lb_model *m   = NULL;
    char     *j   = NULL;
    lb_status st  = gguf ? lb_api_gguf_info(path, &j, &err) : lb_cli_model_load(&m, path, NULL, &err);
    if (!st && !gguf) st = lb_api_model_info(m, &j, &err);
    lb_model_free(m);
    if (st) return lb_runtime_error(&err);
    puts(j);
    lb_api_free(j);
    return LB_EXIT_OK;
}

int cmd_inspect(int argc, char **argv) {
    lb_args     a;
    const char *opt;
    bool        json = false;
    lb_args_init(&a, "inspect", argc, argv);
    while ((opt = lb_args_next(&a))) {
        if (lb_is_help(opt)) return lb_print_help("inspect");
        if (!strcmp(opt, "--json")) json = true;
        else return lb_usage_error("inspect", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional != 1) return lb_usage_error("inspect", "expected one FILE");
    const char *path = a.positional[0];
    FILE       *f    = NULL;
    char        magic[4] = { 0 };
    if (lb_open_input(path, &f, NULL) == LB_OK) {
        if (fread(magic, 1, 4, f) != 4) memset(magic, 0, 4);
        fclose(f);
    }
    const bool gguf = memcmp(magic, "GGUF", 4) == 0;
    if (json) return inspect_json(path, gguf);
    return gguf ? inspect_gguf(path) : inspect_model(path);
}
