/* A program against the installed library: quantize a model to Q8_0 and compare the
 * perplexity of the original and the quantized file on a text.
 *
 *   cc quantize_eval.c $(pkg-config --cflags --libs lowbit) -o quantize_eval
 *   ./quantize_eval MODEL TEXT OUT.gguf
 *
 * Every call returns an lb_status; on failure err.msg says why in one line. */
#include <stdio.h>
#include <stdlib.h>

#include <lowbit/lowbit.h>

/* the perplexity of the model at path on text, in chunks of 128 tokens */
static lb_status perplexity(const char *path, const char *text, size_t len, double *ppl, lb_error *err) {
    lb_model   *m   = NULL;
    lb_context *ctx = NULL;
    int32_t    *tok = NULL;
    size_t      n   = 0;
    lb_status   st  = lb_model_load(&m, path, NULL, err);
    if (!st) st = lb_tokenize(m->vocab, text, len, lb_vocab_add_bos(m->vocab), false, &tok, &n, err);
    if (!st) st = lb_context_create(&ctx, m, 128, 128, err);
    if (!st) {
        const lb_ppl_params p = { .n_ctx = 128 };
        lb_ppl_result       r;
        st   = lb_eval_perplexity(ctx, m->vocab, tok, n, &p, &r, err);
        *ppl = r.ppl;
    }
    lb_context_free(ctx);
    free(tok);
    lb_model_free(m);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL TEXT OUT.gguf\n", argv[0]);
        return 2;
    }
    printf("lowbit %s (headers %s)\n", lb_version(), LOWBIT_VERSION_STRING);
    lb_error  err = { 0 };
    lb_model *m;
    char     *text;
    size_t    len;
    double    ppl0, ppl1;
    if (lb_read_file(argv[2], &text, &len, &err) || lb_model_load(&m, argv[1], NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("model: %d layers, n_embd %d, vocabulary %d\n", m->cfg.n_layers, m->cfg.n_embd, m->cfg.n_vocab);
    const lb_quant_params p = { .recipe = lb_recipe_find("q8_0"), .method = "rtn" };
    lb_quant_summary      s;
    lb_status             st = lb_quantize_model(m, argv[3], &p, NULL, NULL, 0, &s, &err);
    lb_model_free(m);
    if (!st) st = perplexity(argv[1], text, len, &ppl0, &err);
    if (!st) st = perplexity(argv[3], text, len, &ppl1, &err);
    free(text);
    if (st) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("q8_0: %.3f bits per weight; perplexity %.4f -> %.4f\n", s.bpw, ppl0, ppl1);
    return 0;
}
