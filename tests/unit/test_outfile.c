/* Output files (src/core/outfile.c) and input checks (src/core/source.c): unique temps that
 * are never followed or reused, commit and abort, special files refused, temps of dead runs
 * removed, the signal-time cleanup, FIFO inputs refused without blocking, mapped inputs
 * found by address. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lowbit/core.h"
#include "test_util.h"

static char g_dir[256];

static int setup(void **state) {
    (void)state;
    tmp_path("outfile", g_dir, sizeof g_dir);
    return mkdir(g_dir, 0700);
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd);
}

static const char *in_dir(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", g_dir, name);
    return buf;
}

/* how many entries of the directory start with prefix */
static int count_prefix(const char *dir, const char *prefix) {
    char cmd[600], line[64];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -c -- '^%s' || true", dir, prefix);
    FILE *p = popen(cmd, "r");
    int   n = -1;
    if (p && fgets(line, sizeof line, p)) n = atoi(line);
    if (p) pclose(p);
    return n;
}

static void read_text(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n]   = '\0';
    fclose(f);
}

static void test_commit_and_abort(void **state) {
    (void)state;
    char     out[300], text[64];
    lb_error err;
    lb_out   a, b;
    in_dir("a.txt", out, sizeof out);
    /* two writers of the same OUT at once get two different temps */
    assert_int_equal(lb_out_open(&a, out, &err), LB_OK);
    assert_int_equal(lb_out_open(&b, out, &err), LB_OK);
    assert_string_not_equal(a.tmp, b.tmp);
    assert_non_null(strstr(a.tmp, "/.a.txt.lowbit-"));
    assert_int_equal(count_prefix(g_dir, ".a.txt.lowbit-"), 2);
    fputs("first", a.f);
    fputs("second", b.f);
    assert_int_not_equal(access(out, F_OK), 0); /* nothing at OUT until a commit */
    assert_int_equal(lb_out_commit(&a, &err), LB_OK);
    read_text(out, text, sizeof text);
    assert_string_equal(text, "first");
    lb_out_abort(&b); /* OUT keeps the committed file; the other temp is gone */
    read_text(out, text, sizeof text);
    assert_string_equal(text, "first");
    assert_int_equal(count_prefix(g_dir, ".a.txt.lowbit-"), 0);
    /* a commit replaces a regular file */
    assert_int_equal(lb_out_open(&a, out, &err), LB_OK);
    fputs("third", a.f);
    assert_int_equal(lb_out_commit(&a, &err), LB_OK);
    read_text(out, text, sizeof text);
    assert_string_equal(text, "third");
}

