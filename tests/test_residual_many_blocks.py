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
