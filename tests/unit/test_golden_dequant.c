/* Dequantization is exact: every tensor of llama.cpp's golden files, dequantized by lowbit,
 * hashes to the same FNV-1a 64 as ggml's own dequantization (tests/golden/ggml-dequant.txt,
 * recorded from libggml-base). Types lowbit does not implement are counted and skipped. */
#include "test_util.h"


static void test_dequant_matches_ggml(void **state) {
    (void)state;
    char dir[512], list[512];
    SKIP_UNLESS(shared_path("golden", dir, sizeof dir));
    FILE *f = fopen(repo_path("tests/golden/ggml-dequant.txt", list, sizeof list), "r");
    assert_non_null(f);
    char     line[512], cur[256] = "";
    lb_gguf *g = NULL;
    lb_error err = { 0 };
    int      checked = 0, skipped = 0, mismatches = 0;
    while (fgets(line, sizeof line, f)) {
        char               file[128], name[128], type[32];
        unsigned long long want;
        if (line[0] == '#' || sscanf(line, "%127s %127s %31s %llx", file, name, type, &want) != 4) continue;
        if (strcmp(file, cur) != 0) {
            char path[1024];
            lb_gguf_close(g);
            snprintf(path, sizeof path, "%s/%s", dir, file);
            assert_int_equal(lb_gguf_open(&g, path, &err), LB_OK);
            snprintf(cur, sizeof cur, "%s", file);
        }
        const int64_t i = lb_gguf_find_tensor(g, name);
        assert_true(i >= 0);
        const lb_gguf_tensor_info *t  = &g->tensors[i];
        const lb_type              ty = lb_type_from_ggml(t->ggml_type);
        assert_string_equal(lb_ggml_type_name(t->ggml_type), type);
        if (ty == LB_TYPE_INVALID) {
            skipped++;
            continue;
        }
        const int64_t n   = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        float        *out = malloc((size_t)n * sizeof *out);
        lb_type_get_traits(ty)->to_float(out, t->data, n);
        const uint64_t got = fnv1a(out, (size_t)n * sizeof *out);
        if (got != want) {
            printf("# %s %s (%s): %016llx, ggml %016llx\n", file, name, type, (unsigned long long)got, want);
            mismatches++;
        }
        checked++;
        free(out);
    }
    lb_gguf_close(g);
    fclose(f);
    printf("# %d tensors dequantized and compared with ggml: %d differ; %d skipped (types lowbit "
           "does not implement)\n", checked, mismatches, skipped);
    assert_true(checked >= 600);
    assert_int_equal(mismatches, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_dequant_matches_ggml) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
