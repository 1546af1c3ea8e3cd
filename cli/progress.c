/* The CLI's progress bar on stderr, drawn from the library's progress reports (core.h's
 * lb_progress_fn): only when stderr is a TTY and the job has run for more than a second;
 * redrawn at most 10 times a second. Silent otherwise. */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

void lb_progress_begin(lb_progress *p, const char *label, int64_t total) {
    p->label   = label;
    p->total   = total > 0 ? total : 1;
    p->done    = 0;
    p->t_start = lb_time_sec();
    p->t_last  = 0;
    p->enabled = isatty(STDERR_FILENO);
    p->drawn   = false;
}

static void draw(lb_progress *p, double now) {
    const int    width = 30;
    const double frac  = (double)p->done / (double)p->total;
    const int    fill  = (int)(frac * width + 0.5);
    const double el    = now - p->t_start;
    const double eta   = frac > 0 ? el * (1 - frac) / frac : 0;
    fprintf(stderr, "\r%s [", p->label);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %3d%% %lld/%lld  %.1fs, ETA %.1fs ", (int)(100 * frac), (long long)p->done,
            (long long)p->total, el, eta);
    fflush(stderr);
    p->drawn  = true;
    p->t_last = now;
}

void lb_progress_update(lb_progress *p, int64_t done) {
    p->done = done;
    if (!p->enabled) return;
    const double now = lb_time_sec();
    if (now - p->t_start < 1.0 || now - p->t_last < 0.1) return;
    draw(p, now);
}

void lb_progress_end(lb_progress *p) {
    if (p->enabled && p->drawn) {
        p->done = p->total;
        draw(p, lb_time_sec());
        fputc('\n', stderr);
    }
}

void lb_cli_progress(void *user, const char *what, int64_t done, int64_t total) {
    lb_progress *p = user;
    if (done == 0) lb_progress_begin(p, what, total);
    else lb_progress_update(p, done);
    if (done >= total) lb_progress_end(p);
}
