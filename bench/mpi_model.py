#!/usr/bin/env python3
"""Issue 23's wall-time model: GPTQ (the f32 target) on R machines of this one's kind (one rank
of 2 threads each), a block at a time, for the 7b and 70b shapes, from figures measured here.

  python3 bench/mpi_model.py CALIB METHOD CHOL7 [GBIT]

CALIB, METHOD: seconds per layer block of the 1b shape on one machine (bench/mpi.sh, "1 rank x 2
threads"; its windows: 16 of 256 tokens; measured when each matrix factorized its input's Hessian
twice, GPTQ's and the refit's Cholesky, about 1.5 CHOL7 at width 11008); CHOL7: seconds of one
input's factorization at width 11008 on one machine (bench_gptq's "cholesky": the Cholesky and the
triangular inverse); GBIT: the network, Gbit/s (10).

The model, each term from the code as it runs:
- calibration: the windows split over the ranks; its work per window grows with the block's
  weights and its inputs' Hessians (forward passes through them, X^T X, X_ref^T X, X_ref^T
  X_ref): the 1b figure scaled by (P + sum n^2) and by windows x tokens (128 x 512 here);
- the method: GPTQ's rows split over the ranks (n_out n^2 per matrix), the Hessian's
  factorization (n^3, one per input, shared by its matrices' GPTQ and refits) done on every
  rank: the part that does not shrink with R;
- the network: each step sends the step's f32 H, C and A (8 n^2 bytes an input) round the
  ranks ((R - 1) / R of it leaves a rank), W / R steps; then the f64 sums are shared (24 n^2
  (R - 1) / R) and every matrix's rows gathered (4.5 bytes a weight); counted as the payload a
  rank sends, at GBIT, not overlapped with the work.
"""
import sys

SHAPES = {  # n_embd, n_ff, n_heads, n_kv_heads, head_dim, layers
    "1b": (2048, 5632, 32, 4, 64, 22),
    "7b": (4096, 11008, 32, 32, 128, 32),
    "70b": (8192, 28672, 64, 8, 128, 80),
}


def block(shape):
    e, f, h, kv, hd, layers = SHAPES[shape]
    q, k = h * hd, kv * hd
    mats = [(q, e), (k, e), (k, e), (e, q), (f, e), (f, e), (e, f)]  # (n_out, n_in)
    inputs = [e, q, e, f]  # attn in, attn out, ffn in, down in
    P = sum(a * b for a, b in mats)
    return mats, inputs, P, layers


def main():
    calib1, method1, chol7 = (float(x) for x in sys.argv[1:4])
    gbit = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    W, T, W1, T1 = 128, 512, 16, 256
    mats1, in1, P1, _ = block("1b")
    work1 = P1 + sum(n * n for n in in1)
    gq1 = sum(o * n * n for o, n in mats1)
    chol1 = sum(1.5 * chol7 * (n / 11008) ** 3 for _, n in mats1)  # 1b's factorizations in METHOD (two a matrix)
    print(f"| shape | ranks | calibration s | GPTQ rows s | factorizations s | network s | block s | model |"
          f" speed-up | efficiency |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for shape in ("7b", "70b"):
        mats, ins, P, layers = block(shape)
        calib = calib1 * (P + sum(n * n for n in ins)) / work1 * (W * T) / (W1 * T1)
        chol = sum(chol7 * (n / 11008) ** 3 for n in ins)
        rows = max((method1 - chol1) * sum(o * n * n for o, n in mats) / gq1, 0.0)
        t1 = None
        for R in (1, 8, 16, 32, 64):
            steps = -(-W // R)
            sent = sum(8 * n * n for n in ins) * steps * (R - 1) / R \
                + sum(24 * n * n for n in ins) * (R - 1) / R \
                + sum(4.5 * o * n for o, n in mats) * (R - 1) / R
            net = sent / (gbit * 1e9 / 8)
            t = calib / R + rows / R + chol + net
            t1 = t1 or t
            print(f"| {shape} | {R} | {calib / R:.1f} | {rows / R:.1f} | {chol:.1f} | {net:.1f} | {t:.1f} |"
                  f" {t * layers / 3600:.2f} h | {t1 / t:.1f}x | {t1 / t / R:.0%} |")


if __name__ == "__main__":
    main()
