"""Per-block residual laws (every block different): the block solver's warm starts from remembered points give
the same ψ as a cold solve on a fresh block, and the linear per-block law keeps its exact moments."""
from __future__ import annotations

import math

import numpy as np

from rmt_init.theory import ResidualBlockS, jacobian_spectrum
from rmt_init.theory.activations import get_activation
from rmt_init.theory.jacobian import _d_squared_factor


def test_warm_starts_from_memory_match_cold_solves() -> None:
    # ReLU block (D² two-point law), s = α²σ_w² = 0.3: points in the lower half-plane off the cut
    u = np.array([0.05 - 0.2j, -0.3 - 0.1j, 0.2 - 0.05j, 1.5 - 0.4j, -2.0 - 1.0j, 0.01 - 0.001j])
    factor = _d_squared_factor(get_activation("relu"), 1.0)
    cold = np.array([ResidualBlockS(factor, 0.3).one_plus_psi(u[i : i + 1])[0][0] for i in range(u.size)])
    warm_block = ResidualBlockS(factor, 0.3)
    # many calls of different shapes fill the memory (its KD-tree is rebuilt as points come in)
    for scale in np.linspace(0.9, 1.1, 15):
        warm_block.one_plus_psi(u * scale)
        warm_block.one_plus_psi(u[:3] * scale)
    assert warm_block._pending_size == sum(p[0].size for p in getattr(warm_block, "_pending", []))
    warm = warm_block.one_plus_psi(u[::-1])[0][::-1]
    assert np.all(np.isfinite(warm))
    np.testing.assert_allclose(warm, cold, rtol=1e-10)


def test_linear_per_block_alpha_exact_moments() -> None:
    # linear Gaussian block: E F = 1 + s, E F² = 1 + 4s + 2s² (Dozier & Silverstein 2007; docs/derivations.md §8.2);
    # the free product's first moment is the product of the block means, the second Σ-formula of free
    # multiplicative convolution: m₂ = Π m₁,l² · (1 + Σ_l (m₂,l − m₁,l²)/m₁,l²) for free positive factors
    depth = 4
    alphas = [1.0 / math.sqrt(l) for l in range(1, depth + 1)]
    law = jacobian_spectrum(depth, "linear", residual=alphas, weights="gaussian", sigma_w2=1.0, sigma_b2=0.0)
    s = [a * a for a in alphas]
    m1 = [1.0 + x for x in s]
    m2 = [1.0 + 4.0 * x + 2.0 * x * x for x in s]
    mean = math.prod(m1)
    assert math.isclose(float(law.moment(1, method="exact")), mean, rel_tol=1e-14)
    second = mean**2 * (1.0 + sum((b - a * a) / (a * a) for a, b in zip(m1, m2)))
    assert math.isclose(float(law.moment(2, method="exact")), second, rel_tol=1e-14)


def _blocks(s_values, act="relu"):
    factor = _d_squared_factor(get_activation(act), 1.0) if act != "linear" else None
    return [ResidualBlockS(factor, s) for s in s_values]


def assert_stacked_equals_single(single, us, many, rtol: float) -> None:
    """``many`` (the stacked solver's (1 + ψ, uψ') per block) equals each twin block's own ``one_plus_psi`` at its
    points to ``rtol``, with the same shapes and NaNs; only one (NaN) input per block may fail."""
    for block, u, (p, slope) in zip(single, us, many):
        p_ref, slope_ref = block.one_plus_psi(u)
        assert p.shape == u.shape and slope.shape == u.shape
        np.testing.assert_array_equal(np.isnan(p), np.isnan(p_ref))
        finite = np.isfinite(p_ref)
        assert finite.sum() >= u.size - 1  # only the NaN input fails
        np.testing.assert_allclose(p[finite], p_ref[finite], rtol=rtol, atol=0)
        np.testing.assert_allclose(slope[finite], slope_ref[finite], rtol=rtol, atol=0)


def test_stacked_blocks_equal_one_block_at_a_time() -> None:
    # ResidualBlockS.one_plus_psi_many solves blocks sharing their law of D² as one array; the reference is each
    # block's own one_plus_psi on a twin block with the same history of calls. The solver is pointwise, so the
    # values must agree to rounding (they are identical in practice); the points cover every stage of the solve:
    # complex u (continuation, then warm starts from the previous call and from memory), real u below the cut
    # (the real branch), u near 0, and a non-finite u (NaN out)
    s_values = [1.4, 0.7, 0.45, 0.3]
    stacked, single = _blocks(s_values), _blocks(s_values)
    base = np.array([0.05 - 0.2j, -0.3 - 0.1j, 0.2 - 0.05j, 1.5 - 0.4j, -2.0 - 1.0j, 1e-4 - 1e-5j, -0.5 + 0j, 0.01 + 0j,
                     complex(np.nan, 0.0)])
    for step, scale in enumerate([1.0, 1.01, 1.03, 0.8, 1.2, 3.0]):
        # different points per block, and a different shape on the last call
        us = [base * scale * (1.0 + 0.05 * j) for j in range(len(s_values))]
        if step == 5:
            us = [u[:5].reshape(5, 1) for u in us]
        assert_stacked_equals_single(single, us, ResidualBlockS.one_plus_psi_many(stacked, us), rtol=1e-13)


def test_bn_residual_law_stacked_equals_old_path() -> None:
    # the BN-ResNet relu law (per-block α_l of De & Smith 2020, docs/derivations.md §10) at 3 blocks: support and
    # density with the blocks stacked and one at a time, each on a fresh law, agree to 1e-10 relative
    from rmt_init.theory.residual_bn import bn_residual_alphas

    alphas = bn_residual_alphas(3, "relu", q0=1.0, sigma_w2=2.0)
    results = []
    previous = ResidualBlockS.stacked
    try:
        for flag in (False, True):
            ResidualBlockS.stacked = flag
            law = jacobian_spectrum(3, "relu", residual=alphas, weights="gaussian", sigma_w2=2.0, sigma_b2=0.0)
            x = np.array([1e-3, 0.3, 1.0, 3.0]) * law.mean()
            results.append((np.array(law.support), law.pdf(x)))
    finally:
        ResidualBlockS.stacked = previous
    (support_old, pdf_old), (support_new, pdf_new) = results
    np.testing.assert_allclose(support_new, support_old, rtol=1e-10)
    assert np.all(pdf_old > 0)
    np.testing.assert_allclose(pdf_new, pdf_old, rtol=1e-10)
