/* Sweep reports: a Markdown table and an SVG scatter plot of KL divergence (log scale)
 * against bits per weight, the picture a user looks at to choose a type. Both files are
 * written to a unique temporary name and renamed when complete (lb_out). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "lowbit/eval.h"

static int by_bpw(const void *a, const void *b) {
    const lb_report_row *x = *(const lb_report_row *const *)a, *y = *(const lb_report_row *const *)b;
    return x->bpw < y->bpw ? -1 : x->bpw > y->bpw ? 1 : strcmp(x->name, y->name);
}

static const lb_report_row **sorted_rows(const lb_report *r) {
    const lb_report_row **v = malloc((size_t)(r->n_rows ? r->n_rows : 1) * sizeof *v);
    if (!v) return NULL;
    for (int32_t i = 0; i < r->n_rows; i++) v[i] = &r->rows[i];
    qsort(v, (size_t)r->n_rows, sizeof *v, by_bpw);
    return v;
}

/* front[i]: no other row is at most as large and at most as divergent, one of them strictly */
static bool *pareto(const lb_report *r) {
    bool *front = malloc((size_t)(r->n_rows ? r->n_rows : 1) * sizeof *front);
    for (int32_t i = 0; front && i < r->n_rows; i++) {
        const lb_report_row *a = &r->rows[i];
        front[i]               = true;
        for (int32_t j = 0; j < r->n_rows && front[i]; j++) {
            const lb_report_row *b = &r->rows[j];
            front[i] = !(b->bpw <= a->bpw && b->kld_mean <= a->kld_mean && (b->bpw < a->bpw || b->kld_mean < a->kld_mean));
        }
    }
    return front;
}

/* finish(): the report is complete; commit it unless a write failed */
static lb_status finish(lb_out *o, lb_error *err) {
    if (ferror(o->f)) {
        const lb_status st = lb_fail(err, LB_ERR_IO, "%s: write failed", o->path);
        lb_out_abort(o);
        return st;
    }
    return lb_out_commit(o, err);
}

lb_status lb_report_write_md(const lb_report *r, const char *path, lb_error *err) {
    const lb_report_row **v = sorted_rows(r);
    LB_RETURN_IF(!v, err, LB_ERR_NOMEM, "out of memory");
    lb_out          o;
    lb_status st = lb_out_open(&o, path, err);
    if (st) {
        free(v);
        return st;
    }
    FILE *f = o.f;
    fprintf(f, "# Quantization sweep: %s\n\n", r->model);
    fprintf(f, "Text `%s`, context %d, %d chunks. Reference: PPL %.4f, %.3f MB, %.2f bits per "
               "weight. KLD is the mean KL(p_ref || p) over the scored tokens; p99 its 99th "
               "percentile; top-1 the share of tokens whose most likely next token is unchanged.\n\n",
            r->text, r->n_ctx, r->chunks, r->ppl_ref, (double)r->bytes_ref / 1e6, r->bpw_ref);
    bool *front = pareto(r);
    LB_GOTO_IF(!front, err, LB_ERR_NOMEM, "out of memory");
    fprintf(f, "| type | method | bpw | size (MB) | PPL | ΔPPL | KLD | KLD p99 | top-1 | fallbacks | front |\n");
    fprintf(f, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |\n");
    for (int32_t i = 0; i < r->n_rows; i++) {
        const char *front_mark = front[v[i] - r->rows] ? "◆" : "";
        if (v[i]->external) /* a reference point: only bpw and KLD are known */
            fprintf(f, "| %s | %s (given) | %.3f | - | - | - | %.6f | - | - | - | %s |\n", v[i]->name, v[i]->method,
                    v[i]->bpw, v[i]->kld_mean, front_mark);
        else
            fprintf(f, "| %s | %s | %.3f | %.3f | %.4f ± %.4f | %+.4f | %.6f | %.5f | %.2f%% | %d | %s |\n", v[i]->name,
                    v[i]->method[0] ? v[i]->method : "rtn", v[i]->bpw, (double)v[i]->bytes / 1e6, v[i]->ppl,
                    v[i]->ppl_stderr, v[i]->ppl - r->ppl_ref, v[i]->kld_mean, v[i]->kld_p99, 100 * v[i]->top1,
                    v[i]->fallbacks, front_mark);
    }
    fprintf(f, "\nfallbacks: tensors whose rows the type's blocks do not divide, stored in another type "
               "(as llama-quantize does). ◆: the Pareto front (no other row smaller with a lower KLD).\n");
    free(front);
    free(v);
    return finish(&o, err);
fail:
    free(v);
    lb_out_abort(&o);
    return st;
}

/* text as XML character data: & < > " ' escaped (a model in a directory named R&D) */
static void put_xml(FILE *f, const char *s) {
    for (; *s; s++) switch (*s) {
        case '&':  fputs("&amp;", f); break;
        case '<':  fputs("&lt;", f); break;
        case '>':  fputs("&gt;", f); break;
        case '"':  fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:   fputc((unsigned char)*s < 0x20 ? ' ' : *s, f); /* no control characters in XML 1.0 */
        }
}

#define MAX_METHODS 8
static const char *const k_colors[MAX_METHODS] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                   "#9467bd", "#8c564b", "#e377c2", "#7f7f7f" };

