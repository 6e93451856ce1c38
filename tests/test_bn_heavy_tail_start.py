"""B = 4: the η-continuation of a law with infinite m₂ starts high enough to reach the density's root
(docs/derivations.md §11.12).

Started at 10 × the spectral scale, the moment guess w ≈ m₁/z was 30 % off (ψ(1/z) − m₁/z decays like |z|^{−1/2}
relative at B = 4) and Newton from it reached a spurious root that every later step followed: relu, B = 4, depth 10
read xρ(1) = 0.0341 against torch's 0.0107 and its table held 1.38 against 0.456 (refused); tanh B = 4 at depth 10,
20 and linear B = 4 at depth 20 refused too.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init import bn_jacobian_spectrum
from rmt_init.theory import bn_spectrum


def _fine_continuation(law, x: float, eta0: float = 1e7, ratio: float = 0.8) -> float:
    """xρ(x) by Newton steps of η ratio 0.8 from η = 1e7 (400 × the scale here) down to 1e−3, then η = 0: an
    independent, slow path (the law's own starts higher and takes steps of ¼)."""
    m1, m2 = law._first_moments
    z = np.array([x + 1j * eta0])
    w = m1 / z + m2 / z**2
    t = np.log1p(w)
    taus = [np.log(float(term.scale) * w / term.factor.mean) for term in law.numerical]
    eta = eta0
    with np.errstate(all="ignore"):
        t, taus, ok = law._newton(z, t, taus)
        assert ok.all()
        while eta > 1e-3:
            eta *= ratio
            t, taus, ok = law._newton(np.array([x + 1j * max(eta, 1e-3)]), t, taus)
            assert ok.all()
        t, taus, ok = law._newton(np.array([x + 0j]), t, taus)
    assert ok.all()
    return float(-math.exp(t.real[0]) * math.sin(t.imag[0]) / math.pi)


def test_the_start_is_higher_only_where_m2_is_infinite() -> None:
    assert bn_jacobian_spectrum(2, "linear", 4)._start_height == pytest.approx(1e4)
    assert bn_jacobian_spectrum(2, "linear", 5)._start_height == pytest.approx(100.0)
    assert bn_jacobian_spectrum(2, "linear", 6)._start_height == 10.0


def test_relu_b4_depth10_density_is_the_fine_paths() -> None:
    law = bn_jacobian_spectrum(10, "relu", 4)
    x = np.array([1e-3, 1.0, 1e3])
    fine = [_fine_continuation(law, float(v)) for v in x]
    assert fine[1] == pytest.approx(0.010594, rel=1e-4)  # torch, N = 256, 16 networks: 0.0107 in [1, 10)
    assert x * law.pdf(x) == pytest.approx(fine, rel=1e-9)


@pytest.mark.parametrize("depth, act", [(10, "relu"), (20, "linear")])
def test_b4_tables_hold_the_continuous_mass(depth: int, act: str) -> None:
    law = bn_jacobian_spectrum(depth, act, 4)
    assert law.table_mass == pytest.approx(law.continuous_mass, rel=1e-6)


def test_the_old_start_reaches_the_spurious_root(monkeypatch) -> None:
    monkeypatch.setattr(bn_spectrum.BNBatchJacobianLaw, "_start_height", 10.0)
    law = bn_jacobian_spectrum(10, "relu", 4)
    assert float(law.pdf(1.0)) == pytest.approx(0.0341041, rel=1e-4)
