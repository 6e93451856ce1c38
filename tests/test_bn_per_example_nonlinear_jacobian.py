"""The analytic Jacobian of the nonlinear per-example block recursion (docs/derivations.md §11.11) and the walk that
uses it, against the former finite-difference / Broyden path kept as the check."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init.theory.activations import get_activation
from rmt_init.theory.bn_per_example_nonlinear import BNPerExampleNonlinearLaw, _Walker


def _law(name: str, depth: int, fd: bool = False) -> BNPerExampleNonlinearLaw:
    # a coarse rule (4 t nodes, 4 antithetic pairs: 64 directions) keeps the test fast; the Jacobian and the walk do
    # not depend on the rule's size
    return BNPerExampleNonlinearLaw(depth, get_activation(name), 8, 1.0, directions=4, t_nodes=4, _fd_jacobian=fd)


@pytest.mark.parametrize(("name", "depth"), [("relu", 2), ("tanh", 3)])
def test_analytic_jacobian_equals_forward_differences(name: str, depth: int) -> None:
    """Daleckii–Krein's derivative chained through the layers equals forward differences (step 1e−7 of the largest
    unknown: truncation ~1e−7 relative, rounding ~1e−16/1e−7 ~ 1e−9) to 1e−5 of the largest entry, at random complex
    unknowns and z; and the residual that comes with it equals :meth:`residual` to rounding."""
    s = _law(name, depth)._solver
    rng = np.random.default_rng(3)
    X = 0.3 * (rng.standard_normal((3, s.unknowns)) + 1j * rng.standard_normal((3, s.unknowns)))
    z = np.array([1.3 + 0.2j, 0.4 + 0.01j, 3.0 + 1e-3j])
    f, jac = s.jacobian(X, z)
    np.testing.assert_allclose(f, s.residual(X, z), rtol=0, atol=1e-13 * np.abs(f).max())
    fd = s.jacobian_fd(X, z)
    for p in range(3):
        np.testing.assert_allclose(jac[p], fd[p], rtol=0, atol=1e-5 * np.abs(jac[p]).max())


def test_walk_with_the_analytic_jacobian_reaches_the_same_solutions() -> None:
    """The walk down the grid (relu, B = 8, L = 2, x from 1e3 to 0.1 times the mean, 3 points a decade, η = 1e−9)
    solves the same equations with either Jacobian to the same tolerance (|residual| < 1e−10 max(1, |G z|)), so G
    must agree to 1e−8 relative and, inside the bulk (x ≤ 10 m₁, where Im G = O(|G|)), the density −Im G/π to 1e−7
    relative."""
    laws = [_law("relu", 2, fd) for fd in (False, True)]
    m1 = laws[0]._mean
    xs = np.geomspace(1e3 * m1, 0.1 * m1, 13)
    (xa, sa), (xf, sf) = [_Walker(law._solver, analytic=not law._fd_jacobian).walk(xs, 1e-9) for law in laws]
    assert len(xa) == len(xf) == len(xs)
    np.testing.assert_allclose(sa[:, 0], sf[:, 0], rtol=1e-8)
    bulk = xs <= 10.0 * m1 * (1 + 1e-12)
    np.testing.assert_allclose(sa[bulk, 0].imag, sf[bulk, 0].imag, rtol=1e-7)
    assert np.all(sa[bulk, 0].imag < 0) and math.isfinite(float(np.abs(sa).max()))


@pytest.mark.parametrize("batch", [5, 8])
def test_real_arithmetic_cauchy_equals_the_linear_solvers(batch: int) -> None:
    """The nonlinear solver's E[1/(X − ζ)] (real arithmetic) equals _BlockSolver.cauchy (complex division; the same
    quadrature and pole subtraction) to 1e−10 relative (rounding in the near-pole cancellation, measured ≤ 7e−12) at
    points off the axis, next to it (Im ζ = 1e−12, where the pole is subtracted), on it and at 0."""
    from rmt_init.theory.bn_per_example import _BlockSolver

    ours = _law("relu", 2)._solver if batch == 8 else BNPerExampleNonlinearLaw(
        2, get_activation("relu"), batch, 1.0, directions=4, t_nodes=4)._solver
    ref = _BlockSolver(2, batch, 1.0)
    rng = np.random.default_rng(0)
    for scale, im in ((3.0, 1e-3), (3.0, 1e-12), (1e-12, 1e-12), (30.0, 10.0), (1.0, 0.0)):
        z = scale * rng.standard_normal(500) + 1j * im * rng.standard_normal(500)
        z[:3] = [0.0, 2.0, -3.0]
        np.testing.assert_allclose(ours.cauchy(z), ref.cauchy(z), rtol=1e-10, atol=0)
