"""Batch Jacobian spectrum of batch-normalised networks with nonlinear φ (docs/derivations.md §11.5b).

References independent of the law's S-series and solver:

* linear φ: the generic path (sampled channel eigenvalues) against the exact linear law (§11.3).
* m1: exact, from ``bn_jacobian_moments`` (two-coordinate sphere quadrature, no sampling) and, per layer,
  ``bn_gradient_growth`` (Yang et al. 2019, arXiv 1902.08129).
* m2, m3: the M_B-valued recursion ``bn_jacobian_moments`` (§11.5), its own sphere sampling (another seed).
* the atom at 0 (relu): the rank of C = M D² M on 1⊥ is min(k, B − 2), k the number of positive coordinates of
  the normalised batch vector (D a 0/1 projection; checked on sampled C's below), counted on fresh samples.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init.theory import bn_gradient_growth
from rmt_init.theory.activations import get_activation
from rmt_init.theory.bn_spectrum import _generic_law, _sphere_samples, bn_jacobian_moments, bn_jacobian_spectrum


def test_linear_generic_path_is_the_exact_law():
    """For linear φ the channel matrix is M (B − 2 eigenvalues 1, one 0): the generic factor must reproduce the
    exact law, whose channel is InverseChiSquareS (no sampling error: every sampled eigenvalue is 1 or 0)."""
    exact = bn_jacobian_spectrum(3, "linear", 8, input_variance=0.7)
    generic = _generic_law(3, get_activation("linear"), 8, 0.7, 1000, 256, 0)
    assert generic.atoms[0][1] == pytest.approx(exact.atoms[0][1], abs=1e-14)
    for k in (1, 2, 3):
        assert generic.moment(k) == pytest.approx(exact.moment(k), rel=1e-12)
    x = np.geomspace(1e-3, 30.0, 15)
    np.testing.assert_allclose(generic.pdf(x), exact.pdf(x), rtol=1e-9, atol=1e-12 * exact.pdf(x).max())


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("batch", [4, 8, 16])
def test_mean_is_exact(activation, batch):
    """m1 uses only E tr C, to which the sampled eigenvalues are scaled: exact at any sample size (here 2000
    directions), against the recursion's exact m1 and Yang et al.'s growth per layer."""
    m = [bn_jacobian_spectrum(depth, activation, batch, directions=2000, seed=3).moment(1) for depth in (1, 2, 3)]
    for depth in (1, 2, 3):
        assert m[depth - 1] == pytest.approx(bn_jacobian_moments(depth, activation, batch, samples=1000).m1, rel=1e-10)
    assert m[2] / m[1] == pytest.approx(bn_gradient_growth(activation, batch), rel=1e-10)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_second_and_third_moments_match_the_recursion(activation):
    """m2, m3 of the free product (B = 8, depth 2) against the M_B recursion with independent samples. Both are
    Monte Carlo: the recursion's SE is its own (batch means); the law's is the spread of 4 laws built from 25 000
    directions each (other seeds), divided by 2 for the default 100 000. Tolerance 4·√(SE₁² + SE₂²); the node
    compression (two-point Gauss per quantile bin) keeps the samples' moments 0–3 exactly, so there is no bias."""
    law = bn_jacobian_spectrum(2, activation, 8)
    ref = bn_jacobian_moments(2, activation, 8, samples=200_000, seed=1)
    spread = np.array([[bn_jacobian_spectrum(2, activation, 8, directions=25_000, seed=s).moment(k) for k in (2, 3)]
                       for s in (11, 12, 13, 14)])
    se_law = spread.std(axis=0, ddof=1) / 2.0
    for k, value, se_ref, se in ((2, ref.m2, ref.m2_stderr, se_law[0]), (3, ref.m3, ref.m3_stderr, se_law[1])):
        assert abs(law.moment(k) - value) <= 4.0 * math.hypot(se_ref, se), (k, law.moment(k), value, se_ref, se)


