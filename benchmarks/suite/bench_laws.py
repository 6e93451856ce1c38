"""Theory-side benchmarks: each law's fast path next to its peer or baseline, same run.

* ``fuss_catalan_pdf``: the Fuss–Catalan density on many points vs mpmath's Meijer G (Penson & Życzkowski
  2011) on a few — compared per point (``units``).
* ``mp_sample``: exact Marchenko–Pastur sampling (inverse cdf) vs ``numpy`` ``standard_normal`` of the same
  size (the cost floor of drawing that many numbers) and vs an approximate sampler (linear interpolation in
  a 4097-node cdf table, the method of approximate samplers such as scikit-rmt's).
* ``fuss_catalan_flat``: the Fuss–Catalan density's cost per point on a large array (10⁶; 10⁷ at ``full``) and
  on 10³ points vs 10⁴ points (1 = flat).
* ``smooth_density``: depth-``L`` tanh Jacobian law's density vs the Fuss–Catalan density at the same
  number of points (a law of the same kind with a fast path).
* ``free_ppf``: free-product (linear Gaussian, depth ``L``) quantiles vs the same law's density at as many
  points — how many density evaluations one quantile costs. Marked ``slow`` (depth 1000 at ``full``).
"""
from __future__ import annotations

import numpy as np
import pytest

from _helpers import pick, run
from rmt_init import fuss_catalan, jacobian_spectrum, marchenko_pastur


def _interior(law, n: int) -> np.ndarray:
    lo, hi = law.support
    return np.linspace(lo, hi, n + 2)[1:-1]


@pytest.mark.benchmark(group="fuss_catalan_pdf")
def bench_fuss_catalan_pdf(benchmark, size):
    law = fuss_catalan(3)
    n = pick(size, 1000, 100_000, 10_000_000)
    x = _interior(law, n)
    run(benchmark, lambda: law.pdf(x), "target", size, units=n)


@pytest.mark.benchmark(group="fuss_catalan_pdf")
def bench_meijerg_pdf(benchmark, size):
    law = fuss_catalan(3)
    n = pick(size, 1, 3, 5)
    x = _interior(law, n)
    run(benchmark, lambda: [law.pdf_meijerg_mp(float(v), dps=30) for v in x], "baseline", size, units=n)


@pytest.mark.benchmark(group="mp_sample")
def bench_mp_sample(benchmark, size):
    law = marchenko_pastur(0.5)
    n = pick(size, 1000, 100_000, 1_000_000)
    run(benchmark, lambda: law.sample(n, rng=0), "target", size, units=n)


@pytest.mark.benchmark(group="mp_sample")
def bench_numpy_standard_normal(benchmark, size):
    n = pick(size, 1000, 100_000, 1_000_000)
    rng = np.random.default_rng(0)
    run(benchmark, lambda: rng.standard_normal(n), "baseline", size, units=n)


@pytest.mark.benchmark(group="mp_sample")
def bench_mp_interpolating_sampler(benchmark, size):
    # The approximate samplers' method (e.g. scikit-rmt's): linear interpolation of x(F) in a 4097-node cdf
    # table, errors ~1e-7 in the quantile; ours is exact (≤ 1e-14, tests/test_perpoint.py).
    law = marchenko_pastur(0.5)
    n = pick(size, 1000, 100_000, 1_000_000)
    grid = np.linspace(*law.support, 4097)
    table = law.cdf(grid)
    rng = np.random.default_rng(0)
    run(benchmark, lambda: np.interp(rng.random(n), table, grid), "baseline", size, units=n)


@pytest.mark.benchmark(group="fuss_catalan_flat")
def bench_fuss_catalan_pdf_many(benchmark, size):
    # Cost per point of a large array against a small one (ratio 1 = flat per-point cost).
    law = fuss_catalan(3)
    n = pick(size, 100_000, 1_000_000, 10_000_000)
    x = _interior(law, n)
    run(benchmark, lambda: law.pdf(x), "target", size, units=n)


@pytest.mark.benchmark(group="fuss_catalan_flat")
def bench_fuss_catalan_pdf_thousand(benchmark, size):
    # 10³ points: one block, where the per-call overhead (two Newton solves, two table look-ups, ~150 numpy
    # calls) weighs most. Measured against 10⁴ points per point.
    law = fuss_catalan(3)
    x = _interior(law, 1000)
    run(benchmark, lambda: law.pdf(x), "target", size, units=1000, rounds=pick(size, 3, 50, 50))


@pytest.mark.benchmark(group="fuss_catalan_flat")
def bench_fuss_catalan_pdf_few(benchmark, size):
    law = fuss_catalan(3)
    n = pick(size, 1000, 10_000, 10_000)
    x = _interior(law, n)
    run(benchmark, lambda: law.pdf(x), "baseline", size, units=n, rounds=pick(size, 3, 20, 20))


@pytest.mark.benchmark(group="smooth_density")
def bench_tanh_density(benchmark, size):
    depth, n = pick(size, (2, 20), (6, 200), (6, 1000))
    law = jacobian_spectrum(depth, "tanh")
    x = _interior(law, n)
    run(benchmark, lambda: law.pdf(x), "target", size, rounds=pick(size, 1, 2, 3), units=n, depth=depth)


@pytest.mark.benchmark(group="smooth_density")
def bench_fuss_catalan_density_peer(benchmark, size):
    depth, n = pick(size, (2, 20), (6, 200), (6, 1000))
    law = fuss_catalan(depth)
    x = _interior(law, n)
    run(benchmark, lambda: law.pdf(x), "baseline", size, units=n, depth=depth)


@pytest.mark.slow
@pytest.mark.benchmark(group="free_ppf")
def bench_free_product_ppf(benchmark, size):
    depth, n = pick(size, (2, 3), (10, 10), (1000, 1000))
    law = jacobian_spectrum(depth, "linear")
    q = np.linspace(0.0, 1.0, n + 2)[1:-1]
    run(benchmark, lambda: law.ppf(q), "target", size, rounds=1, units=n, depth=depth)


@pytest.mark.benchmark(group="free_ppf")
def bench_free_product_pdf_peer(benchmark, size):
    depth, n = pick(size, (2, 3), (10, 10), (1000, 1000))
    law = jacobian_spectrum(depth, "linear")
    x = _interior(law, n)
    run(benchmark, lambda: law.pdf(x), "baseline", size, rounds=1, units=n, depth=depth)