lb_status lb_report_write_svg(const lb_report *r, const char *path, lb_error *err) {
    const double W = 760, H = 480, L = 80, R = 30, T = 50, B = 60; /* plot area margins */
    double       xmin = 1e9, xmax = -1e9, ymin = 1e9, ymax = -1e9;
    for (int32_t i = 0; i < r->n_rows; i++) {
        const double k = r->rows[i].kld_mean > 1e-7 ? r->rows[i].kld_mean : 1e-7;
        xmin = fmin(xmin, r->rows[i].bpw);
        xmax = fmax(xmax, r->rows[i].bpw);
        ymin = fmin(ymin, log10(k));
        ymax = fmax(ymax, log10(k));
    }
    if (r->n_rows == 0) xmin = 0, xmax = 1, ymin = -3, ymax = 0;
    xmin = floor(xmin - 0.5), xmax = ceil(xmax + 0.5);
    ymin = floor(ymin), ymax = ceil(ymax);
    if (ymax - ymin < 1) ymax = ymin + 1;
    lb_out          o;
    const lb_status st = lb_out_open(&o, path, err);
    if (st) return st;
    FILE *f = o.f;
#define PX(x) (L + ((x) - xmin) / (xmax - xmin) * (W - L - R))
#define PY(y) (H - B - ((y) - ymin) / (ymax - ymin) * (H - T - B))
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    { /* the title: the model's file name, its end kept when long (the plot is 760 wide) */
        const char  *base = strrchr(r->model, '/') ? strrchr(r->model, '/') + 1 : r->model;
        const size_t n    = strlen(base);
        fprintf(f, "<text x=\"%.0f\" y=\"24\" font-size=\"15\">KL divergence vs bits per weight: %s", L, n > 48 ? "…" : "");
        put_xml(f, n > 48 ? base + n - 47 : base);
        fprintf(f, " (ctx %d)</text>\n", r->n_ctx);
    }
    for (double y = ymin; y <= ymax + 1e-9; y += 1) { /* decades */
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                L, PY(y), W - R, PY(y));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", L - 6,
                PY(y) + 4, (int)y);
    }
    for (double x = xmin; x <= xmax + 1e-9; x += 1) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n",
                PX(x), T, PX(x), H - B);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", PX(x),
                H - B + 18, x);
    }
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
               "stroke=\"#333\"/>\n", L, T, W - L - R, H - T - B);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">bits per weight</text>\n",
            (L + W - R) / 2, H - 18);
    fprintf(f, "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">"
               "mean KL divergence (log scale)</text>\n", (T + H - B) / 2, (T + H - B) / 2);
    /* one point per distinct (bpw, KLD): recipes that give the same file share a label;
     * labels are placed right of their point and pushed down until they overlap none */
    const lb_report_row **v      = sorted_rows(r);
    double               *placed = malloc((size_t)(r->n_rows + 1 + MAX_METHODS) * 4 * sizeof *placed);
    int32_t               n_placed = 0;
    bool                 *front    = pareto(r);
    const char           *methods[MAX_METHODS];
    int32_t               n_methods = 0;
    for (int32_t i = 0; i < r->n_rows && n_methods < MAX_METHODS; i++) {
        int32_t k = 0;
        while (k < n_methods && strcmp(methods[k], r->rows[i].method)) k++;
        if (k == n_methods) methods[n_methods++] = r->rows[i].method;
    }
    /* the Pareto front, dashed, under the points */
    fputs("<polyline fill=\"none\" stroke=\"#888\" stroke-dasharray=\"4 3\" points=\"", f);
    for (int32_t i = 0; v && front && i < r->n_rows; i++)
        if (front[v[i] - r->rows])
            fprintf(f, "%.1f,%.1f ", PX(v[i]->bpw), PY(log10(v[i]->kld_mean > 1e-7 ? v[i]->kld_mean : 1e-7)));
    fputs("\"/>\n", f);
    for (int32_t k = 0; v && k < n_methods; k++) { /* a method's series (and its given points), joined */
        int32_t in = 0;
        for (int32_t i = 0; i < r->n_rows; i++) in += (v[i]->curve || v[i]->external) && !strcmp(v[i]->method, methods[k]);
        if (in < 2) continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", k_colors[k]);
        for (int32_t i = 0; i < r->n_rows; i++)
            if ((v[i]->curve || v[i]->external) && !strcmp(v[i]->method, methods[k]))
                fprintf(f, "%.1f,%.1f ", PX(v[i]->bpw), PY(log10(v[i]->kld_mean > 1e-7 ? v[i]->kld_mean : 1e-7)));
        fputs("\"/>\n", f);
    }
    size_t longest = 3; /* the legend's width: its longest name */
    for (int32_t k = 0; k < n_methods; k++) longest = strlen(methods[k]) > longest ? strlen(methods[k]) : longest;
    const double lw = 6.2 * (double)longest + 24;
    for (int32_t k = 0; k < n_methods && n_methods > 1; k++) { /* the legend, top right */
        const double lx = W - R - lw, ly = T + 16 + 16 * k;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", lx, ly - 4, k_colors[k]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", lx + 8, ly);
        put_xml(f, methods[k][0] ? methods[k] : "rtn");
        fputs("</text>\n", f);
        placed[4 * n_placed] = lx - 6, placed[4 * n_placed + 1] = ly, placed[4 * n_placed + 2] = lw;
        placed[4 * n_placed + 3] = 14;
        n_placed++;
    }
    for (int32_t i = 0; v && placed && i < r->n_rows;) {
        char    label[512] = "";
        int32_t j          = i;
        for (; j < r->n_rows && v[j]->bpw == v[i]->bpw && v[j]->kld_mean == v[i]->kld_mean; j++)
            snprintf(label + strlen(label), sizeof label - strlen(label), "%s%s%s%s", j > i ? ", " : "",
                     v[j]->name, n_methods > 1 ? " " : "", n_methods > 1 ? v[j]->method : "");
        const double k = v[i]->kld_mean > 1e-7 ? v[i]->kld_mean : 1e-7;
        const double x = PX(v[i]->bpw), y = PY(log10(k));
        const double w = 6.2 * (double)strlen(label), h = 13;
        double       lx = x + 7, ly = y - 4;
        if (lx + w > W - 4) lx = x - 7 - w; /* no room on the right */
        for (int32_t tries = 0; tries < 40; tries++) {
            bool clash = false;
            for (int32_t p = 0; p < n_placed && !clash; p++) {
                const double *b = &placed[4 * p];
                clash = lx < b[0] + b[2] && b[0] < lx + w && ly - h < b[1] && b[1] - b[3] < ly;
            }
            if (!clash) break;
            ly += h;
        }
        placed[4 * n_placed] = lx, placed[4 * n_placed + 1] = ly;
        placed[4 * n_placed + 2] = w, placed[4 * n_placed + 3] = h;
        n_placed++;
        int32_t mk = 0;
        while (mk < n_methods - 1 && strcmp(methods[mk], v[i]->method)) mk++;
        if (v[i]->kld_stderr > 0) { /* the standard error of the mean KLD */
            const double lo = fmax(v[i]->kld_mean - v[i]->kld_stderr, 1e-7), hi = v[i]->kld_mean + v[i]->kld_stderr;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x, PY(log10(lo)), x,
                    PY(log10(hi)), k_colors[mk]);
        }
        if (v[i]->external) /* a given reference point: a square */
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"8\" fill=\"%s\"/>\n", x - 4, y - 4, k_colors[mk]);
        else
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", x, y, k_colors[mk]);
        if (fabs(ly - (y - 4)) > 1)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" "
                       "stroke-width=\"0.5\"/>\n", x, y, lx, ly - 4);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", lx, ly);
        put_xml(f, label);
        fputs("</text>\n", f);
        i = j;
    }
    free(v);
    free(placed);
    free(front);