static void test_special_files_refused(void **state) {
    (void)state;
    char     fifo[300], out[300];
    lb_error err;
    lb_out   o;
    in_dir("fifo", fifo, sizeof fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(lb_out_check(fifo, false, &err), LB_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_int_equal(lb_out_open(&o, fifo, &err), LB_ERR_IO);
    struct stat sb;
    assert_int_equal(stat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    /* a FIFO that appears at OUT during the work is found at the commit */
    in_dir("late", out, sizeof out);
    assert_int_equal(lb_out_open(&o, out, &err), LB_OK);
    assert_int_equal(mkfifo(out, 0600), 0);
    assert_int_equal(lb_out_commit(&o, &err), LB_ERR_IO);
    assert_int_equal(stat(out, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    assert_int_equal(count_prefix(g_dir, ".late.lowbit-"), 0);
    /* a missing directory, a file where the directory should be, an empty name */
    in_dir("nowhere/x", out, sizeof out);
    assert_int_equal(lb_out_check(out, false, &err), LB_ERR_IO);
    assert_non_null(strstr(err.msg, "cannot create"));
    char file_dir[280];
    in_dir("a-file", file_dir, sizeof file_dir);
    FILE *f = fopen(file_dir, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(out, sizeof out, "%s/x", file_dir);
    assert_int_equal(lb_out_check(out, false, &err), LB_ERR_IO);
    assert_int_equal(lb_out_check(file_dir, true, &err), LB_ERR_IO); /* a file where a directory goes */
    assert_int_equal(lb_out_check("", false, &err), LB_ERR_PARAM);
}

/* temps of a run that is gone are removed by the next run of the same OUT; a live one's stay */
static void test_stale_temps(void **state) {
    (void)state;
    const pid_t child = fork();
    if (child == 0) _exit(0);
    assert_true(child > 0);
    waitpid(child, NULL, 0); /* now a PID no process has */
    char dead_file[300], dead_dir[300], inner[340], live[300], other[300], out[300];
    snprintf(dead_file, sizeof dead_file, "%s/.s.gguf.lowbit-%d-0123456789ab.tmp", g_dir, (int)child);
    snprintf(dead_dir, sizeof dead_dir, "%s/.s.gguf.lowbit-%d-ba9876543210.tmp", g_dir, (int)child);
    snprintf(inner, sizeof inner, "%s/config.json", dead_dir);
    snprintf(live, sizeof live, "%s/.s.gguf.lowbit-%d-aaaaaaaaaaaa.tmp", g_dir, (int)getppid());
    snprintf(other, sizeof other, "%s/.t.gguf.lowbit-%d-0123456789ab.tmp", g_dir, (int)child);
    const char *files[] = { dead_file, inner, live, other };
    assert_int_equal(mkdir(dead_dir, 0700), 0);
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(files[i], "w");
        assert_non_null(f);
        fclose(f);
    }
    lb_error err;
    lb_out   o;
    assert_int_equal(lb_out_open(&o, in_dir("s.gguf", out, sizeof out), &err), LB_OK);
    lb_out_abort(&o);
    assert_int_not_equal(access(dead_file, F_OK), 0);
    assert_int_not_equal(access(dead_dir, F_OK), 0);
    assert_int_equal(access(live, F_OK), 0);  /* its process (our parent) runs */
    assert_int_equal(access(other, F_OK), 0); /* another OUT's temp */
}

/* what a signal handler calls: every open temp (and a temp directory's files) removed */
static void test_signal_cleanup(void **state) {
    (void)state;
    char     out[300], dir[300], inner[400];
    lb_error err;
    lb_out   f, d;
    assert_int_equal(lb_out_open(&f, in_dir("sig.gguf", out, sizeof out), &err), LB_OK);
    assert_int_equal(lb_out_open_dir(&d, in_dir("sig-hf", dir, sizeof dir), &err), LB_OK);
    snprintf(inner, sizeof inner, "%s/model.safetensors", d.tmp);
    FILE *x = fopen(inner, "w");
    assert_non_null(x);
    fclose(x);
    lb_out_cleanup_signal_safe();
    assert_int_not_equal(access(f.tmp, F_OK), 0);
    assert_int_not_equal(access(d.tmp, F_OK), 0);
    lb_out_abort(&f); /* frees what is left (the files are gone already) */
    lb_out_abort(&d);
    /* a directory output commits over an empty directory */
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(lb_out_open_dir(&d, dir, &err), LB_OK);
    snprintf(inner, sizeof inner, "%s/config.json", d.tmp);
    x = fopen(inner, "w");
    assert_non_null(x);
    fclose(x);
    assert_int_equal(lb_out_commit(&d, &err), LB_OK);
    snprintf(inner, sizeof inner, "%s/config.json", dir);
    assert_int_equal(access(inner, F_OK), 0);
}

static void test_inputs(void **state) {
    (void)state;
    char      fifo[300], file[300];
    lb_error  err;
    lb_source src;
    FILE     *f = NULL;
    in_dir("in-fifo", fifo, sizeof fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* no writer: a blocking open would hang here */
    assert_int_equal(lb_source_open_file(&src, fifo, &err), LB_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_int_equal(lb_open_input(fifo, &f, &err), LB_ERR_IO);
    assert_int_equal(lb_open_input(g_dir, &f, &err), LB_ERR_IO); /* a directory */
    in_dir("in.bin", file, sizeof file);
    FILE *w = fopen(file, "wb");
    assert_non_null(w);
    for (int i = 0; i < 10000; i++) fputc(i, w);
    fclose(w);
    assert_int_equal(lb_open_input(file, &f, &err), LB_OK);
    assert_int_equal(fgetc(f), 0);
    fclose(f);
    assert_int_equal(lb_source_open_file(&src, file, &err), LB_OK);
    assert_string_equal(lb_source_name_at(src.data + 5000), file);
    assert_null(lb_source_name_at(src.data + 10000 + 4096 * 16));
    const uint8_t *data = src.data;
    lb_source_close(&src);
    assert_null(lb_source_name_at(data));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_and_abort), cmocka_unit_test(test_special_files_refused),
        cmocka_unit_test(test_stale_temps),      cmocka_unit_test(test_signal_cleanup),
        cmocka_unit_test(test_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
