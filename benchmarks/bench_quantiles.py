"""Benchmark: quantiles and sampling (issue 15, items 2–3), each against a baseline measured in the same run.

1. Marchenko–Pastur ``sample`` of 10⁶ points (exact: ≤ 1e−14 relative in the quantile, tests/test_perpoint.py)
   against numpy drawing 10⁶ standard normals, an approximate inverse-cdf sampler (linear interpolation in a
   4097-node cdf table, as approximate samplers do) and per-point Newton on the exact mass from a grid bracket
   (the previous algorithm).
2. Fuss–Catalan pdf/cdf/ppf cost per point from 10³ to 10⁷ points (blocks of 2^14: flat), and one call on 10⁷
   points against ten calls on 10⁶.
3. ``jacobian_spectrum(1000, "linear").ppf`` of 10³ quantiles after the law's one-off tables, with warm-started
   density solves and the bulk inversion of FreeProductLaw, against the η-continuation for every point and the
   generic inversion (the previous path).
4. ``jacobian_spectrum(10**6, "linear", weights="orthogonal")``: the point mass built directly, against the
   depth-1 law.

Run: ``python benchmarks/bench_quantiles.py [--quick]`` (``--quick``: no 10⁷-point arrays, no cold free-product run).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from rmt_init import fuss_catalan, jacobian_spectrum
from rmt_init.theory.free import FreeProductLaw
from rmt_init.theory.laws import SpectralLaw
from rmt_init.theory.marchenko_pastur import MarchenkoPastur


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def marchenko_pastur(n: int = 10**6) -> None:
    print(f"1. Marchenko–Pastur sampling, {n:.0e} points (µs per point; ratio to numpy's normals)")
    rng = np.random.default_rng(0)
    normal = _time(lambda: rng.standard_normal(n))
    print(f"   numpy standard_normal                     {normal / n * 1e6:7.4f} µs/pt   1.00")
    for ratio in (0.5, 1.0, 4.0):
        law = MarchenkoPastur(ratio)
        start = time.perf_counter()
        law._quantile_table  # one-off
        build = time.perf_counter() - start
        exact = _time(lambda: law.sample(n, rng=1))
        # approximate inverse-cdf sampler: linear interpolation of x(F) on a 4097-node table
        grid = np.linspace(*law.support, 4097)
        table = law.cdf(grid)
        approximate = _time(lambda: np.interp(rng.random(n), table, grid))
        u = rng.random(n // 10)
        below = np.minimum(u * law.continuous_mass, 0.5 * law.continuous_mass)
        newton = _time(lambda: law._angle_from_mass(below, from_top=False), repeat=1) * 10
        print(
            f"   ratio {ratio:<4g} table (one-off {build * 1e3:5.0f} ms)       {exact / n * 1e6:7.4f} µs/pt"
            f" {exact / normal:5.2f}   approximate interp {approximate / n * 1e6:7.4f} µs/pt ({exact / approximate:4.2f}×)"
            f"   per-point Newton {newton / n * 1e6:7.4f} µs/pt ({newton / exact:5.1f}× slower)"
        )


def fuss_catalan_flat(quick: bool) -> None:
    print("2. Fuss–Catalan(5) cost per point (µs) by array size")
    law = fuss_catalan(5)
    rng = np.random.default_rng(0)
    sizes = [10**3, 10**4, 10**5, 10**6] + ([] if quick else [10**7])
    per_point = {}
    for n in sizes:
        q = rng.random(n)
        x = law.support[1] * rng.random(n)
        repeat = 3 if n <= 10**6 else 1
        row = {name: _time(lambda: f(a), repeat) / n * 1e6 for name, f, a in (("pdf", law.pdf, x), ("cdf", law.cdf, x), ("ppf", law.ppf, q))}
        per_point[n] = row
        print(f"   {n:>9.0e} points   " + "   ".join(f"{k} {v:6.3f}" for k, v in row.items()))
    if not quick:
        q = rng.random(10**7)
        one = _time(lambda: law.ppf(q), 1)
        ten = _time(lambda: [law.ppf(q[i : i + 10**6]) for i in range(0, 10**7, 10**6)], 1)
        print(f"   ppf: one call on 10⁷ / ten calls on 10⁶ = {one / ten:4.2f} (1.0: flat; 2.2 before the blocks)")


def free_product(quick: bool) -> None:
    print("3. jacobian_spectrum(1000, 'linear').ppf of 1000 quantiles")
    q = np.linspace(0.0005, 0.9995, 1000)
    law = jacobian_spectrum(1000, "linear")
    start = time.perf_counter()
    law.ppf(0.5)
    tables = time.perf_counter() - start
    warm = _time(lambda: law.ppf(q))
    print(f"   one-off tables {tables:6.2f} s;  warm-started solves: {warm:6.3f} s")
    if quick:
        return
    original = FreeProductLaw._solve_warm, FreeProductLaw._invert_bulk
    FreeProductLaw._solve_warm = lambda self, x: (np.zeros(x.shape, complex), np.zeros(x.shape, bool))
    FreeProductLaw._invert_bulk = lambda self, i, local, upper: SpectralLaw._invert_interval(self, i, local, upper)
    try:
        cold_law = jacobian_spectrum(1000, "linear")
        cold_law.ppf(0.5)
        cold = _time(lambda: cold_law.ppf(q), 1)
    finally:
        FreeProductLaw._solve_warm, FreeProductLaw._invert_bulk = original
    print(f"   η-continuation for every point, generic inversion (previous path): {cold:6.3f} s   ratio {cold / warm:5.1f}×")


def point_mass() -> None:
    print("4. orthogonal linear network, depth 10⁶")
    one = _time(lambda: jacobian_spectrum(1, "linear", weights="orthogonal", sigma_w2=1.000001))
    deep = _time(lambda: jacobian_spectrum(10**6, "linear", weights="orthogonal", sigma_w2=1.000001))
    law = jacobian_spectrum(10**6, "linear", weights="orthogonal", sigma_w2=1.000001)
    print(
        f"   depth 10⁶ {deep * 1e3:7.1f} ms (depth 1: {one * 1e3:5.1f} ms, ratio {deep / one:5.1f}); "
        f"the point mass at {law.atoms[0][0]!r}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    marchenko_pastur()
    fuss_catalan_flat(args.quick)
    free_product(args.quick)
    point_mass()


if __name__ == "__main__":
    main()
