/* lowbit status codes and error details.
 * Every fallible library function returns an lb_status and, when given a non-NULL
 * lb_error, fills it with a one-line message naming the file and the problem.
 * The library never prints, exits or aborts on bad input; only cli/ does. */
#ifndef LOWBIT_STATUS_H
#define LOWBIT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Values are grouped in decades and never renumbered. */
typedef enum lb_status {
    LB_OK                   = 0,
    LB_ERR_IO               = 10, /* open, read, write, rename failed */
    LB_ERR_FORMAT           = 20, /* wrong magic, not this kind of file */
    LB_ERR_VERSION          = 21, /* right kind of file, unsupported version */
    LB_ERR_CORRUPT          = 30, /* inconsistent contents */
    LB_ERR_TRUNCATED        = 31, /* data ends before it should */
    LB_ERR_UNSUPPORTED      = 40, /* valid, but not something lowbit does */
    LB_ERR_PARAM            = 50, /* bad argument from the caller */
    LB_ERR_SHAPE            = 51, /* tensor shapes disagree */
    LB_ERR_NOT_FOUND        = 52, /* a key, tensor or token that must exist does not */
    LB_ERR_NOMEM            = 60,
    LB_ERR_BUFFER_TOO_SMALL = 70,
    LB_ERR_NUMERIC          = 80, /* a computation diverged (NaN, infinity) */
    LB_ERR_INTERRUPTED      = 90, /* stopped on request (lb_interrupt), its state kept */
} lb_status;

typedef struct lb_error {
    lb_status code;
    char msg[256];
} lb_error;

/* Fixed text for a status code ("corrupt data", ...). Never NULL. */
const char *lb_status_str(lb_status s);

/* Fill err (if non-NULL) with code and a printf-style message; returns code. */
lb_status lb_fail(lb_error *err, lb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
