/* The run's processes: one, or MPI's ranks (built with LB_HAVE_MPI, started by a launcher).
 * Only the main thread calls MPI (MPI_THREAD_FUNNELED): OpenMP's workers never do. Messages
 * larger than MPI's int counts go in pieces of 1 GiB. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "dist.h"

#ifdef LB_HAVE_MPI
#include <mpi.h>
#endif

static int      g_rank, g_size = 1, g_node = 1; /* g_node: ranks on this host */
static uint64_t g_sent; /* lb_dist_bytes_sent */
#ifdef LB_HAVE_MPI
static bool g_mpi; /* MPI_Init ran */
#endif

bool lb_dist_built(void) {
#ifdef LB_HAVE_MPI
    return true;
#else
    return false;
#endif
}

int lb_dist_rank(void) { return g_rank; }
int lb_dist_size(void) { return g_size; }
uint64_t lb_dist_bytes_sent(void) { return g_sent; }
int lb_dist_node_ranks(void) { return g_node; }

void lb_dist_share(int64_t n, int r, int n_ranks, int64_t *lo, int64_t *hi) {
    *lo = n * r / n_ranks;
    *hi = n * (r + 1) / n_ranks;
}

void lb_dist_share_rows(int64_t n, int64_t g, int r, int64_t *lo, int64_t *hi) {
    lb_dist_share((n + g - 1) / g, r, g_size, lo, hi);
    *lo = *lo * g < n ? *lo * g : n;
    *hi = *hi * g < n ? *hi * g : n;
}

lb_status lb_dist_gather_rows(void *buf, int64_t n, size_t row_bytes, int64_t g, lb_error *err) {
    if (g_size == 1) return LB_OK;
    size_t *sizes = malloc((size_t)g_size * sizeof *sizes);
    int64_t lo, hi;
    LB_RETURN_IF(!sizes, err, LB_ERR_NOMEM, "out of memory");
    for (int r = 0; r < g_size; r++) {
        lb_dist_share_rows(n, g, r, &lo, &hi);
        sizes[r] = (size_t)(hi - lo) * row_bytes;
    }
    lb_dist_share_rows(n, g, g_rank, &lo, &hi);
    const lb_status st = lb_dist_allgatherv((char *)buf + (size_t)lo * row_bytes, sizes, buf, err);
    free(sizes);
    return st;
}

#ifdef LB_HAVE_MPI
#define PIECE ((size_t)1 << 30)
#define TAG   7

/* started by a launcher: Open MPI's, a PMI or PMIx one (MPICH, Slurm) */
static bool launched(void) {
    static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return true;
    return false;
}

static lb_status mpi_fail(lb_error *err, int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int  len                       = 0;
    MPI_Error_string(rc, msg, &len);
    return lb_fail(err, LB_ERR_IO, "MPI %s on rank %d: %s", what, g_rank, msg);
}

#define MPI_TRY(call, what)                                                                        \
    do {                                                                                           \
        const int rc_ = (call);                                                                    \
        if (rc_ != MPI_SUCCESS) return mpi_fail(err, rc_, what);                                   \
    } while (0)

static lb_status send_big(const void *p, size_t n, int to, lb_error *err) {
    for (size_t o = 0; o < n; o += PIECE)
        MPI_TRY(MPI_Send((const char *)p + o, (int)(n - o < PIECE ? n - o : PIECE), MPI_BYTE, to, TAG, MPI_COMM_WORLD),
                "send");
    return LB_OK;
}

static lb_status recv_big(void *p, size_t n, int from, lb_error *err) {
    for (size_t o = 0; o < n; o += PIECE)
        MPI_TRY(MPI_Recv((char *)p + o, (int)(n - o < PIECE ? n - o : PIECE), MPI_BYTE, from, TAG, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE),
                "receive");
    return LB_OK;
}
#endif

lb_status lb_dist_init(int *argc, char ***argv, lb_error *err) {
#ifdef LB_HAVE_MPI
    if (g_mpi || !launched()) return LB_OK;
    int provided = 0;
    MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "init");
    g_mpi = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &g_node);
        MPI_Comm_free(&node);
    }
    LB_RETURN_IF(provided < MPI_THREAD_FUNNELED, err, LB_ERR_UNSUPPORTED,
                 "MPI: this library gives no thread support (lowbit's threads need MPI_THREAD_FUNNELED)");
