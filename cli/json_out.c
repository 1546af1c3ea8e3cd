/* One-line JSON objects for --json: {"key": value, ...} on one line, the layout every
 * command has printed (scripts read it with a JSON parser or with sed), strings escaped by
 * cJSON (a path holding a quote, a backslash or a control character stays valid JSON). */
#include <math.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli.h"

static void key(lb_jout *j, const char *k) {
    fputs(j->n++ ? ", " : "{", j->f);
    lb_json_put_str(j->f, k);
    fputs(": ", j->f);
}

void lb_json_put_str(FILE *f, const char *s) {
    cJSON *v = cJSON_CreateString(s ? s : "");
    char  *p = v ? cJSON_PrintUnformatted(v) : NULL;
    fputs(p ? p : "\"\"", f);
    free(p);
    cJSON_Delete(v);
}

void lb_jout_begin(lb_jout *j, FILE *f) { *j = (lb_jout){ .f = f }; }

void lb_jout_str(lb_jout *j, const char *k, const char *v) {
    key(j, k);
    lb_json_put_str(j->f, v);
}

void lb_jout_num(lb_jout *j, const char *k, int digits, double v) {
    key(j, k);
    if (isfinite(v)) fprintf(j->f, digits < 0 ? "%.*g" : "%.*f", digits < 0 ? -digits : digits, v);
    else fputs("null", j->f); /* JSON has no NaN or Inf */
}

void lb_jout_int(lb_jout *j, const char *k, long long v) {
    key(j, k);
    fprintf(j->f, "%lld", v);
}

void lb_jout_bool(lb_jout *j, const char *k, bool v) {
    key(j, k);
    fputs(v ? "true" : "false", j->f);
}

void lb_jout_raw(lb_jout *j, const char *k, const char *json) {
    key(j, k);
    fputs(json, j->f);
}

void lb_jout_end(lb_jout *j) {
    fputs(j->n ? "}\n" : "{}\n", j->f);
    fflush(j->f);
}
