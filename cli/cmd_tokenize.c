/* lowbit tokenize MODEL (-p TEXT | --file F): token ids, space-separated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

/* --json: {"model", "n_tokens", "ids": [...], "pieces": [...]} */
static void print_json(const char *model, const lb_vocab *v, const int32_t *ids, size_t n) {
    cJSON *a = cJSON_CreateArray(), *p = cJSON_CreateArray();
    for (size_t i = 0; a && p && i < n; i++) {
        size_t      pl;
        const char *t = lb_vocab_text(v, ids[i], &pl);
        char       *s = strndup(t, pl);
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
        cJSON_AddItemToArray(p, cJSON_CreateString(s ? s : ""));
        free(s);
    }
    char   *ja = a ? cJSON_PrintUnformatted(a) : NULL, *jp = p ? cJSON_PrintUnformatted(p) : NULL;
    lb_jout j;
    lb_jout_begin(&j, stdout);
    lb_jout_str(&j, "model", model);
    lb_jout_int(&j, "n_tokens", (long long)n);
    lb_jout_raw(&j, "ids", ja ? ja : "[]");
    lb_jout_raw(&j, "pieces", jp ? jp : "[]");
    lb_jout_end(&j);
    free(ja);
    free(jp);
    cJSON_Delete(a);
    cJSON_Delete(p);
}

int cmd_tokenize(int argc, char **argv) {
    lb_args     a;
    const char *opt, *text = NULL, *file = NULL, *tok = NULL;
    bool        bos = true, pieces = false, json = false;
    lb_args_init(&a, "tokenize", argc, argv);
    while ((opt = lb_args_next(&a)) && !a.bad) {
        if (lb_is_help(opt)) return lb_print_help("tokenize");
        else if (!strcmp(opt, "-p") || !strcmp(opt, "--prompt")) text = lb_args_value(&a);
        else if (!strcmp(opt, "--file")) file = lb_args_value(&a);
        else if (!strcmp(opt, "--tokenizer")) tok = lb_args_value(&a);
        else if (!strcmp(opt, "--no-bos")) bos = false;
        else if (!strcmp(opt, "--pieces")) pieces = true;
        else if (!strcmp(opt, "--json")) json = true;
        else return lb_usage_error("tokenize", "unknown option %s", opt);
    }
    if (a.bad) return LB_EXIT_USAGE;
    if (a.n_positional != 1) return lb_usage_error("tokenize", "expected one MODEL");
    if (!text == !file) return lb_usage_error("tokenize", "give exactly one of -p TEXT and --file F");
    lb_error  err = { 0 };
    lb_vocab *v;
    char     *buf = NULL;
    size_t    len;
    if (lb_cli_vocab_load(&v, tok ? tok : a.positional[0], &err)) return lb_runtime_error(&err);
    if (file) {
        if (lb_read_file(file, &buf, &len, &err)) {
            lb_vocab_free(v);
            return lb_runtime_error(&err);
        }
        text = buf;
    } else {
        len = strlen(text);
    }
    int32_t *ids;
    size_t   n;
    lb_status st = lb_tokenize(v, text, len, bos && lb_vocab_add_bos(v), false, &ids, &n, &err);
    free(buf);
    if (st) {
        lb_vocab_free(v);
        return lb_runtime_error(&err);
    }
    if (json) print_json(tok ? tok : a.positional[0], v, ids, n);
    for (size_t i = 0; !json && i < n; i++) {
        if (pieces) {
            size_t      pl;
            char        esc[1024];
            const char *p = lb_vocab_text(v, ids[i], &pl);
            printf("%s%d '%s'", i ? "\n" : "", ids[i], lb_esc(p, pl, esc, sizeof esc));
        } else {
            printf("%s%d", i ? " " : "", ids[i]);
        }
    }
    if (!json) printf("\n");
    free(ids);
    lb_vocab_free(v);
    return LB_EXIT_OK;
}
