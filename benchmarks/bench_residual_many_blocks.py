"""Timings of residual-network Jacobian laws whose blocks all differ (issue 13): the BN-ResNet ReLU law
(α_l from bn_residual_alphas) and linear blocks with α_l = 1/√l. Prints seconds for support, pdf at a few
points and (optionally, slow) the cdf tables.

    python benchmarks/bench_residual_many_blocks.py [--depths 9 27] [--tables]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from rmt_init.theory.jacobian import jacobian_spectrum
from rmt_init.theory.residual_bn import bn_residual_alphas


def build(depth: int, kind: str):
    if kind == "relu":
        alphas = bn_residual_alphas(depth, "relu", q0=1.0, sigma_w2=2.0)
        return jacobian_spectrum(depth, "relu", residual=alphas, weights="gaussian", sigma_w2=2.0, sigma_b2=0)
    alphas = [1.0 / np.sqrt(l) for l in range(1, depth + 1)]
    return jacobian_spectrum(depth, "linear", residual=alphas, weights="gaussian", sigma_w2=1.0, sigma_b2=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", type=int, nargs="+", default=[9, 27])
    parser.add_argument("--kinds", nargs="+", default=["relu", "linear"])
    parser.add_argument("--tables", action="store_true", help="also time the cdf tables (minutes)")
    args = parser.parse_args()
    for kind in args.kinds:
        for depth in args.depths:
            law = build(depth, kind)
            t0 = time.perf_counter()
            top = law.support[1]
            t_support = time.perf_counter() - t0
            x = np.array([1e-6, 1e-3, 0.05, 0.3, 1.0, 3.0, 10.0, 30.0]) * law.mean()
            x = x[x < top]
            t0 = time.perf_counter()
            law.pdf(x)
            t_pdf = time.perf_counter() - t0
            line = f"{kind:6s} L={depth:3d}  support {t_support:7.2f} s  pdf({x.size} pts) {t_pdf:7.2f} s"
            if args.tables:
                t0 = time.perf_counter()
                law.cdf(x)
                line += f"  cdf {time.perf_counter() - t0:7.2f} s"
            print(line, flush=True)


if __name__ == "__main__":
    main()
