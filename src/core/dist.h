/* Collectives over the run's ranks (dist.c), for the library's distributed loops. Every rank
 * calls each one at the same point with the same sizes, rank 0 being the root; byte counts of
 * any size (split below MPI's int counts). With one rank they copy, so a loop written with them
 * is the single-process loop too. */
#ifndef LB_CORE_DIST_H
#define LB_CORE_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "lowbit/core.h"

/* lb_dist_agree (lowbit/core.h): before a collective that a failed rank would not reach */
/* rank r's `bytes` at recv + r * bytes on rank 0 (recv is unused elsewhere) */
lb_status lb_dist_gather(const void *send, size_t bytes, void *recv, lb_error *err);
/* the same on every rank */
lb_status lb_dist_allgather(const void *send, size_t bytes, void *recv, lb_error *err);
/* rank r's sizes[r] bytes, concatenated in rank order, on every rank */
lb_status lb_dist_allgatherv(const void *send, const size_t *sizes, void *recv, lb_error *err);
/* floats: send[scount[0]] to rank 0, then scount[1] to rank 1, ...; recv gets rank 0's
 * rcount[0], then rank 1's ... (each count below 2^31) */
lb_status lb_dist_alltoallv(const float *send, const size_t *scount, float *recv, const size_t *rcount, lb_error *err);
/* v [n] summed over the ranks in rank order (the same doubles on every rank) */
lb_status lb_dist_sum(double *v, size_t n, lb_error *err);
/* whether flag is true on any rank */
lb_status lb_dist_any(bool flag, bool *any, lb_error *err);
/* one rank's bytes to another (the receiver names the sender; messages between two ranks
 * arrive in the order sent) */
lb_status lb_dist_send(const void *buf, size_t bytes, int to, lb_error *err);
lb_status lb_dist_recv(void *buf, size_t bytes, int from, lb_error *err);
/* rank 0's bytes to every rank */
lb_status lb_dist_bcast(void *buf, size_t bytes, lb_error *err);

/* the ranks on this host (they share its memory) */
int lb_dist_node_ranks(void);
/* the share [*lo, *hi) of n items that rank r of n_ranks takes: contiguous, in rank order */
void lb_dist_share(int64_t n, int r, int n_ranks, int64_t *lo, int64_t *hi);
/* rank r's share of n rows in whole groups of g rows (the last group may be shorter) */
void lb_dist_share_rows(int64_t n, int64_t g, int r, int64_t *lo, int64_t *hi);
/* every rank's share of n rows of row_bytes each at buf (lb_dist_share_rows with g), which it
 * computed in place, to every rank */
lb_status lb_dist_gather_rows(void *buf, int64_t n, size_t row_bytes, int64_t g, lb_error *err);

#endif