#else
    (void)argc, (void)argv, (void)err;
#endif
    return LB_OK;
}

void lb_dist_finalize(void) {
#ifdef LB_HAVE_MPI
    if (g_mpi) MPI_Finalize();
    g_mpi = false;
#endif
    g_rank = 0, g_size = 1, g_node = 1;
}

void lb_dist_abort(int code) {
#ifdef LB_HAVE_MPI
    if (g_mpi && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    (void)code;
}

lb_status lb_dist_agree(lb_status st, lb_error *err) {
    if (g_size == 1) return st;
#ifndef LB_HAVE_MPI
    (void)err;
#else
    /* MAXLOC over (failed, rank): whether any failed, and on a tie the lowest rank */
    int in[2] = { st != LB_OK, g_rank }, out[2];
    MPI_TRY(MPI_Allreduce(in, out, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD), "allreduce");
    if (st != LB_OK || !out[0]) return st;
    return lb_fail(err, LB_ERR_IO, "rank %d of %d failed (its message says why); rank %d stops too", out[1], g_size,
                   g_rank);
#endif
    return st;
}

lb_status lb_dist_gather(const void *send, size_t bytes, void *recv, lb_error *err) {
    if (g_rank == 0 && bytes) memmove(recv, send, bytes);
    if (g_size == 1 || bytes == 0) return LB_OK;
#ifndef LB_HAVE_MPI
    (void)err;
#else
    if (g_rank != 0) g_sent += bytes;
    if (bytes <= PIECE) {
        MPI_TRY(MPI_Gather(g_rank == 0 ? MPI_IN_PLACE : send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, 0,
                           MPI_COMM_WORLD),
                "gather");
        return LB_OK;
    }
    if (g_rank != 0) return send_big(send, bytes, 0, err);
    for (int r = 1; r < g_size; r++) LB_TRY_RET(recv_big((char *)recv + (size_t)r * bytes, bytes, r, err));
#endif
    return LB_OK;
}

lb_status lb_dist_bcast(void *buf, size_t bytes, lb_error *err) {
    if (g_size == 1) return LB_OK;
#ifdef LB_HAVE_MPI
    if (g_rank == 0) g_sent += bytes * (uint64_t)(g_size - 1);
    for (size_t o = 0; o < bytes; o += PIECE)
        MPI_TRY(MPI_Bcast((char *)buf + o, (int)(bytes - o < PIECE ? bytes - o : PIECE), MPI_BYTE, 0, MPI_COMM_WORLD),
                "broadcast");
#else
    (void)buf, (void)bytes, (void)err;
#endif
    return LB_OK;
}

lb_status lb_dist_allgather(const void *send, size_t bytes, void *recv, lb_error *err) {
    memmove((char *)recv + (size_t)g_rank * bytes, send, bytes);
    if (g_size == 1 || bytes == 0) return LB_OK;
#ifndef LB_HAVE_MPI
    (void)err;
#else
    if (bytes <= PIECE / (size_t)g_size) {
        g_sent += bytes * (uint64_t)(g_size - 1);
        MPI_TRY(MPI_Allgather(MPI_IN_PLACE, 0, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD), "allgather");
        return LB_OK;
    }
    LB_TRY_RET(lb_dist_gather((char *)recv + (size_t)g_rank * bytes, bytes, recv, err));
    return lb_dist_bcast(recv, bytes * (size_t)g_size, err);
#endif
    return LB_OK;
}

lb_status lb_dist_allgatherv(const void *send, const size_t *sizes, void *recv, lb_error *err) {
    size_t at = 0, total = 0;
    for (int r = 0; r < g_size; r++) total += sizes[r];
    for (int r = 0; r < g_rank; r++) at += sizes[r];
    memmove((char *)recv + at, send, sizes[g_rank]);
    if (g_size == 1 || total == 0) return LB_OK;
#ifndef LB_HAVE_MPI
    (void)err;
#else
    if (total <= PIECE) {
        g_sent += sizes[g_rank] * (uint64_t)(g_size - 1);
        int *cnt = malloc(2 * (size_t)g_size * sizeof *cnt), *dsp;
        LB_RETURN_IF(!cnt, err, LB_ERR_NOMEM, "out of memory");
        dsp = cnt + g_size;
        for (int r = 0, o = 0; r < g_size; o += (int)sizes[r], r++) cnt[r] = (int)sizes[r], dsp[r] = o;
        const int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, recv, cnt, dsp, MPI_BYTE, MPI_COMM_WORLD);
        free(cnt);
        return rc == MPI_SUCCESS ? LB_OK : mpi_fail(err, rc, "allgather");
    }
    if (g_rank != 0) g_sent += sizes[g_rank];
    if (g_rank != 0) LB_TRY_RET(send_big(send, sizes[g_rank], 0, err));
    size_t o = sizes[0];
    for (int r = 1; g_rank == 0 && r < g_size; o += sizes[r], r++)
        LB_TRY_RET(recv_big((char *)recv + o, sizes[r], r, err));
    return lb_dist_bcast(recv, total, err);
#endif
    return LB_OK;
}

