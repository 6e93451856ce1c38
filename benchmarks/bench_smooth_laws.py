"""Benchmark: smooth-activation Jacobian laws, the Gauss-rule path of ψ against the quadrature path (issue 15).

Each case builds the same law twice in one run: once as shipped (the law of φ'(√q z)²'s Gauss rule where
1/u is away from its range, :mod:`rmt_init.theory._smooth_law`), once with every smooth factor on the
pole-subtracted quadrature everywhere (``gauss_rule = None``, the path before issue 15). It prints both
wall times and their ratio, and the largest relative difference of the densities. Tables (support, cdf,
sampling) are built lazily on first use, so each timing starts from a fresh law and includes them.
Run from the repository root: ``PYTHONPATH=. python benchmarks/bench_smooth_laws.py`` (``--quick`` skips the references that take minutes: the quadrature path's cdf and sampling tables and depth 100).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from rmt_init import jacobian_spectrum
from rmt_init.theory.gaussian_image import GaussianImageS

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the theory side never needs torch
    pass


def _reference(law):
    """The same law with its smooth factors on the quadrature path everywhere."""
    smooth = [term.factor for term in law.terms if isinstance(term.factor, GaussianImageS)]
    if not smooth or any(not hasattr(f, "gauss_rule") for f in smooth):
        raise RuntimeError("no smooth factor with a Gauss rule: is this checkout's rmt_init the one imported?")
    for factor in smooth:
        factor.gauss_rule = None
    return law


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _case(label: str, make, task, reference: bool = True) -> None:
    new_t, new_out = _timed(lambda: task(make()))
    if reference:
        old_t, old_out = _timed(lambda: task(_reference(make())))
        diff = float(np.max(np.abs(new_out - old_out) / np.maximum(np.abs(old_out), 1e-300)))
        print(f"{label:52s} new {new_t:8.3f} s   old {old_t:8.3f} s   old/new {old_t / new_t:7.1f}x   max rel diff {diff:.1e}")
    else:
        print(f"{label:52s} new {new_t:8.3f} s   (reference skipped)")


def main(quick: bool = False) -> None:
    tanh6 = lambda: jacobian_spectrum(6, "tanh", sigma_b2=0.05)  # noqa: E731

    def density(law, n=1000):
        lo, hi = law.support
        return law.pdf(np.linspace(lo, hi, n + 2)[1:-1])

    def density_after_support(law, n=1000):
        lo, hi = law.support  # the edge search is timed in "support" below
        x = np.linspace(lo, hi, n + 2)[1:-1]
        start = time.perf_counter()
        p = law.pdf(x)
        density_after_support.last = time.perf_counter() - start
        return p

    def one_point(law):
        lo, hi = law.support
        start = time.perf_counter()
        p = law.pdf(np.array([0.5 * (lo + hi)]))
        one_point.last = time.perf_counter() - start
        return p

    print("times include the law's one-off tables unless stated; same run, 1 thread")
    _case("depth-6 tanh: support (edge search)", tanh6, lambda law: np.array(law.support))
    # pdf alone, the edges found first (not timed): the figure of the issue
    for label, fn in (("depth-6 tanh: pdf at 1000 points (edges found)", density_after_support), ("depth-6 tanh: pdf at 1 point (edges found)", one_point)):
        new_law, old_law = tanh6(), _reference(tanh6())
        p_new = fn(new_law)
        t_new = fn.last
        p_old = fn(old_law)
        t_old = fn.last
        diff = float(np.max(np.abs(p_new - p_old) / np.abs(p_old)))
        print(f"{label:52s} new {t_new:8.3f} s   old {t_old:8.3f} s   old/new {t_old / t_new:7.1f}x   max rel diff {diff:.1e}")
    _case("depth-6 tanh: support + pdf at 1000 points", tanh6, density)
    _case("depth-6 tanh: cdf at 1000 points (tables built)", tanh6, lambda law: law.cdf(np.linspace(*law.support, 1000)), reference=not quick)
    _case(
        "depth-6 tanh: sample(10^4) (tables built)",
        tanh6,
        lambda law: np.sort(law.rvs(size=10_000, random_state=np.random.default_rng(0))),
        reference=not quick,
    )
    _case("depth-6 erf: support + pdf at 1000 points", lambda: jacobian_spectrum(6, "erf", sigma_b2=0.3), density)
    _case("depth-6 gelu: support + pdf at 1000 points", lambda: jacobian_spectrum(6, "gelu", sigma_b2=0.5), density)
    _case("depth-100 tanh: support + pdf at 1000 points", lambda: jacobian_spectrum(100, "tanh", sigma_b2=0.05), density, reference=not quick)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
