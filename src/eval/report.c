/* Sweep reports: a Markdown table and an SVG scatter plot of KL divergence (log scale)
 * against bits per weight, the picture a user looks at to choose a type. Both files are
 * written to a unique temporary name and renamed when complete (lb_out). */
#include <errno.h>
#include <math.h>
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
    const lb_status st = lb_out_open(&o, path, err);
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
    fprintf(f, "| type | bpw | size (MB) | PPL | ΔPPL | KLD | KLD p99 | top-1 |\n");
    fprintf(f, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int32_t i = 0; i < r->n_rows; i++)
        fprintf(f, "| %s | %.3f | %.3f | %.4f ± %.4f | %+.4f | %.6f | %.5f | %.2f%% |\n", v[i]->name,
                v[i]->bpw, (double)v[i]->bytes / 1e6, v[i]->ppl, v[i]->ppl_stderr,
                v[i]->ppl - r->ppl_ref, v[i]->kld_mean, v[i]->kld_p99, 100 * v[i]->top1);
    free(v);
    return finish(&o, err);
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
    fprintf(f, "<text x=\"%.0f\" y=\"24\" font-size=\"15\">KL divergence vs bits per weight: ", L);
    put_xml(f, r->model);
    fprintf(f, " (ctx %d)</text>\n", r->n_ctx);
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
    double               *placed = malloc((size_t)(r->n_rows + 1) * 4 * sizeof *placed);
    int32_t               n_placed = 0;
    for (int32_t i = 0; v && placed && i < r->n_rows;) {
        char    label[512] = "";
        int32_t j          = i;
        for (; j < r->n_rows && v[j]->bpw == v[i]->bpw && v[j]->kld_mean == v[i]->kld_mean; j++)
            snprintf(label + strlen(label), sizeof label - strlen(label), "%s%s", j > i ? ", " : "",
                     v[j]->name);
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
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f77b4\"/>\n", x, y);
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
#undef PX
#undef PY
    fprintf(f, "</svg>\n");
    return finish(&o, err);
}
