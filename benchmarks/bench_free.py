"""Benchmark: densities of free products (issue: depth-100 ReLU/orthogonal Jacobian, depth-10 rectangular).

Prints wall times for 1000 density points (after the law's one-off edge search, timed separately) and,
as a same-run baseline, the closed-form Fuss–Catalan density of the same size, with the ratio.
Run: ``python benchmarks/bench_free.py``.
"""
from __future__ import annotations

import time

import numpy as np

from rmt_init import fuss_catalan, jacobian_spectrum, rectangular_product


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    fc = fuss_catalan(10)
    x_fc = np.linspace(0.0, fc.support[1], 1000)[1:-1]
    baseline = _time(lambda: fc.pdf(x_fc))
    print(f"baseline: Fuss–Catalan(10) closed-form pdf, 1000 points: {baseline * 1e3:8.2f} ms")
    cases = {
        "depth-100 ReLU, orthogonal weights": lambda: jacobian_spectrum(100, "relu", weights="orthogonal"),
        "depth-100 ReLU, Gaussian weights": lambda: jacobian_spectrum(100, "relu", weights="gaussian"),
        "depth-10 rectangular Gaussian product": lambda: rectangular_product([784, 1024, 512, 2048, 256, 1024, 640, 900, 1200, 512, 700]),
    }
    for name, make in cases.items():
        start = time.perf_counter()
        law = make()
        lo, hi = law.support
        edges = time.perf_counter() - start
        x = np.linspace(lo, hi, 1002)[1:-1]
        density = _time(lambda: law.pdf(x))
        print(
            f"{name:40s} edges {edges * 1e3:8.2f} ms   pdf(1000 points) {density * 1e3:8.2f} ms"
            f"   ratio to baseline {density / baseline:6.1f}x"
        )


if __name__ == "__main__":
    main()
