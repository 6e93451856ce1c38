"""Diagnostic: finite-width excess of a BN network's batch-Jacobian moments over the N → ∞ theory, deep networks.

For each (φ, B, L, N): ``network_jacobian_moments`` (Hutchinson, ``--probes`` Gaussian probes, ``--trials`` networks,
``batchnorm="train"``) against ``bn_jacobian_moments(L, φ, B)``; prints the excess (MC − theory)/theory ± SE (SE
over networks, which includes the probe noise, and the theory's sampling SE in quadrature) and the constant
``c = ln(MC/theory)·N/L`` of the multiplicative model ``MC/theory ≈ exp(c L/N)``. The tables in docs/derivations.md
§11.6 and the bias constants of ``validation/claims/bn_batch_spectrum.py`` (``DEEP_BIAS_C``) come from these runs
(40 networks, 4 probes).

Default: depth 20, B = 16, N = 128, 256, 512, 1024, φ = relu, tanh, linear (≈ 3 min on one thread).
Usage: python benchmarks/diagnose_bn_moments_bias.py [--batch 16] [--depth 20] [--widths 128 256 512 1024]
       [--activations relu tanh linear] [--trials 40] [--probes 4]
"""
from __future__ import annotations

import argparse
import math
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--widths", type=int, nargs="+", default=[128, 256, 512, 1024])
    ap.add_argument("--activations", nargs="+", default=["relu", "tanh", "linear"])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--probes", type=int, default=4)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from rmt_init.montecarlo import network_jacobian_moments
    from rmt_init.theory import bn_jacobian_moments

    b, depth = args.batch, args.depth
    for act in args.activations:
        th = bn_jacobian_moments(depth, act, b, samples=200_000, seed=1)
        theory = [(th.m1, 0.0), (th.m2, th.m2_stderr), (th.m3, th.m3_stderr)]
        for n in args.widths:
            t = time.perf_counter()
            res = network_jacobian_moments(depth, n, act, batchnorm="train", batch_size=b, trials=args.trials,
                                           probes=args.probes, seed=1000 + n, device="cpu")
            sec = (time.perf_counter() - t) / args.trials
            cols = []
            for k, (m, se_t) in enumerate(theory, 1):
                mean, se = res.moment(k)
                se = math.hypot(se, se_t)
                c = math.log(mean / m) * n / depth
                cols.append(f"m{k} {100 * (mean / m - 1):+6.1f}±{100 * se / m:4.1f}% c={c:+.2f}")
            print(f"{act:6s} B={b} L={depth} N={n:5d} L/N={depth / n:.4f} | " + " | ".join(cols)
                  + f" | {sec:.2f} s/network", flush=True)


if __name__ == "__main__":
    main()
