/* Internal error helpers (zstd's RETURN_ERROR_IF, with our lb_error).
 * LB_RETURN_IF returns the status; LB_GOTO_IF sets a local `st` and jumps to `fail`. */
#ifndef LB_CORE_FAIL_H
#define LB_CORE_FAIL_H

#include "lowbit/status.h"

#define LB_RETURN_IF(cond, err, code, ...)                                                         \
    do {                                                                                           \
        if (cond) return lb_fail((err), (code), __VA_ARGS__);                                      \
    } while (0)

#define LB_GOTO_IF(cond, err, code, ...)                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            st = lb_fail((err), (code), __VA_ARGS__);                                              \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

#define LB_TRY(expr)                                                                               \
    do {                                                                                           \
        st = (expr);                                                                               \
        if (st != LB_OK) goto fail;                                                                \
    } while (0)

/* the same where there is nothing to clean up: return the failure */
#define LB_TRY_RET(expr)                                                                           \
    do {                                                                                           \
        const lb_status st_ = (expr);                                                              \
        if (st_ != LB_OK) return st_;                                                              \
    } while (0)

#endif
