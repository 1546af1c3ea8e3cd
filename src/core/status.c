/* Status codes: fixed text, and the one function that fills an lb_error. */
#include <stdarg.h>
#include <stdio.h>

#include "lowbit/status.h"

const char *lb_status_str(lb_status s) {
    switch (s) {
    case LB_OK:                   return "ok";
    case LB_ERR_IO:               return "I/O error";
    case LB_ERR_FORMAT:           return "unrecognized file format";
    case LB_ERR_VERSION:          return "unsupported format version";
    case LB_ERR_CORRUPT:          return "corrupt data";
    case LB_ERR_TRUNCATED:        return "truncated data";
    case LB_ERR_UNSUPPORTED:      return "unsupported";
    case LB_ERR_PARAM:            return "bad parameter";
    case LB_ERR_SHAPE:            return "shape mismatch";
    case LB_ERR_NOT_FOUND:        return "not found";
    case LB_ERR_NOMEM:            return "out of memory";
    case LB_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case LB_ERR_NUMERIC: return "numerical failure";
    case LB_ERR_INTERRUPTED:      return "interrupted";
    }
    return "unknown status";
}

lb_status lb_fail(lb_error *err, lb_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}