lb_status lb_dist_alltoallv(const float *send, const size_t *scount, float *recv, const size_t *rcount, lb_error *err) {
    if (g_size == 1) {
        memmove(recv, send, scount[0] * sizeof *send);
        return LB_OK;
    }
#ifndef LB_HAVE_MPI
    (void)rcount, (void)err;
    return LB_OK;
#else
    int *v = malloc(4 * (size_t)g_size * sizeof *v), *sd, *rc, *rd;
    LB_RETURN_IF(!v, err, LB_ERR_NOMEM, "out of memory");
    sd = v + g_size, rc = sd + g_size, rd = rc + g_size;
    size_t so = 0, ro = 0;
    bool   fits = true;
    for (int r = 0; r < g_size; r++) g_sent += r == g_rank ? 0 : scount[r] * sizeof *send;
    for (int r = 0; r < g_size; so += scount[r], ro += rcount[r], r++) {
        fits &= so + scount[r] <= INT32_MAX && ro + rcount[r] <= INT32_MAX;
        v[r] = (int)scount[r], sd[r] = (int)so, rc[r] = (int)rcount[r], rd[r] = (int)ro;
    }
    const int rcode = fits ? MPI_Alltoallv(send, v, sd, MPI_FLOAT, recv, rc, rd, MPI_FLOAT, MPI_COMM_WORLD) : MPI_ERR_COUNT;
    free(v);
    return rcode == MPI_SUCCESS ? LB_OK : mpi_fail(err, rcode, "alltoallv (more than 2^31 floats?)");
#endif
}

lb_status lb_dist_sum(double *v, size_t n, lb_error *err) {
    if (g_size == 1 || n == 0) return LB_OK;
    double *all = malloc((size_t)g_size * n * sizeof *all);
    LB_RETURN_IF(!all, err, LB_ERR_NOMEM, "out of memory");
    const lb_status st = lb_dist_allgather(v, n * sizeof *v, all, err);
    for (size_t i = 0; st == LB_OK && i < n; i++) {
        v[i] = all[i];
        for (int r = 1; r < g_size; r++) v[i] += all[(size_t)r * n + i];
    }
    free(all);
    return st;
}

lb_status lb_dist_any(bool flag, bool *any, lb_error *err) {
    *any = flag;
    if (g_size == 1) return LB_OK;
#ifndef LB_HAVE_MPI
    (void)err;
#else
    int in = flag, out = 0;
    MPI_TRY(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "allreduce");
    *any = out != 0;
#endif
    return LB_OK;
}

lb_status lb_dist_send(const void *buf, size_t bytes, int to, lb_error *err) {
#ifdef LB_HAVE_MPI
    g_sent += bytes;
    if (g_size > 1) return send_big(buf, bytes, to, err);
#endif
    (void)buf, (void)bytes, (void)to;
    return lb_fail(err, LB_ERR_PARAM, "send: one rank");
}

lb_status lb_dist_recv(void *buf, size_t bytes, int from, lb_error *err) {
#ifdef LB_HAVE_MPI
    if (g_size > 1) return recv_big(buf, bytes, from, err);
#endif
    (void)buf, (void)bytes, (void)from;
    return lb_fail(err, LB_ERR_PARAM, "receive: one rank");
}
