/* JSON through cJSON, for the files lowbit reads (config.json, tokenizer.json, safetensors
 * headers): parse with an error that names the file, line and column; typed getters that
 * never trust a value's type or range. Values are borrowed from the parsed tree. */
#ifndef LB_CORE_JSON_H
#define LB_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lowbit/status.h"

/* Parse len bytes as one JSON value (whitespace may follow, nothing else). On error:
 * LB_ERR_CORRUPT, "NAME: malformed JSON at line L, column C". */
lb_status lb_json_parse(cJSON **out, const char *text, size_t len, const char *name,
                        lb_error *err);
/* Read and parse a whole file (at most 1 GiB). */
lb_status lb_json_load_file(cJSON **out, const char *path, lb_error *err);

/* An integral number in [lo, hi] (true), else false. */
bool lb_json_int(const cJSON *item, int64_t lo, int64_t hi, int64_t *out);
/* The string value of obj[key], NULL when absent or not a string. */
const char *lb_json_str(const cJSON *obj, const char *key);
/* obj[key] when present and not null, else NULL (case-sensitive). */
const cJSON *lb_json_get(const cJSON *obj, const char *key);

/* Append s to a growable buffer as a JSON string literal (quotes and escapes). */
typedef struct lb_strbuf {
    char  *p;
    size_t n, cap;
    bool   oom;
} lb_strbuf;
void lb_strbuf_add(lb_strbuf *b, const char *s, size_t n);
void lb_strbuf_printf(lb_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lb_strbuf_json_string(lb_strbuf *b, const char *s, size_t n);

#endif