@pytest.mark.parametrize("activation, batch, depth", [("relu", 8, 2), ("tanh", 8, 2), ("relu", 16, 1)])
def test_density_and_atom_integrate_to_one(activation, batch, depth):
    law = bn_jacobian_spectrum(depth, activation, batch, directions=20_000)
    # the table's mass (tails by their power laws) + the atom: 1 within the table's quadrature error, measured
    # ≤ 1.4e−4 for the linear laws (bn_jacobian_spectrum) and ≤ 2e−5 here
    assert law.table_mass + law.atoms[0][1] == pytest.approx(1.0, abs=1e-4)
    x = np.geomspace(1e-6, 1e4, 60) * law.moment(1)
    p = law.pdf(x)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    # far below the spectrum (plot.compare's log view reaches 1e−300): 0 below a gap's lower edge, the fitted
    # hard-edge power law below 1e−40 × the mean otherwise; finite and non-negative either way
    deep = np.geomspace(1e-300, 1e-30, 12)
    pd = law.pdf(deep)
    assert np.all(np.isfinite(pd)) and np.all(pd >= 0)
    if law.lower_edge > 0:
        assert np.all(pd[deep < law.lower_edge] == 0)
    c = law.cdf(x)
    assert np.all(np.diff(c) >= -1e-12) and c[0] >= law.atoms[0][1] - 1e-12
    q = np.array([0.6, 0.8, 0.95, 0.99])
    np.testing.assert_allclose(law.cdf(law.ppf(q)), q, atol=1e-6)


def test_relu_atom_matches_the_rank_count():
    """relu: μ({0}) = 1/B + ((B − 1)/B) ν({0}), ν({0}) = E[B − 1 − min(k, B − 2)]/(B − 1), k = #{n_i > 0}. First the
    rank rule on sampled C's (exact: ranks of small matrices), then the law's atom (from its own 100 000 directions)
    against k counted on 400 000 fresh directions; tolerance 4 SE of the difference."""
    batch = 8
    act = get_activation("relu")
    rng = np.random.default_rng(7)
    n = _sphere_samples(batch, 200, rng)
    b = float(batch)
    for v in n:
        m = np.eye(batch) - 1.0 / b - np.outer(v, v) / b
        d = np.diag(act.dphi(v))
        k = int((v > 0).sum())
        for c in (m @ d @ d @ m, m @ d @ (np.eye(batch) - 1.0 / b) @ d @ m):
            assert np.linalg.matrix_rank(c, tol=1e-9) == min(k, batch - 2)
    k = (_sphere_samples(batch, 400_000, rng) > 0).sum(axis=1)
    zeros = (batch - 1 - np.minimum(k, batch - 2)) / (batch - 1)
    expected = 1.0 / b + (b - 1.0) / b * zeros.mean()
    se = (b - 1.0) / b * zeros.std() * math.sqrt(1 / 400_000 + 1 / 100_000)
    law = bn_jacobian_spectrum(2, "relu", batch)
    assert abs(law.atoms[0][1] - expected) <= 4.0 * se


def test_tanh_atom_is_structural():
    """tanh' > 0: C has rank B − 2 on 1⊥ (M's), the atom is the 2/B structural zeros exactly."""
    law = bn_jacobian_spectrum(3, "tanh", 8, directions=2000)
    assert law.atoms[0][1] == pytest.approx(2.0 / 8.0, abs=1e-15)


def test_tail_orders():
    law = bn_jacobian_spectrum(2, "relu", 8, directions=2000)
    assert law.tail_exponent == pytest.approx(3.5)
    with pytest.raises(ValueError, match="infinite"):
        law.moment(4)


@pytest.mark.parametrize("bad, match", [(dict(activation="nope"), "nope"), (dict(directions=10), "directions"),
                                        (dict(seed=-1), "seed"), (dict(batch_size=3), "batch_size"),
                                        (dict(depth=0), "depth")])
def test_bad_input(bad, match):
    args = dict(depth=2, activation="relu", batch_size=8) | bad
    with pytest.raises(ValueError, match=match):
        bn_jacobian_spectrum(**args)
