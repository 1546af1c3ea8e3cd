/* The i-quants and MXFP4: the grids expand to ggml's tables; quantizing llama.cpp's golden
 * synth256 model with its importance matrix gives llama-quantize's bytes for every i-quant
 * tensor of the golden files (../shared/data/golden/synth256-IQ*.gguf); the quantizers without
 * an importance matrix round-trip with a bounded error; MXFP4 follows the OCP rules. */
#include <math.h>

#include "formats/formats.h"
#include "formats/iq_grid.h"
#include "test_util.h"


/* FNV-1a 64 of ggml-common.h's grid tables as bytes (little-endian), computed from the header */
static void test_grids_are_ggml_tables(void **state) {
    (void)state;
    static const struct { lb_iq_grid_id id; int n, dim; uint64_t hash; } k[] = {
        { LB_IQG_IQ2XXS, 256, 8, 0x5bd45ef8a547a7e8ull }, { LB_IQG_IQ2XS, 512, 8, 0xa3e52388268ca2a3ull },
        { LB_IQG_IQ2S, 1024, 8, 0xcdb5ae5bcfe7fb32ull },  { LB_IQG_IQ1S, 2048, 8, 0x31aaba1fc89a41d0ull },
        { LB_IQG_IQ3XXS, 256, 4, 0x2748ed45beb63233ull }, { LB_IQG_IQ3S, 512, 4, 0x5f1781aa06d14fbfull },
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const lb_iq_grid *g = lb_iq_grid_search(k[i].id);
        assert_int_equal(g->n, k[i].n);
        assert_int_equal(g->dim, k[i].dim);
        assert_true(fnv1a(g->values, (size_t)g->n * (size_t)g->dim) == k[i].hash);
        /* every point maps to itself; an off-grid pattern lists only points, nearest first */
        for (int p = 0; p < g->n; p++) {
            uint32_t u = 0;
            for (int j = 0; j < g->dim; j++) u |= (uint32_t)((g->odd[p * g->dim + j] - 1) / 2) << (g->bits * j);
            assert_int_equal(g->map[u], p);
        }
        const int size = g->bits == 2 ? 43692 : 4096;
        for (int u = 0; u < size; u++) {
            if (g->map[u] >= 0) continue;
            bool valid = true; /* patterns with a level past the search's are never looked up */
            for (int t = 0; t < g->dim; t++) valid &= (u >> (g->bits * t) & ((1 << g->bits) - 1)) < g->n_levels;
            assert_true(valid == (g->map[u] != LB_IQ_NO_PATTERN));
            if (!valid) continue;
            const uint16_t *nb = g->neighbours - g->map[u] - 1;
            assert_true(nb[0] >= 1);
            int last = 0;
            for (int j = 1; j <= nb[0]; j++) {
                assert_true(nb[j] < g->n);
                int d2 = 0;
                for (int t = 0; t < g->dim; t++) {
                    const int e = g->odd[nb[j] * g->dim + t] - (2 * (u >> (g->bits * t) & ((1 << g->bits) - 1)) + 1);
                    d2 += e * e;
                }
                assert_true(d2 >= last);
                last = d2;
            }
        }
    }
    for (uint32_t s = 0; s < 128; s++) assert_int_equal(__builtin_popcount(lb_iq_signs(s)) % 2, 0);
}

/* llama-quantize's bytes: every i-quant tensor of the golden files, quantized by lowbit from
 * synth256-f32 with synth256.imatrix.gguf */
