/* JSON helpers over cJSON: parsing with located errors, checked getters, and a small string
 * builder that writes JSON string literals (the writers build their text with it). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "json.h"
#include "lowbit/core.h"

lb_status lb_json_parse(cJSON **out, const char *text, size_t len, const char *name,
                        lb_error *err) {
    const char *end = NULL;
    *out            = NULL;
    cJSON *j        = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (j) { /* only whitespace may follow the value */
        size_t at = (size_t)(end - text);
        while (at < len && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r'))
            at++;
        if (at == len || (at + 1 == len && text[at] == '\0')) {
            *out = j;
            return LB_OK;
        }
        cJSON_Delete(j);
        end = text + at;
    } else {
        end = cJSON_GetErrorPtr();
    }
    size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') line++, col = 1;
        else col++;
    }
    return lb_fail(err, LB_ERR_CORRUPT, "%s: malformed JSON at line %zu, column %zu", name, line, col);
}

lb_status lb_json_load_file(cJSON **out, const char *path, lb_error *err) {
    lb_source src;
    *out         = NULL;
    lb_status st = lb_source_open_file(&src, path, err);
    if (st) return st;
    if (src.size > ((size_t)1 << 30)) {
        lb_source_close(&src);
        return lb_fail(err, LB_ERR_UNSUPPORTED, "%s: %zu bytes of JSON, more than lowbit reads",
                       path, src.size);
    }
    st = lb_json_parse(out, src.size ? (const char *)src.data : "", src.size, path, err);
    lb_source_close(&src);
    return st;
}

bool lb_json_int(const cJSON *item, int64_t lo, int64_t hi, int64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    const double d = item->valuedouble;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != floor(d)) return false;
    const int64_t v = (int64_t)d;
    if (v < lo || v > hi) return false;
    *out = v;
    return true;
}

const char *lb_json_str(const cJSON *obj, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

const cJSON *lb_json_get(const cJSON *obj, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return it && !cJSON_IsNull(it) ? it : NULL;
}

void lb_strbuf_add(lb_strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p   = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void lb_strbuf_printf(lb_strbuf *b, const char *fmt, ...) {
    char    tmp[512];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = true; /* only short formatted pieces go through here */
        return;
    }
    lb_strbuf_add(b, tmp, (size_t)n);
}

void lb_strbuf_json_string(lb_strbuf *b, const char *s, size_t n) {
    lb_strbuf_add(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are */
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        lb_strbuf_add(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': lb_strbuf_add(b, "\\\"", 2); break;
        case '\\': lb_strbuf_add(b, "\\\\", 2); break;
        case '\n': lb_strbuf_add(b, "\\n", 2); break;
        case '\t': lb_strbuf_add(b, "\\t", 2); break;
        case '\r': lb_strbuf_add(b, "\\r", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            lb_strbuf_add(b, esc, 6);
        }
    }
    lb_strbuf_add(b, s + run, n - run);
    lb_strbuf_add(b, "\"", 1);
}
