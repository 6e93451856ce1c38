"""Benchmark: fast Fuss–Catalan density vs mpmath (Meijer G and the arbitrary-precision parametrisation).

Prints, in one run, for depths 2, 10 and 100:
* seconds for the fast (numpy) pdf at 10⁶ points drawn uniformly on the support;
* seconds per point of mpmath's Meijer G (Penson & Życzkowski) at 30 digits, on a few points, capped
  at ``--cap`` seconds per point (a capped point gives a lower bound on the ratio);
* the per-point speed ratio Meijer G / fast;
* the worst relative error of the fast pdf against the 40-digit reference over a grid covering the
  whole open support (down to 1e-300 and up to 2 ulps below the edge) and at the timed points.

Usage: python benchmarks/bench_fuss_catalan.py [--points 1000000] [--cap 30] [--depths 2 10 100]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp_proc
import time

import numpy as np

from rmt_init import fuss_catalan


def _meijerg_worker(depth: int, x: float, queue) -> None:
    law = fuss_catalan(depth)
    start = time.perf_counter()
    value = float(law.pdf_meijerg_mp(x, dps=30))
    queue.put((time.perf_counter() - start, value))


def time_meijerg(depth: int, x: float, cap: float) -> tuple[float, float | None]:
    """Seconds for one Meijer G evaluation (in a subprocess, killed after ``cap`` seconds)."""
    queue = mp_proc.Queue()
    proc = mp_proc.Process(target=_meijerg_worker, args=(depth, x, queue))
    proc.start()
    proc.join(cap)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return cap, None
    return queue.get()


def accuracy_grid(law, n: int = 60) -> np.ndarray:
    edge = law.support[1]
    return np.unique(
        np.concatenate(
            [
                np.geomspace(1e-300, 0.5 * edge, n),
                edge - np.geomspace(0.5 * edge, 2.5e-16 * edge, n),
                np.linspace(0, edge, n + 2)[1:-1],
            ]
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--cap", type=float, default=30.0, help="seconds allowed per Meijer G point")
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 10, 100])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"fast Fuss–Catalan pdf at {args.points:,} points vs mpmath Meijer G (30 digits), best of {args.repeats}")
    header = f"{'depth':>5} {'fast [s]':>9} {'fast/pt [s]':>12} {'meijerg/pt [s]':>15} {'ratio':>12} {'max rel err':>12}"
    print(header)
    for depth in args.depths:
        law = fuss_catalan(depth)
        law.pdf(1.0)  # build the inverse tables once (4 ms) outside the timing
        x = rng.uniform(0.0, law.support[1], args.points)
        best = min(_timed(law.pdf, x) for _ in range(args.repeats))
        per_point = best / args.points
        timed_points = [0.05 * law.support[1], 0.5 * law.support[1], 0.9 * law.support[1]]
        times, capped = [], False
        for point in timed_points:
            seconds, value = time_meijerg(depth, point, args.cap)
            times.append(seconds)
            capped |= value is None
        meijer = float(np.mean(times))
        grid = accuracy_grid(law)
        reference = law.pdf(grid, method="exact", dps=40)
        error = float(np.max(np.abs(law.pdf(grid) / reference - 1)))
        ratio = meijer / per_point
        ratio_text = (">" if capped else "") + f"{ratio:.3g}"
        meijer_text = (">" if capped else "") + f"{meijer:.3g}"
        print(f"{depth:>5} {best:>9.3f} {per_point:>12.3g} {meijer_text:>15} {ratio_text:>12} {error:>12.2e}")
    print("(ratio = mean Meijer G seconds per point at x/x_e = 0.05, 0.5, 0.9 over fast seconds per point;")
    print(" '>' marks a Meijer G evaluation stopped at the cap: the ratio is then a lower bound.)")


def _timed(function, x) -> float:
    start = time.perf_counter()
    function(x)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