#undef PX
#undef PY
    fprintf(f, "</svg>\n");
    return finish(&o, err);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

lb_status lb_report_write_heatmap(const lb_heatmap *h, const char *path, lb_error *err) {
    const double CW = 52, CH = 13, L = 230, T = 70, B = 40; /* cells, the names' column, margins */
    /* the colour scale: the 5th to the 95th percentile of log10 v (a few extremes, such as the
     * embedding at 2 bits, would wash out the rest) */
    const int64_t nv = (int64_t)h->n_rows * h->n_cols;
    double       *lv = malloc((size_t)(nv > 0 ? nv : 1) * sizeof *lv), lo = -6, hi = 0;
    int64_t       n  = 0;
    LB_RETURN_IF(!lv, err, LB_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < nv; i++)
        if (isfinite(h->v[i]) && h->v[i] > 0) lv[n++] = log10(h->v[i]);
    qsort(lv, (size_t)n, sizeof *lv, cmp_double);
    if (n > 0) lo = lv[n / 20], hi = lv[n - 1 - n / 20];
    free(lv);
    if (hi - lo < 0.5) lo = hi - 0.5;
    lb_out          o;
    const lb_status st = lb_out_open(&o, path, err);
    if (st) return st;
    FILE        *f = o.f;
    const double W = L + CW * h->n_cols + 20, H = T + CH * h->n_rows + B;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"10\" y=\"22\" font-size=\"14\">");
    put_xml(f, h->title);
    fprintf(f, "</text>\n<text x=\"10\" y=\"40\">");
    put_xml(f, h->measure);
    fprintf(f, ": white %.1e or less .. dark red %.1e or more; grey: the type does not fit; outlined: the type "
               "chosen</text>\n", pow(10, lo), pow(10, hi));
    for (int32_t c = 0; c < h->n_cols; c++) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L + CW * (c + 0.5), T - 8);
        put_xml(f, h->col_names[c]);
        fputs("</text>\n", f);
    }
    for (int32_t r = 0; r < h->n_rows; r++) {
        const double y = T + CH * r;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L - 6, y + CH - 3);
        put_xml(f, h->row_names[r]);
        fputs("</text>\n", f);
        for (int32_t c = 0; c < h->n_cols; c++) {
            const double x = h->v[(size_t)r * (size_t)h->n_cols + (size_t)c];
            char         fill[16] = "#e0e0e0"; /* no value: grey */
            if (isfinite(x) && x > 0) {   /* white (least) .. yellow .. red .. dark red (most) */
                const double t = fmin(1, fmax(0, (log10(x) - lo) / (hi - lo)));
                const int    R = (int)(255 - 115 * fmax(0, t - 0.5) * 2), G = (int)(255 * (1 - t)),
                          Bl = (int)(255 * fmax(0, 1 - 2 * t));
                snprintf(fill, sizeof fill, "#%02x%02x%02x", R, G, Bl);
            }
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"%s\"%s/>\n", L + CW * c, y,
                    CW - 1, CH - 1, fill, h->mark && h->mark[r] == c ? " stroke=\"black\" stroke-width=\"1.5\"" : "");
        }
    }
    fprintf(f, "</svg>\n");
    return finish(&o, err);
}