static void test_matches_llama_quantize(void **state) {
    (void)state;
    static const char *const files[] = { "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S" };
    char        fp[512], ip[512];
    lb_gguf    *f32, *g;
    lb_imatrix *im;
    lb_error    err = { 0 };
    SKIP_UNLESS(shared_path("golden/synth256-f32.gguf", fp, sizeof fp));
    SKIP_UNLESS(shared_path("golden/synth256.imatrix.gguf", ip, sizeof ip));
    assert_int_equal(lb_gguf_open(&f32, fp, &err), LB_OK);
    assert_int_equal(lb_imatrix_load(&im, ip, &err), LB_OK);
    int checked = 0, differ = 0, skipped = 0;
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        char rel[64], path[512];
        snprintf(rel, sizeof rel, "golden/synth256-%s.gguf", files[fi]);
        assert_non_null(shared_path(rel, path, sizeof path));
        assert_int_equal(lb_gguf_open(&g, path, &err), LB_OK);
        for (int64_t i = 0; i < g->n_tensors; i++) {
            const lb_gguf_tensor_info *t  = &g->tensors[i];
            const lb_type              ty = lb_type_from_ggml(t->ggml_type);
            const lb_type_traits      *tr = lb_type_get_traits(ty);
            if (!tr || tr->block_size != 256 || strncmp(tr->name, "iq", 2) != 0 || !strcmp(tr->name, "iq4_xs"))
                continue;
            if (!tr->quantize) { skipped++; continue; }
            const int64_t j = lb_gguf_find_tensor(f32, t->name);
            assert_true(j >= 0);
            const int64_t n = t->ne[0], rows = t->ne[1];
            float        *imp = malloc((size_t)n * sizeof *imp);
            const bool    has = lb_imatrix_get(im, t->name, n, imp);
            void         *q   = malloc(t->nbytes);
            assert_int_equal(lb_quantize_rows(ty, q, f32->tensors[j].data, rows, n, has ? imp : NULL), t->nbytes);
            if (memcmp(q, t->data, t->nbytes) != 0) {
                printf("# %s %s (%s) differs from llama-quantize\n", files[fi], t->name, tr->name);
                differ++;
            }
            checked++;
            free(q);
            free(imp);
        }
        lb_gguf_close(g);
    }
    printf("# %d i-quant tensors quantized with llama.cpp's importance matrix: %d differ from "
           "llama-quantize; %d skipped\n", checked, differ, skipped);
    assert_true(checked >= 60);
    assert_int_equal(differ, 0);
    lb_imatrix_free(im);
    lb_gguf_close(f32);
}

/* IQ1_M and IQ2_S (no golden file) and MXFP4: llama.cpp's bytes and ggml's dequantization, recorded in
 * tests/golden/llama-quantize-iq.txt */
static void test_iq1_m_iq2_s_mxfp4_hashes(void **state) {
    (void)state;
    char        fp[512], ip[512], list[512];
    lb_gguf    *f32;
    lb_imatrix *im;
    lb_error    err = { 0 };
    SKIP_UNLESS(shared_path("golden/synth256-f32.gguf", fp, sizeof fp));
    SKIP_UNLESS(shared_path("golden/synth256.imatrix.gguf", ip, sizeof ip));
    assert_int_equal(lb_gguf_open(&f32, fp, &err), LB_OK);
    assert_int_equal(lb_imatrix_load(&im, ip, &err), LB_OK);
    FILE *f = fopen(repo_path("tests/golden/llama-quantize-iq.txt", list, sizeof list), "r");
    assert_non_null(f);
    char line[256];
    int  checked = 0, differ = 0;
    while (fgets(line, sizeof line, f)) {
        char               type[16], name[96];
        unsigned long long want_q, want_f;
        if (line[0] == '#' || sscanf(line, "%15s %95s %llx %llx", type, name, &want_q, &want_f) != 4) continue;
        const lb_type ty = lb_type_from_name(type);
        assert_true(ty == LB_TYPE_IQ1_M || ty == LB_TYPE_IQ2_S || ty == LB_TYPE_MXFP4);
        const int64_t j = lb_gguf_find_tensor(f32, name);
        assert_true(j >= 0);
        const int64_t n = f32->tensors[j].ne[0], rows = f32->tensors[j].ne[1];
        const size_t  nb = lb_row_size(ty, n) * (size_t)rows;
        float        *imp = malloc((size_t)n * sizeof *imp), *y = malloc((size_t)(n * rows) * sizeof *y);
        void         *q   = malloc(nb);
        const bool    has = ty != LB_TYPE_MXFP4 && lb_imatrix_get(im, name, n, imp);
        assert_int_equal(lb_quantize_rows(ty, q, f32->tensors[j].data, rows, n, has ? imp : NULL), nb);
        lb_type_get_traits(ty)->to_float(y, q, n * rows);
        if (fnv1a(q, nb) != want_q || fnv1a(y, (size_t)(n * rows) * sizeof *y) != want_f) {
            printf("# %s %s differs from llama.cpp's\n", type, name);
            differ++;
        }
        checked++;
        free(q), free(y), free(imp);
    }
    fclose(f);
    printf("# %d IQ1_M, IQ2_S and MXFP4 tensors: %d differ from llama.cpp's bytes or dequantization\n",
           checked, differ);
    assert_true(checked >= 45);
    assert_int_equal(differ, 0);
    lb_imatrix_free(im);
    lb_gguf_close(f32);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grids_are_ggml_tables),
        cmocka_unit_test(test_matches_llama_quantize),
        cmocka_unit_test(test_iq1_m_iq2_s_mxfp4_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
