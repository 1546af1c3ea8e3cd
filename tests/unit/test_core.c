/* Core: status text, f16/bf16 conversion (exhaustive round trips and known values),
 * checked arithmetic, the file source on bad paths. */
#include <math.h>

#include "core/checked_math.h"
#include "test_util.h"

static void test_status_strings(void **state) {
    (void)state;
    assert_string_equal(lb_status_str(LB_OK), "ok");
    assert_string_equal(lb_status_str(LB_ERR_TRUNCATED), "truncated data");
    assert_string_equal(lb_status_str((lb_status)12345), "unknown status");
    lb_error err;
    assert_int_equal(lb_fail(&err, LB_ERR_CORRUPT, "x=%d", 7), LB_ERR_CORRUPT);
    assert_int_equal(err.code, LB_ERR_CORRUPT);
    assert_string_equal(err.msg, "x=7");
    assert_int_equal(lb_fail(NULL, LB_ERR_IO, "no err"), LB_ERR_IO);
}

static void test_f16_exhaustive_round_trip(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = lb_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true(isnan(lb_f16_to_f32(lb_f32_to_f16(f))));
            continue;
        }
        assert_int_equal(lb_f32_to_f16(f), h);
    }
}

static void test_f16_known_values(void **state) {
    (void)state;
    assert_int_equal(lb_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(lb_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(lb_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(lb_f32_to_f16(65519.0f), 0x7bff); /* below the halfway point */
    assert_int_equal(lb_f32_to_f16(65520.0f), 0x7c00); /* ties to even: inf */
    assert_int_equal(lb_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(lb_f32_to_f16(0x1p-24f), 0x0001);  /* smallest subnormal */
    assert_int_equal(lb_f32_to_f16(0x1p-25f), 0x0000);  /* halfway to 0: ties to even */
    assert_int_equal(lb_f32_to_f16(0x1.8p-25f), 0x0001);
    assert_int_equal(lb_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie, even stays */
    assert_int_equal(lb_f32_to_f16(1.0f + 0x1.8p-11f), 0x3c01);
    assert_int_equal(lb_f32_to_f16(0.333333343f), 0x3555);
    assert_int_equal(lb_f32_to_f16(-0.0f), 0x8000);
    assert_true(isnan(lb_f16_to_f32(lb_f32_to_f16(NAN))));
    assert_true(lb_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(lb_f16_to_f32(0x7c00) == INFINITY);
}

static void test_bf16(void **state) {
    (void)state;
    assert_int_equal(lb_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(lb_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);          /* tie, even */
    assert_int_equal(lb_f32_to_bf16(1.0f + 0x1.8p-8f), 0x3f81); /* rounds up */
    assert_true(isnan(lb_bf16_to_f32(lb_f32_to_bf16(NAN))));
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = lb_bf16_to_f32((uint16_t)h);
        if (!isnan(f)) assert_int_equal(lb_f32_to_bf16(f), h);
    }
}

static void test_checked_math(void **state) {
    (void)state;
    size_t  s;
    int64_t i;
    assert_true(lb_mul_size(1u << 20, 1u << 10, &s) && s == (1u << 30));
    assert_false(lb_mul_size(SIZE_MAX / 2, 3, &s));
    assert_false(lb_add_size(SIZE_MAX, 1, &s));
    assert_false(lb_mul_i64(INT64_MAX / 2, 3, &i));
    assert_true(lb_align_size(33, 32, &s) && s == 64);
    assert_true(lb_align_size(64, 32, &s) && s == 64);
    assert_false(lb_align_size(SIZE_MAX - 3, 32, &s));
}

static void test_source_errors(void **state) {
    (void)state;
    lb_source src;
    lb_error  err = { 0 };
    assert_int_equal(lb_source_open_file(&src, "/nonexistent/file", &err), LB_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/file"));
    assert_int_equal(lb_source_open_file(&src, "/tmp", &err), LB_ERR_IO);
    char  path[256];
    FILE *f = fopen(tmp_path("empty", path, sizeof path), "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(lb_source_open_file(&src, path, &err), LB_OK);
    assert_int_equal(src.size, 0);
    lb_source_close(&src);
    remove(path);
}

static void test_type_table(void **state) {
    (void)state;
    for (int t = 0; t < LB_TYPE_COUNT; t++) {
        const lb_type_traits *tr = lb_type_get_traits((lb_type)t);
        if (!tr) continue; /* reserved id, not implemented yet */
        assert_non_null(tr->name);
        assert_int_equal(lb_type_from_name(tr->name), tr->internal ? LB_TYPE_INVALID : t);
        assert_true(tr->block_size > 0 && tr->type_size > 0);
        if (tr->is_quantized) continue; /* quantized types: test_formats.c */
        /* round trip through the type */
        float   src[64], dst[64];
        uint8_t buf[64 * 4];
        for (int i = 0; i < 64; i++) src[i] = 0.1f + 2 * cosf((float)i);
        tr->from_float(buf, src, 64);
        tr->to_float(dst, buf, 64);
        for (int i = 0; i < 64; i++) assert_true(fabsf(dst[i] - src[i]) <= 0.01f * fabsf(src[i]) + 1e-6f);
    }
    assert_int_equal(lb_type_from_name("F16"), LB_TYPE_F16);
    assert_int_equal(lb_type_from_name("nope"), LB_TYPE_INVALID);
    assert_null(lb_type_get_traits(LB_TYPE_COUNT));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_strings),   cmocka_unit_test(test_f16_exhaustive_round_trip),
        cmocka_unit_test(test_f16_known_values), cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_checked_math),     cmocka_unit_test(test_source_errors),
        cmocka_unit_test(test_type_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
