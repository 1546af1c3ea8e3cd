/* The flat interface (lowbit/api.h): options checked (unknown keys, wrong types, malformed
 * JSON, not an object), quantize with progress, evaluate with a reference, a model's info as
 * JSON that parses, tensors read back; the results are what the direct calls give. */
#include "test_util.h"

#include <cjson/cJSON.h>

#include "lowbit/api.h"

static char model[512], text[512];

static void count_block(void *user, const char *json) {
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "name")));
    (*(int *)user)++;
    cJSON_Delete(o);
}

static void test_bad_options(void **state) {
    (void)state;
    char        out[512], *r = NULL;
    lb_error    err = { 0 };
    const char *bad[][2] = {
        { "{\"type\": \"q8_0\", \"colour\": 1}", "unknown key 'colour'" },
        { "{\"type\": 8}", "'type' must be a string" },
        { "{\"type\": \"q8_0\", \"calib_samples\": 1.5}", "'calib_samples' must be an integer" },
        { "{\"type\": \"q8_0\", \"calib_samples\": 0}", "'calib_samples' must be in" },
        { "{\"type\": \"q8_0\", \"pure\": 1}", "'pure' must be true or false" },
        { "{\"type\": \"q8_0\", \"tensor_types\": {\"attn\": \"q9\"}}", "unknown type 'q9'" },
        { "{\"type\": \"q8_0\", \"range\": \"kl2\"}", "unknown range" },
        { "{\"method\": \"rtn\"}", "'type' is required" },
        { "[1, 2]", "not a JSON object" },
        { "{\"type\": \"q8_0\"", "malformed JSON" },
    };
    tmp_path("api-bad.gguf", out, sizeof out);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_not_equal(lb_api_quantize(model, out, bad[i][0], NULL, NULL, &r, &err), LB_OK);
        if (!strstr(err.msg, bad[i][1])) fail_msg("%s: '%s'", bad[i][0], err.msg);
        assert_null(r);
    }
    assert_int_equal(access(out, F_OK), -1);
    assert_int_not_equal(lb_api_evaluate(model, text, "{\"ctx\": 2}", &r, &err), LB_OK);
    assert_int_not_equal(lb_api_evaluate("/nonexistent.gguf", text, NULL, &r, &err), LB_OK);
    assert_non_null(strstr(err.msg, "/nonexistent.gguf"));
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_quantize_evaluate_info(void **state) {
    (void)state;
    char     out[512], *r = NULL;
    lb_error err    = { 0 };
    int      blocks = 0;
    tmp_path("api-q8.gguf", out, sizeof out);
    assert_int_equal(lb_api_quantize(model, out, "{\"type\": \"q8_0\", \"tensor_types\": {\"ffn_down\": \"q4_0\"}}",
                                     count_block, &blocks, &r, &err), LB_OK);
    cJSON *q = cJSON_Parse(r);
    lb_api_free(r);
    assert_int_equal(blocks, 7); /* the embedding, 5 layers, the head */
    assert_true(num(q, "bytes_out") < num(q, "bytes_in") && num(q, "tensors") == 47);
    cJSON_Delete(q);

    char opts[700];
    snprintf(opts, sizeof opts, "{\"ctx\": 64, \"chunks\": 8, \"ref\": \"%s\"}", model);
    assert_int_equal(lb_api_evaluate(out, text, opts, &r, &err), LB_OK);
    cJSON *e = cJSON_Parse(r);
    lb_api_free(r);
    assert_true(num(e, "ppl") > 1 && num(e, "chunks") == 8 && num(e, "ctx") == 64);
    assert_true(num(e, "kld_mean") > 0 && num(e, "kld_mean") < 0.05 && num(e, "top1") > 0.8);
    cJSON_Delete(e);

    lb_model *m;
    assert_int_equal(lb_model_load(&m, out, NULL, &err), LB_OK);
    assert_int_equal(lb_api_model_info(m, &r, &err), LB_OK);
    cJSON *info = cJSON_Parse(r);
    lb_api_free(r);
    assert_true(num(info, "n_layers") == 5 && num(info, "n_embd") == 64);
    const cJSON *meta = cJSON_GetObjectItem(info, "metadata");
    assert_string_equal(cJSON_GetObjectItem(meta, "general.architecture")->valuestring, "llama");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(info, "tensors")), 47);
    cJSON_Delete(info);

    int64_t ne[4], count;
    assert_int_equal(lb_api_tensor_shape(m, "blk.1.ffn_down.weight", ne, &count, &err), LB_OK);
    assert_true(ne[0] == 172 && ne[1] == 64 && ne[2] == 1 && count == 172 * 64);
    float *w = malloc((size_t)count * sizeof *w);
    assert_int_equal(lb_api_tensor_read(m, "blk.1.ffn_down.weight", w, count - 1, &err), LB_ERR_PARAM);
    assert_int_equal(lb_api_tensor_read(m, "blk.1.ffn_down.weight", w, count, &err), LB_OK);
    float row[172];
    lb_tensor_get_row_f32(&m->layers[1].ffn_down, 3, row);
    assert_memory_equal(row, w + 3 * 172, sizeof row);
    assert_int_equal(lb_api_tensor_shape(m, "blk.9.nope", ne, &count, &err), LB_ERR_PARAM);
    free(w);
    lb_model_free(m);
    unlink(out);
}

int main(void) {
    repo_path("models/stories260K/stories260K.bin", model, sizeof model);
    repo_path("data/tinystories-valid-70.txt", text, sizeof text);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_quantize_evaluate_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
