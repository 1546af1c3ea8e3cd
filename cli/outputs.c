/* Keeping outputs safe from the command line: an output path is checked before any work
 * starts; an interrupted run leaves no temporary file behind (the library's lb_out table);
 * an input that shrinks while it is mapped is a one-line error, not a bare SIGBUS. */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void say(const char *s) {
    ssize_t n = write(STDERR_FILENO, s, strlen(s));
    (void)n;
}

/* SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGXFSZ: remove the temps, then die of the signal */
static void on_fatal(int sig) {
    lb_out_cleanup_signal_safe();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* a fault in a mapped input: the file was truncated under us. Several threads may fault at
 * once: the first reports and exits, the others wait for it. */
static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    static atomic_flag reported = ATOMIC_FLAG_INIT;
    (void)uc;
    if (atomic_flag_test_and_set(&reported))
        for (;;) pause();
    const char *name = lb_source_name_at(si->si_addr);
    lb_out_cleanup_signal_safe();
    if (name) {
        say("lowbit: ");
        say(name);
        say(": changed while being read (the file shrank)\n");
        _exit(LB_EXIT_ERROR);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* SIGINT, SIGTERM during a job that can stop cleanly: the first asks it to stop after its
 * current step (lb_interrupt); a second one is fatal as usual */
static void on_stop(int sig) {
    static volatile sig_atomic_t seen;
    if (seen) on_fatal(sig);
    seen = 1;
    lb_interrupt(sig);
    if (lb_dist_rank() == 0) say("\nlowbit: stopping after the current block, its state kept (again to stop at once)\n");
}

/* handler for each of the n signals, except one ignored by whoever started us (nohup, a
 * shell's background job): it stays so */
static void handle(const int *sigs, size_t n, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = handler;
    for (size_t i = 0; i < n; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

void lb_cli_graceful_stop(void) {
    static const int stop[] = { SIGINT, SIGTERM };
    handle(stop, sizeof stop / sizeof stop[0], on_stop);
}

void lb_cli_install_signals(void) {
    static const int fatal[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGXFSZ, SIGQUIT };
    handle(fatal, sizeof fatal / sizeof fatal[0], on_fatal);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags     = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
}

int lb_check_output(const char *path, bool is_dir) {
    lb_error err;
    return lb_out_check(path, is_dir, &err) ? lb_runtime_error(&err) : LB_EXIT_OK;
}
